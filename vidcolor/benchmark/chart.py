"""PNG charts of a benchmark result, drawn with OpenCV (no plotting dependency).

``stages_chart``: one panel per clip, a bar per stage in frames/s on a log scale (the pipeline's
own stages in blue, the slowest of them in red, other variants in grey, end to end in green),
with min..max whiskers over the repeats and a dashed line at the slowest stage; below, the model
at each render size x batch size. ``memory_chart``: resident memory against progress for the
short and the long clip, with their peaks.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from vidcolor.durable import write_atomic
from vidcolor.errors import UsageError

WIDTH = 1280
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (30, 30, 30)
_GRID = (225, 225, 225)
_BLUE = (190, 120, 40)  # BGR
_RED = (50, 50, 210)
_GREY = (170, 170, 170)
_GREEN = (60, 160, 60)
_ORANGE = (40, 140, 230)
_ROW = 30  # pixels per bar row
_LABEL_W = 300  # left column of row labels
_RIGHT = 150  # room for the value text


def _text(
    img: np.ndarray,
    s: str,
    x: int,
    y: int,
    scale: float = 0.5,
    color: tuple[int, int, int] = _INK,
    bold: bool = False,
) -> None:
    cv2.putText(img, s, (x, y), _FONT, scale, color, 2 if bold else 1, cv2.LINE_AA)


def _text_w(s: str, scale: float = 0.5) -> int:
    return cv2.getTextSize(s, _FONT, scale, 1)[0][0]


def _stage_label(m: dict[str, Any]) -> str:
    p = m["params"]
    name = m["stage"]
    if name == "decode":
        return f"[1] decode ({p.get('codec')})"
    if name == "to_l":
        return f"[2] to L + batch ({p['padded'][0]}x{p['padded'][1]})"
    if name == "model":
        return f"[3] model r{p['render_size']} b{p['batch_size']} {p.get('dtype', '')}"
    if name == "smooth":
        return f"[4] smooth {p['strength']}"
    if name == "smooth+cuts":
        return "[4] smooth + cut detector"
    if name == "merge":
        return f"[5] merge to {p['size'][0]}x{p['size'][1]}"
    if name == "encode":
        return f"[6] encode {p['codec']}"
    if name.startswith("e2e "):
        return name.replace("render_size", "render").replace("batch_size", "batch")
    return "end to end" if name == "e2e" else name


class _LogAxis:
    """Frames/s -> x pixel on a log scale spanning whole decades."""

    def __init__(self, lo: float, hi: float, x0: int, x1: int) -> None:
        self.d0 = math.floor(math.log10(max(lo, 1e-3)))
        self.d1 = max(self.d0 + 1, math.ceil(math.log10(max(hi, 1e-3))))
        self.x0, self.x1 = x0, x1

    def __call__(self, v: float) -> int:
        t = (math.log10(max(v, 10.0**self.d0)) - self.d0) / (self.d1 - self.d0)
        return int(round(self.x0 + t * (self.x1 - self.x0)))

    def ticks(self) -> list[float]:
        return [
            m * 10.0**d for d in range(self.d0, self.d1 + 1) for m in (1, 3) if m * 10.0**d <= 10.0**self.d1
        ]


def _bars(
    rows: list[tuple[str, dict[str, Any], tuple[int, int, int]]], axis: _LogAxis, top: int
) -> np.ndarray:
    h = top + _ROW * len(rows) + 36
    img = np.full((h, WIDTH, 3), 255, np.uint8)
    for t in axis.ticks():
        x = axis(t)
        cv2.line(img, (x, top - 6), (x, h - 30), _GRID, 1)
        label = f"{t:g}"
        _text(img, label, x - _text_w(label, 0.4) // 2, h - 12, 0.4, (120, 120, 120))
    for i, (label, m, color) in enumerate(rows):
        y = top + i * _ROW
        _text(img, label, 10, y + 19, 0.5)
        x1 = axis(m["fps"])
        cv2.rectangle(img, (axis.x0, y + 5), (x1, y + _ROW - 5), color, -1)
        lo, hi = axis(m["fps_min"]), axis(m["fps_max"])
        ym = y + _ROW // 2
        cv2.line(img, (lo, ym), (hi, ym), _INK, 1, cv2.LINE_AA)
        for xx in (lo, hi):
            cv2.line(img, (xx, ym - 5), (xx, ym + 5), _INK, 1, cv2.LINE_AA)
        _text(img, f"{m['fps']:.1f}", max(x1, hi) + 8, y + 19, 0.5, _INK, bold=color in (_RED, _GREEN))
    return img


def _clip_panel(clip: dict[str, Any], axis: _LogAxis, head: str) -> np.ndarray:
    stages = clip.get("stages", [])
    low = clip.get("slowest_stage")
    rows: list[tuple[str, dict[str, Any], tuple[int, int, int]]] = []
    for m in stages:
        own = m["params"].get("pipeline")
        is_low = low is not None and own and m["fps"] == low["fps"] and m["stage"] == low["stage"]
        rows.append((_stage_label(m), m, _RED if is_low else (_BLUE if own else _GREY)))
    if "e2e" in clip:
        rows.append(("end to end (all stages)", clip["e2e"], _GREEN))
    for k in clip.get("knobs", []):
        rows.append((_stage_label(k), k, _ORANGE))
    top = 64
    img = _bars(rows, axis, top)
    size = f"{clip['width']}x{clip['height']}"
    title = f"{clip['label']}  {size}  {head}" if clip["label"] != size else f"{size}  {head}"
    _text(img, title, 10, 24, 0.65, _INK, bold=True)
    if low is not None:
        x = axis(low["fps"])
        for y in range(top - 6, img.shape[0] - 30, 8):
            cv2.line(img, (x, y), (x, y + 4), _RED, 1)
        if "e2e" in clip:
            ratio = clip["e2e"]["fps"] / low["fps"]
            _text(
                img,
                f"end to end = {ratio:.2f} x the slowest stage ({low['stage']}, {low['fps']:.1f} frames/s)",
                10,
                50,
                0.5,
                _RED if ratio < 0.85 else _GREEN,
            )
    return img


def _sweep_panel(sweep: list[dict[str, Any]], variants: list[dict[str, Any]]) -> np.ndarray:
    renders = sorted({m["params"]["render_size"] for m in sweep})
    batches = sorted({m["params"]["batch_size"] for m in sweep})
    cell_w, cell_h, left, top = 130, 28, 300, 60
    h = top + cell_h * (len(renders) + 1) + 20 + (24 * (len(variants) + 1) if variants else 0)
    img = np.full((h, WIDTH, 3), 255, np.uint8)
    dtype = sweep[0]["params"].get("dtype", "")
    _text(
        img,
        f"[3] model alone, frames/s by render size (short side) and batch size ({dtype}, "
        f"{sweep[0]['params'].get('device', '')})",
        10,
        24,
        0.6,
        _INK,
        bold=True,
    )
    best = max(m["fps"] for m in sweep)
    for j, b in enumerate(batches):
        _text(img, f"batch {b}", left + j * cell_w + 10, top + 18, 0.5)
    for i, r in enumerate(renders):
        y = top + (i + 1) * cell_h
        shape = next(m["params"]["input"] for m in sweep if m["params"]["render_size"] == r)
        _text(img, f"render {r} ({shape[-2]}x{shape[-1]})", 10, y + 18, 0.5)
        for j, b in enumerate(batches):
            m = next(
                (m for m in sweep if m["params"]["render_size"] == r and m["params"]["batch_size"] == b), None
            )
            if m is None:
                continue
            x = left + j * cell_w
            shade = int(255 - 120 * (m["fps"] / best))
            cv2.rectangle(img, (x, y), (x + cell_w - 4, y + cell_h - 4), (shade, 255, shade), -1)
            _text(img, f"{m['fps']:.2f}", x + 10, y + 18, 0.5)
    if variants:
        y = top + cell_h * (len(renders) + 1) + 30
        p0 = variants[0]["params"]
        _text(
            img, f"other ways to run it (render {p0['render_size']}, batch {p0['batch_size']}):", 10, y, 0.5
        )
        for i, m in enumerate(variants):
            _text(
                img,
                f"{m['params']['variant']}: {m['fps']:.2f} frames/s "
                f"(ab changes by up to {m['params']['max_ab_diff']:.2g})",
                30,
                y + 24 * (i + 1),
                0.5,
            )
    return img


def stages_chart(result: dict[str, Any]) -> np.ndarray:
    """The stage chart of a result, BGR uint8 (H, 1280, 3)."""
    env, model = result.get("environment", {}), result.get("model", {})
    values = [
        m[k]
        for c in result.get("clips", [])
        for m in [*c.get("stages", []), *([c["e2e"]] if "e2e" in c else []), *c.get("knobs", [])]
        for k in ("fps_min", "fps_max")
    ]
    if not values:
        raise ValueError("the result holds no stage or end-to-end figure to chart")
    axis = _LogAxis(min(values), max(values), _LABEL_W, WIDTH - _RIGHT)
    head_img = np.full((70, WIDTH, 3), 255, np.uint8)
    _text(
        head_img,
        "vidcolor: frames per second by stage (median; whiskers: min..max over repeats; log scale)",
        10,
        26,
        0.7,
        _INK,
        bold=True,
    )
    threads = env.get("torch_threads")
    _text(
        head_img,
        f"{model.get('name')} on {model.get('device')} ({model.get('dtype')}), {env.get('cpu')}, "
        f"{env.get('cpus_usable')} CPUs, torch {threads} threads, load {env.get('load_average_start')}"
        f" -> {env.get('load_average_end')}, {result.get('created', '')}",
        10,
        54,
        0.45,
    )
    parts = [head_img]
    for clip in result.get("clips", []):
        parts.append(_clip_panel(clip, axis, f"{clip.get('frames') or ''} frames"))
    if result.get("model_sweep"):
        parts.append(_sweep_panel(result["model_sweep"], result.get("model_variants", [])))
    legend = np.full((34, WIDTH, 3), 255, np.uint8)
    x = 10
    for color, name in (
        (_BLUE, "stage of this run"),
        (_RED, "slowest stage"),
        (_GREY, "other variant"),
        (_GREEN, "end to end"),
        (_ORANGE, "end to end, one knob changed"),
    ):
        cv2.rectangle(legend, (x, 10), (x + 18, 26), color, -1)
        _text(legend, name, x + 24, 24, 0.5)
        x += 40 + _text_w(name)
    parts.append(legend)
    return np.vstack(parts)


def memory_chart(memory: dict[str, Any]) -> np.ndarray:
    """Resident memory (MiB) against the fraction of the clip written, short and long clip."""
    h, left, right, top, bottom = 440, 90, 40, 100, 50
    img = np.full((h, WIDTH, 3), 255, np.uint8)
    runs = [("short", memory["short"], _BLUE), ("long", memory["long"], _RED)]
    peak = max(r["peak_rss_mib"] for _, r, _ in runs)
    y_hi = math.ceil(peak * 1.1 / 100) * 100
    x0, x1, y0, y1 = left, WIDTH - right, h - bottom, top

    def px(frac: float, mib: float) -> tuple[int, int]:
        return int(x0 + frac * (x1 - x0)), int(y0 - mib / y_hi * (y0 - y1))

    for mib in range(0, y_hi + 1, max(100, (y_hi // 5) // 100 * 100)):
        y = px(0, mib)[1]
        cv2.line(img, (x0, y), (x1, y), _GRID, 1)
        _text(img, f"{mib}", 10, y + 5, 0.45, (120, 120, 120))
    _text(img, "RSS MiB", 10, top - 12, 0.45, (120, 120, 120))
    _text(img, "share of the run's time (0 .. 1)", x0 + (x1 - x0) // 2 - 120, h - 14, 0.45, (120, 120, 120))
    _text(
        img,
        f"vidcolor: resident memory, {memory.get('clip', '')} clip of {memory['short']['frames']} frames "
        f"and of {memory['long']['frames']} frames (each in a fresh process)",
        10,
        26,
        0.65,
        _INK,
        bold=True,
    )
    ratio = memory["peak_rss_ratio"]
    _text(
        img,
        f"peak RSS: {memory['short']['peak_rss_mib']:.0f} MiB vs {memory['long']['peak_rss_mib']:.0f} MiB "
        f"(long / short = {ratio:.3f}); after loading the model: "
        f"{memory['short']['rss_after_model_load_mib']:.0f} MiB",
        10,
        52,
        0.5,
        _GREEN if ratio <= 1.10 else _RED,
    )
    for name, r, color in runs:
        pts = r["timeline"]
        end = max(max((p[0] for p in pts), default=1.0), 1e-9)
        poly = np.array([px(p[0] / end, p[2]) for p in pts], np.int32)
        if len(poly) > 1:
            cv2.polylines(img, [poly], False, color, 2, cv2.LINE_AA)
        y = px(0, r["peak_rss_mib"])[1]
        cv2.line(img, (x0, y), (x1, y), color, 1)
        _text(img, f"{name}: peak {r['peak_rss_mib']:.0f} MiB", x1 - 220, y - 6, 0.5, color)
    return img


def write_png(path: str, img: np.ndarray) -> None:
    """Write ``img`` (BGR uint8) as a PNG, whole; UsageError when it cannot be written."""
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise UsageError("a chart the PNG encoder accepts", "the encoder failed", "report this as a bug")
    try:
        write_atomic(path, buf.tobytes())
    except OSError as exc:
        raise UsageError(
            "a writable PNG path for the chart",
            f"{path}: {exc.strerror or exc}",
            "check that its folder is writable",
        ) from None
