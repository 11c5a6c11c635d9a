"""Peak memory of a whole run, for a clip and for one ``scale`` times longer.

Each run is a fresh Python process (``python -m vidcolor.benchmark.memory``), so nothing an
earlier run allocated or cached counts: the child builds the model, runs ``colorize_video`` and
reports ``ru_maxrss`` (the kernel's peak resident set), ``VmHWM`` and a timeline of the resident
set sampled from /proc every 50 ms against the frames written, plus the peak CUDA memory when
the model runs on a GPU. A streaming pipeline holds a bounded number of frames, so the peak of
the longer clip should be that of the shorter one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from vidcolor.options import ColorizeOptions

SAMPLE_S = 0.05  # seconds between RSS samples
TIMELINE_POINTS = 200  # samples kept in the results (evenly thinned)


def _rss_mib() -> float:
    """Current resident set of this process, MiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mib() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _thin(points: list[list[float]], n: int) -> list[list[float]]:
    """At most ``n`` points: the highest-RSS sample of each of ``n`` equal runs (peaks survive)."""
    if len(points) <= n:
        return points
    size = len(points) / n
    return [
        max(points[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)], key=lambda p: p[2])
        for i in range(n)
    ]


def child(src: Path, dst: Path, opts: ColorizeOptions, model: str | None) -> dict[str, Any]:
    """Runs in the fresh process: one colorize_video, its memory figures as a dict."""
    import torch

    from .e2e import run_with
    from .model import build_model

    net, desc = build_model(model, opts.device, opts.half)
    cuda = next(net.parameters()).device.type == "cuda"
    rss_before = _rss_mib()
    done = [0]
    timeline: list[list[float]] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            timeline.append([round(time.perf_counter() - t0, 3), done[0], round(_rss_mib(), 1)])
            stop.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        summary = run_with(src, dst, opts, net, on_frame=lambda n: done.__setitem__(0, n))
    finally:
        stop.set()
        sampler.join()
    hwm = _hwm_mib()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {
        "frames": summary.frames,
        "seconds": round(summary.seconds, 3),
        "fps": round(summary.fps, 3),
        "model": desc,
        "rss_after_model_load_mib": round(rss_before, 1),
        # The peak is VmHWM, the high-water mark of this process's own memory. ru_maxrss (KiB on
        # Linux) is kept for reference only: the kernel carries into it the RSS of the parent it
        # was forked from, so a child of a big process reports at least its parent's size.
        "peak_rss_mib": round(hwm, 1) if hwm is not None else round(max_rss, 1),
        "peak_rss_sampled_mib": round(max((p[2] for p in timeline), default=0.0), 1),
        "ru_maxrss_mib": round(max_rss, 1),
        "timeline": _thin(timeline, TIMELINE_POINTS),  # [seconds, frames written, RSS MiB]
    }
    if cuda:
        out["cuda_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["cuda_peak_reserved_mib"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    return out


def _changed(opts: ColorizeOptions) -> dict[str, Any]:
    """The options that differ from the defaults (JSON would turn tuple fields into lists)."""
    default = ColorizeOptions()
    return {
        f.name: getattr(opts, f.name)
        for f in fields(opts)
        if getattr(opts, f.name) != getattr(default, f.name)
    }


def run_fresh(
    src: Path, dst: Path, opts: ColorizeOptions, model: str | None, timeout_s: float = 7200
) -> dict[str, Any]:
    """Run :func:`child` in a new Python process and return its figures."""
    cmd = [
        sys.executable,
        "-m",
        "vidcolor.benchmark.memory",
        str(src),
        str(dst),
        "--options",
        json.dumps(_changed(opts)),
        *(["--model", model] if model else []),
    ]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"memory run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(
    short: Path, long: Path, opts: ColorizeOptions, model: str | None, work_dir: Path, scale: int
) -> dict[str, Any]:
    """Peak memory of ``short`` and of ``long`` (``scale`` times as many frames), each in a fresh process."""
    from dataclasses import replace

    opts = replace(opts, overwrite=True)
    runs = {}
    for name, src in (("short", short), ("long", long)):
        dst = Path(work_dir) / f"memory-{name}.mp4"
        try:
            runs[name] = run_fresh(src, dst, opts, model)
        finally:
            dst.unlink(missing_ok=True)
    s, lg = runs["short"], runs["long"]
    res: dict[str, Any] = {
        "scale": scale,
        "short": s,
        "long": lg,
        "peak_rss_ratio": round(lg["peak_rss_mib"] / s["peak_rss_mib"], 4),
        # growth beyond the fixed cost of Python, torch and the model
        "peak_rss_growth_mib": round(lg["peak_rss_mib"] - s["peak_rss_mib"], 1),
    }
    if "cuda_peak_allocated_mib" in s:
        res["cuda_peak_ratio"] = round(
            lg["cuda_peak_allocated_mib"] / max(s["cuda_peak_allocated_mib"], 1e-9), 4
        )
    return res


def _main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="one colorize_video run; prints its memory figures as JSON")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--options", default="{}", help="ColorizeOptions as JSON")
    p.add_argument("--model", default=None)
    a = p.parse_args(argv)
    known = {f.name for f in fields(ColorizeOptions)}
    opts = ColorizeOptions(**{k: v for k, v in json.loads(a.options).items() if k in known})
    print(json.dumps(child(a.src, a.dst, opts, a.model)))


if __name__ == "__main__":
    _main()
