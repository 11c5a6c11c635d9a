"""Stream copy of the non-video streams: audio, subtitle and data packets go from the source to
the output as they are (same bytes, same pts/dts/duration in their own time base), never decoded.

The remuxer opens its own demuxer on the source, so the decoder's reading position does not
matter, and hands packets to the output muxer as the encoded video advances (``pump``): the muxer
interleaves by dts, and pumping only up to the current video time keeps its buffer small.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import av
import av.error

from vidcolor.errors import EncodingError
from vidcolor.frames import SourceInfo

#: How far ahead of the current video time (seconds) packets are handed to the muxer: enough for
#: audio frames that start a little later than the picture they accompany.
LEAD_S = 0.5
#: Seek this far (seconds) before a section start, so a packet that starts before it but is
#: still running at it is not cut (it is then dropped by its time, not by the seek).
SEEK_MARGIN_S = 1.0
#: Tags that describe the old encoding or old statistics, not the content: not carried.
STALE_TAGS = {
    "encoder",
    "major_brand",
    "minor_version",
    "compatible_brands",
    "duration",
    "bps",
    "number_of_frames",
    "number_of_bytes",
    "_statistics_writing_app",
    "_statistics_writing_date_utc",
    "_statistics_tags",
}
#: ETSI EN 300 743 PES framing of a DVB subtitle: data_identifier, subtitle_stream_id ... end marker.
DVB_PES_PREFIX = b"\x20\x00"
DVB_PES_END = 0xFF


def carried_metadata(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` without the ones that describe the old encoding (case-insensitive, see STALE_TAGS)."""
    out = {}
    for key, value in tags.items():
        low = key.lower()
        if low in STALE_TAGS or low.startswith(("duration-", "bps-", "number_of_", "_statistics")):
            continue
        out[key] = value
    return out


class Remuxer:
    """Copies the packets of ``indices`` (source stream indices) into ``output``.

    Call ``add_streams`` before the first packet is muxed (it creates the output streams, in the
    order asked), then ``pump(t)`` as the video reaches time ``t`` (seconds) and ``finish()`` at
    the end. ``section`` = (start, end) in absolute seconds (None: open) keeps only packets whose
    pts falls in it; timestamps are never shifted.
    """

    def __init__(
        self,
        info: SourceInfo,
        output: av.container.OutputContainer,
        section: tuple[float | None, float | None] = (None, None),
    ) -> None:
        self.info = info
        self.output = output
        self.section = section
        self.source: av.container.InputContainer | None = None
        self.map: dict[int, av.stream.Stream] = {}  # source index -> output stream
        self._packets: Iterator[av.Packet] | None = None
        self._held: av.Packet | None = None  # read but beyond the pump time
        self.copied = 0
        self._dvb_framed: set[int] = set()  # source indices whose PES framing the muxer writes

    def add_stream(self, index: int) -> av.stream.Stream:
        """Create the output stream for source stream ``index`` (codec parameters, time base,
        metadata, disposition copied)."""
        if self.source is None:
            try:
                self.source = av.open(self.info.path, mode="r")
            except (av.error.FFmpegError, OSError) as exc:
                raise EncodingError(
                    "the source readable for stream copy", f"{exc}", "check that the input is still there"
                ) from None
        src = self.source.streams[index]
        try:
            dst = self.output.add_stream_from_template(src)
        except (ValueError, av.error.FFmpegError) as exc:
            raise EncodingError(
                f"stream {index} copyable into {self.output.format.name}",
                str(exc),
                "choose another output container (e.g. .mkv)",
            ) from None
        dst.metadata.update(carried_metadata(src.metadata))
        dst.disposition = src.disposition
        self.map[index] = dst
        cc = src.codec_context
        if self.output.format.name == "mpegts" and cc is not None and cc.codec.id == _DVB_SUBTITLE_ID:
            self._dvb_framed.add(index)
        return dst

    def _open_packets(self) -> Iterator[av.Packet]:
        assert self.source is not None
        streams = [self.source.streams[i] for i in self.map]
        for s in self.source.streams:
            if s.index not in self.map:
                s.discard = av.stream.Discard.all  # the demuxer skips what is not copied
        start = self.section[0]
        if start is not None:
            target = int((start - SEEK_MARGIN_S) * av.time_base)
            with contextlib.suppress(av.error.FFmpegError):
                if target > 0:
                    self.source.seek(target, backward=True)
        return self.source.demux(streams)

    def _next(self) -> av.Packet | None:
        if self._held is not None:
            pkt, self._held = self._held, None
            return pkt
        if self._packets is None:
            self._packets = self._open_packets()
        for pkt in self._packets:
            if pkt.size or pkt.pts is not None:
                return pkt
        return None

    @staticmethod
    def _time(pkt: av.Packet) -> float | None:
        ts = pkt.dts if pkt.dts is not None else pkt.pts
        if ts is None or pkt.time_base is None:
            return None
        return float(ts * pkt.time_base)

    def _keep(self, pkt: av.Packet) -> bool:
        start, end = self.section
        if start is None and end is None:
            return True
        ts = pkt.pts if pkt.pts is not None else pkt.dts
        if ts is None:
            return True
        t = float(ts * pkt.time_base)
        return (start is None or t >= start) and (end is None or t < end)

    def pump(self, until: float | None) -> None:
        """Mux every copied packet whose time is at most ``until`` + LEAD_S (None: all of them)."""
        if not self.map:
            return
        limit = None if until is None else until + LEAD_S
        while True:
            pkt = self._next()
            if pkt is None:
                return
            t = self._time(pkt)
            if limit is not None and t is not None and t > limit:
                self._held = pkt
                return
            if not self._keep(pkt):
                continue
            src_index = pkt.stream.index
            if src_index in self._dvb_framed:
                pkt = _without_dvb_framing(pkt)
            tb = pkt.time_base
            pkt.stream = self.map[src_index]
            # Assigning the stream does not rescale: say what unit the timestamps are in, and
            # the muxer converts them only if the output stream's time base differs.
            pkt.time_base = tb
            try:
                self.output.mux_one(pkt)
            except av.error.FFmpegError as exc:
                raise EncodingError(
                    f"stream {src_index} packets the muxer accepts",
                    str(exc),
                    "choose another output container or leave the stream out",
                ) from None
            self.copied += 1

    def finish(self) -> None:
        """Mux what is left (within the section)."""
        self.pump(None)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


_DVB_SUBTITLE_ID = av.Codec("dvbsub", "r").id


def _without_dvb_framing(pkt: av.Packet) -> av.Packet:
    """``pkt`` without its DVB PES framing (0x20 0x00 ... 0xff) where it still holds it.

    FFmpeg's MPEG-TS demuxer does not always strip that framing, and its MPEG-TS muxer always
    writes it, so a packet that kept it would get it twice. Stripped here, the muxer's own framing
    gives back the source PES bytes. A packet without the framing starts with a segment's sync
    byte (0x0f), never 0x20, so nothing else is touched.
    """
    data = bytes(pkt)
    if len(data) < 3 or not data.startswith(DVB_PES_PREFIX) or data[-1] != DVB_PES_END:
        return pkt
    out = av.Packet(data[2:-1])
    out.stream = pkt.stream
    out.time_base = pkt.time_base
    out.pts, out.dts, out.duration = pkt.pts, pkt.dts, pkt.duration
    out.is_keyframe = pkt.is_keyframe
    return out
