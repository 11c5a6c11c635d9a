"""``vidcolor colorize`` as a user runs it: click's CliRunner in-process, and a real subprocess for
Ctrl-C. Every failure must be one line on stderr (what was expected, what was found, what to do),
a non-zero exit code from vidcolor/errors.py, no traceback, and nothing at the destination."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner, Result
from clips import AUDIO_RATE, read_packets, read_video_pts
from procs import default_sigint
from test_image_api import luma, pattern, read, write
from test_pipeline_e2e import corrupted_mid_way, truncated

from vidcolor.cli import main
from vidcolor.errors import EncodingError, InputError, UsageError

REPO = Path(__file__).resolve().parents[1]


def colorize(model: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(main, ["colorize", *map(str, args), "--model", str(model)])


def assert_one_line_error(result: Result, exit_code: int, *words: str) -> str:
    """The run failed with ``exit_code`` and said why on one stderr line, without a traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught error
    assert "Traceback" not in result.output
    # A progress bar may come before the error (it is drawn with \r): the error is the last line.
    lines = [ln for ln in result.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    assert errors == [lines[-1]], result.stderr
    line = lines[-1]
    assert line.startswith("vidcolor: error: expected ") and ", found " in line, line
    # 'vidcolor: error: expected ..., found ...: what to do'
    assert line.count(": ") >= 3, f"no advice in {line!r}"
    for w in words:
        assert w in line, (w, line)
    return line


def nothing_written(folder: Path, *keep: Path) -> None:
    """The folder holds only ``keep``: no output, no temporary file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in keep)


# -- a good run --------------------------------------------------------------------------------------


def test_summary_line_and_a_warning_per_stream_left_out(clip, tmp_path, tiny_model_path):
    subs = [("subrip", "eng"), ("subrip", "ger")]
    src = clip("film.mkv", frames=12, audio=[("aac", "eng")], subtitles=subs)
    dst = tmp_path / "film.mp4"
    result = colorize(tiny_model_path, src, "-o", dst)
    assert result.exit_code == 0, result.output
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("vidcolor: warning:")]
    assert len(warnings) == 2
    assert "stream 2 (subtitle, subrip, language eng)" in warnings[0]
    assert "stream 3 (subtitle, subrip, language ger)" in warnings[1]
    assert f"{dst}: 12 frames" in result.stdout and "Y PSNR" in result.stdout and " dB" in result.stdout
    assert len(read_video_pts(dst)) == 12
    assert read_packets(dst, "audio") and read_packets(dst, "subtitle") == []


def test_lossless_summary_says_so(clip, tmp_path, tiny_model_path):
    src = clip("film.mp4", frames=12)
    result = colorize(tiny_model_path, src, "-o", tmp_path / "out.mkv", "--lossless", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # -q: no summary
    result = colorize(tiny_model_path, src, "-o", tmp_path / "out2.mkv", "--codec", "ffv1")
    assert "Y PSNR lossless" in result.stdout


def test_default_output_name(clip, tmp_path, tiny_model_path):
    src = clip("reel.mp4", frames=12)
    result = colorize(tiny_model_path, src, "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reel_colour.mp4").is_file()


def test_section_by_start_and_duration(clip, tmp_path, tiny_model_path):
    src = clip("film.mp4", frames=30, audio=[("aac", "eng")])  # 24 frames/s
    dst = tmp_path / "part.mp4"
    result = colorize(tiny_model_path, src, "-o", dst, "--start", "0:00.25", "--duration", "0.5", "-q")
    assert result.exit_code == 0, result.output
    assert read_video_pts(dst) == read_video_pts(src)[6:18]  # [0.25 s, 0.75 s)
    with av.open(str(src)) as c:
        atb = c.streams.audio[0].time_base
    want = [p for p in read_packets(src, "audio")[0] if Fraction(1, 4) <= p[0] * atb < Fraction(3, 4)]
    assert read_packets(dst, "audio")[0] == want


# -- bad input and output ---------------------------------------------------------------------------


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        for k in range(10):
            silence = np.zeros((2, 1024), np.float32)
            frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = AUDIO_RATE, k * 1024
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
    return path


@pytest.mark.parametrize(
    "make,words",
    [
        (lambda d: d / "missing.mp4", ("existing input file", "missing.mp4")),
        (lambda d: d.joinpath("notes.mp4").write_text("not a film") and d / "notes.mp4", ("notes.mp4",)),
        (lambda d: d.joinpath("empty.mp4").write_bytes(b"") or d / "empty.mp4", ("empty",)),
        (lambda d: audio_only(d / "sound.m4a"), ("a video stream", "audio")),
        (lambda d: d / "a_folder.mp4" if d.joinpath("a_folder.mp4").mkdir() is None else None, ("folder",)),
    ],
    ids=["missing", "not_media", "empty", "no_video", "folder"],
)
def test_bad_input(tmp_path, tiny_model_path, make, words):
    src = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = colorize(tiny_model_path, src, "-o", tmp_path / "out.mp4")
    assert_one_line_error(result, InputError.exit_code, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_truncated_input_fails_at_a_frame_unless_skip_corrupt(clip, tmp_path, tiny_model_path):
    full = clip("full.mkv", frames=24, codec="ffv1")
    src = truncated(full, tmp_path / "cut.mkv", 0.6)
    full.unlink()
    dst = tmp_path / "out.mkv"
    line = assert_one_line_error(colorize(tiny_model_path, src, "-o", dst), InputError.exit_code, "truncated")
    assert " at frame " in line and "--skip-corrupt" in line
    nothing_written(tmp_path, src)
    result = colorize(tiny_model_path, src, "-o", dst, "--skip-corrupt")
    assert result.exit_code == 0, result.output
    assert "vidcolor: warning: the input is truncated" in result.stderr
    assert 0 < len(read_video_pts(dst)) < 24


def test_damaged_frames_fail_at_their_index_unless_skip_corrupt(clip, tmp_path, tiny_model_path):
    full = clip("full.mp4", frames=24)
    src = corrupted_mid_way(full, tmp_path / "bad.mp4", (10, 11))
    full.unlink()
    dst = tmp_path / "out.mp4"
    assert_one_line_error(colorize(tiny_model_path, src, "-o", dst), InputError.exit_code, "at frame 10 ")
    nothing_written(tmp_path, src)
    result = colorize(tiny_model_path, src, "-o", dst, "--skip-corrupt")
    assert result.exit_code == 0, result.output
    assert "2 damaged frames kept" in result.stdout
    assert len(read_video_pts(dst)) == 24


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_equal_to_input(clip, tmp_path, tiny_model_path, overwrite):
    src = clip("film.mp4", frames=12)
    before = src.read_bytes()
    args = ["--overwrite"] if overwrite else []
    result = colorize(tiny_model_path, src, "-o", src, *args)
    assert_one_line_error(result, UsageError.exit_code, "different from the input")
    assert src.read_bytes() == before
    nothing_written(tmp_path, src)


@pytest.mark.parametrize(
    "where,words",
    [
        (lambda d: Path("/etc/hostname") / "x.mp4", ("/etc/hostname is a file",)),  # root ignores chmod
        (lambda d: d / "no" / "such" / "x.mp4", ("no folder",)),
    ],
    ids=["under_a_file", "missing_folder"],
)
def test_unwritable_output(clip, tmp_path, tiny_model_path, where, words):
    src = clip("film.mp4", frames=12)
    dst = where(tmp_path)
    assert_one_line_error(colorize(tiny_model_path, src, "-o", dst), EncodingError.exit_code, *words)
    assert not dst.exists()
    nothing_written(tmp_path, src)


@pytest.mark.parametrize(
    "args,words",
    [
        (["-o", "{d}/out.webm", "--codec", "prores"], ("webm", "prores")),
        (["-o", "{d}/out.xyz"], ("'.xyz'",)),
        (["-o", "{d}/out.mp4", "--codec", "nosuchcodec"], ("nosuchcodec",)),
    ],
    ids=["prores_in_webm", "unknown_extension", "unknown_codec"],
)
def test_output_the_container_cannot_hold(clip, tmp_path, tiny_model_path, args, words):
    src = clip("film.mp4", frames=12)
    result = colorize(tiny_model_path, src, *(a.format(d=tmp_path) for a in args))
    assert_one_line_error(result, EncodingError.exit_code, *words)
    nothing_written(tmp_path, src)


@pytest.mark.parametrize(
    "args,words",
    [
        (["--start", "abc"], ("'abc'",)),
        (["--duration", "0"], ("--duration",)),
        (["--crf", "20", "--lossless"], ("--crf or --lossless",)),
        (["--render-size", "4"], ("--render-size",)),
        (["--start", "1:00"], ("section that holds frames", "from 60 s")),
    ],
    ids=["bad_time", "zero_duration", "crf_and_lossless", "tiny_render", "start_past_the_end"],
)
def test_contradictory_options(clip, tmp_path, tiny_model_path, args, words):
    src = clip("film.mp4", frames=12)
    result = colorize(tiny_model_path, src, "-o", tmp_path / "out.mp4", *args)
    assert_one_line_error(result, UsageError.exit_code, *words)
    nothing_written(tmp_path, src)


def test_existing_output_needs_overwrite(clip, tmp_path, tiny_model_path):
    src = clip("film.mp4", frames=12)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"an older render")
    assert_one_line_error(colorize(tiny_model_path, src, "-o", dst), UsageError.exit_code, "--overwrite")
    assert dst.read_bytes() == b"an older render"
    nothing_written(tmp_path, src, dst)
    result = colorize(tiny_model_path, src, "-o", dst, "--overwrite", "-q")
    assert result.exit_code == 0, result.output
    assert len(read_video_pts(dst)) == 12
    nothing_written(tmp_path, src, dst)


def test_missing_model_file(clip, tmp_path):
    src = clip("film.mp4", frames=12)
    result = CliRunner().invoke(
        main, ["colorize", str(src), "-o", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "nope.pt")]
    )
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.strip().startswith("vidcolor: error: expected ")
    nothing_written(tmp_path, src)


# -- Ctrl-C --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_cli_leaves_no_output(clip, tmp_path, tiny_model_path, sig):
    """Ctrl-C (or a kill) while frames are being encoded: exit 130, no output, no temporary file."""
    src = clip("long.mp4", frames=480, size=(64, 48))
    dst = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [
        sys.executable,
        "-m",
        "vidcolor",
        "colorize",
        str(src),
        "-o",
        str(dst),
        "--model",
        str(tiny_model_path),
        "--threads",
        "1",
        "--batch-size",
        "2",
        "-q",
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, preexec_fn=default_sigint
    )
    try:
        # The temporary file appears when the writer starts: from then on the run is mid-way.
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.*.partial.mp4")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.communicate()}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "interrupted" in text
    nothing_written(tmp_path, src)


# -- stills --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext,bits,rgb", [(".png", 8, False), (".png", 16, False), (".jpg", 8, True), (".tif", 16, True)]
)
def test_still_through_the_cli(tmp_path, tiny_model_path, ext, bits, rgb):
    img = pattern(bits, rgb)
    src = write(tmp_path / f"photo{ext}", img)
    dst = tmp_path / f"photo_colour{ext}"
    result = colorize(tiny_model_path, src, "-o", dst)
    assert result.exit_code == 0, result.output
    assert f"{dst}: still colorized" in result.stdout
    out = read(dst)
    assert out.shape == (48, 64, 3) and out.dtype == (np.uint16 if bits == 16 else np.uint8)
    if ext != ".jpg":  # lossless: turned grey, it is the input luma
        src_luma = np.rint(luma(img)) if rgb else img.astype(np.float64)
        assert np.abs(luma(out) - src_luma).max() <= 1.5
    nothing_written(tmp_path, src, dst)


def test_preset_passes_to_the_encoder_and_a_wrong_one_is_one_line(clip, tmp_path, tiny_model_path):
    src = clip("src.mp4", frames=6)
    ok = colorize(tiny_model_path, src, "-o", tmp_path / "fast.mp4", "--preset", "ultrafast")
    assert ok.exit_code == 0, ok.output
    assert b"subme=0" in (tmp_path / "fast.mp4").read_bytes()  # x264's own record of its settings
    bad = colorize(tiny_model_path, src, "-o", tmp_path / "o.mp4", "--preset", "quick")
    assert_one_line_error(bad, 4, "--preset of libx264", "'quick'")
    assert not (tmp_path / "o.mp4").exists()
