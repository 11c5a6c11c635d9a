"""Segmented runs (pipeline/segments.py): cutting, warm-up across joins, the join, and resume
after a kill (a real SIGKILL of the CLI in the middle of a film)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import torch
from clips import read_packets, read_video_pts
from procs import default_sigint

from vidcolor.errors import UsageError
from vidcolor.media.probe import probe
from vidcolor.models import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline import cuts, segments
from vidcolor.pipeline.cuts import Segment, plan_segments
from vidcolor.pipeline.journal import DONE_FILE, segment_dir
from vidcolor.pipeline.run import colorize_video
from vidcolor.pipeline.segments import SegmentResult, colorize_film

REPO = Path(__file__).resolve().parents[1]
#: Small and fast: the tiny model sees 32-pixel pictures, one torch thread (so runs in different
#: processes compute the same numbers).
OPTS = ColorizeOptions(render_size=32, threads=1, batch_size=4)
#: The same, lossless: where two runs' frames are compared exactly (libx264's lossy output is not
#: reproducible from one run to the next inside the threaded pipeline).
EXACT = ColorizeOptions(render_size=32, threads=1, batch_size=4, lossless=True)


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16)).eval()


def planes(path: Path) -> list[np.ndarray]:
    """Every decoded frame as Y, U, V stacked at full size (yuv444p), for exact comparisons."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv444p") for f in c.decode(video=0)]


def test_plan_covers_every_frame_once(clip) -> None:
    src = clip("a.mp4", frames=120, rate=24, size=(64, 48))
    info = probe(src)
    segs = plan_segments(info, OPTS, 1.0)
    pts = read_video_pts(src)
    assert len(segs) == 5
    assert sum(s.frames for s in segs) == len(pts)
    assert segs[0].lo == pts[0] and segs[-1].hi is None
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.hi == b.lo  # contiguous, no overlap
        assert b.first is not None and b.lo is not None
        assert b.first < b.lo  # warm-up frames before every later segment
        assert sum(p < b.lo and p >= b.first for p in pts) == cuts.WARMUP_FRAMES
    # cuts land on the source's keyframes (GOP of 24 frames here), about a second apart
    assert [s.lo for s in segs] == [pts[i] for i in (0, 24, 48, 72, 96)]


def test_plan_never_leaves_a_sliver(clip) -> None:
    src = clip("a.mp4", frames=58, rate=24, size=(64, 48))  # 2.4 s at 1 s segments
    segs = plan_segments(probe(src), OPTS, 1.0)
    assert [s.frames for s in segs] == [24, 34]


def test_short_film_is_not_cut(clip, tiny, tmp_path: Path) -> None:
    src = clip("a.mp4", frames=30, rate=24, size=(64, 48))
    summary = colorize_film(src, tmp_path / "out.mp4", OPTS, segment_seconds=1.0, colorizer=tiny)
    assert summary.frames == 30
    assert not summary.notes or all("segment" not in n for n in summary.notes)
    assert not segment_dir(tmp_path / "out.mp4").exists()


def test_joins_are_invisible_lossless(clip, tiny, tmp_path: Path) -> None:
    """Warm-up frames make smoothing across a join what one long run gives: with a lossless
    codec the segmented film is bit for bit the unsegmented one, audio packets included."""
    src = clip("a.mkv", frames=96, rate=24, size=(64, 48), audio=[("aac", "eng")], bframes=2)
    opts = ColorizeOptions(render_size=32, threads=1, batch_size=4, lossless=True, smoothing=1.0)
    whole = colorize_video(src, tmp_path / "whole.mkv", opts, colorizer=tiny)
    cut = colorize_film(src, tmp_path / "cut.mkv", opts, segment_seconds=1.0, colorizer=tiny)
    assert cut.frames == whole.frames == 96
    assert cut.verify is not None and cut.verify.y_identical
    a, b = planes(tmp_path / "whole.mkv"), planes(tmp_path / "cut.mkv")
    assert len(a) == len(b) == 96
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert read_video_pts(tmp_path / "cut.mkv") == read_video_pts(tmp_path / "whole.mkv")
    assert read_packets(tmp_path / "cut.mkv", "audio") == read_packets(src, "audio")
    assert not segment_dir(tmp_path / "cut.mkv").exists()


def _panning_film(path: Path, frames: int, rate: int = 24, size: tuple[int, int] = (96, 64)) -> Path:
    """A lossless grey film of one smooth picture panned 2 px a frame: colour can be carried along it."""
    w, h = size
    rng = np.random.default_rng(7)
    pic = cv2.GaussianBlur(rng.random((h, w + 2 * frames)).astype(np.float32), (0, 0), 4)
    pic = (40 + 170 * (pic - pic.min()) / (pic.max() - pic.min())).astype(np.uint8)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "gray"
        vs.options = {"g": str(rate)}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(pic[:, 2 * i : 2 * i + w]), format="gray")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


def test_key_frames_fall_on_the_same_frames_in_segments(tiny, tmp_path: Path) -> None:
    """With --model-every the key frames are the film's own multiples of N whatever frame a
    segment starts decoding at, so a segmented film is bit for bit the unsegmented one."""
    src = _panning_film(tmp_path / "pan.mkv", frames=96)
    opts = dataclasses.replace(EXACT, smoothing=1.0, model_every=3)
    whole = colorize_video(src, tmp_path / "whole.mkv", opts, colorizer=tiny)
    ran = [n for n in whole.notes if n.startswith("the model ran on")]
    assert ran and int(ran[0].split()[4]) < 60, ran  # colour was carried to most frames
    plan = plan_segments(probe(src), opts, 1.0)
    assert len(plan) > 2 and any(s.first_index % 3 for s in plan[1:])  # segments start between keys
    cut = colorize_film(src, tmp_path / "cut.mkv", opts, segment_seconds=1.0, colorizer=tiny)
    assert cut.frames == whole.frames == 96
    a, b = planes(tmp_path / "whole.mkv"), planes(tmp_path / "cut.mkv")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_section_in_segments_matches_the_plain_section(clip, tiny, tmp_path: Path) -> None:
    src = clip("a.mkv", frames=120, rate=24, size=(64, 48), audio=[("aac", None)])
    opts = ColorizeOptions(render_size=32, threads=1, lossless=True, start=0.5, duration=3.25)
    whole = colorize_video(src, tmp_path / "whole.mkv", opts, colorizer=tiny)
    cut = colorize_film(src, tmp_path / "cut.mkv", opts, segment_seconds=1.0, colorizer=tiny)
    assert cut.frames == whole.frames == 78
    assert read_video_pts(tmp_path / "cut.mkv") == read_video_pts(tmp_path / "whole.mkv")
    assert all(
        np.array_equal(x, y)
        for x, y in zip(planes(tmp_path / "whole.mkv"), planes(tmp_path / "cut.mkv"), strict=True)
    )
    assert read_packets(tmp_path / "cut.mkv", "audio") == read_packets(tmp_path / "whole.mkv", "audio")


def test_join_keeps_rotation_sar_pts_and_audio(clip, tiny, tmp_path: Path) -> None:
    src = clip(
        "a.mp4",
        frames=72,
        rate=24,
        size=(64, 48),
        bframes=2,
        audio=[("aac", "eng")],
        rotation=-90,
        sar=Fraction(4, 3),
        stream_metadata={"title": "reel 1", "language": "fra"},
    )
    dst = tmp_path / "cut.mp4"
    summary = colorize_film(src, dst, OPTS, segment_seconds=1.0, colorizer=tiny)
    assert summary.frames == 72
    out = probe(dst)
    assert out.video.rotation == -90
    assert out.video.sar == Fraction(4, 3)
    assert (out.video.width, out.video.height) == (64, 48)
    assert read_video_pts(dst) == read_video_pts(src)
    assert read_packets(dst, "audio") == read_packets(src, "audio")
    with av.open(str(dst)) as c:
        tags = c.streams.video[0].metadata
        assert tags.get("language") == "fra"
        # one independent encode per segment: a keyframe at every cut
        keys = [p.pts for p in c.demux(video=0) if p.size and p.is_keyframe]
    assert len(keys) >= 3


def test_interrupted_run_resumes_only_the_rest(clip, tiny, tmp_path: Path, monkeypatch) -> None:
    src = clip("a.mp4", frames=96, rate=24, size=(64, 48), audio=[("aac", "eng")])
    colorize_film(src, tmp_path / "ref.mp4", EXACT, segment_seconds=1.0, colorizer=tiny)
    dst = tmp_path / "out.mp4"
    real = segments.encode_segment
    calls: list[int] = []

    def stop_at_third(src, seg, *a, **k):
        calls.append(seg.number)
        if seg.number == 2:
            raise KeyboardInterrupt
        return real(src, seg, *a, **k)

    monkeypatch.setattr(segments, "encode_segment", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        colorize_film(src, dst, EXACT, segment_seconds=1.0, colorizer=tiny)
    assert not dst.exists()
    folder = segment_dir(dst)
    assert len((folder / DONE_FILE).read_text().splitlines()) == 2

    # Without --resume the leftover run is not thrown away silently.
    with pytest.raises(UsageError, match="--resume"):
        colorize_film(src, dst, EXACT, segment_seconds=1.0, colorizer=tiny)

    calls.clear()

    def counting(src: str | os.PathLike[str], seg: Segment, *a: Any, **k: Any) -> SegmentResult:
        calls.append(seg.number)
        return real(src, seg, *a, **k)

    monkeypatch.setattr(segments, "encode_segment", counting)
    summary = colorize_film(src, dst, EXACT, segment_seconds=1.0, resume=True, colorizer=tiny)
    assert calls == [2, 3]
    assert any("2 of 4 segments were already done" in n for n in summary.notes)
    assert summary.frames == 96
    assert all(np.array_equal(x, y) for x, y in zip(planes(dst), planes(tmp_path / "ref.mp4"), strict=True))
    assert read_video_pts(dst) == read_video_pts(tmp_path / "ref.mp4")
    assert read_packets(dst, "audio") == read_packets(tmp_path / "ref.mp4", "audio")
    assert not folder.exists()


def test_damaged_journal_and_segments_are_redone(clip, tiny, tmp_path: Path, monkeypatch) -> None:
    src = clip("a.mp4", frames=72, rate=24, size=(64, 48))
    dst = tmp_path / "out.mp4"
    real = segments.encode_segment

    def stop_at_last(src, seg, *a, **k):
        if seg.number == 2:
            raise KeyboardInterrupt
        return real(src, seg, *a, **k)

    monkeypatch.setattr(segments, "encode_segment", stop_at_last)
    with pytest.raises(KeyboardInterrupt):
        colorize_film(src, dst, OPTS, segment_seconds=1.0, colorizer=tiny)
    folder = segment_dir(dst)
    # A torn journal line (a kill mid-write) and a segment file changed after it was recorded.
    with (folder / DONE_FILE).open("a") as fh:
        fh.write('{"number": 2, "file": "seg-0')
    seg1 = next(folder.glob("seg-00001.*"))
    seg1.write_bytes(seg1.read_bytes()[:-100])
    calls: list[int] = []

    def counting(src: str | os.PathLike[str], seg: Segment, *a: Any, **k: Any) -> SegmentResult:
        calls.append(seg.number)
        return real(src, seg, *a, **k)

    monkeypatch.setattr(segments, "encode_segment", counting)
    summary = colorize_film(src, dst, OPTS, segment_seconds=1.0, resume=True, colorizer=tiny)
    assert calls == [1, 2]
    assert summary.frames == 72 and summary.verify is not None


def test_other_options_start_afresh(clip, tiny, tmp_path: Path, monkeypatch) -> None:
    src = clip("a.mp4", frames=72, rate=24, size=(64, 48))
    dst = tmp_path / "out.mp4"
    real = segments.encode_segment

    def stop(src, seg, *a, **k):
        if seg.number == 1:
            raise KeyboardInterrupt
        return real(src, seg, *a, **k)

    monkeypatch.setattr(segments, "encode_segment", stop)
    with pytest.raises(KeyboardInterrupt):
        colorize_film(src, dst, OPTS, segment_seconds=1.0, colorizer=tiny)
    monkeypatch.setattr(segments, "encode_segment", real)
    other = ColorizeOptions(render_size=32, threads=1, batch_size=4, smoothing=0.0)
    summary = colorize_film(src, dst, other, segment_seconds=1.0, resume=True, colorizer=tiny)
    assert any("started afresh" in n for n in summary.notes)
    assert summary.frames == 72


# ------------------------------------------------------------------------- the CLI, killed


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, tiny, data="none", recipe="untrained test model", metrics={}, step=0, git_sha=None)
    return path


def _cli(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "vidcolor", "colorize", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )


def _wait_for_segments(proc: subprocess.Popen[bytes], journal: Path, n: int, limit_s: float = 120) -> None:
    t_end = time.monotonic() + limit_s
    while time.monotonic() < t_end:
        if journal.exists() and len(journal.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            assert proc.stderr is not None  # a pipe: Popen(stderr=PIPE)
            pytest.fail(f"the run ended before {n} segments were done: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no segment finished in time")


def test_sigkill_then_resume_matches_an_uninterrupted_run(
    clip, tiny, tiny_checkpoint, tmp_path: Path
) -> None:
    src = clip(
        "film.mp4", frames=240, rate=24, size=(64, 48), audio=[("aac", "eng"), ("libopus", "fra")], bframes=2
    )
    dst = tmp_path / "film_colour.mp4"
    args = [
        str(src),
        "-o",
        str(dst),
        "--model",
        str(tiny_checkpoint),
        "--render-size",
        "32",
        "--threads",
        "1",
        "--batch-size",
        "4",
        "--segment-seconds",
        "1",
        "--lossless",  # as EXACT
        "-q",
    ]
    proc = _cli(args)
    _wait_for_segments(proc, segment_dir(dst) / DONE_FILE, 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not dst.exists()
    done_before = len((segment_dir(dst) / DONE_FILE).read_text().splitlines())
    assert 1 <= done_before < 10

    resumed = _cli([*args, "--resume"])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert dst.exists() and not segment_dir(dst).exists()

    ref = colorize_film(src, tmp_path / "ref.mp4", EXACT, segment_seconds=1.0, colorizer=tiny)
    assert ref.frames == 240
    a, b = planes(dst), planes(tmp_path / "ref.mp4")
    assert len(a) == len(b) == 240
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert read_video_pts(dst) == read_video_pts(tmp_path / "ref.mp4") == read_video_pts(src)
    assert (
        read_packets(dst, "audio")
        == read_packets(tmp_path / "ref.mp4", "audio")
        == read_packets(src, "audio")
    )


def test_ctrl_c_says_how_to_resume(clip, tiny_checkpoint, tmp_path: Path) -> None:
    src = clip("film.mp4", frames=240, rate=24, size=(64, 48))
    dst = tmp_path / "out.mp4"
    proc = _cli(
        [
            str(src),
            "-o",
            str(dst),
            "--model",
            str(tiny_checkpoint),
            "--render-size",
            "32",
            "--threads",
            "1",
            "--segment-seconds",
            "1",
            "-q",
        ]
    )
    _wait_for_segments(proc, segment_dir(dst) / DONE_FILE, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "--resume" in text and "Traceback" not in text, text
    assert not dst.exists()
    left = list(segment_dir(dst).glob(".*partial*"))
    assert not left, (left, text)  # the unfinished segment was cleaned up
    assert json.loads((segment_dir(dst) / "plan.json").read_text())["segments"]
