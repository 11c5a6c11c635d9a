"""Batch mode (vidcolor/batch.py, the ``batch`` command): inputs to jobs, the manifest, skipping
what is done, failures that do not stop the batch, worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from clips import make_clip, read_video_pts
from procs import default_sigint

from vidcolor.batch import (
    DONE,
    FAILED,
    MANIFEST_NAME,
    SKIPPED,
    append_record,
    collect_jobs,
    read_manifest,
    run_batch,
    sha256_file,
)
from vidcolor.cli import main
from vidcolor.errors import UsageError
from vidcolor.models import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions

OPTS = ColorizeOptions(render_size=32, threads=1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16)).eval()


def _still(path: Path) -> Path:
    import cv2

    yy, xx = np.mgrid[0:40, 0:56]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), ((xx * 4 + yy * 2) % 256).astype(np.uint8))
    return path


@pytest.fixture
def reels(tmp_path: Path) -> Path:
    """reels/a.mp4, reels/day2/b.mkv, reels/day2/c.png, reels/bad.mp4 (text), reels/.hidden/x.mp4."""
    root = tmp_path / "reels"
    (root / "day2").mkdir(parents=True)
    (root / ".hidden").mkdir()
    make_clip(root / "a.mp4", frames=12, size=(64, 48), audio=[("aac", "eng")])
    make_clip(root / "day2" / "b.mkv", frames=10, size=(48, 32))
    _still(root / "day2" / "c.png")
    (root / "bad.mp4").write_text("not a film\n")
    make_clip(root / ".hidden" / "x.mp4", frames=4)
    (root / "notes.txt").write_text("skip me")
    return root


def test_collect_mirrors_the_tree(reels: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    jobs = collect_jobs([reels], out)
    assert [j.rel for j in jobs] == ["a.mp4", "bad.mp4", "day2/b.mkv", "day2/c.png"]
    assert jobs[0].output == out / "a.mp4" and not jobs[0].still and jobs[3].still
    # Globs: the folder before the first wildcard is the root; ** goes down.
    assert [j.rel for j in collect_jobs([str(reels / "**" / "*.mkv")], out)] == ["day2/b.mkv"]
    # Two folders: mirrored below their common parent, in the order given.
    assert [j.rel for j in collect_jobs([reels / "day2", reels / ".hidden"], out)] == [
        "day2/b.mkv",
        "day2/c.png",
        ".hidden/x.mp4",
    ]
    # An explicit file is always taken; a source container that cannot be written becomes .mkv.
    mpg = reels / "old.mpg"
    mpg.write_bytes(b"\0")
    assert [j.rel for j in collect_jobs([mpg], out)] == ["old.mkv"]


def test_collect_skips_the_output_folder_and_refuses_clashes(reels: Path) -> None:
    inside = reels / "colour"
    inside.mkdir()
    make_clip(inside / "a.mp4", frames=4)
    assert all(not j.rel.startswith("colour/") for j in collect_jobs([reels], inside))
    (reels / "a.mpg").write_bytes(b"\0")  # -> a.mkv
    (reels / "a.mkv").write_bytes(b"\0")
    with pytest.raises(UsageError, match="would both write"):
        collect_jobs([reels / "a.mpg", reels / "a.mkv"], reels / "out")
    with pytest.raises(UsageError, match="nothing at"):
        collect_jobs([reels / "missing.mp4"], reels / "out")
    with pytest.raises(UsageError, match="nothing for"):
        collect_jobs([str(reels / "*.avi")], reels / "out")


def test_manifest_survives_a_torn_line(tmp_path: Path) -> None:
    man = tmp_path / "m.jsonl"
    append_record(man, {"source": "a", "status": "done"})
    with man.open("ab") as fh:  # what a power cut in the middle of a write can leave
        fh.write(b'{"source": "b", "stat')
    append_record(man, {"source": "c", "status": "failed"})
    recs = read_manifest(man)
    assert set(recs) == {"a", "c"}
    lines = man.read_bytes().splitlines()
    assert json.loads(lines[-1]) == {"source": "c", "status": "failed"}


def test_batch_goes_on_past_failures_and_skips_what_is_done(reels: Path, tmp_path: Path, tiny) -> None:
    out = tmp_path / "out"
    seen: list[str] = []
    report = run_batch([reels], out, OPTS, colorizer=tiny, on_result=lambda r: seen.append(r.output))
    by = {r.output: r for r in report.results}
    assert [r.output for r in report.results] == ["a.mp4", "bad.mp4", "day2/b.mkv", "day2/c.png"]
    assert sorted(seen) == sorted(by)
    assert by["bad.mp4"].status == FAILED and "not readable media" in (by["bad.mp4"].error or "")
    assert by["bad.mp4"].exit_code == 2
    for name in ("a.mp4", "day2/b.mkv", "day2/c.png"):
        r = by[name]
        assert r.status == DONE and r.sha256 == sha256_file(out / name)
    assert by["a.mp4"].frames == 12 and by["a.mp4"].fps and by["a.mp4"].seconds
    assert read_video_pts(out / "a.mp4") == read_video_pts(reels / "a.mp4")
    assert (report.count(DONE), report.count(FAILED), report.count(SKIPPED)) == (3, 1, 0)
    assert report.exit_code == 1
    assert "4 files: 3 succeeded, 1 failed, 0 skipped" in report.table()
    manifest = read_manifest(out / MANIFEST_NAME)
    assert manifest[str(reels / "a.mp4")]["status"] == DONE
    assert manifest[str(reels / "bad.mp4")]["error"]

    # Again: finished files are skipped, the failed one is tried again.
    again = run_batch([reels], out, OPTS, colorizer=tiny)
    assert [r.status for r in again.results] == [SKIPPED, FAILED, SKIPPED, SKIPPED]

    # An output that no longer matches its recorded hash is not skipped.
    (out / "a.mp4").write_bytes((out / "a.mp4").read_bytes() + b"\0")
    third = run_batch([reels / "a.mp4"], out, OPTS, colorizer=tiny)
    assert third.results[0].status == FAILED and "--overwrite" in (third.results[0].error or "")
    fourth = run_batch(
        [reels / "a.mp4"], out, ColorizeOptions(render_size=32, threads=1, overwrite=True), colorizer=tiny
    )
    assert fourth.results[0].status == DONE and fourth.exit_code == 0


def test_output_of_a_run_killed_before_its_record_is_adopted(reels: Path, tmp_path: Path, tiny) -> None:
    out = tmp_path / "out"
    run_batch([reels / "a.mp4"], out, OPTS, colorizer=tiny)
    man = out / MANIFEST_NAME
    # As if the run had died between renaming the output into place and writing its record.
    lines = man.read_text().splitlines()
    assert json.loads(lines[0])["status"] == "started" and json.loads(lines[1])["status"] == DONE
    man.write_text(lines[0] + "\n")
    report = run_batch([reels / "a.mp4"], out, OPTS, colorizer=tiny)
    r = report.results[0]
    assert r.status == DONE and r.sha256 == sha256_file(out / "a.mp4") and r.notes
    assert run_batch([reels / "a.mp4"], out, OPTS, colorizer=tiny).results[0].status == SKIPPED


def test_jobs_in_worker_processes(tmp_path: Path, tiny) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        make_clip(src / f"c{k}.mp4", frames=8 + k, size=(48, 32))
    out = tmp_path / "out"
    report = run_batch([src], out, ColorizeOptions(render_size=32), jobs=2, colorizer=tiny)
    assert [r.status for r in report.results] == [DONE, DONE, DONE]
    assert [r.frames for r in report.results] == [8, 9, 10]
    for k in range(3):
        assert read_video_pts(out / f"c{k}.mp4") == read_video_pts(src / f"c{k}.mp4")
    recs = read_manifest(out / MANIFEST_NAME)
    assert all(rec["status"] == DONE for rec in recs.values()) and len(recs) == 3


def test_cli_batch(reels: Path, tmp_path: Path, tiny) -> None:
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny, data="none", recipe="untrained test model", metrics={}, step=0, git_sha=None)
    out = tmp_path / "out"
    args = [
        "batch",
        str(reels),
        "-o",
        str(out),
        "--model",
        str(ckpt),
        "--render-size",
        "32",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "3 succeeded, 1 failed, 0 skipped" in result.output
    assert (out / "day2" / "c.png").exists() and (out / "day2" / "b.mkv").exists()
    (reels / "bad.mp4").unlink()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3 files: 0 succeeded, 0 failed, 3 skipped" in result.output


def test_long_films_go_through_segments(tmp_path: Path, tiny) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "long.mkv", frames=72, size=(48, 32), audio=[("libopus", "eng")])
    out = tmp_path / "out"
    report = run_batch([src], out, OPTS, colorizer=tiny, segment_seconds=1.0)
    r = report.results[0]
    assert r.status == DONE and r.frames == 72
    assert read_video_pts(out / "long.mkv") == read_video_pts(src / "long.mkv")
    assert r.notes == [] and sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, "long.mkv"])


def test_ctrl_c_stops_workers_cleanly_and_a_rerun_finishes(tmp_path: Path, tiny) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for k in range(6):
        make_clip(src / f"c{k}.mp4", frames=60, size=(64, 48))
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, tiny, data="none", recipe="untrained test model", metrics={}, step=0, git_sha=None)
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "vidcolor",
        "batch",
        str(src),
        "-o",
        str(out),
        "--model",
        str(ckpt),
        "--render-size",
        "32",
        "--jobs",
        "2",
        "--segment-seconds",
        "0",
        "-q",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint
    )
    man = out / MANIFEST_NAME
    t_end = time.monotonic() + 180
    while time.monotonic() < t_end and proc.poll() is None:
        if man.exists() and any(json.loads(x).get("status") == DONE for x in man.read_text().splitlines()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "run the same command again" in text and "Traceback" not in text, text
    assert not list(out.rglob("*.partial*")), "an interrupted file left a temporary output"
    done = [k for k, rec in read_manifest(man).items() if rec["status"] == DONE]
    assert 1 <= len(done) < 6
    for path in done:  # what is recorded as done is there and whole
        rec = read_manifest(man)[path]
        assert sha256_file(out / rec["output"]) == rec["sha256"]

    again = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()
    table = again.stdout.decode()
    assert f"6 files: {6 - len(done)} succeeded, 0 failed, {len(done)} skipped" in table


def test_a_stop_in_the_parent_leaves_no_pool_thread_running(tmp_path: Path, tiny: torch.nn.Module) -> None:
    """When the parent stops (Ctrl-C, here raised from the result callback), the pool's manager
    thread has ended before the interruption goes on: left running, it could close its wake-up
    pipe just as the interpreter's exit hook writes to it, a traceback after the one-line message."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        make_clip(src / f"c{k}.mp4", frames=8, size=(48, 32))

    def interrupt(_result: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch([src], tmp_path / "out", OPTS, jobs=2, colorizer=tiny, on_result=interrupt)
    running = [t.name for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"]
    assert running == []


def test_what_a_killed_attempt_left_is_removed_when_the_file_is_done(
    tmp_path: Path, tiny: torch.nn.Module
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "c0.mp4", frames=8, size=(48, 32))
    out = tmp_path / "out"
    out.mkdir()
    left = out / ".c0.0badc0de.partial.mp4"  # as a worker killed mid-file leaves it
    left.write_bytes(b"half a film")
    other = out / ".c00.0badc0de.partial.mp4"  # another output's: not this job's to remove
    other.write_bytes(b"")
    report = run_batch([src], out, OPTS, colorizer=tiny)
    assert [r.status for r in report.results] == [DONE]
    assert not left.exists() and other.exists()


def test_a_worker_that_ignores_the_stop_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker still alive after its grace period is killed: the pool's manager thread, and the
    interpreter's exit with it, wait for every worker, so a stop must never hang."""
    import multiprocessing

    import vidcolor.batch as batch

    monkeypatch.setattr(batch, "STOP_GRACE_S", 0.5)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    stubborn = ctx.Process(target=_ignore_sigterm_and_wait, args=(ready,))
    stubborn.start()
    assert ready.wait(timeout=60), "the worker did not start"
    t0 = time.monotonic()
    batch._terminate([stubborn])
    assert not stubborn.is_alive() and stubborn.exitcode == -signal.SIGKILL
    assert time.monotonic() - t0 < 10


def _ignore_sigterm_and_wait(ready: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(60)


def test_a_stop_that_lands_in_a_finaliser_still_stops_the_worker_quietly() -> None:
    """The parent's SIGTERM reaches a busy worker while Python runs a finaliser (here a ``__del__``;
    in the wild a weak reference's callback during garbage collection). The KeyboardInterrupt
    raised there cannot leave the finaliser: without care Python prints "Exception ignored" with a
    traceback and the worker goes on with its file. It must be raised again, from ordinary code."""
    child = textwrap.dedent(
        """
        import os, signal, time
        from vidcolor.batch import _WORKER, _init_worker
        from vidcolor.options import ColorizeOptions

        _init_worker(ColorizeOptions(), object(), 0.0)  # a colorizer given: nothing is loaded
        _WORKER["busy"] = True

        class Finaliser:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)  # the stop arrives while this runs
                for _ in range(100000):
                    pass

        try:
            Finaliser()  # dropped at once: its __del__ runs
            time.sleep(10)
            print("not stopped")
        except KeyboardInterrupt:
            print("stopped")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "stopped", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
