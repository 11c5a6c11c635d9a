"""Threads joined by bounded queues, with errors that travel down and stop everything.

Only the runner starts threads, through :class:`StageGroup`. A stage that fails records its
exception and sets the shared stop event; every put/get wakes up on that event, so the other
stages end within a fraction of a second and the first error is re-raised on the main thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

END = object()  # end-of-stream marker that travels through the queues
_POLL_S = 0.1


class Stopped(Exception):
    """Raised inside a stage when another stage failed or the run was interrupted."""


class Pipe:
    """A bounded queue whose put/get give up when the group is stopping."""

    def __init__(self, stop: threading.Event, depth: int) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = stop

    def put(self, item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Any]:
        """Items until END."""
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                item = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is END:
                return
            yield item


class StageGroup:
    """Starts stage threads and collects the first failure."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def pipe(self, depth: int) -> Pipe:
        return Pipe(self.stop, depth)

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
        self.stop.set()

    def start(self, name: str, fn: Callable[[], None]) -> None:
        def target() -> None:
            try:
                fn()
            except Stopped:
                pass
            except BaseException as exc:  # travels to the main thread
                self.fail(exc)

        t = threading.Thread(target=target, name=f"vidcolor-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def join(self) -> None:
        """Wait for every stage; re-raise the first failure on the calling thread."""
        for t in self._threads:
            while t.is_alive():
                t.join(timeout=_POLL_S)
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop all stages (e.g. on Ctrl-C) and wait for them to end."""
        self.stop.set()
        for t in self._threads:
            try:
                t.join(timeout=5.0)
            except RuntimeError:
                # Ctrl-C landed inside Thread.start(), before the thread said it was running:
                # join() refuses such a thread. It sees ``stop`` and ends by itself (daemon).
                pass
