"""End to end through colorize_video: what must hold for every film, checked on the output file
with PyAV (not through vidcolor's own readers, so a shared bug cannot hide itself).

Frames and their times, audio and subtitle packets, the luma, rotation/SAR/colour tags/metadata,
the pixel formats a grey film comes in, sections, atomic output. The model is the tiny untrained
one of conftest.py: its colours are random, which is all these properties need.

(Over 400 lines: one test per property of the output, each short; they share the clip fixtures and
the PyAV readers at the top, which splitting the file would repeat.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clips import pts_of, read_packets, read_video_luma, time_base_of

import vidcolor.pipeline.chain as chain_module
import vidcolor.pipeline.run as run_module
from vidcolor.errors import CorruptInputError, EncodingError, InputError, UsageError
from vidcolor.pipeline.run import Summary, colorize_video
from vidcolor.stages.model_step import ModelStep


def colorize(src: Path, dst: Path, model, **kw) -> Summary:
    return colorize_video(src, dst, colorizer=model, **kw)


def video_times(path: Path) -> tuple[list[int], Fraction]:
    """pts of every decoded frame of the first video stream, and its time base."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [pts_of(f) for f in c.decode(s)], time_base_of(s)


def assert_same_times(src: Path, out: Path, lo: int = 0, hi: int | None = None) -> None:
    """The output has exactly the frames src[lo:hi] at the same instants: the same pts where the
    time base is the same, else (Matroska counts in ms) the same time to within half a tick."""
    sp, stb = video_times(src)
    op, otb = video_times(out)
    sp = sp[lo:hi]
    assert len(op) == len(sp), f"{len(op)} frames out, {len(sp)} in"
    if stb == otb:
        assert op == sp
    else:
        assert all(abs(a * stb - b * otb) <= otb / 2 for a, b in zip(sp, op, strict=True)), (sp, op, stb, otb)


def only_source_left(folder: Path, *keep: Path) -> None:
    """Nothing but ``keep`` in ``folder``: no output and no temporary file beside it."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in keep)


# -- 1. frames and pts -------------------------------------------------------------------------------


SOURCES = {
    "cfr": ("cfr.mp4", dict(frames=24)),
    "vfr": ("vfr.mkv", dict(frames=24, vfr=True)),
    "bframes": ("bf.mp4", dict(frames=30, bframes=3)),
    "late_start": ("late.mp4", dict(frames=24, start_pts=2400, bframes=2)),
    # Regression: MP4 wrote the start of a film that does not start on a whole millisecond in ms
    # (the movie time scale of its edit list): every frame came back up to 1 ms early.
    "odd_start": ("odd.mp4", dict(frames=24, start_pts=1, bframes=2)),
}


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
@pytest.mark.parametrize("kind", list(SOURCES))
def test_frame_count_and_pts_kept(clip, tmp_path, tiny_model, kind, ext):
    name, opts = SOURCES[kind]
    src = clip(name, **opts)
    dst = tmp_path / f"out{ext}"
    summary = colorize(src, dst, tiny_model)
    assert_same_times(src, dst)
    assert summary.frames == opts["frames"]
    assert summary.verify is not None and summary.verify.frames == opts["frames"]
    assert "pts identical" in summary.line()


# -- 2. audio and subtitles --------------------------------------------------------------------------


def container_shift(src: Path, out: Path) -> Fraction:
    """How far the output container moved every stream (first video frame out minus in): 0, except
    where it cannot store negative times (Matroska, with audio priming packets before 0)."""
    (sp, stb), (op, otb) = video_times(src), video_times(out)
    return op[0] * otb - sp[0] * stb


def assert_same_packets(src: Path, out: Path, kind: str, shift: Fraction = Fraction(0)) -> None:
    """Every ``kind`` stream of src is in out, in order, with byte-identical packets at the same
    times: the same numbers where the time base is the same and nothing was shifted, else the
    same instant (moved by ``shift``) to within a tick of the output's time base."""
    with av.open(str(src)) as a, av.open(str(out)) as b:
        stbs = [time_base_of(s) for s in a.streams if s.type == kind]
        otbs = [time_base_of(s) for s in b.streams if s.type == kind]
    sp, op = read_packets(src, kind), read_packets(out, kind)
    assert len(op) == len(sp) and sp, f"{len(op)} {kind} streams out, {len(sp)} in"
    for s_pk, o_pk, stb, otb in zip(sp, op, stbs, otbs, strict=True):
        assert [p[3] for p in o_pk] == [p[3] for p in s_pk], "packet bytes differ"
        if stb == otb and shift == 0:
            assert [p[:2] for p in o_pk] == [p[:2] for p in s_pk]
        else:
            for (pa, *_), (pb, *_) in zip(s_pk, o_pk, strict=True):
                assert pa is not None and pb is not None  # the times compared below
                assert abs(pa * stb + shift - pb * otb) <= otb, (pa, stb, pb, otb, shift)


@pytest.mark.parametrize(
    "name,audio,ext",
    [
        ("one.mp4", [("aac", "eng")], ".mp4"),
        ("two.mp4", [("aac", "eng"), ("libmp3lame", "fra")], ".mp4"),
        ("two.mkv", [("aac", "eng"), ("libopus", "spa")], ".mkv"),
        ("two.mkv", [("aac", "eng"), ("libopus", "spa")], ".mp4"),
        ("mp4_to_mkv.mp4", [("aac", "eng"), ("libmp3lame", None)], ".mkv"),  # 1/48000 -> 1/1000
    ],
)
def test_audio_packets_copied(clip, tmp_path, tiny_model, name, audio, ext):
    src = clip(name, frames=24, audio=audio)
    dst = tmp_path / f"out{ext}"
    summary = colorize(src, dst, tiny_model)
    assert summary.warnings == []
    shift = container_shift(src, dst)
    assert summary.verify is not None and abs(summary.verify.shift_s - shift) <= Fraction(1, 1000)
    if shift:  # MP4 starts AAC/MP3 with priming packets before 0; Matroska moves all streams alike
        assert ext == ".mkv" and name.endswith(".mp4") and "shifted by +" in summary.line()
    assert_same_packets(src, dst, "audio", shift)
    with av.open(str(dst)) as c:
        langs = [s.metadata.get("language") for s in c.streams.audio]
    assert langs == [lang for _, lang in audio]
    if not shift:
        assert_same_times(src, dst)


SUBS = [("subrip", "eng"), ("subrip", "ger")]


def test_subtitles_copied_into_mkv(clip, tmp_path, tiny_model):
    src = clip("subs.mkv", frames=24, audio=[("aac", "eng")], subtitles=SUBS)
    dst = tmp_path / "out.mkv"
    summary = colorize(src, dst, tiny_model)
    assert summary.warnings == []
    assert_same_packets(src, dst, "subtitle")
    assert_same_packets(src, dst, "audio")


def test_subtitles_left_out_of_mp4_with_a_warning_each(clip, tmp_path, tiny_model):
    src = clip("subs.mkv", frames=12, audio=[("aac", "eng")], subtitles=SUBS)
    dst = tmp_path / "out.mp4"
    summary = colorize(src, dst, tiny_model)
    assert len(summary.warnings) == 2
    for index, lang, warning in zip((2, 3), ("eng", "ger"), summary.warnings, strict=True):
        assert f"stream {index}" in warning and "subrip" in warning and lang in warning
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    assert_same_packets(src, dst, "audio")


# -- 3. luma ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pix_fmt,ext,kw",
    [
        ("yuv420p", ".mkv", dict(lossless=True)),  # ffv1
        ("yuv420p", ".mp4", dict(lossless=True)),  # x264 at qp 0
        ("gray", ".mkv", dict(codec="ffv1")),
        ("yuv420p10le", ".mkv", dict(codec="ffv1")),
        ("gray10le", ".mkv", dict(lossless=True)),
        ("yuv422p10le", ".mp4", dict(lossless=True)),
    ],
)
def test_lossless_keeps_luma_bit_for_bit(clip, tmp_path, tiny_model, pix_fmt, ext, kw):
    src = clip(f"src_{pix_fmt}.mkv", frames=12, pix_fmt=pix_fmt, codec="ffv1")
    dst = tmp_path / f"out{ext}"
    summary = colorize(src, dst, tiny_model, **kw)
    y_in, y_out = read_video_luma(src), read_video_luma(dst)
    assert len(y_out) == len(y_in) == 12
    for a, b in zip(y_in, y_out, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert summary.verify is not None and summary.verify.y_identical
    assert "Y PSNR lossless" in summary.line()


def test_default_codec_reports_luma_psnr(clip, tmp_path, tiny_model):
    src = clip("src.mp4", frames=12)
    summary = colorize(src, tmp_path / "out.mp4", tiny_model)
    assert summary.verify is not None and 30.0 < summary.verify.y_psnr < float("inf")
    assert f"Y PSNR {summary.verify.y_psnr:.2f} dB" in summary.line()


# -- 4. rotation, SAR, colour tags, metadata ------------------------------------------------------------


TAGS = {
    # rotation, SAR, AVColorRange, (AVColorPrimaries, AVColorTransferCharacteristic, AVColorSpace)
    "phone": (90, Fraction(4, 3), 2, (1, 1, 1)),  # full range BT.709
    "pal": (-90, Fraction(16, 15), 1, (5, 6, 5)),  # limited range BT.470BG / SMPTE 170M
}


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
@pytest.mark.parametrize("tags", list(TAGS))
def test_rotation_sar_colour_tags_and_metadata_carried(clip, tmp_path, tiny_model, ext, tags):
    rotation, sar, color_range, color_tags = TAGS[tags]
    src = clip(
        "tagged" + ext,
        frames=12,
        rotation=rotation,
        sar=sar,
        color_range=color_range,
        color_tags=color_tags,
        metadata={"title": "Reel 3", "comment": "scanned 2024"},
        stream_metadata={"language": "fra"},
    )
    dst = tmp_path / f"out{ext}"
    colorize(src, dst, tiny_model)
    with av.open(str(dst)) as c:
        s = c.streams.video[0]
        meta = {k.lower(): v for k, v in c.metadata.items()}  # Matroska writes tag names in capitals
        assert meta.get("title") == "Reel 3"
        assert meta.get("comment") == "scanned 2024"
        assert s.metadata.get("language") == "fra"
        assert s.sample_aspect_ratio == sar
        cc = s.codec_context
        colour = (int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace))
        assert int(cc.color_range) == color_range and colour == color_tags
        first = next(c.decode(s))
        assert first.rotation == rotation
        assert (first.width, first.height) == (64, 48)  # stored as the source; the tag turns it


# -- 5. the pixel formats of grey film, odd sizes; the output is colour ---------------------------------


def chroma_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The U and V planes of a planar YUV frame (line padding stripped)."""
    dtype = np.uint8 if frame.format.components[0].bits <= 8 else np.dtype("<u2")
    out = []
    for p in frame.planes[1:]:
        rows = np.frombuffer(memoryview(p), dtype).reshape(-1, p.line_size // np.dtype(dtype).itemsize)
        out.append(rows[: p.height, : p.width])
    return out


@pytest.mark.parametrize(
    "pix_fmt,size,codec,ext",
    [
        ("gray", (64, 48), "libx264", ".mp4"),
        ("gray10le", (64, 48), "libx264", ".mp4"),
        ("yuv420p", (64, 48), "libx264", ".mp4"),
        ("yuv422p", (64, 48), "libx264", ".mp4"),
        ("yuv444p", (64, 48), "libx264", ".mp4"),
        ("yuv420p10le", (64, 48), "libx264", ".mp4"),
        ("yuv444p10le", (64, 48), "libx264", ".mp4"),
        ("yuv420p", (65, 49), "ffv1", ".mkv"),  # odd sizes: x264 4:2:0 cannot take them
        ("gray10le", (67, 45), "ffv1", ".mkv"),
    ],
)
def test_grey_formats_and_odd_sizes_come_out_as_colour(clip, tmp_path, tiny_model, pix_fmt, size, codec, ext):
    src = clip("src" + ext, frames=12, pix_fmt=pix_fmt, size=size, codec=codec)
    bits = av.VideoFormat(pix_fmt).components[0].bits
    dst = tmp_path / "out.mp4"
    summary = colorize(src, dst, tiny_model)
    assert summary.frames == 12
    with av.open(str(dst)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 12
    fmt = frames[0].format
    assert fmt.name.startswith(("yuv420p", "yuv422p", "yuv444p")), fmt.name
    assert fmt.components[0].bits == bits
    assert (frames[0].width, frames[0].height) == size
    # A random model gives random colour: the chroma planes are not a constant (neutral) grey.
    u, v = chroma_planes(frames[len(frames) // 2])
    assert u.std() > 0.5 and v.std() > 0.5
    mid = 1 << (bits - 1)
    assert np.abs(u.astype(np.int64) - mid).max() > 0 and np.abs(v.astype(np.int64) - mid).max() > 0


# -- 6. sections and bad input through the API -----------------------------------------------------------


def test_section_frames_pts_and_audio(clip, tmp_path, tiny_model):
    src = clip("long.mp4", frames=30, audio=[("aac", "eng")])  # 24 frames/s, tb 1/240
    dst = tmp_path / "out.mp4"
    summary = colorize(src, dst, tiny_model, start=0.25, duration=0.5)
    # Frames with pts in [0.25 s, 0.75 s): 6 .. 17.
    assert summary.frames == 12
    assert_same_times(src, dst, 6, 18)
    with av.open(str(src)) as c:
        atb = c.streams.audio[0].time_base
    src_audio = read_packets(src, "audio")[0]
    want = [p for p in src_audio if Fraction(1, 4) <= p[0] * atb < Fraction(3, 4)]
    got = read_packets(dst, "audio")[0]
    assert want and [p[3] for p in got] == [p[3] for p in want]
    assert [p[0] for p in got] == [p[0] for p in want]
    assert len(got) < len(src_audio)


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_section_that_starts_between_milliseconds(clip, tmp_path, tiny_model, ext):
    src = clip("bf.mp4", frames=30, bframes=3)  # 24 frames/s: frame 8 is at 1/3 s
    dst = tmp_path / f"out{ext}"
    summary = colorize(src, dst, tiny_model, start=1 / 3, duration=0.5)
    assert summary.frames == 12
    assert_same_times(src, dst, 8, 20)
    assert summary.verify is not None and summary.verify.shift_s == 0


def test_section_past_the_end_is_a_usage_error(clip, tmp_path, tiny_model):
    # Regression: this failed in the check of the (empty) temporary file, naming that file.
    src = clip("src.mp4", frames=12)
    with pytest.raises(UsageError, match="section that holds frames") as err:
        colorize(src, tmp_path / "out.mp4", tiny_model, start=5.0)
    assert "partial" not in str(err.value)
    only_source_left(tmp_path, src)


def test_existing_output_refused_without_overwrite(clip, tmp_path, tiny_model):
    src = clip("src.mp4", frames=12)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="--overwrite"):
        colorize(src, dst, tiny_model)
    assert dst.read_bytes() == b"keep me"
    only_source_left(tmp_path, src, dst)
    colorize(src, dst, tiny_model, overwrite=True)
    assert len(video_times(dst)[0]) == 12


def truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_truncated_film_stops_at_a_frame_or_carries_on_with_a_warning(clip, tmp_path, tiny_model):
    # Regression: a Matroska file cut short used to come out shorter without a word (its demuxer
    # stops quietly where the data ends; the track's DURATION tag still says the full length).
    full = clip("full.mkv", frames=24, codec="ffv1")
    src = truncated(full, tmp_path / "cut.mkv", 0.6)
    full.unlink()
    dst = tmp_path / "out.mkv"
    with pytest.raises(CorruptInputError) as err:
        colorize(src, dst, tiny_model)
    n = err.value.frame_index
    assert 0 < n < 24
    assert f"at frame {n}" in str(err.value) and "--skip-corrupt" in str(err.value)
    only_source_left(tmp_path, src)
    summary = colorize(src, dst, tiny_model, skip_corrupt=True)
    assert summary.frames == n == len(video_times(dst)[0])
    assert any("truncated" in w and f"after {n} frames" in w for w in summary.warnings), summary.warnings


def corrupted_mid_way(src: Path, dst: Path, frames: tuple[int, ...]) -> Path:
    """src with the payload of the video packets of ``frames`` (decode order) overwritten with
    garbage, their first 16 bytes (headers) kept."""
    data = bytearray(src.read_bytes())
    with av.open(str(src)) as c:
        where = [(p.pos, p.size) for p in c.demux(video=0) if p.size and p.pos is not None]
    for k in frames:
        pos, size = where[k]
        data[pos + 16 : pos + size] = bytes((i * 37 + 11) % 256 for i in range(size - 16))
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize(
    "codec,ext,skipped,kept",
    [
        ("ffv1", ".mkv", 2, 0),  # FFV1 rejects a damaged frame: it is lost, and counted
        ("libx264", ".mp4", 0, 2),  # H.264 conceals the damage: the frames are kept, and counted
    ],
)
def test_damaged_frames_stop_the_run_or_are_counted(clip, tmp_path, tiny_model, codec, ext, skipped, kept):
    full = clip("full" + ext, frames=24, codec=codec)
    src = corrupted_mid_way(full, tmp_path / ("bad" + ext), (10, 11))
    full.unlink()
    dst = tmp_path / ("out" + ext)
    with pytest.raises(CorruptInputError, match="at frame 10 ") as err:
        colorize(src, dst, tiny_model)
    assert err.value.frame_index == 10
    only_source_left(tmp_path, src)
    summary = colorize(src, dst, tiny_model, skip_corrupt=True)
    assert (summary.corrupt_skipped, summary.corrupt_kept) == (skipped, kept)
    assert summary.frames == 24 - skipped == len(video_times(dst)[0])
    assert ("2 corrupt frames skipped" if skipped else "2 damaged frames kept") in summary.line()


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda d: d / "missing.mp4", InputError),
        (lambda d: (d / "notes.mp4").write_text("not a film") and d / "notes.mp4", InputError),
    ],
)
def test_bad_input_raises_and_writes_nothing(tmp_path, tiny_model, make, error):
    src = make(tmp_path)
    dst = tmp_path / "out.mp4"
    with pytest.raises(error):
        colorize(src, dst, tiny_model)
    assert not dst.exists()


def test_output_equal_to_input_refused(clip, tmp_path, tiny_model):
    src = clip("src.mp4", frames=12)
    before = src.read_bytes()
    with pytest.raises(UsageError, match="different from the input"):
        colorize(src, src, tiny_model, overwrite=True)
    assert src.read_bytes() == before
    only_source_left(tmp_path, src)


def test_codec_the_container_cannot_hold(clip, tmp_path, tiny_model):
    src = clip("src.mp4", frames=12)
    with pytest.raises(EncodingError, match="webm"):
        colorize(src, tmp_path / "out.webm", tiny_model, codec="prores")
    only_source_left(tmp_path, src)


# -- 7. atomic output -------------------------------------------------------------------------------


def test_ctrl_c_mid_run_leaves_nothing(clip, tmp_path, tiny_model):
    src = clip("src.mp4", frames=24, audio=[("aac", "eng")])
    dst = tmp_path / "out.mp4"

    def interrupt(n: int) -> None:
        if n == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize(src, dst, tiny_model, on_frame=interrupt, batch_size=2)
    only_source_left(tmp_path, src)


@pytest.mark.parametrize("stage", ["make_batch", "model", "merge_frame"])
def test_failing_stage_thread_propagates_and_leaves_nothing(clip, tmp_path, tiny_model, monkeypatch, stage):
    """An error in the decode+batch, model or merge thread reaches the caller as itself."""
    src = clip("src.mp4", frames=24, audio=[("aac", "eng")])
    dst = tmp_path / "out.mp4"
    # make_batch runs in the decode+batch thread through the stage chain, merge_frame in the merge thread.
    owners = {
        "model": (ModelStep, "__call__"),
        "make_batch": (chain_module, stage),
        "merge_frame": (run_module, stage),
    }
    owner, name = owners[stage]
    real = getattr(owner, name)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError(f"{stage} broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    with pytest.raises(RuntimeError, match=f"{stage} broke"):
        colorize(src, dst, tiny_model, batch_size=2)
    only_source_left(tmp_path, src)


def test_a_still_is_not_a_film(tmp_path, tiny_model):
    import cv2

    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), np.full((48, 64), 128, np.uint8))
    with pytest.raises(UsageError, match="colorize_image"):
        colorize(src, tmp_path / "out.mp4", tiny_model)
    only_source_left(tmp_path, src)
