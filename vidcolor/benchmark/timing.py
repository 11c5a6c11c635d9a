"""Timed repeats with a warm-up, device synchronisation inside the timed region, and their summary.

Every figure of the benchmarks is the *median* over repeats of a whole pass over some frames, in
frames per second, with the fastest and slowest repeat beside it: the median is robust to one
repeat disturbed by another process, and the spread says how much to trust it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
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
    cpu_seconds: list[float] = field(default_factory=list)  # process CPU time of each pass

    @classmethod
    def of(
        cls, stage: str, frames: int, timed: Timed, params: dict[str, Any], notes: list[str] | None = None
    ) -> Measure:
        return cls(stage, frames, timed.wall, params, list(notes or []), timed.cpu)

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
            **self._cpu(),
            "notes": list(self.notes),
        }

    def _cpu(self) -> dict[str, Any]:
        """CPU milliseconds per frame (all threads, median pass) and cores kept busy on average."""
        if not self.cpu_seconds:
            return {}
        cpu = statistics.median(self.cpu_seconds)
        return {
            "cpu_ms_per_frame": round(1000.0 * cpu / self.frames, 3),
            "cores_busy": round(cpu / statistics.median(self.seconds), 3),
        }


@dataclass
class Timed:
    """Wall-clock and process CPU seconds of each timed pass."""

    wall: list[float]
    cpu: list[float]


def time_repeats(
    fn: Callable[[], object],
    *,
    repeats: int,
    warmup: int,
    device: torch.device | str | None = None,
    setup: Callable[[], object] | None = None,
    thread: str | None = None,
) -> Timed:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    ``setup`` runs untimed before each pass (e.g. to reset a file). The device is synchronised
    before the clock starts and before it stops, so queued GPU work is counted where it belongs.
    CPU time is the whole process's (every thread: torch's pool, FFmpeg's, OpenCV's), so nothing
    else may run in the process meanwhile. ``thread``: run everything on a new thread of that
    name, as the runner runs its stages; it matters for torch: OpenMP's waiting policy depends
    on how many threads hold a team, and the model runs off the thread that loaded it.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if thread is not None:
        box: list[Timed | BaseException] = []

        def target() -> None:
            try:
                box.append(time_repeats(fn, repeats=repeats, warmup=warmup, device=device, setup=setup))
            except BaseException as exc:  # re-raised on the calling thread
                box.append(exc)

        t = threading.Thread(target=target, name=thread, daemon=True)
        t.start()
        t.join()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]
    each = None if setup is None else (lambda _k: setup())
    return time_alternating([fn], repeats=repeats, warmup=warmup, device=device, setup=each)[0]


def time_alternating(
    fns: Sequence[Callable[[], object]],
    *,
    repeats: int,
    warmup: int,
    device: torch.device | str | None = None,
    setup: Callable[[int], object] | None = None,
) -> list[Timed]:
    """Time several ways of doing the same work in turn: round after round, each ``fn`` once,
    in the order given on even rounds and reversed on odd ones; ``warmup`` untimed rounds first.

    A machine's speed drifts over minutes (other tenants, clocks, caches); timed one after the
    other, two runs a few percent apart can swap places. Taken in turn (ABBA), a drift falls on
    all of them alike, and the ratio within a round (see :func:`round_ratios`) compares like with
    like. ``setup(k)`` runs untimed before each pass of ``fns[k]``. Returns one :class:`Timed`
    per ``fn``, its passes in round order.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    out = [Timed([], []) for _ in fns]
    for r in range(max(0, warmup) + repeats):
        order = range(len(fns)) if r % 2 == 0 else range(len(fns) - 1, -1, -1)
        for k in order:
            if setup is not None:
                setup(k)
            synchronize(device)
            c0, t0 = time.process_time(), time.perf_counter()
            fns[k]()
            synchronize(device)
            if r >= warmup:
                out[k].wall.append(time.perf_counter() - t0)
                out[k].cpu.append(time.process_time() - c0)
    return out


def round_ratios(base: Sequence[float], other: Sequence[float]) -> dict[str, float]:
    """Speed of ``other`` relative to ``base`` (> 1: faster), from seconds taken in the same
    rounds of :func:`time_alternating`: the median of the per-round ratios base / other, with
    the lowest and highest beside it."""
    ratios = [b / o for b, o in zip(base, other, strict=True)]
    return {
        "median": round(statistics.median(ratios), 4),
        "min": round(min(ratios), 4),
        "max": round(max(ratios), 4),
    }
