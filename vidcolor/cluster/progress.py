"""Progress across the cluster: workers post how many frames each task has done to a small
actor (:class:`FrameBoard`); the driver reads the sum into one bar for the whole batch (films
and frames done, frames/s, ETA).

A task posts its own running count under its own key, not increments: a task run again after
its node was lost starts again from zero under the same key, so nothing is counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

#: Seconds between a worker's posts: often enough for a live bar, rare enough to cost nothing.
POST_EVERY = 0.5
#: Seconds between redraws of the bar (and so lines, where stderr is a file).
TICK = 1.0
Key = tuple[int, int]  # (film index in the batch, segment number or -1 for a whole film)


class FrameBoard:
    """Frames done per task, and the nodes that started each task, one per attempt (the actor's
    class: ``ray.remote(FrameBoard)``)."""

    def __init__(self) -> None:
        self.frames: dict[Key, int] = {}
        self.starts: dict[Key, list[str]] = {}

    def start(self, key: Key, node: str) -> None:
        self.starts.setdefault(key, []).append(node)
        self.frames[key] = 0

    def post(self, key: Key, frames: int) -> None:
        self.frames[key] = frames

    def total(self) -> int:
        return sum(self.frames.values())

    def started_on(self, key: Key) -> list[str]:
        return list(self.starts.get(key, []))


def poster(board: Any, key: Key) -> Callable[[int], None]:
    """An ``on_frame(n)`` for a task: posts ``n`` (frames done so far) to ``board`` (an actor
    handle, or None for no progress) at most every POST_EVERY seconds, and always the first."""
    last = [0.0]

    def on_frame(n: int) -> None:
        now = time.monotonic()
        if board is None or now - last[0] < POST_EVERY:
            return
        last[0] = now
        board.post.remote(key, n)

    return on_frame


def post_start(board: Any, key: Key, node: str) -> None:
    if board is not None:
        board.start.remote(key, node)


def post_final(board: Any, key: Key, frames: int) -> None:
    if board is not None:
        board.post.remote(key, frames)


class BatchBar:
    """The whole batch's bar: frames (with tqdm's rate and ETA) and films done, on stderr."""

    def __init__(self, films: int, frames: int | None, enabled: bool) -> None:
        self.films = films
        self.films_done = 0
        self.bar = tqdm(
            total=frames or None,
            unit="frame",
            desc="batch",
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.05,
            mininterval=TICK,
        )
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(f"films {self.films_done}/{self.films}", refresh=False)

    def frames(self, n: int) -> None:
        """Set the frames done so far (a running count: it may come back lower after a retry)."""
        self.bar.update(n - self.bar.n)  # tqdm redraws at most every TICK seconds

    def film_done(self) -> None:
        self.films_done += 1
        self._show()

    def write(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (which prints) with the bar cleared around it."""
        with self.bar.external_write_mode():
            fn()

    def close(self) -> None:
        self.bar.close()
