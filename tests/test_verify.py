"""The output check a run does while it writes (LiveCheck) agrees with decoding both finished files
(verify_output), catches what goes missing between the encoder and the file, and falls back to the
file check where the encoder's packets cannot be decoded."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import vidcolor.media.encode as encode_module
import vidcolor.pipeline.run as run_module
import vidcolor.pipeline.verify as verify_module
from vidcolor.errors import EncodingError, VidcolorError
from vidcolor.media.encode import plan_output
from vidcolor.media.probe import probe
from vidcolor.media.redecode import DecoderSetup, NoDecoder
from vidcolor.pipeline.run import Summary, colorize_video
from vidcolor.pipeline.verify import VerifyResult, verify_output


def colorize(src: Path, dst: Path, model, **kw) -> Summary:
    return colorize_video(src, dst, colorizer=model, **kw)


def file_check(src: Path, dst: Path, frames: int, **kw) -> VerifyResult:
    info = probe(src)
    plan = plan_output(info, dst, kw.get("codec", "libx264"), None, kw.get("lossless", False), None)
    return verify_output(src, dst, info, plan, start=None, duration=None, expected_frames=frames)


def refuse(*args, **kwargs):
    raise AssertionError("the finished files were decoded again")


def same(a: VerifyResult | None, b: VerifyResult) -> None:
    assert a is not None
    assert (a.frames, a.y_identical, a.shift_s) == (b.frames, b.y_identical, b.shift_s)
    assert a.y_psnr == b.y_psnr or math.isclose(a.y_psnr, b.y_psnr, rel_tol=1e-9)


@pytest.mark.parametrize(
    "make,out,kw",
    [
        (dict(frames=30, bframes=2), "out.mp4", {}),  # reordered frames: packets in decode order
        (dict(frames=20, pix_fmt="yuv420p10le", codec="ffv1"), "out.mkv", dict(codec="libx265")),
        (dict(frames=12, pix_fmt="yuv420p10le", codec="ffv1"), "out.mkv", dict(codec="ffv1")),
        (dict(frames=12, pix_fmt="gray"), "out.mkv", dict(lossless=True)),
        (dict(frames=8), "out.mov", dict(codec="prores")),
        (dict(frames=24, audio=[("aac", "eng")]), "out.mkv", {}),  # Matroska shifts every stream
        # 10 bits in, 8 out: the output's luma is compared at the source's depth
        (dict(frames=12, pix_fmt="yuv420p10le", codec="ffv1"), "out.mp4", dict(ten_bit=False)),
    ],
)
def test_live_check_agrees_with_decoding_both_files(clip, tmp_path, tiny_model, monkeypatch, make, out, kw):
    src = clip("src" + (".mkv" if make.get("codec") == "ffv1" else ".mp4"), **make)
    dst = tmp_path / out
    monkeypatch.setattr(run_module, "verify_output", refuse)  # the live check itself, no fallback
    summary = colorize(src, dst, tiny_model, **kw)
    info = probe(src)
    codec, lossless = kw.get("codec", "libx264"), kw.get("lossless", False)
    plan = plan_output(info, dst, codec, None, lossless, kw.get("ten_bit"))
    whole = verify_output(src, dst, info, plan, start=None, duration=None, expected_frames=summary.frames)
    same(summary.verify, whole)
    assert summary.verify is not None and summary.verify.frames == make["frames"]


def test_live_check_runs_instead_of_decoding_the_files_again(clip, tmp_path, tiny_model, monkeypatch):
    """Where the packets decode, the finished files are not decoded again."""
    monkeypatch.setattr(run_module, "verify_output", refuse)
    summary = colorize(clip("src.mp4", frames=16), tmp_path / "out.mp4", tiny_model)
    v = summary.verify
    assert v is not None and v.frames == 16 and 30 < v.y_psnr < math.inf


def test_a_changed_luma_is_seen(clip, tmp_path, tiny_model, monkeypatch):
    """Lossless output whose Y plane differs from the source in one frame: not identical, and the
    PSNR is that of the one changed sample (so the comparison is of the real planes)."""
    src = clip("src.mkv", frames=12, codec="ffv1")
    real = run_module.merge_frame
    calls = []

    def changed(y, *args, **kwargs):
        planes = real(y, *args, **kwargs)
        calls.append(1)
        if len(calls) == 5:
            planes = (planes[0].copy(), *planes[1:])
            planes[0][0, 0] ^= 0x10
        return planes

    monkeypatch.setattr(run_module, "merge_frame", changed)
    summary = colorize(src, tmp_path / "out.mkv", tiny_model, codec="ffv1")
    v = summary.verify
    assert v is not None and not v.y_identical
    pixels = 12 * 64 * 48
    assert math.isclose(v.y_psnr, 10 * math.log10(255**2 * pixels / 16**2), rel_tol=1e-9)
    same(v, file_check(src, tmp_path / "out.mkv", 12, codec="ffv1"))


def test_a_packet_lost_before_the_file_fails_the_run(clip, tmp_path, tiny_model, monkeypatch):
    """A frame the file lacks fails the run, whichever frame it is; nothing is left behind."""
    src = clip("src.mkv", frames=12, codec="ffv1")  # intra-only: the other frames still decode
    real = encode_module.VideoWriter._mux
    seen = []

    def losing(self, packets):
        kept = []
        for p in packets:
            seen.append(1)
            if len(seen) != 6:
                kept.append(p)
        real(self, kept)

    monkeypatch.setattr(encode_module.VideoWriter, "_mux", losing)
    with pytest.raises(EncodingError, match="missing"):
        colorize(src, tmp_path / "out.mkv", tiny_model, codec="ffv1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mkv"]


def test_a_frame_the_file_lacks_is_seen_on_the_file(clip, tmp_path, tiny_model, monkeypatch):
    """The packets decode fine, but the file holds a frame less: its packets are counted."""
    src = clip("src.mp4", frames=12)
    real = verify_module.video_packet_times

    def short(path):
        pts, tb = real(path)
        return pts[:-1], tb

    monkeypatch.setattr(verify_module, "video_packet_times", short)
    with pytest.raises(EncodingError, match="12 frames in the output, as in the source"):
        colorize(src, tmp_path / "out.mp4", tiny_model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mp4"]


def test_no_decoder_for_the_packets_falls_back_to_the_files(clip, tmp_path, tiny_model, monkeypatch):
    def none(*args, **kwargs):
        raise NoDecoder("no decoder for h264 (test)")

    monkeypatch.setattr(verify_module.PacketDecoder, "__init__", none)
    src = clip("src.mp4", frames=12)
    summary = colorize(src, tmp_path / "out.mp4", tiny_model)
    same(summary.verify, file_check(src, tmp_path / "out.mp4", 12))


def test_packets_without_times_fall_back_to_the_files(clip, tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(verify_module, "video_packet_times", lambda path: None)
    src = clip("src.mp4", frames=12)
    summary = colorize(src, tmp_path / "out.mp4", tiny_model)
    same(summary.verify, file_check(src, tmp_path / "out.mp4", 12))


def test_no_verify_starts_no_check(clip, tmp_path, tiny_model, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a check was made")

    monkeypatch.setattr(run_module, "LiveCheck", refuse)
    summary = colorize(clip("src.mp4", frames=8), tmp_path / "out.mp4", tiny_model, verify=False)
    assert summary.verify is None and summary.frames == 8


def test_the_queue_never_blocks_the_encoder_on_a_stopped_check(tmp_path):
    """A check whose thread stopped on an error drains what the encoder still sends."""
    check = verify_module.LiveCheck(8)
    y = np.zeros((4, 4), np.uint8)
    check.start(DecoderSetup("no-such-codec", None, Fraction(1, 25), 4, 4))
    for pts in range(3 * verify_module.LIVE_QUEUE):  # more than the queue holds
        check.expect(pts, y)
    check.close()
    assert check.unavailable is not None and "no-such-codec" in check.unavailable


def test_no_check_thread_outlives_its_run(clip, tmp_path, tiny_model, monkeypatch):
    """After a run that succeeded, one refused before it started and one that failed mid-way, no
    check thread is left waiting (batch mode runs thousands of films in one process)."""
    import threading

    src = clip("src.mp4", frames=12)
    colorize(src, tmp_path / "out.mp4", tiny_model)
    with pytest.raises(VidcolorError):
        colorize(src, tmp_path / "out.mp4", tiny_model)  # exists, no overwrite

    def broken(*args, **kwargs):
        raise RuntimeError("broke")

    monkeypatch.setattr(run_module, "merge_frame", broken)
    with pytest.raises(RuntimeError, match="broke"):
        colorize(src, tmp_path / "other.mp4", tiny_model)
    assert [t.name for t in threading.enumerate() if t.name == "vidcolor-verify"] == []
