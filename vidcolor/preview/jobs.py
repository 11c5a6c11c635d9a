"""Render jobs: the page's renders run one at a time in a worker thread, with progress and cancel.

A job calls the film pipeline the CLI runs (:func:`vidcolor.pipeline.run.colorize_video`, or
:func:`~vidcolor.pipeline.image.colorize_image` for a still) and follows it through its
``on_frame`` callback: frames done, frames/s and the time left. Cancelling raises
KeyboardInterrupt from that callback, which the pipeline treats as Ctrl-C: the stages stop and
the temporary output is removed, so a cancelled job leaves no file behind.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from vidcolor.errors import VidcolorError
from vidcolor.options import ColorizeOptions

FPS_WINDOW_S = 3.0  # frames/s is measured over the last few seconds (frames come out in bursts)
#: Where a render is: queued -> running -> finishing -> done, or failed / cancelled.
JobState = Literal["queued", "running", "finishing", "done", "failed", "cancelled"]


class Render(Protocol):
    """What a job runs: colorize ``src`` into ``dst``, calling ``on_frame(frames_done)`` as it goes."""

    def __call__(
        self, src: Path, dst: Path, opts: ColorizeOptions, on_frame: Callable[[int], None]
    ) -> str: ...


@dataclass
class Job:
    """One render; ``snapshot()`` is what the page polls."""

    id: str
    source: str  # as the page names it
    output: str  # as the page names it (relative to the preview folder)
    dst: Path
    src: Path
    opts: ColorizeOptions
    total: int  # frames expected (an estimate from the container; the last update sets it exact)
    command: str  # the CLI command line that does the same
    state: JobState = "queued"
    frames: int = 0
    fps: float = 0.0
    message: str = ""  # the summary line, or the error
    created: float = field(default_factory=time.time)
    started: float | None = None
    _t0: float = 0.0  # perf_counter at the start, for frames/s
    ended: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def on_frame(self, done: int) -> None:
        """The pipeline's progress callback (runs on the job's thread)."""
        if self.cancel.is_set():
            raise KeyboardInterrupt  # the pipeline's Ctrl-C path: stop and remove the temporary file
        now = time.perf_counter()
        if not self._samples:
            self._samples.append((self._t0, 0))
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= FPS_WINDOW_S:
            self._samples.popleft()
        t_old, n_old = self._samples[0]
        if now > t_old:
            self.fps = (done - n_old) / (now - t_old)
        self.frames = done
        self.total = max(self.total, done)
        if done >= self.total:
            self.state = "finishing"  # the output is checked and renamed after the last frame

    def snapshot(self) -> dict[str, Any]:
        left = max(0, self.total - self.frames)
        eta = left / self.fps if self.fps > 0 and self.state in ("running", "finishing") else None
        percent = 100.0 if self.state == "done" else (100.0 * self.frames / self.total if self.total else 0.0)
        return {
            "id": self.id,
            "source": self.source,
            "output": self.output,
            "state": self.state,
            "frames": self.frames,
            "total": self.total,
            "percent": round(min(percent, 100.0 if self.state == "done" else 99.9), 1),
            "fps": round(self.fps, 2),
            "eta_s": None if eta is None else round(eta, 1),
            "message": self.message,
            "command": self.command,
            "elapsed_s": round((self.ended or time.time()) - self.started, 1) if self.started else 0.0,
        }


class Jobs:
    """A queue of render jobs and the one worker thread that runs them in turn."""

    def __init__(self, render: Render) -> None:
        self._render = render
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="preview-render", daemon=True)
        self._worker.start()

    def submit(self, **fields: Any) -> Job:
        """Queue a render; ``fields`` are :class:`Job`'s (all but id and the progress fields)."""
        with self._lock:
            job = Job(id=str(next(self._ids)), **fields)
            self._jobs[job.id] = job
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop; a queued job is cancelled at once, a running one at its next frame."""
        job = self.get(job_id)
        if job is not None and job.state in ("queued", "running", "finishing"):
            job.cancel.set()
            if job.state == "queued":
                job.state = "cancelled"
        return job

    def busy_with(self, dst: Path) -> bool:
        """Whether a queued or running job writes ``dst``."""
        return any(j.dst == dst and j.state in ("queued", "running", "finishing") for j in self.all())

    def close(self, wait_s: float = 60.0) -> None:
        """Cancel everything and stop the worker, waiting up to ``wait_s`` for the running job to
        stop at its next frame and remove its temporary file."""
        for job in self.all():
            self.cancel(job.id)
        self._queue.put(None)
        self._worker.join(wait_s)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.cancel.is_set():
                job.state = "cancelled"
                continue
            job.state, job.started, job._t0 = "running", time.time(), time.perf_counter()
            try:
                job.message = self._render(job.src, job.dst, job.opts, job.on_frame)
                job.total = job.frames = max(job.frames, 1)  # a still calls no on_frame: it is one frame
                job.state = "done"
            except KeyboardInterrupt:
                job.state, job.message = "cancelled", "cancelled; no output was written"
            except VidcolorError as exc:
                job.state, job.message = "failed", str(exc)
            except Exception as exc:  # a job's bug must not take the worker (and every later job) down
                job.state, job.message = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                job.ended = time.time()
