"""Deinterlacing inside decode: FFmpeg's bwdif filter, one progressive frame per input frame."""

from __future__ import annotations

from collections import deque
from fractions import Fraction

import av
import av.error


class Deinterlacer:
    """bwdif in send_frame mode: one progressive frame per input frame, in the same order.

    Built on the first frame so it matches the decoder's real output (format, size, time base).
    bwdif looks one frame ahead, so output lags input by one frame until ``flush``. It also
    halves its output time base (it could emit field rate), so the input pts are handed back to
    the output frames from a queue instead of trusting the filter's rescaled ones.
    """

    def __init__(self) -> None:
        self.graph: av.filter.Graph | None = None
        self.pts: deque[int | None] = deque()

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        src = graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format,
            time_base=frame.time_base or Fraction(1, 1000),
        )
        bwdif = graph.add("bwdif", "mode=send_frame:parity=auto:deint=all")
        sink = graph.add("buffersink")
        src.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        return graph

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        if self.graph is None:
            self.graph = self._build(frame)
        self.pts.append(frame.pts)
        self.graph.vpush(frame)
        return self._drain()

    def flush(self) -> list[av.VideoFrame]:
        if self.graph is None:
            return []
        self.graph.vpush(None)
        return self._drain()

    def _drain(self) -> list[av.VideoFrame]:
        assert self.graph is not None
        out: list[av.VideoFrame] = []
        while True:
            try:
                frame = self.graph.vpull()
            except (BlockingIOError, av.error.EOFError):
                return out
            frame.pts = self.pts.popleft()
            out.append(frame)
