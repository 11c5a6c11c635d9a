"""The stage threads' group: stopping it must work whenever Ctrl-C arrives."""

from __future__ import annotations

import threading

import pytest

from vidcolor.pipeline.threads import StageGroup


def test_abort_after_ctrl_c_inside_thread_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while Thread.start() waits for the new thread: abort() still stops the group quietly."""
    group = StageGroup()
    release = threading.Event()

    def first() -> None:  # a stage still running when Ctrl-C comes
        release.wait()

    group.start("first", first)

    def interrupted_start(self: threading.Thread) -> None:
        raise KeyboardInterrupt  # as if SIGINT arrived before the thread announced itself

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    with pytest.raises(KeyboardInterrupt):
        group.start("second", lambda: None)
    monkeypatch.undo()
    release.set()
    group.abort()  # must not raise "cannot join thread before it is started"
    assert group.stop.is_set()
