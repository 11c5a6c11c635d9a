"""A factory of tiny synthetic clips, written with PyAV, for the tests of every stage.

Content is deterministic: a diagonal luma gradient that moves with the frame index, plus a fine
checker texture so that codecs have something to code. 10-bit formats use values that are not
multiples of 4, so a path that secretly goes through 8 bits is caught. Audio tracks carry a
sine tone per track; subtitle tracks (Matroska) carry a few SubRip cues muxed as packets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

#: Audio sample rate of the synthesized tones (Hz).
AUDIO_RATE = 48000


def luma_pattern(index: int, width: int, height: int, bits: int = 8) -> np.ndarray:
    """The Y plane of frame ``index``: uint8 (H, W) for 8 bits, uint16 (H, W) otherwise."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = (xx * 3 + yy * 2 + index * 7) % 200 + 20 + ((xx // 2 + yy // 2) % 2) * 8  # 20..227
    if bits <= 8:
        return base.astype(np.uint8)
    scale = 1 << (bits - 8)
    return (base * scale + (xx + yy + index) % scale).astype(np.uint16)


def chroma_pattern(index: int, width: int, height: int, bits: int, gray: bool) -> np.ndarray:
    """One chroma plane of the given (subsampled) size: neutral when ``gray``, else a gradient."""
    mid = 1 << (bits - 1)
    dtype = np.uint8 if bits <= 8 else np.uint16
    if gray:
        return np.full((height, width), mid, dtype=dtype)
    yy, xx = np.mgrid[0:height, 0:width]
    val = mid + ((xx * 5 + yy * 3 + index * 2) % 64 - 32) * (1 << (bits - 8))
    return val.astype(dtype)


def fill_frame(frame: av.VideoFrame, planes: Sequence[np.ndarray]) -> None:
    """Copy ``planes`` into ``frame``'s planes, honouring the line padding (line_size > width)."""
    for plane, data in zip(frame.planes, planes, strict=True):
        itemsize = data.dtype.itemsize
        dst = np.frombuffer(memoryview(plane), dtype=data.dtype).reshape(-1, plane.line_size // itemsize)
        dst[: data.shape[0], : data.shape[1]] = data


def video_frame(index: int, width: int, height: int, pix_fmt: str, gray: bool = True) -> av.VideoFrame:
    """Frame ``index`` of the pattern in ``pix_fmt`` (gray*, yuv4xxp[10le], or rgb24)."""
    fmt = av.VideoFormat(pix_fmt)
    bits = fmt.components[0].bits
    frame = av.VideoFrame(width, height, pix_fmt)
    if fmt.is_rgb:
        y = luma_pattern(index, width, height, 8)
        rgb = np.stack([y, y, y], axis=-1) if gray else np.stack([y, y // 2, 255 - y], axis=-1)
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=pix_fmt)
    planes = [luma_pattern(index, width, height, bits)]
    for p in frame.planes[1:]:
        planes.append(chroma_pattern(index, p.width, p.height, bits, gray))
    fill_frame(frame, planes)
    return frame


def clip_pts(frames: int, rate: int, time_base: Fraction, vfr: bool, start_pts: int) -> list[int]:
    """The pts written for each frame: CFR steps, or seeded irregular steps (17..90 ms) for VFR."""
    if not vfr:
        step = Fraction(1, rate) / time_base
        return [start_pts + round(i * step) for i in range(frames)]
    rng = np.random.default_rng(1234)
    out, t = [], start_pts
    for _ in range(frames):
        out.append(t)
        t += max(1, round(Fraction(int(rng.integers(17, 91)), 1000) / time_base))
    return out


def make_clip(
    path: str | os.PathLike[str],
    *,
    frames: int = 24,
    size: tuple[int, int] = (64, 48),
    rate: int = 24,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    bframes: int = 0,
    vfr: bool = False,
    start_pts: int = 0,
    time_base: Fraction | None = None,
    audio: Sequence[tuple[str, str | None]] = (),
    subtitles: Sequence[tuple[str, str | None]] = (),
    rotation: float | None = None,
    sar: Fraction | None = None,
    color_range: int | None = None,
    color_tags: tuple[int, int, int] | None = None,
    interlaced: bool = False,
    gray: bool = True,
    metadata: dict[str, str] | None = None,
    stream_metadata: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write a small clip to ``path`` (format from its extension) and return the path.

    size: (width, height). audio: (codec, language) per track, e.g. ("aac", "eng"),
    ("libopus", "spa"), ("libmp3lame", None). subtitles: ("subrip", "eng") per track (Matroska).
    color_range: AVColorRange (1 tv, 2 pc). color_tags: (primaries, trc, colorspace) AV enums.
    rotation: display rotation in degrees (as VideoFrame.rotation reads it back).
    options: encoder options; container_options: muxer options, e.g. {"movflags": "faststart"}.
    """
    path = Path(path)
    width, height = size
    tb = time_base or Fraction(1, rate * 10 if not vfr else 1000)
    pts_list = clip_pts(frames, rate, tb, vfr, start_pts)
    with av.open(str(path), mode="w", options=container_options) as out:
        if metadata:
            out.metadata.update(metadata)
        opts = {"g": str(max(1, rate))} if codec in ("libx264", "libx265") else {}
        if codec == "libx264":
            opts.update({"bf": str(bframes), "preset": "ultrafast" if not bframes else "fast"})
            if bframes:
                opts["x264-params"] = f"bframes={bframes}:b-pyramid=normal"
        if codec == "libx265":
            opts["x265-params"] = f"bframes={bframes}:log-level=error"
        opts.update(options or {})
        # A video codec's name (libx264, ffv1...): PyAV types a stream added by any name as a union.
        vs = cast(av.VideoStream, out.add_stream(codec, rate=rate, options=opts))
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        if bframes and codec != "libx264":
            vs.codec_context.max_b_frames = bframes
        if sar is not None:
            vs.codec_context.sample_aspect_ratio = sar
        if color_range is not None:
            vs.codec_context.color_range = color_range
        if color_tags is not None:
            cc = vs.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace = color_tags
        if interlaced:
            vs.codec_context.flags |= (
                av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            )
            vs.codec_context.field_order = 2  # AV_FIELD_TT
        if rotation is not None:
            vs.set_display_rotation(rotation)
        if stream_metadata:
            vs.metadata.update(stream_metadata)
        duration_s = float((pts_list[-1] - pts_list[0]) * tb) + 1 / rate if frames else 0.0
        astreams = []
        for a_codec, lang in audio:
            # An audio codec's name (aac, libopus...), as above.
            a = cast(av.AudioStream, out.add_stream(a_codec, rate=AUDIO_RATE, layout="stereo"))
            if lang:
                a.metadata["language"] = lang
            astreams.append(a)
        sstreams = []
        for s_codec, lang in subtitles:
            s = out.add_mux_stream(s_codec, time_base=Fraction(1, 1000))
            if lang:
                s.metadata["language"] = lang
            sstreams.append(s)

        for i, pts in enumerate(pts_list):
            frame = video_frame(i, width, height, pix_fmt, gray)
            frame.pts = pts
            frame.time_base = tb
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))

        start_s = float(pts_list[0] * tb) if frames else 0.0
        for k, a in enumerate(astreams):
            _write_tone(out, a, start_s, duration_s, 330.0 * (k + 1))
        for k, s in enumerate(sstreams):
            for cue in range(3):
                pkt = av.Packet(f"cue {cue} of track {k}".encode())
                pkt.stream = s
                pkt.time_base = Fraction(1, 1000)
                pkt.pts = pkt.dts = round((start_s + cue * duration_s / 3) * 1000)
                pkt.duration = max(1, round(duration_s / 4 * 1000))
                out.mux(pkt)
    return path


def _write_tone(
    out: av.container.OutputContainer, stream: av.AudioStream, start_s: float, duration_s: float, freq: float
) -> None:
    cc = stream.codec_context
    frame_size = cc.frame_size or 1024
    fmt = av.AudioFormat(cc.format.name if cc.format is not None else "fltp")
    scale, dtype = {
        "s16": (32767, np.int16),
        "s32": (2**31 - 1, np.int32),
        "flt": (1, np.float32),
        "dbl": (1, np.float64),
    }[fmt.packed.name]
    total = int(round(duration_s * AUDIO_RATE))
    first = int(round(start_s * AUDIO_RATE))
    for off in range(0, total, frame_size):
        # Every frame is frame_size long (the last one runs past the video by a little): not every
        # encoder takes a short last frame.
        t = (np.arange(off, off + frame_size) + first) / AUDIO_RATE
        wave = (0.2 * np.sin(2 * np.pi * freq * t)) * scale
        data = np.stack([wave, wave]).astype(dtype)
        if not fmt.is_planar:
            data = data.T.reshape(1, -1)
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt.name, layout="stereo")
        af.sample_rate = AUDIO_RATE
        af.pts = first + off
        af.time_base = Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(af))
    out.mux(stream.encode(None))


def pts_of(item: av.VideoFrame | av.Packet) -> int:
    """The pts of a decoded frame or a packet: every one the tests read carries one."""
    assert item.pts is not None, f"no pts on {item}"
    return item.pts


def time_base_of(stream: av.stream.Stream) -> Fraction:
    """The time base of a stream of an opened file: PyAV's stubs type it as optional."""
    assert stream.time_base is not None, f"no time base on {stream}"
    return stream.time_base


def read_video_pts(path: str | os.PathLike[str]) -> list[int]:
    """The pts of every decoded frame of the first video stream, in presentation order."""
    with av.open(str(path)) as c:
        return [pts_of(f) for f in c.decode(video=0)]


def read_video_luma(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """The Y plane of every decoded frame of the first video stream (padding stripped)."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            p = f.planes[0]
            dtype = np.uint8 if f.format.components[0].bits <= 8 else np.dtype("<u2")
            rows = np.frombuffer(memoryview(p), dtype=dtype).reshape(
                -1, p.line_size // np.dtype(dtype).itemsize
            )
            out.append(rows[: f.height, : f.width].copy())
    return out


def read_packets(
    path: str | os.PathLike[str], stream_kind: str
) -> list[list[tuple[int | None, int | None, int | None, bytes]]]:
    """Per stream of ``stream_kind`` ("audio", "subtitle", ...): (pts, dts, duration, bytes) of its packets.

    Timestamps are in that stream's own time base; the demuxer's flush packets (empty) are left out.
    """
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == stream_kind]
        out: dict[int, list[tuple[int | None, int | None, int | None, bytes]]] = {
            s.index: [] for s in streams
        }
        if not streams:
            return []
        for pkt in c.demux(streams):
            if pkt.size:
                out[pkt.stream.index].append((pkt.pts, pkt.dts, pkt.duration, bytes(pkt)))
        return [out[s.index] for s in streams]
