"""The encoder's own packets decoded back to luma while the output is written, to check the output
without reading the film twice more once it is finished.

``VideoWriter`` hands each batch of encoded video packets, before they are muxed, to a
:class:`PacketSink` as :class:`PacketCopy` values (the muxer rescales a packet's timestamps in
place and may take its buffer, while the check reads it on another thread; a copy of a compressed
packet is small). :class:`PacketDecoder` turns them back into luma planes with the
decoder FFmpeg picks for the codec, exactly as a player reading the file would: the bytes muxed are
the bytes decoded. What the container does to them (time base, stored order, the frame count) is
checked on the finished file by :func:`video_packet_times`, which reads packets without decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, cast

import av
import av.error
import numpy as np

from vidcolor.media.luma import luma_of
from vidcolor.media.probe import bit_depth_of


@dataclass(frozen=True)
class PacketCopy:
    """One encoded video packet: its bytes and timing (pts and dts in the encoder's time base)."""

    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool

    @classmethod
    def of(cls, packet: av.Packet) -> PacketCopy:
        return cls(bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe))


@dataclass(frozen=True)
class DecoderSetup:
    """What a decoder of the encoder's packets needs: the codec's name (h264, hevc, ffv1, ...), its
    extradata (SPS/PPS and the like, where the container keeps them), the packets' time base, and
    the picture size (FFV1 codes none: its container carries it)."""

    codec: str
    extradata: bytes | None
    time_base: Fraction
    width: int
    height: int


class PacketSink(Protocol):
    """Where VideoWriter sends its video packets: ``start`` once, with what a decoder needs,
    before the first ``packets``; ``packets`` in the order the encoder gave them (decode order)."""

    def start(self, setup: DecoderSetup) -> None: ...

    def packets(self, packets: list[PacketCopy]) -> None: ...


class NoDecoder(Exception):
    """FFmpeg has no decoder here for the codec (the caller checks the finished file instead)."""


class PacketDecoder:
    """Encoded packets (``setup.codec``: h264, hevc, ffv1, prores, ...) -> (pts, luma) in
    presentation order; luma as media/luma.py gives it (uint8, or uint16 in the native range) and
    ``bit_depth`` its bits. One thread: it runs beside the encoder, not instead of it."""

    def __init__(self, setup: DecoderSetup) -> None:
        self.time_base = setup.time_base
        try:
            # A name from the encoder, not a literal: the stubs cannot know it is a video codec.
            self.ctx = cast(av.VideoCodecContext, av.CodecContext.create(setup.codec, "r"))
            if setup.extradata:
                self.ctx.extradata = setup.extradata
        except (av.error.FFmpegError, ValueError) as exc:
            raise NoDecoder(f"no decoder for {setup.codec} ({exc})") from None
        self.ctx.width, self.ctx.height = setup.width, setup.height
        self.ctx.thread_count = 1
        self.bit_depth = 8

    def decode(self, packets: Iterable[PacketCopy]) -> Iterator[tuple[int, np.ndarray]]:
        for copy in packets:
            packet = av.Packet(copy.data)
            packet.pts, packet.dts = copy.pts, copy.dts
            packet.time_base = self.time_base
            packet.is_keyframe = copy.keyframe
            yield from self._frames(packet)

    def flush(self) -> Iterator[tuple[int, np.ndarray]]:
        yield from self._frames(None)

    def _frames(self, packet: av.Packet | None) -> Iterator[tuple[int, np.ndarray]]:
        try:
            frames = self.ctx.decode(packet)
        except av.error.FFmpegError as exc:  # a decoder that cannot take packets this way
            raise NoDecoder(f"the {self.ctx.name} decoder failed on the encoder's packets ({exc})") from None
        for frame in frames:
            if frame.pts is None:  # pragma: no cover - the packets all carry pts
                raise ValueError("a decoded frame without pts")
            self.bit_depth = bit_depth_of(frame.format.name)
            yield int(frame.pts), luma_of(frame)


def video_packet_times(path: Path) -> tuple[list[int], Fraction] | None:
    """The pts of every packet of ``path``'s first video stream, sorted (= the frames'
    presentation times), and that stream's time base; None where a packet has no pts (a container
    that stores none: only decoding tells the times then). Reads packets only: no decoding."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts: list[int] = []
        for packet in container.demux(stream):
            if not packet.size:  # the demuxer's end-of-stream marker
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
        tb = stream.time_base
    assert tb is not None
    return sorted(pts), tb
