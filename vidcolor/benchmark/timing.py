"""Timed repeats with a warm-up, device synchronisation inside the timed region, and their summary.

Every figure of the benchmarks is the *median* over repeats of a whole pass over some frames, in
frames per second, with the fastest and slowest repeat beside it: the median is robust to one
repeat disturbed by another process, and the spread says how much to trust it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued device work (CUDA kernels run asynchronously): a no-op on the CPU."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Measure:
    """Wall-clock seconds of ``repeats`` passes, each over ``frames`` frames.

    ``stage`` names what was timed, ``params`` how (render size, batch, codec, ...), ``notes``
    anything a reader needs to interpret the figure.
    """

    stage: str
    frames: int
    seconds: list[float]
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Frames per second of the median repeat."""
        return self.frames / statistics.median(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        per = [self.frames / s for s in self.seconds]
        med = statistics.median(self.seconds)
        return {
            "stage": self.stage,
            "params": dict(self.params),
            "frames": self.frames,
            "repeats": len(self.seconds),
            "seconds": [round(s, 6) for s in self.seconds],
            "fps": round(self.fps, 3),  # median repeat
            "fps_min": round(min(per), 3),
            "fps_max": round(max(per), 3),
            "ms_per_frame": round(1000.0 * med / self.frames, 3),
            # (slowest - fastest) / median repeat, in percent
            "spread_pct": round(100.0 * (max(self.seconds) - min(self.seconds)) / med, 2),
            "notes": list(self.notes),
        }


def time_repeats(
    fn: Callable[[], object],
    *,
    repeats: int,
    warmup: int,
    device: torch.device | str | None = None,
    setup: Callable[[], object] | None = None,
) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; return the seconds.

    ``setup`` runs untimed before each pass (e.g. to reset a file). The device is synchronised
    before the clock starts and before it stops, so queued GPU work is counted where it belongs.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(max(0, warmup)):
        if setup is not None:
            setup()
        fn()
        synchronize(device)
    out: list[float] = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        out.append(time.perf_counter() - t0)
    return out
