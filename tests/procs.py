"""Helpers for tests that run the CLI in a child process and interrupt it."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test will Ctrl-C: restore SIGINT's default action.

    A shell starts background jobs with SIGINT ignored, and a child inherits that (vidcolor then
    rightly keeps running, as a nohup'd overnight run should); the test needs the behaviour of a
    run started from a terminal whatever shell started the test suite.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
