"""plan_output() and VideoWriter: decoded Y + neutral chroma back out, then check that frames,
pts, luma (when lossless), copied packets, tags and metadata survive."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clips import read_packets, read_video_luma, read_video_pts

from vidcolor.errors import EncodingError
from vidcolor.media.decode import decode_frames
from vidcolor.media.encode import OutputPlan, VideoWriter, plan_output
from vidcolor.media.probe import probe


def neutral_planes(plan: OutputPlan, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y as given plus mid-grey chroma planes of plan.pix_fmt's subsampled size."""
    fmt = av.VideoFormat(plan.pix_fmt)
    dtype = np.uint8 if plan.bit_depth == 8 else np.uint16
    shape = (fmt.chroma_height(plan.height), fmt.chroma_width(plan.width))
    mid = np.full(shape, 1 << (plan.bit_depth - 1), dtype)
    return y.astype(dtype), mid, mid.copy()


def roundtrip(src: Path, dst: Path, *, start=None, duration=None, **plan_kw) -> OutputPlan:
    info = probe(src)
    plan = plan_output(info, dst, **plan_kw)
    with VideoWriter(dst, info, plan, start=start, duration=duration) as writer:
        for f in decode_frames(src, info, start=start, duration=duration):
            writer.write(f.index, f.pts, neutral_planes(plan, f.y))
    return plan


@pytest.mark.parametrize(
    "name,opts",
    [
        ("cfr.mp4", dict()),
        ("vfr.mkv", dict(vfr=True)),
        ("bf.mp4", dict(bframes=3, frames=30)),
        ("late.mp4", dict(start_pts=2400, bframes=2)),
        ("tb1000.mkv", dict(bframes=2)),
    ],
)
def test_same_frames_and_pts(clip, tmp_path, name, opts):
    src = clip(name, **opts)
    out = tmp_path / ("out" + src.suffix)
    plan = roundtrip(src, out)
    assert read_video_pts(out) == read_video_pts(src)
    assert probe(out).video.time_base == probe(src).video.time_base
    assert plan.copied == () and plan.warnings == []


def test_source_time_base_kept_in_mp4_below_10000(clip, tmp_path):
    src = clip("ms.mkv", vfr=True)  # 1/1000: the mp4 muxer would otherwise scale it up
    out = tmp_path / "out.mp4"
    roundtrip(src, out)
    assert probe(out).video.time_base == Fraction(1, 1000)
    assert read_video_pts(out) == read_video_pts(src)


@pytest.mark.parametrize(
    "pix_fmt,codec,size,dst,kw",
    [
        ("yuv420p", "libx264", (64, 48), "o.mp4", dict(lossless=True)),
        ("yuv420p10le", "libx264", (64, 48), "o.mp4", dict(lossless=True)),
        ("gray10le", "ffv1", (63, 47), "o.mkv", dict(codec="lossless")),
        ("gray", "ffv1", (64, 48), "o.mkv", dict(codec="ffv1")),
        ("yuv422p10le", "ffv1", (64, 48), "o.mkv", dict(codec="ffv1")),
        ("gray10le", "ffv1", (63, 47), "o.mp4", dict(codec="lossless")),  # libx264 qp 0, 4:4:4 for odd size
    ],
)
def test_lossless_luma_bit_for_bit(clip, tmp_path, pix_fmt, codec, size, dst, kw):
    src = clip("src.mkv", frames=6, size=size, pix_fmt=pix_fmt, codec=codec)
    plan = roundtrip(src, tmp_path / dst, **kw)
    src_bits = av.VideoFormat(pix_fmt).components[0].bits
    assert plan.bit_depth == (10 if src_bits > 8 else 8)
    got, want = read_video_luma(tmp_path / dst), read_video_luma(src)
    assert len(got) == len(want) == 6
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize(
    "audio,ext",
    [
        ([("aac", "eng")], ".mp4"),
        ([("aac", "eng"), ("libopus", "spa")], ".mkv"),
        ([("aac", "eng"), ("libmp3lame", "deu")], ".mp4"),
    ],
)
def test_audio_packets_copied_byte_identical(clip, tmp_path, audio, ext):
    src = clip("a" + ext, frames=24, audio=audio, bframes=2)
    out = tmp_path / ("out" + ext)
    plan = roundtrip(src, out)
    assert len(plan.copied) == len(audio)
    want, got = read_packets(src, "audio"), read_packets(out, "audio")
    assert len(got) == len(audio) and all(len(p) > 10 for p in got)
    assert got == want  # bytes, pts, dts and duration, stream by stream
    langs = [s.language for s in probe(out).others]
    assert langs == [lang for _, lang in audio]


def test_subtitles_copied_to_mkv_and_warned_for_mp4(clip, tmp_path):
    src = clip("s.mkv", audio=[("aac", "eng")], subtitles=[("subrip", "fra")])
    mkv = tmp_path / "out.mkv"
    plan = roundtrip(src, mkv)
    assert plan.copied == (1, 2) and plan.warnings == []
    assert read_packets(mkv, "subtitle") == read_packets(src, "subtitle")
    assert [(s.kind, s.codec, s.language) for s in probe(mkv).others] == [
        ("audio", "aac", "eng"),
        ("subtitle", "subrip", "fra"),
    ]
    mp4 = tmp_path / "out.mp4"
    plan = roundtrip(src, mp4)
    assert plan.copied == (1,)
    assert len(plan.warnings) == 1
    assert all(w in plan.warnings[0] for w in ("stream 2", "subtitle", "subrip", "fra"))
    assert read_packets(mp4, "subtitle") == []
    assert len(read_packets(mp4, "audio")[0]) == len(read_packets(src, "audio")[0])


def test_tags_metadata_rotation_carried(clip, tmp_path):
    src = clip(
        "t.mp4",
        rotation=-90,
        sar=Fraction(16, 15),
        color_range=1,
        color_tags=(1, 1, 1),
        metadata={"title": "Reel 2", "creation_time": "1998-03-01T10:00:00.000000Z"},
        stream_metadata={"language": "fra"},
    )
    out = tmp_path / "out.mp4"
    roundtrip(src, out)
    a, b = probe(src), probe(out)
    for attr in (
        "rotation",
        "sar",
        "color_range",
        "color_primaries",
        "color_trc",
        "color_space",
        "width",
        "height",
    ):
        assert getattr(b.video, attr) == getattr(a.video, attr), attr
    assert b.video.rotation == -90.0 and b.video.sar == Fraction(16, 15)
    assert b.metadata["title"] == "Reel 2"
    assert b.metadata["creation_time"].startswith("1998-03-01")
    with av.open(str(out)) as c:
        assert c.streams.video[0].metadata.get("language") == "fra"
        assert "Lavc libx264" not in c.streams.video[0].metadata.get("encoder", "")  # no stale tags


def test_interlaced_kept_unless_deinterlaced(clip, tmp_path):
    src = clip("i.mp4", interlaced=True)
    info = probe(src)
    assert info.video.field_order == "tt"
    roundtrip(src, tmp_path / "keep.mp4")
    assert probe(tmp_path / "keep.mp4").video.field_order == "tt"
    plan = plan_output(info, tmp_path / "prog.mp4", deinterlace=True)
    assert not plan.interlaced and plan.field_order == "progressive"


def test_section_copies_only_its_packets(clip, tmp_path):
    src = clip("long.mp4", frames=48, rate=24, audio=[("aac", "eng")], options={"g": "12"})
    out = tmp_path / "cut.mp4"
    roundtrip(src, out, start=0.5, duration=0.75)
    pts = read_video_pts(out)
    tb = probe(src).video.time_base
    assert [p for p in read_video_pts(src) if Fraction(1, 2) <= p * tb < Fraction(5, 4)] == pts
    want = [p for p in read_packets(src, "audio")[0] if 0.5 <= p[0] / 48000 < 1.25]
    got = read_packets(out, "audio")[0]
    assert got == want and len(got) > 10


def test_odd_size_uses_444_and_keeps_size(clip, tmp_path):
    src = clip("odd.mkv", size=(65, 49), pix_fmt="yuv420p", codec="ffv1", frames=4)
    plan = roundtrip(src, tmp_path / "o.mp4")
    assert plan.pix_fmt == "yuv444p" and any("odd size" in n for n in plan.notes)
    b = probe(tmp_path / "o.mp4").video
    assert (b.width, b.height) == (65, 49)


def test_plan_errors_before_any_work(clip, tmp_path):
    info = probe(clip("c.mp4", frames=2))
    with pytest.raises(EncodingError, match="webm"):
        plan_output(info, tmp_path / "o.webm", codec="prores")
    with pytest.raises(EncodingError, match="h264"):
        plan_output(info, tmp_path / "o.webm")
    with pytest.raises(EncodingError, match="extension"):
        plan_output(info, tmp_path / "o.xyz")
    with pytest.raises(EncodingError, match="codec"):
        plan_output(info, tmp_path / "o.mkv", codec="nonsense")
    assert list(tmp_path.glob("o.*")) == []


def test_plan_formats(clip):
    p10 = plan_output(probe(clip("a.mkv", pix_fmt="gray10le", codec="ffv1", frames=2)), Path("x.mkv"))
    assert (p10.pix_fmt, p10.bit_depth, p10.codec) == ("yuv420p10le", 10, "libx264")
    assert any("grey" in n for n in p10.notes)
    p422 = plan_output(
        probe(clip("b.mkv", pix_fmt="yuv422p", codec="ffv1", frames=2)), Path("x.mov"), codec="prores"
    )
    assert (p422.codec, p422.pix_fmt) == ("prores_ks", "yuv422p10le") and any(
        "8 to 10" in n for n in p422.notes
    )
    low = plan_output(
        probe(clip("c.mkv", pix_fmt="yuv420p10le", codec="ffv1", frames=2)), Path("x.mp4"), ten_bit=False
    )
    assert low.pix_fmt == "yuv420p" and any("reduced" in n for n in low.notes)
    lossless = plan_output(probe(clip("d.mp4", frames=2)), Path("x.mkv"), codec="lossless")
    assert lossless.codec == "ffv1" and lossless.lossless


def test_writer_rejects_out_of_order_frames(clip, tmp_path):
    src = clip("c.mp4", frames=3)
    info = probe(src)
    plan = plan_output(info, tmp_path / "o.mp4")
    y = np.zeros((plan.height, plan.width), np.uint8)
    with pytest.raises(EncodingError, match="order"):
        with VideoWriter(tmp_path / "o.mp4", info, plan) as w:
            w.write(1, 0, neutral_planes(plan, y))


@pytest.mark.integration
@pytest.mark.parametrize(
    "name,ext",
    [
        ("mkv_subs_2audio.mkv", ".mkv"),
        ("bframes_aac.mp4", ".mp4"),
        ("start_pts_10s.mkv", ".mkv"),
        ("av_offset_video_1.5s.mp4", ".mp4"),
        ("rotate90_phone.mp4", ".mp4"),
        ("mov_timecode.mov", ".mov"),
        ("mpegts_aac_mp2_dvbsub.ts", ".ts"),
    ],
)
def test_edge_roundtrip(edge, tmp_path, name, ext):
    src = edge(name)
    out = tmp_path / ("out" + ext)
    plan = roundtrip(src, out)
    assert read_video_pts(out) == read_video_pts(src)
    assert read_packets(out, "audio") == read_packets(src, "audio")
    a, b = probe(src), probe(out)
    assert [(s.kind, s.codec, s.language) for s in b.others if s.kind != "data"] == [
        (s.kind, s.codec, s.language) for s in a.others if s.index in plan.copied
    ]
    assert b.video.rotation == a.video.rotation and b.video.start_time == pytest.approx(a.video.start_time)
    if name == "mov_timecode.mov":
        with av.open(str(out)) as c:
            assert c.streams.video[0].metadata.get("timecode") == "01:00:00:00"


def _x264_settings(path: Path) -> str:
    """The option string x264 writes into its stream (an SEI message): 'cabac=1 ref=3 ...'."""
    data = path.read_bytes()
    at = data.index(b"options: ")
    return data[at + 9 : data.index(b"\0", at)].decode()


def test_preset_reaches_the_encoder(clip, tmp_path):
    src = clip("src.mp4", frames=6)
    default = roundtrip(src, tmp_path / "default.mp4")
    fast = roundtrip(src, tmp_path / "fast.mp4", preset="UltraFast")
    assert default.options["preset"] == "medium" and fast.options["preset"] == "ultrafast"
    # ultrafast turns off CABAC and sub-pixel refinement; medium uses both
    assert "cabac=1" in _x264_settings(tmp_path / "default.mp4") and "subme=7" in _x264_settings(
        tmp_path / "default.mp4"
    )
    assert "cabac=0" in _x264_settings(tmp_path / "fast.mp4") and "subme=0" in _x264_settings(
        tmp_path / "fast.mp4"
    )
    assert (
        roundtrip(src, tmp_path / "o.mkv", codec="libx265", preset="veryfast").options["preset"] == "veryfast"
    )


def test_preset_checked_against_the_encoder(clip, tmp_path):
    info = probe(clip("src.mp4", frames=2))
    with pytest.raises(EncodingError, match=r"--preset of libx264 among ultrafast, .*veryslow, found 'p5'"):
        plan_output(info, tmp_path / "o.mp4", preset="p5")
    with pytest.raises(EncodingError, match="--preset of libx265"):
        plan_output(info, tmp_path / "o.mkv", codec="hevc", preset="fastest")
    plan = plan_output(info, tmp_path / "o.mkv", codec="ffv1", preset="fast")
    assert "preset ignored: ffv1 has none" in plan.notes and "preset" not in plan.options
