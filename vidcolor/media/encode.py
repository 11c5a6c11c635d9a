"""Stage [6], encode: colour frames in, a film out that differs from the source only in colour.

``plan_output`` decides everything about the output before any work starts (container, codec,
pixel format, codec options, which other streams are copied) and raises EncodingError for what
cannot be written. ``VideoWriter`` then encodes frames with the source's pts in the source's time
base and copies the other streams packet by packet (see remux.py), carrying rotation, SAR, colour
tags, field order and metadata.

(Over 400 lines: the output plan and the writer share the codec, pixel-format and container
tables; the packet copy is remux.py and the section window window.py.)
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import cast

import av
import av.error
import numpy as np

from vidcolor.errors import EncodingError
from vidcolor.formats import (
    CODEC_ALIASES,
    DEFAULT_CRF,
    DEFAULT_PRESET,
    ENCODER_PRESETS,
    EVEN_SIZE_ENCODERS,
    INTERLACED_ENCODERS,
)
from vidcolor.frames import SourceInfo, StreamInfo
from vidcolor.media.probe import (
    COLOR_PRIMARIES_NAMES,
    COLOR_SPACE_NAMES,
    COLOR_TRC_NAMES,
    FIELD_ORDER_NAMES,
)
from vidcolor.media.redecode import DecoderSetup, PacketCopy, PacketSink
from vidcolor.media.remux import Remuxer, carried_metadata
from vidcolor.media.window import section_seconds
from vidcolor.options import ColorizeOptions

#: Output file extension -> FFmpeg muxer. (The tables here are kept unformatted: rows read as a table.)
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
    ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".nut": "nut",
}  # fmt: skip
#: Containers whose muxer cannot be asked which codecs it holds (avformat_query_codec says
#: "unknown"): the codecs FFmpeg's muxer is known to write there.
_KNOWN_CODECS: dict[str, set[str]] = {
    "mpegts": {"h264", "hevc", "mpeg2video", "mpeg1video", "av1", "vvc", "aac", "aac_latm", "mp2", "mp3",
               "ac3", "eac3", "dts", "truehd", "opus", "s302m", "dvb_subtitle", "dvb_teletext",
               "hdmv_pgs_subtitle", "arib_caption", "smpte_klv", "timed_id3", "scte_35"},
}  # fmt: skip
#: Containers that store timestamps in one fixed unit whatever the source's time base.
_FIXED_TIME_BASE = {"matroska": Fraction(1, 1000), "webm": Fraction(1, 1000), "mpegts": Fraction(1, 90000)}
#: Stream kinds that can be copied at all.
_COPY_KINDS = {"audio", "subtitle", "data", "attachment"}
#: AVFieldOrder by name.
_FIELD_ORDER = {v: k for k, v in FIELD_ORDER_NAMES.items()}


@dataclass(frozen=True)
class OutputPlan:
    """Everything decided about the output, before any frame is made.

    pix_fmt is the planar format whose planes ``VideoWriter.write`` takes (Y, U, V; uint8 for 8
    bits, uint16 holding the native range otherwise); encoder_pix_fmt is what the encoder is fed
    (the same, except for NVENC's semi-planar high-bit-depth formats, converted in the writer).
    color_* are the tags written (FFmpeg names; the merge stage must use color_space's matrix).
    copied: source stream indices copied as they are; warnings name each stream left out; notes
    state every conversion (chroma, bit depth, codec substitutions).
    """

    container_format: str
    codec: str
    pix_fmt: str
    bit_depth: int
    options: dict[str, str]
    copied: tuple[int, ...]
    warnings: list[str]
    notes: list[str]
    width: int
    height: int
    encoder_pix_fmt: str = ""
    lossless: bool = False
    interlaced: bool = False  # encode interlaced (field order kept)
    field_order: str = "progressive"
    color_range: str = "unknown"
    color_primaries: str | None = None
    color_trc: str | None = None
    color_space: str | None = None
    extension: str = ""
    stream_order: tuple[int, ...] = field(default=())  # source indices in output order (video included)


@lru_cache(maxsize=32)
def container_codecs(container_format: str) -> frozenset[str]:
    """Canonical codec names (``h264``, ``subrip``, ``dvb_subtitle``) the muxer can hold."""
    if container_format in _KNOWN_CODECS:
        return frozenset(_KNOWN_CODECS[container_format])
    with av.open(io.BytesIO(), mode="w", format=container_format) as probe_out:
        names = probe_out.supported_codecs
    out = set()
    for name in names:
        for mode in ("w", "r"):
            try:
                out.add(av.Codec(name, mode).canonical_name)
                break
            except (av.error.FFmpegError, ValueError):
                continue
    return frozenset(out)


def _chroma_layout(pix_fmt: str) -> str:
    """'420', '422', '444', 'gray' or 'rgb' for a source pixel format."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or pix_fmt.startswith(("pal8", "bgr", "rgb")):
        return "rgb"
    if len([c for c in fmt.components if not c.is_alpha]) == 1:
        return "gray"
    w, h = 64, 64
    cw, ch = fmt.chroma_width(w), fmt.chroma_height(h)
    if cw == w and ch == h:
        return "444"
    if cw == w // 2 and ch == h:
        return "422"
    if cw == w // 2 and ch == h // 2:
        return "420"
    return "other"


def _planar(layout: str, bits: int) -> str:
    base = {"420": "yuv420p", "422": "yuv422p", "444": "yuv444p"}[layout]
    return base if bits == 8 else f"{base}{bits}le"


def _usable_nvenc(codec: str) -> bool:
    """Whether an NVENC encoder can really be opened here (it needs a GPU and a driver)."""
    if codec not in av.codecs_available:
        return False
    try:
        ctx = cast(av.video.codeccontext.VideoCodecContext, av.CodecContext.create(codec, "w"))
        ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
        return True
    except (av.error.FFmpegError, ValueError, OSError):
        return False


def plan_for(info: SourceInfo, dst: Path, opts: ColorizeOptions) -> OutputPlan:
    """:func:`plan_output` with the output settings of a run's options."""
    return plan_output(
        info,
        dst,
        opts.codec,
        opts.crf,
        opts.lossless,
        opts.ten_bit,
        deinterlace=opts.deinterlace,
        preset=opts.preset,
    )


def plan_output(
    info: SourceInfo,
    dst: Path,
    codec: str = "libx264",
    crf: float | None = None,
    lossless: bool = False,
    ten_bit: bool | None = None,
    *,
    deinterlace: bool = False,
    preset: str | None = None,
) -> OutputPlan:
    """Decide the output for ``info`` written to ``dst`` (see OutputPlan); raise EncodingError
    for a container, codec or combination that cannot be written, before any work starts.

    codec: libx264 (default), libx265, ffv1, prores, lossless (ffv1 in .mkv/.avi/.nut, else
    libx264 at qp 0), h264_nvenc / hevc_nvenc (where a GPU encoder opens), vp9, av1.
    crf: quality for CRF codecs (lower is better). ten_bit: None keeps the source depth (8 or 10;
    deeper sources go to 10 unless the codec holds more), True forces 10 bits, False forces 8.
    deinterlace: the frames will be progressive (no interlaced encoding). preset: the encoder's speed
    preset (formats.ENCODER_PRESETS; None: its default), noted and ignored for codecs without one.
    """
    dst = Path(dst)
    ext = dst.suffix.lower()
    v = info.video
    notes: list[str] = []
    warnings: list[str] = []
    fmt_name = CONTAINERS.get(ext)
    if fmt_name is None:
        raise EncodingError(
            f"an output extension among {', '.join(sorted(CONTAINERS))}",
            f"'{dst.suffix or dst.name}'",
            "name the output e.g. film.mkv or film.mp4",
        )
    held = container_codecs(fmt_name)

    want = codec.lower()
    if want == "lossless":
        lossless = True
        want = "ffv1" if "ffv1" in held and fmt_name in ("matroska", "avi", "nut") else "libx264"
        notes.append(f"lossless: {want}{' at qp 0' if want == 'libx264' else ''} in {fmt_name}")
    enc = CODEC_ALIASES.get(want)
    if enc is None:
        raise EncodingError(
            f"a codec among {', '.join(sorted(set(CODEC_ALIASES) | {'lossless'}))}",
            f"'{codec}'",
            "pick one of those",
        )
    if enc.endswith("_nvenc") and not _usable_nvenc(enc):
        raise EncodingError(
            f"a working {enc} encoder",
            "none (no NVIDIA GPU/driver, or FFmpeg built without it)",
            "use --codec libx264 or libx265",
        )
    if enc not in av.codecs_available:
        raise EncodingError(f"the {enc} encoder in this FFmpeg", "it is missing", "pick another codec")
    canonical = av.Codec(enc, "w").canonical_name
    if canonical not in held:
        raise EncodingError(
            f"a codec that {fmt_name} ({ext}) can hold", f"{enc} ({canonical})", _container_hint(canonical)
        )
    if lossless and enc == "prores_ks":
        raise EncodingError(
            "a lossless codec", "prores (lossy)", "use --codec ffv1 (.mkv) or --lossless alone"
        )

    # Pixel format: keep the source's chroma layout and bit depth where the encoder can.
    layout = _chroma_layout(v.pix_fmt)
    if layout == "gray":
        layout = "420"
        notes.append(f"grey source ({v.pix_fmt}) written as 4:2:0 colour")
    elif layout == "rgb":
        layout = "444"
        notes.append(f"RGB source ({v.pix_fmt}) written as YUV 4:4:4")
    elif layout == "other":
        notes.append(f"source chroma layout of {v.pix_fmt} written as 4:2:0")
        layout = "420"
    formats = {f.name for f in (av.Codec(enc, "w").video_formats or [])}
    if enc.endswith("_nvenc"):  # NVENC takes high depth as semi-planar / 16-bit; the writer converts
        formats |= {"yuv420p10le"} if "p010le" in formats else set()
        formats |= {"yuv444p10le"} if "yuv444p16le" in formats else set()

    src_bits = v.bit_depth
    bits = 10 if (ten_bit or (ten_bit is None and src_bits > 8)) else 8
    if ten_bit is None and src_bits > 10 and _planar(layout, src_bits) in formats:
        bits = src_bits  # e.g. FFV1 keeps 12 and 16 bits
    if ten_bit is False and src_bits > 8:
        notes.append(f"bit depth reduced from {src_bits} to 8 (asked for 8-bit output)")

    if v.width % 2 or v.height % 2:
        if enc in EVEN_SIZE_ENCODERS and layout in ("420", "422") and (layout == "420" or v.width % 2):
            notes.append(
                f"odd size {v.width}x{v.height}: {enc} needs even sizes for 4:{layout[1]}:"
                f"{layout[2]}, so chroma is written 4:4:4 (size kept exactly)"
            )
            layout = "444"
    pix = _planar(layout, bits) if bits in (8, 10, 12, 16) else _planar(layout, 10)
    if pix not in formats:
        fallback, why = _fallback_pix_fmt(layout, bits, formats, enc)
        if fallback is None:
            raise EncodingError(
                f"a pixel format {enc} can encode",
                f"none for {_planar(layout, bits)}",
                "choose another codec (ffv1 takes every layout)",
            )
        pix = fallback
        if (v.width % 2 or v.height % 2) and enc in EVEN_SIZE_ENCODERS and not pix.startswith("yuv444"):
            raise EncodingError(
                f"even width and height for {enc} at {pix}",
                f"{v.width}x{v.height}",
                "use --codec libx264 or ffv1, which can keep odd sizes",
            )
        notes.append(why)
    out_bits = 8 if pix in ("yuv420p", "yuv422p", "yuv444p") else int(pix[7:].rstrip("lbe"))
    if out_bits < src_bits and ten_bit is not False:
        notes.append(f"bit depth reduced from {src_bits} to {out_bits} ({enc} at {pix})")
    elif out_bits > src_bits:
        notes.append(f"bit depth raised from {src_bits} to {out_bits} ({pix}; luma shifted, values exact)")

    options = _codec_options(enc, crf, lossless, notes, _preset(enc, preset, notes))
    interlaced = v.field_order in ("tt", "bb", "tb", "bt") and not deinterlace
    if interlaced and enc not in INTERLACED_ENCODERS:
        notes.append(f"interlaced source ({v.field_order}) encoded progressive: {enc} has no interlaced mode")
        interlaced = False

    copied, order = _plan_streams(info, fmt_name, held, warnings, notes)
    fixed_tb = _FIXED_TIME_BASE.get(fmt_name)
    if (fixed_tb is not None and v.time_base != fixed_tb) or (
        fmt_name in ("mp4", "mov") and v.time_base.numerator != 1
    ):
        notes.append(
            f"{fmt_name} stores time in units of {fixed_tb or '1/integer'} s, the source in {v.time_base} s:"
            " frame times are kept to that precision, pts numbers change"
        )
    color_space = (
        v.color_space if v.color_space not in (None, "gbr") else ("bt709" if v.height >= 720 else "smpte170m")
    )  # what the merge stage assumes untagged
    return OutputPlan(
        container_format=fmt_name,
        codec=enc,
        pix_fmt=pix,
        bit_depth=out_bits,
        options=options,
        copied=copied,
        warnings=warnings,
        notes=notes,
        width=v.width,
        height=v.height,
        encoder_pix_fmt=_encoder_pix_fmt(enc, pix, formats),
        lossless=lossless or enc == "ffv1",
        interlaced=interlaced,
        field_order=v.field_order if interlaced else "progressive",
        color_range=v.color_range,
        color_primaries=v.color_primaries,
        color_trc=v.color_trc,
        color_space=color_space,
        extension=ext,
        stream_order=order,
    )


def _container_hint(canonical: str) -> str:
    holders = [e for e, f in CONTAINERS.items() if canonical in container_codecs(f)]
    return f"use an extension that holds it ({', '.join(holders)})" if holders else "choose another codec"


def _fallback_pix_fmt(layout: str, bits: int, formats: set[str], enc: str) -> tuple[str | None, str]:
    """The closest format the encoder takes: no fewer bits and no less chroma where possible."""
    order = {"420": ["420", "422", "444"], "422": ["422", "444", "420"], "444": ["444", "422", "420"]}[layout]
    depths = [bits] + [b for b in (10, 12, 16, 8) if b != bits]
    for d in sorted(depths, key=lambda b: (b < bits, abs(b - bits))):
        for lay in order:
            cand = _planar(lay, d)
            if cand in formats:
                return cand, f"{enc} cannot take {_planar(layout, bits)}: written as {cand}"
    return None, ""


def _encoder_pix_fmt(enc: str, pix: str, formats: set[str]) -> str:
    if enc.endswith("_nvenc") and pix == "yuv420p10le":
        return "p010le"
    if enc.endswith("_nvenc") and pix == "yuv444p10le":
        return "yuv444p16le"
    return pix


def _preset(enc: str, preset: str | None, notes: list[str]) -> str:
    """The speed preset ``enc`` runs at: ``preset`` checked against its list, or its default ("" for
    an encoder without presets, where a given one is noted and ignored)."""
    names = ENCODER_PRESETS.get(enc)
    if names is None:
        if preset is not None:
            notes.append(f"preset ignored: {enc} has none")
        return ""
    if preset is None:
        return DEFAULT_PRESET[enc]
    if preset.lower() not in names:
        raise EncodingError(
            f"a --preset of {enc} among {', '.join(names)}", f"'{preset}'", "pick one of those"
        )
    return preset.lower()


def _codec_options(
    enc: str, crf: float | None, lossless: bool, notes: list[str], preset: str
) -> dict[str, str]:
    q = crf if crf is not None else DEFAULT_CRF.get(enc)
    if enc == "libx264":
        return {"preset": preset, **({"qp": "0"} if lossless else {"crf": f"{q:g}"})}
    if enc == "libx265":
        params = "lossless=1:log-level=error" if lossless else "log-level=error"
        return {"preset": preset, "x265-params": params, **({} if lossless else {"crf": f"{q:g}"})}
    if enc == "ffv1":
        if crf is not None:
            notes.append("crf ignored: ffv1 is lossless")
        return {"level": "3", "slicecrc": "1", "g": "1"}
    if enc == "prores_ks":
        if crf is not None:
            notes.append("crf ignored: prores uses its profile (HQ)")
        return {"profile": "3"}
    if enc in ("h264_nvenc", "hevc_nvenc"):
        return {"preset": preset, **({"tune": "lossless"} if lossless else {"rc": "vbr", "cq": f"{q:g}"})}
    if enc == "libvpx-vp9":
        return {"lossless": "1"} if lossless else {"crf": f"{q:g}", "b": "0", "row-mt": "1"}
    if enc == "libsvtav1":
        if lossless:
            raise EncodingError("a lossless mode", "none in libsvtav1", "use --codec ffv1 or --lossless")
        return {"crf": f"{q:g}", "preset": preset}
    return {}


def _plan_streams(
    info: SourceInfo, fmt_name: str, held: frozenset[str], warnings: list[str], notes: list[str]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    copied: list[int] = []
    for s in info.others:
        ok, why = _copyable(s, fmt_name, held)
        if ok:
            copied.append(s.index)
        else:
            lang = f", language {s.language}" if s.language else ""
            warnings.append(f"stream {s.index} ({s.kind}, {s.codec}{lang}) left out: {why}")
    order = tuple(sorted([info.video.index, *copied]))
    return tuple(copied), order


def _copyable(s: StreamInfo, fmt_name: str, held: frozenset[str]) -> tuple[bool, str]:
    if s.kind not in _COPY_KINDS or s.codec == "none":
        # e.g. a QuickTime tmcd track: the timecode itself travels as the video stream's tag,
        # from which the MOV/MP4 muxer writes a new timecode track
        return False, f"a {s.kind} stream without a codec cannot be copied (a timecode tag is kept)"
    if s.kind == "attachment":
        return (fmt_name == "matroska", "only Matroska holds attachments")
    if s.kind == "video":
        return False, "only the colorized video stream is written"
    if s.codec not in held:
        return False, f"{fmt_name} cannot hold {s.codec}"
    return True, ""


def open_muxer(
    info: SourceInfo, plan: OutputPlan, path: str | os.PathLike[str]
) -> av.container.OutputContainer:
    """The output container at ``path`` with the plan's muxer and options and the source's
    container tags; EncodingError where it cannot be made. (VideoWriter and the segment join.)"""
    try:
        out = av.open(str(path), mode="w", format=plan.container_format, options=muxer_options(info, plan))
    except (av.error.FFmpegError, OSError) as exc:
        raise EncodingError("a writable output", f"{path} ({exc})", "check the output folder") from None
    out.metadata.update(carried_metadata(info.metadata))
    return out


def add_streams(
    info: SourceInfo, plan: OutputPlan, remux: Remuxer, add_video: Callable[[], av.VideoStream]
) -> av.VideoStream:
    """Add the output's streams in the plan's order: the video through ``add_video``, every copied
    stream through ``remux``. Returns the video stream."""
    video: av.VideoStream | None = None
    for index in plan.stream_order or (info.video.index, *plan.copied):
        if index == info.video.index:
            video = add_video()
        elif index in plan.copied:
            remux.add_stream(index)
    assert video is not None
    return video


def carry_video_tags(stream: av.VideoStream, info: SourceInfo) -> None:
    """Give the output video ``stream`` the source video's rotation, tags (language, title, handler,
    timecode: the MOV/MP4 muxer writes a timecode track from the "timecode" tag) and disposition."""
    if info.video.rotation:
        stream.set_display_rotation(info.video.rotation)
    try:
        with av.open(info.path) as c:
            s = c.streams[info.video.index]
            tags, disposition = dict(s.metadata), int(s.disposition)
    except (av.error.FFmpegError, OSError):
        tags, disposition = {}, None
    stream.metadata.update(carried_metadata(tags))
    if disposition is not None:
        stream.disposition = av.stream.Disposition(disposition)


def muxer_options(info: SourceInfo, plan: OutputPlan) -> dict[str, str]:
    """Options of the output muxer that keep every timestamp exact (MP4/MOV; none elsewhere)."""
    if plan.container_format not in ("mp4", "mov"):
        return {}
    tb = info.video.time_base
    opts = {}
    if tb.numerator == 1:
        # Without this the muxer doubles a time scale below 10000 until it is above, and
        # every pts read back is a multiple of the source's.
        opts["video_track_timescale"] = str(tb.denominator)
    # The movie time scale (1000 by default) is the unit of the edit lists that say where each
    # track starts: in ms, a film or --start section that starts at 1/3 s came back up to 1 ms
    # early. A multiple of every track's time scale places each start exactly.
    scale = 1
    for t in (tb, *(s.time_base for s in info.others if s.index in plan.copied)):
        if t is not None and t.numerator == 1:
            scale = math.lcm(scale, t.denominator)
    if 1 < scale < 2**31:
        opts["movie_timescale"] = str(scale)
    return opts


class VideoWriter:
    """Encode colour frames to ``tmp_path`` and copy the source's other streams beside them.

    ``write(index, pts, planes)`` takes frames in index order: ``pts`` in the source video time
    base, ``planes`` the planes of ``plan.pix_fmt`` (Y full size, U and V subsampled; uint8, or
    uint16 holding the native range). start/duration (seconds from the video stream's start, as
    given to decode_frames) limit the copied packets to that section; timestamps are not shifted.
    ``sink`` receives a copy of every encoded video packet before it is muxed (media/redecode.py).
    Use as a context manager; ``close()`` flushes the encoder and the remuxer. Raises EncodingError.
    """

    def __init__(
        self,
        tmp_path: Path,
        info: SourceInfo,
        plan: OutputPlan,
        *,
        threads: int = 0,
        start: float | None = None,
        duration: float | None = None,
        sink: PacketSink | None = None,
    ) -> None:
        self.info, self.plan = info, plan
        self.sink = sink
        self._sink_started = False
        self.next_index = 0
        self.closed = False
        v = info.video
        self.time_base = v.time_base
        self.out = open_muxer(info, plan, tmp_path)
        try:
            self.remux = Remuxer(info, self.out, section_seconds(v.start_time, start, duration))
            self.stream = add_streams(info, plan, self.remux, lambda: self._add_video(threads))
        except BaseException:
            self._abort()
            raise

    def _add_video(self, threads: int) -> av.VideoStream:
        plan, v = self.plan, self.info.video
        rate = v.nominal_rate
        try:
            stream = cast(
                av.VideoStream, self.out.add_stream(plan.codec, rate=rate, options=dict(plan.options))
            )
        except (av.error.FFmpegError, ValueError) as exc:
            raise EncodingError(f"the {plan.codec} encoder", str(exc), "pick another codec") from None
        cc = stream.codec_context
        cc.width, cc.height = plan.width, plan.height
        cc.pix_fmt = plan.encoder_pix_fmt or plan.pix_fmt
        cc.time_base = self.time_base
        stream.time_base = self.time_base
        cc.framerate = rate
        cc.thread_count = threads
        cc.thread_type = "AUTO"
        if v.sar is not None:
            cc.sample_aspect_ratio = v.sar
        cc.color_range = {"tv": 1, "pc": 2}.get(plan.color_range, 0)
        cc.color_primaries = _enum(COLOR_PRIMARIES_NAMES, plan.color_primaries, 2)
        cc.color_trc = _enum(COLOR_TRC_NAMES, plan.color_trc, 2)
        cc.colorspace = _enum(COLOR_SPACE_NAMES, plan.color_space, 2)
        if plan.interlaced:
            cc.field_order = _FIELD_ORDER.get(plan.field_order, 0)
            cc.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        else:
            cc.field_order = 1  # AV_FIELD_PROGRESSIVE
        carry_video_tags(stream, self.info)
        return stream

    # -- writing ---------------------------------------------------------------------------------

    def write(self, index: int, pts: int, planes: tuple[np.ndarray, ...]) -> None:
        """Encode frame ``index`` (dense from 0, in order) at ``pts`` (source time base)."""
        if index != self.next_index:
            raise EncodingError(
                f"frame {self.next_index} next",
                f"frame {index}",
                "frames must reach the writer in index order (a pipeline bug)",
            )
        assert self.stream is not None
        frame = self._frame(planes)
        frame.pts = pts
        frame.time_base = self.time_base
        try:
            self._mux(self.stream.encode(frame))
            self.remux.pump(float(pts * self.time_base))
        except av.error.FFmpegError as exc:
            raise EncodingError(f"frame {index} encoded", str(exc), "check the codec options") from None
        self.next_index += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        if self.sink is not None and packets:
            assert self.stream is not None
            if not self._sink_started:  # the encoder is open now: its extradata (SPS/PPS...) is set
                cc = self.stream.codec_context
                name = cc.codec.canonical_name
                self.sink.start(DecoderSetup(name, cc.extradata, self.time_base, cc.width, cc.height))
                self._sink_started = True
            self.sink.packets([PacketCopy.of(p) for p in packets])
        self.out.mux(packets)

    def _frame(self, planes: tuple[np.ndarray, ...]) -> av.VideoFrame:
        plan = self.plan
        w, h = plan.width, plan.height
        enc_fmt = plan.encoder_pix_fmt or plan.pix_fmt
        frame = av.VideoFrame(w, h, enc_fmt)
        _check_planes(plan, planes)
        if enc_fmt == plan.pix_fmt:
            _fill(frame, planes)
        elif enc_fmt == "p010le":  # NVENC: 10 bits in the high bits, U and V interleaved
            y, u, vv = planes
            uv = np.empty((u.shape[0], u.shape[1] * 2), np.uint16)
            uv[:, 0::2], uv[:, 1::2] = u, vv
            _fill(frame, (y.astype(np.uint16) << 6, uv << 6))
        elif enc_fmt == "yuv444p16le":
            _fill(frame, tuple(p.astype(np.uint16) << 6 for p in planes))
        else:  # pragma: no cover - plan_output only makes the cases above
            raise EncodingError("a known encoder pixel format", enc_fmt, "a bug")
        frame.color_range = {"tv": 1, "pc": 2}.get(plan.color_range, 0)
        return frame

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush the encoder and the remaining copied packets, and finish the file."""
        if self.closed:
            return
        assert self.stream is not None
        try:
            self._mux(self.stream.encode(None))
            self.remux.finish()
            self.out.close()
        except av.error.FFmpegError as exc:
            self._abort()
            raise EncodingError(
                "the output finished", str(exc), "see the message; the output was not kept"
            ) from None
        finally:
            self.remux.close()
        self.closed = True

    def _abort(self) -> None:
        """Release the files without finishing the output (it is removed by atomic_output)."""
        self.closed = True
        for closer in (getattr(self, "remux", None), getattr(self, "out", None)):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # already failing; the first error is the one to raise
                    pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def _enum(names: dict[int, str], name: str | None, unset: int) -> int:
    if name is None:
        return unset
    for k, v in names.items():
        if v == name:
            return k
    return unset


def _fill(frame: av.VideoFrame, planes: tuple[np.ndarray, ...] | list[np.ndarray]) -> None:
    """Copy planes into the frame row by row (its lines may be padded: line_size > width)."""
    for plane, data in zip(frame.planes, planes, strict=True):
        dtype = np.dtype(np.uint16) if data.dtype.itemsize == 2 else np.dtype(np.uint8)
        dst = np.frombuffer(memoryview(plane), dtype=dtype).reshape(-1, plane.line_size // dtype.itemsize)
        if dst.shape[0] < data.shape[0] or dst.shape[1] < data.shape[1]:
            raise EncodingError(
                f"a plane of at most {plane.width}x{plane.height}",
                f"{data.shape[1]}x{data.shape[0]}",
                "a pipeline bug (wrong plane size)",
            )
        dst[: data.shape[0], : data.shape[1]] = data


def _check_planes(plan: OutputPlan, planes: tuple[np.ndarray, ...]) -> None:
    """Planes must be exactly what plan.pix_fmt holds: a mismatch is a pipeline bug, not a picture."""
    fmt = av.VideoFormat(plan.pix_fmt)
    cw, ch = fmt.chroma_width(plan.width), fmt.chroma_height(plan.height)
    want_shapes = [(plan.height, plan.width), (ch, cw), (ch, cw)]
    want_dtype = np.dtype(np.uint8 if plan.bit_depth == 8 else np.uint16)
    got = [(tuple(p.shape), p.dtype) for p in planes]
    if len(planes) != 3 or any(g != (s, want_dtype) for g, s in zip(got, want_shapes, strict=False)):
        raise EncodingError(
            f"planes {want_shapes} of {want_dtype} for {plan.pix_fmt}",
            str([(s, str(d)) for s, d in got]),
            "a pipeline bug: the merge stage must produce the plan's planes",
        )
