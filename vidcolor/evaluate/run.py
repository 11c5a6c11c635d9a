"""The evaluation driver behind ``vidcolor eval``: take colour images and clips as ground truth, make
them grey, colorize them with each candidate, and score the result against the truth.

The colorizer interface (``ColorizeFn``)
----------------------------------------
A colorizer is a callable ``Iterator[np.ndarray] -> Iterable[np.ndarray]``. It is called once per
item (one clip, or one image as a clip of one frame) with an iterator over the grey frames of that
item, in order: uint8 (H, W), the BT.601 luma Y' of the sRGB truth. It returns an iterator (or any
iterable) of RGB uint8 (H, W, 3) frames of the same size: exactly one per input frame, in the same
order. It may read ahead of what it has returned (for batching or temporal smoothing), but should keep
that bounded so memory stays flat on long clips; it may consume the input from another thread. A
colorizer that breaks the contract (wrong count, size or dtype) raises ValueError here. A colorizer
with the attribute ``wants_truth = True`` (the guided modes of ``--hints-from-truth`` and
``--reference-from-truth``) is called with a keyword argument ``truth`` too: a function returning
a fresh iterator over the item's colour truth, RGB uint8 (H, W, 3); no other colorizer sees it.

How it stays memory-bounded
---------------------------
Each colorizer runs in its own pass over the item, which decodes the source again (decoding costs a
fraction of colorizing). Frames stream through: the truth frames that the colorizer has read but not
yet answered wait in a queue, each answer is scored at once and dropped, and only running sums are
kept (squared errors, CIEDE2000 sum, colourfulness sum, the previous frame's histograms for CDC),
plus the middle frame of each rendering for the contact sheet.

Metrics per item and colorizer
------------------------------
- ``psnr_rgb``: PSNR in dB of RGB (peak 255) from the squared error pooled over all frames;
  ``psnr_ab``: the same on the a*b* channels of Lab (peak 220). Both capped at ``PSNR_CAP_DB``.
- ``ciede2000``: mean CIEDE2000 over all pixels of all frames.
- ``colourfulness``: mean over frames of Hasler-Suesstrunk colourfulness (0..255 scale).
- ``cdc``: colour-distribution consistency between consecutive frames (videos; None for images).
- ``seconds``/``fps``: wall time spent waiting for the colorizer's frames, which includes decoding
  the source but not the scoring.
- ratios: ``ciede2000_vs_grey`` (to the grey baseline's, below 1 is better than leaving it grey),
  ``colourfulness_vs_truth`` and ``cdc_vs_truth`` (1 is the truth's own).

The ``grey`` baseline (a* = b* = 0: the grey frame as RGB) is always scored. The aggregate, per kind
(videos, images), averages each metric over items with equal weight and takes the ratios of those
means (a ratio of means does not blow up on an item whose truth is nearly colourless or still).

(Over 400 lines: the driver, the per-kind aggregation and the report schema change together;
the metrics and the contact sheet are in their own modules.)
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from vidcolor.color import rgb_to_lab
from vidcolor.durable import write_atomic
from vidcolor.errors import CorruptInputError, InputError, UsageError
from vidcolor.evaluate import metrics
from vidcolor.evaluate.sheet import contact_sheet
from vidcolor.formats import FILM_SUFFIXES, STILL_SUFFIXES
from vidcolor.version import __version__

ColorizeFn = Callable[[Iterator[np.ndarray]], Iterable[np.ndarray]]

GREY = "grey"  # name of the built-in baseline
TRUTH = "truth"  # column of the ground truth on the sheet
PSNR_CAP_DB = 100.0  # identical frames would give inf; a cap keeps means finite
_MIN_RENDER_SIZE = 16

Kind = Literal["image", "video"]


@dataclass(frozen=True)
class EvalItem:
    """One ground-truth sample: a colour image or a colour clip."""

    path: Path
    kind: Kind

    @property
    def name(self) -> str:
        return self.path.name


# ------------------------------------------------------------------------------------ inputs


def _kind_of(path: Path) -> Kind | None:
    ext = path.suffix.lower()
    if ext in STILL_SUFFIXES:
        return "image"
    if ext in FILM_SUFFIXES:
        return "video"
    return None


def discover(data: Sequence[Path | str]) -> list[EvalItem]:
    """The items to evaluate: each path is a file, or a folder whose image and video files (not its
    subfolders, not hidden files) are taken in name order. Raises InputError for a missing path, a
    file of unknown type, or nothing to evaluate at all."""
    items: list[EvalItem] = []
    for p in map(Path, data):
        if p.is_dir():
            for f in sorted(p.iterdir()):
                kind = _kind_of(f)
                if kind and f.is_file() and not f.name.startswith("."):
                    items.append(EvalItem(f, kind))
        elif p.is_file():
            kind = _kind_of(p)
            if kind is None:
                raise InputError(
                    "an image or video file (" + ", ".join(sorted(STILL_SUFFIXES | FILM_SUFFIXES)) + ")",
                    f"{p}",
                    "pass colour images or clips, or a folder of them",
                )
            items.append(EvalItem(p, kind))
        else:
            raise InputError("an existing file or folder", f"no such path {p}", "check the path")
    if not items:
        raise InputError(
            "at least one colour image or clip",
            "none in " + ", ".join(str(p) for p in data),
            "point eval at folders of colour images or videos",
        )
    return items


def _fit(rgb: np.ndarray, render_size: int | None) -> np.ndarray:
    """Shrink so that the short side is at most ``render_size`` (aspect kept); never enlarge."""
    if render_size is None:
        return rgb
    h, w = rgb.shape[:2]
    short = min(h, w)
    if short <= render_size:
        return rgb
    s = render_size / short
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _read_image(path: Path) -> np.ndarray:
    buf = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise InputError("a readable image", f"{path} cannot be decoded", "replace or remove the file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_truth(
    item: EvalItem, max_frames: int | None = None, render_size: int | None = None
) -> Iterator[np.ndarray]:
    """The ground-truth frames of an item: RGB uint8 (H, W, 3), in order, decoded one at a time.

    Videos are decoded with PyAV to rgb24 (first video stream; at most ``max_frames``); an image is
    one frame. Frames are shrunk to ``render_size`` on the short side when larger.
    """
    if item.kind == "image":
        yield _fit(_read_image(item.path), render_size)
        return
    try:
        container = av.open(str(item.path))
    except av.error.FFmpegError as e:
        raise InputError("a readable video", f"{item.path}: {e}", "replace or remove the file") from e
    with container:
        if not container.streams.video:
            raise InputError("a video stream", f"none in {item.path}", "pass a clip with video")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        frames = container.decode(stream)
        while max_frames is None or index < max_frames:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                raise CorruptInputError(
                    "a clip that decodes to its end",
                    f"{item.path} breaks at frame {index}: {e}",
                    "re-encode the clip or limit --max-frames",
                    frame_index=index,
                ) from e
            yield _fit(frame.to_ndarray(format="rgb24"), render_size)
            index += 1
    if index == 0:
        raise InputError("at least one video frame", f"none in {item.path}", "replace or remove the file")


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma Y' of an sRGB frame: uint8 (H, W, 3) -> uint8 (H, W), rounded.

    Y' = 0.299 R' + 0.587 G' + 0.114 B' on the gamma-encoded values, as a camera or telecine that
    records only luma would.
    """
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def grey_colorizer(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The baseline: leave the film grey (a* = b* = 0), returned as RGB uint8 (H, W, 3)."""
    for y in frames:
        yield np.repeat(y[:, :, None], 3, axis=2)


def per_frame(fn: Callable[[np.ndarray], np.ndarray]) -> ColorizeFn:
    """Turn a frame-by-frame function (grey uint8 (H, W) -> RGB uint8 (H, W, 3)) into a ColorizeFn."""

    def colorize(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for y in frames:
            yield fn(y)

    return colorize


# ------------------------------------------------------------------------------------ scoring


class _Scores:
    """Running sums of one colorizer on one item; nothing per frame is kept."""

    def __init__(self) -> None:
        self.frames = 0
        self.pixels = 0
        self.sse_rgb = 0.0  # sum of squared RGB errors, 0..255 units
        self.sse_ab = 0.0  # sum of squared a*b* errors
        self.ciede = 0.0  # sum of per-pixel CIEDE2000
        self.colour = 0.0  # sum of per-frame colourfulness
        self.cdc = metrics.CDCAccumulator()

    def add(self, rgb: np.ndarray, lab: np.ndarray, rgb_true: np.ndarray, lab_true: np.ndarray) -> None:
        d = rgb.astype(np.float32) - rgb_true.astype(np.float32)
        self.sse_rgb += float(np.sum(d * d, dtype=np.float64))
        dab = lab[..., 1:] - lab_true[..., 1:]
        self.sse_ab += float(np.sum(dab * dab, dtype=np.float64))
        self.ciede += float(np.sum(metrics.ciede2000(lab, lab_true), dtype=np.float64))
        self.colour += metrics.colourfulness(rgb)
        self.cdc.push(rgb)
        self.frames += 1
        self.pixels += rgb.shape[0] * rgb.shape[1]

    def add_truth(self, rgb_true: np.ndarray) -> None:
        """Score the truth itself: only colourfulness and CDC mean anything for it."""
        self.colour += metrics.colourfulness(rgb_true)
        self.cdc.push(rgb_true)
        self.frames += 1

    def summary(self, kind: Kind) -> dict[str, float | None]:
        px = max(self.pixels, 1)
        return {
            "psnr_rgb": metrics.psnr_from_mse(self.sse_rgb / (3 * px), 255.0, PSNR_CAP_DB),
            "psnr_ab": metrics.psnr_from_mse(self.sse_ab / (2 * px), metrics.AB_PEAK, PSNR_CAP_DB),
            "ciede2000": self.ciede / px,
            "colourfulness": self.colour / max(self.frames, 1),
            "cdc": self.cdc.value() if kind == "video" else None,
        }

    def truth_summary(self, kind: Kind) -> dict[str, float | None]:
        return {
            "colourfulness": self.colour / max(self.frames, 1),
            "cdc": self.cdc.value() if kind == "video" else None,
        }


@dataclass
class _Pass:
    scores: _Scores
    truth: _Scores | None
    frames: int
    size: tuple[int, int]  # (width, height) of the scored frames
    seconds: float
    kept: np.ndarray | None  # the colorizer's frame at keep_index


def _check_frame(name: str, item: EvalItem, i: int, out: Any, truth: np.ndarray) -> np.ndarray:
    want = truth.shape
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != want:
        found = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(
            f"colorizer {name!r} returned {found} for frame {i} of {item.name}; expected uint8 {want}"
        )
    return out


def _score_pass(
    item: EvalItem,
    name: str,
    colorize: ColorizeFn,
    *,
    max_frames: int | None,
    render_size: int | None,
    with_truth: bool = False,
    keep_index: int | None = None,
) -> _Pass:
    """Run one colorizer over one item, scoring each frame as it comes out."""
    pending: deque[np.ndarray] = deque()  # truth frames read by the colorizer, not yet answered
    fed = 0
    exhausted = False

    def feed() -> Generator[np.ndarray, None, None]:
        nonlocal fed, exhausted
        for rgb in iter_truth(item, max_frames, render_size):
            pending.append(rgb)
            fed += 1
            yield to_grey(rgb)
        exhausted = True

    source = feed()
    scores, truth = _Scores(), (_Scores() if with_truth else None)
    kept: np.ndarray | None = None
    size = (0, 0)
    seconds = 0.0
    i = 0
    if getattr(colorize, "wants_truth", False):
        # Guided modes (hints or references from the truth) read the truth on a pass of their own;
        # a colorizer without the flag never sees it.
        out = iter(colorize(source, truth=lambda: iter_truth(item, max_frames, render_size)))  # type: ignore[call-arg]  # only colorizers marked wants_truth are called with truth=
    else:
        out = iter(colorize(source))
    try:
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(out)
            except StopIteration:
                seconds += time.perf_counter() - t0
                break
            seconds += time.perf_counter() - t0
            if not pending:
                raise ValueError(f"colorizer {name!r} returned more frames than it read from {item.name}")
            rgb_true = pending.popleft()
            frame = _check_frame(name, item, i, frame, rgb_true)
            lab_true = rgb_to_lab(rgb_true.astype(np.float32) / 255.0)
            scores.add(frame, rgb_to_lab(frame.astype(np.float32) / 255.0), rgb_true, lab_true)
            if truth is not None:
                truth.add_truth(rgb_true)
            if i == keep_index:
                kept = frame.copy()
            size = (rgb_true.shape[1], rgb_true.shape[0])
            i += 1
    finally:
        source.close()  # a colorizer that stopped early must not keep the clip open
    if not exhausted or pending:
        raise ValueError(
            f"colorizer {name!r} returned {i} frames for {item.name} but read {fed}"
            + ("" if exhausted else " and stopped reading before the end")
        )
    return _Pass(scores, truth, i, size, seconds, kept)


def _frame_at(item: EvalItem, index: int, max_frames: int | None, render_size: int | None) -> np.ndarray:
    """Decode up to frame ``index`` of an item and return it (RGB uint8)."""
    for i, rgb in enumerate(iter_truth(item, max_frames, render_size)):
        if i == index:
            return rgb
    raise InputError(
        f"frame {index} in {item.path}", "a shorter clip on a second read", "check that the file is stable"
    )


# ------------------------------------------------------------------------------------ report


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not math.isfinite(num) or not math.isfinite(den) or den == 0.0:
        return None
    return num / den


def _mean(values: list[float | None]) -> float | None:
    """Mean of the values that exist (CDC does not for a one-frame clip, for truth and colorizers
    alike, so every mean is over the same items); None when none does."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def _ratios(res: Mapping[str, Any], grey: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ciede2000_vs_grey": _ratio(res["ciede2000"], grey["ciede2000"]),
        "colourfulness_vs_truth": _ratio(res["colourfulness"], truth["colourfulness"]),
        "cdc_vs_truth": _ratio(res["cdc"], truth["cdc"]),
    }


_METRICS = ("psnr_rgb", "psnr_ab", "ciede2000", "colourfulness", "cdc")


def _aggregate(items: list[dict[str, Any]], names: list[str]) -> dict[str, Any] | None:
    """Means over items (equal weight) and ratios of those means; None when there are no items."""
    if not items:
        return None
    truth = {k: _mean([it["truth"][k] for it in items]) for k in ("colourfulness", "cdc")}
    out: dict[str, Any] = {
        "items": len(items),
        "frames": sum(it["frames"] for it in items),
        "truth": truth,
        "colorizers": {},
    }
    for name in names:
        rs = [it["colorizers"][name] for it in items]
        agg: dict[str, Any] = {k: _mean([r[k] for r in rs]) for k in _METRICS}
        secs = sum(r["seconds"] for r in rs)
        agg["seconds"] = secs
        agg["fps"] = out["frames"] / secs if secs > 0 else None
        out["colorizers"][name] = agg
    grey = out["colorizers"][GREY]
    for name in names:
        out["colorizers"][name].update(_ratios(out["colorizers"][name], grey, truth))
    return out


def _machine() -> dict[str, Any]:
    try:
        import torch

        torch_version: str | None = torch.__version__
        torch_threads: int | None = torch.get_num_threads()
    except ImportError:  # evaluation itself does not need torch
        torch_version, torch_threads = None, None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "av": av.__version__,
        "torch": torch_version,
        "torch_threads": torch_threads,
    }


def _finite(x: Any) -> Any:
    """Replace NaN and infinities by None, recursively, so the JSON is strict."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


# ------------------------------------------------------------------------------------ driver


def evaluate(
    data: Sequence[Path | str],
    colorizers: Mapping[str, ColorizeFn],
    *,
    out_json: Path | None,
    sheet: Path | None = None,
    max_frames: int | None = None,
    render_size: int | None = None,
    thumb_height: int = 160,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score each colorizer (and the grey baseline) on colour images and clips; see the module doc.

    data: files or folders of colour images and videos (the ground truth).
    colorizers: name -> ColorizeFn; "grey" and "truth" are reserved.
    out_json: where to write the report (atomically; None: do not write).
    sheet: where to write a contact sheet PNG, one row per item (the middle frame of a clip):
        grey | each colorizer | truth; None: no sheet.
    max_frames: score at most this many frames of each clip (None: all).
    render_size: evaluate at most this short side in pixels (larger truth frames are shrunk with
        area averaging before they are made grey); None: native size.
    progress: called with a one-line message before each item (the library itself never prints).
    Returns the report as a dict (the JSON's content, NaN/inf written as None).
    """
    for reserved in (GREY, TRUTH):
        if reserved in colorizers:
            raise UsageError(
                "colorizer names other than 'grey' and 'truth'", f"{reserved!r}", "rename that colorizer"
            )
    if max_frames is not None and max_frames < 1:
        raise UsageError("--max-frames of at least 1", str(max_frames), "raise it or leave it unset")
    if render_size is not None and render_size < _MIN_RENDER_SIZE:
        raise UsageError(
            f"a render size of at least {_MIN_RENDER_SIZE} px", str(render_size), "raise it or leave it unset"
        )
    items = discover(data)
    names = [GREY, *colorizers]
    funcs: dict[str, ColorizeFn] = {GREY: grey_colorizer, **colorizers}
    started = time.perf_counter()

    records: list[dict[str, Any]] = []
    rows: list[tuple[str, list[np.ndarray]]] = []
    for n, item in enumerate(items, 1):
        if progress:
            progress(f"[{n}/{len(items)}] {item.path}")
        # The grey pass also counts the frames and scores the truth; later passes know the middle.
        base = _score_pass(
            item, GREY, grey_colorizer, max_frames=max_frames, render_size=render_size, with_truth=True
        )
        mid = base.frames // 2
        assert base.truth is not None
        truth = base.truth.truth_summary(item.kind)
        results: dict[str, dict[str, Any]] = {}
        kept: dict[str, np.ndarray | None] = {}
        captions: list[str] = []
        for name in names:
            if name == GREY:
                p = base
            else:
                p = _score_pass(
                    item, name, funcs[name], max_frames=max_frames, render_size=render_size, keep_index=mid
                )
            if p.frames != base.frames:
                # The source itself decoded to a different length on this read.
                raise InputError(
                    f"{base.frames} frames in {item.path} on every read",
                    f"{p.frames} while scoring {name!r}",
                    "check that the file is not being written to",
                )
            r: dict[str, Any] = dict(p.scores.summary(item.kind))
            r["seconds"] = p.seconds
            r["fps"] = p.frames / p.seconds if p.seconds > 0 else None
            # A colorizer may say more about what it did (which references it chose, say).
            if callable(more := getattr(funcs[name], "item_report", None)):
                r["guidance"] = more(item.name)
            if callable(caption := getattr(funcs[name], "caption", None)):
                captions.append(f"{name.rsplit('/', 1)[-1]}: {caption(mid)}")
            results[name] = r
            kept[name] = p.kept
        for name in names:
            results[name].update(_ratios(results[name], results[GREY], truth))
        records.append(
            {
                "path": str(item.path),
                "name": item.name,
                "kind": item.kind,
                "frames": base.frames,
                "width": base.size[0],
                "height": base.size[1],
                "sheet_frame": mid,
                "truth": truth,
                "colorizers": results,
            }
        )
        if sheet is not None:
            rgb_mid = _frame_at(item, mid, max_frames, render_size)
            grey_mid = to_grey(rgb_mid)
            outs = [kept[name] for name in names[1:]]
            assert all(o is not None for o in outs)  # every pass has frame `mid`: counts were checked
            title = item.name if item.kind == "image" else f"{item.name}  (frame {mid} of {base.frames})"
            title = "  ".join([title, *captions])
            rows.append((title, [grey_mid, *outs, rgb_mid]))  # type: ignore[list-item]  # outs holds arrays once the None rows are dropped above

    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "vidcolor_version": __version__,
        "machine": _machine(),
        "settings": {
            "max_frames": max_frames,
            "render_size": render_size,
            "grey": "BT.601 luma Y' of the sRGB truth, uint8",
            "psnr_rgb_peak": 255.0,
            "psnr_ab_peak": metrics.AB_PEAK,
            "psnr_cap_db": PSNR_CAP_DB,
            "cdc_bins": metrics.CDC_BINS,
            "cdc_log_base": "e" if metrics.CDC_LOG_BASE == math.e else metrics.CDC_LOG_BASE,
            "aggregate": "mean over items, equal weight; ratios are ratios of those means",
        },
        "data": [str(p) for p in data],
        "colorizers": names,
        "items": records,
        "aggregate": {
            "videos": _aggregate([r for r in records if r["kind"] == "video"], names),
            "images": _aggregate([r for r in records if r["kind"] == "image"], names),
        },
        "seconds": time.perf_counter() - started,
        "sheet": str(sheet) if sheet is not None else None,
    }
    report = _finite(report)
    if sheet is not None:
        contact_sheet(rows, [GREY, *names[1:], TRUTH], Path(sheet), thumb_height)
    if out_json is not None:
        text = json.dumps(report, indent=2, allow_nan=False) + "\n"
        write_atomic(Path(out_json), text.encode("utf-8"))
    return report
