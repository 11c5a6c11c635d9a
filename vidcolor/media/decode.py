"""Stage [1], decode: the luma plane of every frame, in presentation order, with the source's pts.

``decode_frames`` yields :class:`vidcolor.frames.Frame` objects: ``index`` dense from 0, ``pts``
exactly the source stream's (in ``time_base`` units), ``y`` the luma plane as decoded at full
resolution: uint8 (H, W) for 8-bit sources, uint16 (H, W) holding the native range for deeper
ones (0..1023 for 10-bit, 0..65535 for 16-bit). For RGB sources (PNG, TIFF, ...) ``y`` is the
full-range BT.601 luma of the RGB: round(0.299 R + 0.587 G + 0.114 B), same dtype rule.

Damage is never passed over quietly. A frame is *damaged* when the decoder flags it
(``frame.is_corrupt``: decode_error_flags or AV_FRAME_FLAG_CORRUPT; this is how the bit-flipped
H.264 of the edge set shows up) and *missing* when its packet never becomes a picture and there
is evidence of damage: the demuxer flagged the packet corrupt (a short read at a truncated end)
or the decoder raised InvalidDataError (see ``media/damage.py`` for how errors are matched to pictures
under frame threading, where they surface late). Without ``skip_corrupt`` the first damaged or
missing frame raises CorruptInputError naming its index (the frames before it have been
yielded). With it, damaged frames are kept with ``Frame.corrupt=True`` (the frame count holds)
and missing ones are counted in DecodeStats.corrupt_skipped.

The luma of a decoded picture is media/luma.py's, the bookkeeping of packets that never became
pictures media/damage.py's, the deinterlacer media/deinterlace.py's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.error

from vidcolor.errors import CorruptInputError, InputError
from vidcolor.frames import Frame, SourceInfo
from vidcolor.media.damage import PacketDamage
from vidcolor.media.deinterlace import Deinterlacer
from vidcolor.media.luma import luma_of
from vidcolor.media.window import section_pts
from vidcolor.timecode import parse_timecode

#: How far before ``start`` to seek (seconds), so that a demuxer that seeks by dts (MPEG-TS) still
#: lands on a keyframe whose GOP holds the first wanted picture.
_SEEK_MARGIN_S = 1.0
#: A video that ends more than this many frame intervals (plus _END_SLACK_S) before the end its
#: container declares was cut short (see _declared_end).
_END_SLACK_FRAMES = 3
_END_SLACK_S = 0.05


@dataclass
class DecodeStats:
    """What decode_frames met on its way; filled in while it runs.

    frames: frames yielded. rebuilt_pts: frames that had no pts and got one from the frame rate.
    corrupt_skipped: frames lost to damage (a damaged packet that gave no picture), only counted
    under skip_corrupt. corrupt_kept: frames decoded with errors and kept with Frame.corrupt=True.
    first_corrupt_index: index of the first damaged or missing frame. truncated: the demuxer
    failed before the end of the file, or its data ended inside a packet (a short read), or
    before the end the container declares (the rest of it is lost). unread: frames the
    container's index lists that were never read because the data ends before them; None where
    unknown (no frame count in the container, or only a section was decoded).
    """

    frames: int = 0
    rebuilt_pts: int = 0
    corrupt_skipped: int = 0
    corrupt_kept: int = 0
    first_corrupt_index: int | None = None
    truncated: bool = False
    unread: int | None = None


def decode_frames(
    path: str | os.PathLike[str],
    info: SourceInfo,
    *,
    start: float | None = None,
    duration: float | None = None,
    skip_corrupt: bool = False,
    deinterlace: bool = False,
    threads: int = 0,
    stats: DecodeStats | None = None,
) -> Iterator[Frame]:
    """Yield the frames of ``info.video`` (see the module docstring for the guarantees).

    start, duration: seconds, relative to the video stream's start; the section is
    [start, start + duration). threads: decoder threads, 0 = FFmpeg picks (one per core).
    deinterlace: run bwdif (one frame out per frame in, so pts are kept).
    Raises InputError if the file cannot be opened, CorruptInputError at the first damaged frame
    unless ``skip_corrupt``.
    """
    stats = stats if stats is not None else DecodeStats()
    p = Path(path)
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(
            "a readable media file", f"{p.name} cannot be opened ({exc})", "run probe on it"
        ) from None
    try:
        stream, section = _open_section(container, p, info, start, duration, threads)
        run = _DecodePass(container, stream, p.name, info.is_still, section, skip_corrupt, deinterlace, stats)
        yield from run.frames()
    finally:
        container.close()


@dataclass(frozen=True)
class _Section:
    """Where the wanted pictures lie on the stream's clock (all in ``tb`` units).

    origin: the stream's start pts. lo, hi: the section [lo, hi), None where open. step: one
    frame interval, for rebuilding missing pts.
    """

    tb: Fraction
    origin: int
    lo: int | None
    hi: int | None
    step: int

    def holds(self, pts: int) -> bool:
        return (self.lo is None or pts >= self.lo) and (self.hi is None or pts < self.hi)

    def passed(self, pts: int | None) -> bool:
        """True once a picture at ``pts`` is past the section: in presentation order, so nothing
        later can fall inside it."""
        return self.hi is not None and pts is not None and pts >= self.hi


def _open_section(
    container: av.container.InputContainer,
    p: Path,
    info: SourceInfo,
    start: float | None,
    duration: float | None,
    threads: int,
) -> tuple[av.VideoStream, _Section]:
    """Set up the video stream's decoder, seek near ``start``, and say where the section lies."""
    # The file-wide index, not a position among video streams; probe found a video stream there.
    stream = cast(av.VideoStream, container.streams[info.video.index])
    if stream.codec_context is None:  # probe rejects this; the file may have changed since
        raise InputError(
            "a video stream with a known codec",
            f"stream {stream.index} of {p.name} has no readable codec description (damaged header)",
            "re-export or repair the file",
        )
    stream.thread_type = "AUTO"
    stream.thread_count = threads
    tb = stream.time_base or info.video.time_base
    origin = stream.start_time or 0
    lo, hi = section_pts(origin, tb, start, duration)
    if lo is not None and not info.is_still:
        try:
            container.seek(max(origin, lo - round(_SEEK_MARGIN_S / tb)), stream=stream, backward=True)
        except av.error.FFmpegError:
            pass  # unseekable input: decode from the start and drop what comes before ``lo``
    rate = info.video.nominal_rate
    step = max(1, round(1 / (rate * tb)))
    return stream, _Section(tb, origin, lo, hi, step)


class _DecodePass:
    """One pass of the demux loop over a stream, with the state its damage and truncation
    checks share.

    The pass reads packets (``frames``), sends each to the decoder, and hands every picture
    that comes out to ``_picture_out``, which settles the damage before it (``_Damage``), then to
    the deinterlacer if any, then to ``_emit``, which gives it its index and pts. When the data
    ends, ``_settle_end`` reports what never came out and whether the file was cut short.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        name: str,
        is_still: bool,
        section: _Section,
        skip_corrupt: bool,
        deinterlace: bool,
        stats: DecodeStats,
    ) -> None:
        self.container = container
        self.stream = stream
        self.name = name
        self.is_still = is_still
        self.section = section
        self.skip_corrupt = skip_corrupt
        self.stats = stats
        self.deint = Deinterlacer() if deinterlace else None
        self.damage = PacketDamage()
        self.corrupt_pts: set[int] = (
            set()
        )  # pts of pictures that came out damaged (survives the deinterlacer)
        self.last_pts: int | None = None
        self.lost_at_end = False  # the demuxer broke, or the data ended before the declared end
        self.read = 0  # packets with data, for comparing with the frame count the index lists
        self.short_read = False  # the last packet with data was flagged corrupt by the demuxer

    def frames(self) -> Iterator[Frame]:
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                self._data_ended()
                break
            except av.error.FFmpegError:
                # The demuxer broke before the end (truncated or unreadable): what is left is lost.
                self.stats.truncated = True
                self.lost_at_end = True
                break
            if packet.size:
                self.read += 1
                self.short_read = packet.is_corrupt
                if packet.pts is not None:
                    self.damage.sent_packet(packet.pts, packet.is_corrupt)
            elif packet.pts is None and packet.dts is None:
                self._data_ended()  # the flush packet: settle truncation before the last pictures come out
            try:
                pictures = self.stream.decode(packet)
            except av.error.EOFError:
                pictures = []
            except av.error.FFmpegError:
                self.damage.errors += 1
                pictures = []
            for picture in pictures:
                yield from self._picture_out(picture)
            if self.section.passed(self.last_pts):
                break
        yield from self._settle_end()

    def _settle_end(self) -> Iterator[Frame]:
        """After the last packet: drain a broken decoder, report what never came out and a cut end."""
        sec = self.section
        if self.lost_at_end:
            try:
                for picture in self.stream.decode(None):
                    yield from self._picture_out(picture)
            except av.error.FFmpegError:
                pass
        for m in self.damage.missing_before(None):
            if sec.holds(m):
                self._fail("a frame that could not be decoded", m)
                self.stats.corrupt_skipped += 1
        declared = _declared_end(self.stream)
        if (
            not self.lost_at_end
            and sec.hi is None
            and self.last_pts is not None
            and declared is not None
            and declared - float(self.last_pts * sec.tb)
            > _END_SLACK_FRAMES * float(sec.step * sec.tb) + _END_SLACK_S
        ):
            # The demuxer reached the end of the data without an error, yet frames are missing.
            self.stats.truncated = True
            self.lost_at_end = True
        if self.lost_at_end and (sec.hi is None or (self.last_pts is not None and self.last_pts < sec.hi)):
            self._fail("the end of readable data (the file is truncated)", None)
        if self.deint is not None:
            for out in self.deint.flush():
                yield from self._emit(out)

    def _picture_out(self, picture: av.VideoFrame) -> Iterator[Frame]:
        """A picture left the decoder: settle the damage before it, then pass it on."""
        pts = picture.pts
        if pts is not None:
            for m in self.damage.missing_before(pts):
                if self.section.holds(m):
                    self._fail("a frame that could not be decoded", m)
                    self.stats.corrupt_skipped += 1
            if self.damage.arrived(pts) or picture.is_corrupt:
                self.corrupt_pts.add(pts)
        elif picture.is_corrupt and self.last_pts is not None:
            self.corrupt_pts.add(self.last_pts + self.section.step)
        if self.deint is None:
            yield from self._emit(picture)
        else:
            for out in self.deint.push(picture):
                yield from self._emit(out)

    def _emit(self, picture: av.VideoFrame) -> Iterator[Frame]:
        """Give a picture its pts (rebuilt where missing) and index, and yield it if in the section."""
        sec = self.section
        pts = picture.pts
        if pts is None:
            pts = 0 if self.is_still else (sec.origin if self.last_pts is None else self.last_pts + sec.step)
            if not self.is_still:
                self.stats.rebuilt_pts += 1
        self.last_pts = pts
        if not sec.holds(pts):
            return
        corrupt = pts in self.corrupt_pts
        self.corrupt_pts.discard(pts)
        if corrupt:
            self._fail("a frame decoded with errors", pts)
            self.stats.corrupt_kept += 1
        yield Frame(index=self.stats.frames, pts=pts, time_base=sec.tb, y=luma_of(picture), corrupt=corrupt)
        self.stats.frames += 1

    def _data_ended(self) -> None:
        """The demuxer has no more packets: if the last one was a short read, the file is cut."""
        if self.short_read and not self.stats.truncated:
            self.stats.truncated = True
            sec = self.section
            if sec.lo is None and sec.hi is None and self.stream.frames > self.read:
                self.stats.unread = self.stream.frames - self.read

    def _fail(self, what: str, pts: int | None) -> None:
        """Note a damaged/missing frame at the current index; raise unless skip_corrupt."""
        stats = self.stats
        index = stats.frames
        if stats.first_corrupt_index is None:
            stats.first_corrupt_index = index
        if self.skip_corrupt:
            return
        tb = self.section.tb
        when = f" (t={float(pts * tb):.3f}s)" if pts is not None else ""
        found = f"{what} at frame {index}{when} of {self.name}"
        if self.short_read and stats.truncated:
            # Known only once the data has ended, so whatever fails now is where it ends.
            detail = [f"t={float(pts * tb):.3f}s"] if pts is not None else []
            detail.append("its data ends inside that frame")
            if stats.unread:
                detail[-1] += f", and {stats.unread} more frames its index lists are missing"
            found = f"{self.name} truncated at frame {index} ({'; '.join(detail)})"
        raise CorruptInputError(
            "an intact video stream",
            found,
            "pass --skip-corrupt to keep the frames that decode, or repair the file",
            frame_index=index,
        )


def _declared_end(stream: av.VideoStream) -> float | None:
    """Where the container says the video stream ends, in seconds, when it says so apart from
    the packets themselves: the Matroska per-track DURATION tag (written near the start of the
    file), which a file cut short keeps while its demuxer just stops, without an error, where
    the data ends. None where there is no such tag (MP4 fails loudly on a cut instead)."""
    tag = stream.metadata.get("DURATION")  # "HH:MM:SS.nnnnnnnnn"
    if not tag:
        return None
    try:
        return parse_timecode(tag)
    except ValueError:
        return None
