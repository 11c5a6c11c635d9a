"""Stage 0, probe: learn what an input holds before any real work starts.

``probe(path)`` opens the container, reads its stream headers and decodes at most the first video
frame (for the display matrix, which FFmpeg only hands out as frame side data, and for the pixel
format the decoder really produces). It never decodes the whole file.

The colour tag tables at the bottom map FFmpeg's enum values (AVColorPrimaries, AVColorTransferCharacteristic,
AVColorSpace) to FFmpeg's own names and back; the encoder uses them to write the same tags.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import av.error

from vidcolor.errors import InputError
from vidcolor.frames import SourceInfo, StreamInfo, VideoInfo

#: Demuxers that read a single still image (png_pipe, jpeg_pipe, tiff_pipe, ... and image2).
_IMAGE_DEMUXER_SUFFIX = "_pipe"
_IMAGE_DEMUXERS = {"image2", "image2pipe"}
#: Top-level box types of MP4/MOV files, for telling "moov missing" from "not an MP4".
_ISO_TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"uuid", b"pnot", b"meta"}
#: How many packets probe() feeds the decoder while looking for the first frame.
_FIRST_FRAME_PACKETS = 64

#: AVFieldOrder -> the names SourceInfo uses.
FIELD_ORDER_NAMES: dict[int, str] = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
#: AVColorRange -> "tv" (limited, MPEG) | "pc" (full, JPEG).
COLOR_RANGE_NAMES: dict[int, str] = {0: "unknown", 1: "tv", 2: "pc"}
#: AVColorPrimaries (2 = unspecified -> None).
COLOR_PRIMARIES_NAMES: dict[int, str] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
#: AVColorTransferCharacteristic (2 = unspecified -> None).
COLOR_TRC_NAMES: dict[int, str] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
#: AVColorSpace, the YUV matrix (2 = unspecified -> None).
COLOR_SPACE_NAMES: dict[int, str] = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}


def probe(path: str | os.PathLike[str]) -> SourceInfo:
    """Describe ``path``: container, the video stream to colorize and every other stream.

    Raises InputError (one line) for a missing, empty or unreadable file, a folder, data that is
    not media, an MP4/MOV whose moov atom is missing, and a file without a video stream.
    ``StreamInfo.copyable`` here means "has codec parameters a muxer can take" (attachments and
    streams of unknown type are False); ``plan_output`` decides for the actual output container.
    """
    p = Path(path)
    _check_file(p)
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise _open_error(p, exc) from None
    except OSError as exc:
        raise InputError("a readable media file", f"{p} ({exc.strerror or exc})", "check the path") from None
    try:
        return _describe(p, container)
    finally:
        container.close()


def bit_depth_of(pix_fmt: str) -> int:
    """Bits per luma (or first colour) sample of ``pix_fmt``: 8 for yuv420p, 10 for gray10le, ..."""
    fmt = av.VideoFormat(pix_fmt)
    return max(c.bits for c in fmt.components if not c.is_alpha) if fmt.components else 8


def _check_file(p: Path) -> None:
    if not p.exists():
        raise InputError("an existing input file", f"nothing at {p}", "check the path")
    if p.is_dir():
        raise InputError("an input file", f"a folder at {p}", "pass a video or image file")
    if not os.access(p, os.R_OK):
        raise InputError("a readable input file", f"{p} is not readable", "check its permissions")
    if p.stat().st_size == 0:
        raise InputError("a media file", f"an empty file (0 bytes) at {p}", "pass a complete video file")


def _open_error(p: Path, exc: av.error.FFmpegError) -> InputError:
    if _is_isobmff_without_moov(p):
        return InputError(
            "an MP4/MOV with its index (moov atom)",
            f"no moov atom in {p.name} (the file is truncated or was never finalised)",
            "re-export or re-download it (the index is written last unless 'faststart' was used)",
        )
    reason = getattr(exc, "strerror", None) or str(exc)
    return InputError(
        "a video or image file",
        f"{p.name} is not readable media ({reason})",
        "check that the file is a video and not damaged",
    )


def _is_isobmff_without_moov(p: Path) -> bool:
    """True for a file that starts like MP4/MOV (ftyp/mdat/wide/free box) but has no moov box.

    Walks the top-level boxes by their size fields, so it costs a few small reads.
    """
    found_iso = False
    try:
        with p.open("rb") as fh:
            size_total = p.stat().st_size
            pos = 0
            while pos + 8 <= size_total:
                fh.seek(pos)
                head = fh.read(16)
                size, kind = struct.unpack(">I4s", head[:8])
                if kind not in _ISO_TOP_BOXES:
                    return found_iso  # not ISO-BMFF at all, or junk after valid boxes
                found_iso = True
                if kind == b"moov":
                    return False
                if size == 1 and len(head) >= 16:
                    size = struct.unpack(">Q", head[8:16])[0]
                elif size == 0:  # box runs to the end of the file
                    break
                if size < 8:
                    break
                pos += size
    except OSError:
        return False
    return found_iso


def _best_video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream that is not cover art (attached pictures are stills inside audio files)."""
    for s in container.streams.video:
        if not (s.disposition & av.stream.Disposition.attached_pic):
            return s
    return None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame | None:
    """Decode the first frame of ``stream``, reading at most a few dozen packets; None if none comes."""
    try:
        for n, packet in enumerate(container.demux(stream)):
            for frame in stream.decode(packet):
                return frame
            if n >= _FIRST_FRAME_PACKETS:
                break
    except av.error.FFmpegError:
        return None
    return None


def _describe(p: Path, container: av.container.InputContainer) -> SourceInfo:
    stream = _best_video_stream(container)
    if stream is None:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        raise InputError(
            "a video stream",
            f"none in {p.name} ({kinds})",
            "pass a file with video (audio-only files cannot be colorized)",
        )
    cc = stream.codec_context
    if cc is None:
        # FFmpeg leaves the codec context unset when the stream's codec cannot be told, e.g. an
        # MP4 sample description (stsd) that was zeroed or damaged: nothing can decode it.
        raise InputError(
            "a video stream with a known codec",
            f"stream {stream.index} of {p.name} has no readable codec description (damaged header)",
            "re-export or repair the file",
        )
    fmt_name = cc.format.name if cc.format is not None else None
    tb = stream.time_base
    demuxer = container.format.name
    is_still = (demuxer.endswith(_IMAGE_DEMUXER_SUFFIX) or demuxer in _IMAGE_DEMUXERS) and stream.frames <= 1

    # Side data (rotation) and the decoder's real output format come with the first frame.
    first = _first_frame(container, stream)
    if first is not None:
        fmt_name = first.format.name
    if fmt_name is None:
        raise InputError(
            "a decodable video stream",
            f"stream {stream.index} of {p.name} has no pixel format",
            "check that the file is not damaged",
        )
    rotation = float(first.rotation) if first is not None else 0.0

    def tag(name: str, unset: int) -> int:
        """A colour tag from the stream, else from the first frame (some codecs only say it there)."""
        value = int(getattr(cc, name))
        if value == unset and first is not None:
            value = int(getattr(first, name))
        return value

    color_range = tag("color_range", 0)
    full_range_fmt = av.VideoFormat(fmt_name).is_rgb or fmt_name.startswith(("yuvj", "pal8"))
    if full_range_fmt or (is_still and not color_range):
        color_range = 2  # RGB, yuvj and still images (JPEG, PNG, TIFF) are full range by definition
    primaries, trc, space = tag("color_primaries", 2), tag("color_trc", 2), tag("colorspace", 2)
    field_order = FIELD_ORDER_NAMES.get(int(cc.field_order), "unknown")
    if field_order in ("unknown", "progressive") and first is not None and first.interlaced_frame:
        field_order = "unknown"  # interlaced, but the stream does not say which field comes first

    sar = stream.sample_aspect_ratio
    if sar is not None and sar.numerator == 0:
        sar = None

    container_duration = container.duration / av.time_base if container.duration else None
    duration = _seconds(stream.duration, tb) or container_duration

    video = VideoInfo(
        index=stream.index,
        codec=stream.codec.canonical_name,
        width=cc.width,
        height=cc.height,
        pix_fmt=fmt_name,
        bit_depth=bit_depth_of(fmt_name),
        time_base=tb if tb is not None else Fraction(1, 25),
        average_rate=stream.average_rate or None,
        guessed_rate=stream.guessed_rate or None,
        frames=stream.frames or None,
        start_time=_seconds(stream.start_time, tb),
        duration=None if is_still else duration,
        sar=sar,
        rotation=rotation,
        color_range=COLOR_RANGE_NAMES.get(color_range, "unknown"),
        color_primaries=COLOR_PRIMARIES_NAMES.get(primaries),
        color_trc=COLOR_TRC_NAMES.get(trc),
        color_space=COLOR_SPACE_NAMES.get(space),
        field_order=field_order,
    )
    others = tuple(_other_stream(s) for s in container.streams if s.index != stream.index)
    return SourceInfo(
        path=str(p),
        container=demuxer,
        duration=None if is_still else container_duration,
        is_still=is_still,
        video=video,
        others=others,
        metadata=dict(container.metadata),
    )


def _other_stream(s: av.stream.Stream) -> StreamInfo:
    kind = s.type if s.type in ("video", "audio", "subtitle", "data", "attachment") else "unknown"
    # canonical_name is the codec id's name ("subrip", "ass"), not the decoder's ("srt", "ssa").
    codec = s.codec.canonical_name if getattr(s, "codec", None) is not None else "none"
    return StreamInfo(
        index=s.index,
        kind=kind,
        codec=codec,
        language=s.metadata.get("language"),
        time_base=s.time_base,
        copyable=kind in ("video", "audio", "subtitle", "data"),
    )
