"""decode_frames(): frames and pts exactly as a plain PyAV decode gives them, luma as decoded, and
damage found where it is."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clips import luma_pattern, read_video_luma, read_video_pts

from vidcolor.errors import CorruptInputError
from vidcolor.media.decode import DecodeStats, decode_frames
from vidcolor.media.luma import luma_of
from vidcolor.media.probe import probe


def _decode(path, **kw):
    stats = DecodeStats()
    frames = list(decode_frames(path, probe(path), stats=stats, **kw))
    return frames, stats


@pytest.mark.parametrize(
    "opts",
    [
        dict(),  # CFR
        dict(vfr=True, name="v.mkv"),
        dict(bframes=3, frames=30),
        dict(start_pts=24 * 10 * 3, name="s.mkv"),
        dict(start_pts=2400, bframes=2),
    ],
)
def test_pts_and_count_match_plain_pyav(clip, opts):
    path = clip(opts.pop("name", "c.mp4"), **opts)
    frames, stats = _decode(path)
    ref = read_video_pts(path)
    assert [f.pts for f in frames] == ref
    assert [f.index for f in frames] == list(range(len(ref)))
    assert stats.frames == len(ref) and stats.rebuilt_pts == 0 and stats.first_corrupt_index is None
    tb = probe(path).video.time_base
    assert all(f.time_base == tb for f in frames)
    for got, want in zip(frames, read_video_luma(path), strict=True):
        assert np.array_equal(got.y, want)


@pytest.mark.parametrize(
    "pix_fmt,codec,size,dtype",
    [
        ("gray", "ffv1", (64, 48), np.uint8),
        ("gray10le", "ffv1", (64, 48), np.uint16),
        ("yuv420p10le", "ffv1", (64, 48), np.uint16),
        ("yuv422p", "ffv1", (64, 48), np.uint8),
        ("yuv444p", "ffv1", (65, 49), np.uint8),  # odd size: line padding must be stripped
        ("gray10le", "ffv1", (33, 17), np.uint16),
        ("yuv420p10le", "libx264", (64, 48), np.uint16),
    ],
)
def test_luma_exact_for_lossless_formats(clip, pix_fmt, codec, size, dtype):
    path = clip("f.mkv", frames=5, size=size, pix_fmt=pix_fmt, codec=codec)
    frames, _ = _decode(path)
    bits = av.VideoFormat(pix_fmt).components[0].bits
    assert len(frames) == 5
    for f in frames:
        assert f.y.dtype == dtype and f.y.shape == (size[1], size[0]) and f.y.flags.c_contiguous
        if codec == "ffv1":
            assert np.array_equal(f.y, luma_pattern(f.index, size[0], size[1], bits))
        else:
            assert f.y.max() < 1024  # native 10-bit range, not shifted to 16 bits


def test_nv12_and_packed_and_rgb_luma():
    y = luma_pattern(3, 16, 8)
    nv12 = av.VideoFrame.from_ndarray(np.concatenate([y, np.full((4, 16), 128, np.uint8)]), format="nv12")
    assert np.array_equal(luma_of(nv12), y)
    yuyv = np.zeros((8, 32), np.uint8)
    yuyv[:, 0::2] = y
    yuyv[:, 1::2] = 128
    assert np.array_equal(luma_of(av.VideoFrame.from_ndarray(yuyv.reshape(8, 16, 2), format="yuyv422")), y)
    rgb = np.zeros((8, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    got = luma_of(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    assert got.dtype == np.uint8 and np.all(got == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50))


def test_section_start_duration(clip):
    path = clip("s.mp4", frames=48, rate=24, bframes=2, options={"g": "12"})
    ref = read_video_pts(path)
    tb = probe(path).video.time_base
    frames, _ = _decode(path, start=0.5, duration=0.75)
    want = [p for p in ref if Fraction(1, 2) <= p * tb < Fraction(5, 4)]
    assert [f.pts for f in frames] == want and len(want) == 18
    assert [f.index for f in frames] == list(range(18))
    tail, _ = _decode(path, start=1.5)
    assert [f.pts for f in tail] == [p for p in ref if p * tb >= Fraction(3, 2)]


def test_section_relative_to_stream_start(clip):
    path = clip("o.mkv", frames=24, rate=24, start_pts=2400)  # starts at 10 s
    frames, _ = _decode(path, start=0.5, duration=0.25)
    assert [float(f.pts * f.time_base) for f in frames] == pytest.approx(
        [10.5, 10.5 + 1 / 24, 10.5 + 2 / 24, 10.5 + 3 / 24, 10.5 + 4 / 24, 10.5 + 5 / 24], abs=2e-3
    )


def test_missing_pts_are_rebuilt_and_counted(clip):
    path = clip("raw.h264", frames=6, rate=25)  # an elementary stream carries no timestamps
    frames, stats = _decode(path)
    assert stats.rebuilt_pts == 6
    steps = {b.pts - a.pts for a, b in zip(frames, frames[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() * frames[0].time_base == Fraction(1, 25)


def test_deinterlace_keeps_count_and_pts(clip):
    path = clip("i.mp4", frames=10, interlaced=True, size=(64, 48))
    frames, _ = _decode(path, deinterlace=True)
    assert [f.pts for f in frames] == read_video_pts(path)
    assert all(f.y.shape == (48, 64) for f in frames)


def _flip_bytes_in_frame(path, out, index: int, where: float) -> None:
    with av.open(str(path)) as c:
        pkts = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    pos, size = pkts[index]
    assert pos is not None  # the file's position of a demuxed packet
    at = pos + int(size * where)
    for k in range(at, at + 16):
        data[k] ^= 0xFF
    out.write_bytes(bytes(data))


@pytest.mark.parametrize("where", [1 / 3, 1 / 2])  # one makes the decoder raise, one flags the frame
def test_corrupt_frame_detected_at_its_index(clip, tmp_path, where):
    src = clip("c.mp4", frames=30, size=(160, 120), options={"preset": "medium"})
    bad = tmp_path / "bad.mp4"
    _flip_bytes_in_frame(src, bad, 20, where)
    got = []
    with pytest.raises(CorruptInputError) as exc:
        for f in decode_frames(bad, probe(bad)):
            got.append(f.index)
    assert exc.value.frame_index == 20 and got == list(range(20))
    assert "frame 20" in str(exc.value) and "--skip-corrupt" in str(exc.value)
    frames, stats = _decode(bad, skip_corrupt=True)
    assert stats.first_corrupt_index == 20
    assert len(frames) + stats.corrupt_skipped == 30
    assert [f.index for f in frames] == list(range(len(frames)))


def test_truncated_file_fails_where_data_ends(clip, tmp_path):
    src = clip("t.mp4", frames=30, size=(160, 120), container_options={"movflags": "faststart"})
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.6)])
    got = []
    with pytest.raises(CorruptInputError) as exc:
        for f in decode_frames(bad, probe(bad)):
            got.append(f.pts)
    assert exc.value.frame_index == len(got) and 0 < len(got) < 30
    frames, stats = _decode(bad, skip_corrupt=True)
    assert [f.pts for f in frames] == got and stats.first_corrupt_index == len(got)


@pytest.mark.integration
def test_edge_corrupt_flipped_bytes(edge):
    path = edge("corrupt_flipped_bytes.mp4")
    with pytest.raises(CorruptInputError) as exc:
        _decode(path)
    assert exc.value.frame_index == 30
    frames, stats = _decode(path, skip_corrupt=True)
    assert len(frames) == 50 and [f.index for f in frames if f.corrupt] == [30]
    assert stats.first_corrupt_index == 30 and stats.corrupt_kept == 1


@pytest.mark.integration
def test_edge_truncated(edge):
    path = edge("truncated_60pct_faststart.mp4")
    with pytest.raises(CorruptInputError) as exc:
        _decode(path)
    assert exc.value.frame_index == 25 and "truncated at frame 25" in str(exc.value)
    frames, stats = _decode(path, skip_corrupt=True)
    assert len(frames) == 25 and stats.first_corrupt_index == 25
    # The data ends inside frame 25's packet (a short read); the index lists 50 frames.
    assert stats.truncated and stats.corrupt_skipped == 1 and stats.unread == 24


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [
        "vfr_irregular.mp4",
        "bframes_aac.mp4",
        "start_pts_10s.mkv",
        "mpegts_aac_mp2_dvbsub.ts",
        "hevc_main10.mp4",
        "ffv1_gray10.mkv",
        "odd_321x241_vp9.webm",
        "pal_43_sar16x15.mpg",
        "still_gray16.png",
    ],
)
def test_edge_pts_match_plain_pyav(edge, name):
    path = edge(name)
    frames, stats = _decode(path)
    assert [f.pts for f in frames] == read_video_pts(path) and stats.first_corrupt_index is None


def test_video_that_is_not_the_first_stream(tmp_path: Path) -> None:
    """Regression: the file-wide stream index was used as a position among the video streams."""
    path = tmp_path / "audio_first.mkv"
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        v = c.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        samples = np.zeros((1, 1024), np.float32)
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32), 20 * i, np.uint8), format="gray")
            for p in v.encode(frame):
                c.mux(p)
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, i * 1024
            for p in a.encode(af):
                c.mux(p)
        for s in (v, a):
            for p in s.encode():
                c.mux(p)
    info = probe(path)
    assert info.video.index == 1
    assert len(list(decode_frames(path, info))) == 5
