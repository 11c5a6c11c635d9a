"""Smoke test of ``vidcolor bench`` on a tiny generated clip: the results have their schema, every
figure is a positive number, the charts are PNGs. No timing is asserted (see benchmarks/README.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
import torch
from click.testing import CliRunner

from vidcolor.benchmark.clip import FilmFrames, make_film_clip, size_of
from vidcolor.benchmark.timing import Measure, round_ratios, time_alternating, time_repeats
from vidcolor.cli import main


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and x > 0


def test_bench_command_writes_results_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "results" / "tiny.json"
    args = [
        "bench",
        "--sizes",
        "64x48",
        "--frames",
        "12",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--model-frames",
        "4",
        "--encode-frames",
        "6",
        "--codecs",
        "libx264,ffv1",
        "--render-sizes",
        "32",
        "--batch-sizes",
        "1,2",
        "--batch-size",
        "2",
        "--knob",
        "threads=1",
        "--knob",
        "hints=3",
        "--knob",
        "reference=1",
        "--memory-frames",
        "6",
        "--memory-scale",
        "2",
        "--no-verify",
        "--out",
        str(out),
        "--work-dir",
        str(tmp_path / "work"),
        "-q",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())

    assert r["schema"] == "vidcolor.bench/1"
    for key in ("vidcolor", "torch", "pyav", "ffmpeg", "cpu", "cpus_usable", "torch_threads"):
        assert key in r["environment"]
    assert r["model"]["parameters"] > 0 and r["model"]["stride"] == 32

    (clip,) = r["clips"]
    assert (clip["width"], clip["height"]) == (64, 48)
    names = [m["stage"] for m in clip["stages"]]
    assert names == ["decode", "to_l", "model", "smooth", "smooth+cuts", "merge", "encode", "encode"]
    assert [m["params"]["codec"] for m in clip["stages"] if m["stage"] == "encode"] == ["libx264", "ffv1"]
    measures = [*clip["stages"], clip["e2e"], *clip["knobs"], *r["model_sweep"]]
    for m in measures:
        assert m["repeats"] == 1 and len(m["seconds"]) == 1
        assert all(_positive(m[k]) for k in ("frames", "fps", "fps_min", "fps_max", "ms_per_frame")), m
        assert m["cpu_ms_per_frame"] >= 0 and m["cores_busy"] >= 0
    assert clip["stages"][0]["frames"] == 12  # every frame decoded
    assert clip["e2e"]["frames"] == 12
    assert clip["slowest_stage"]["fps"] == min(m["fps"] for m in clip["stages"] if m["params"]["pipeline"])
    assert _positive(clip["e2e_vs_slowest"])
    assert [(m["params"]["render_size"], m["params"]["batch_size"]) for m in r["model_sweep"]] == [
        (32, 1),
        (32, 2),
    ]
    assert clip["knobs"][0]["params"]["threads"] == 1
    # Guidance knobs time the guided pipeline on the same clip, every frame still written.
    assert [m["stage"] for m in clip["knobs"][1:]] == ["e2e hints=3", "e2e reference=1"]
    assert all(m["frames"] == 12 for m in clip["knobs"])
    # Knobs are timed in turn with the default, and compared round by round.
    for k in clip["knobs"]:
        vs = k["vs_default"]
        assert vs["min"] <= vs["median"] <= vs["max"] and _positive(vs["median"])
    # The threads=1 knob's passes left the default's alone.
    assert clip["e2e"]["params"]["threads"] == torch.get_num_threads()

    mem = r["memory"]
    assert (mem["short"]["frames"], mem["long"]["frames"]) == (6, 12)
    for run in (mem["short"], mem["long"]):
        assert _positive(run["peak_rss_mib"]) and run["peak_rss_mib"] >= run["rss_after_model_load_mib"]
        assert run["timeline"] and all(len(p) == 3 for p in run["timeline"])
    assert _positive(mem["peak_rss_ratio"])

    for png in (out.with_suffix(".png"), out.with_name("tiny-memory.png")):
        img = cv2.imread(str(png))
        assert img is not None and img.shape[1] == 1280


def test_time_repeats_warms_up_then_times_each_repeat() -> None:
    import threading

    calls: list[str] = []
    timed = time_repeats(
        lambda: calls.append("run"), repeats=3, warmup=2, setup=lambda: calls.append("setup")
    )
    assert calls == ["setup", "run"] * 5
    assert len(timed.wall) == len(timed.cpu) == 3 and all(s >= 0 for s in timed.wall + timed.cpu)
    names: list[str] = []
    time_repeats(lambda: names.append(threading.current_thread().name), repeats=1, warmup=1, thread="stage-x")
    assert names == ["stage-x", "stage-x"]
    with pytest.raises(ZeroDivisionError):  # an error on the stage thread reaches the caller
        time_repeats(lambda: 1 / 0, repeats=1, warmup=0, thread="stage-y")
    m = Measure("x", 10, [0.5, 1.0, 2.0], cpu_seconds=[1.0, 2.0, 4.0]).to_dict()
    assert (m["fps"], m["fps_min"], m["fps_max"]) == (10.0, 5.0, 20.0)
    assert m["spread_pct"] == 150.0
    assert (m["cpu_ms_per_frame"], m["cores_busy"]) == (200.0, 2.0)
    with pytest.raises(ValueError):
        time_repeats(lambda: None, repeats=0, warmup=0)


def test_time_alternating_takes_turns_and_reverses_every_other_round() -> None:
    calls: list[str] = []

    def do(name: str) -> Callable[[], None]:
        return lambda: calls.append(name)

    timed = time_alternating(
        [do("a"), do("b"), do("c")], repeats=3, warmup=1, setup=lambda k: calls.append(f"setup{k}")
    )
    runs = [c for c in calls if not c.startswith("setup")]
    # A warm-up round, then three timed: abc, cba, abc, cba (ABBA: a drift falls on all alike).
    assert runs == list("abccbaabccba")
    assert calls[:2] == ["setup0", "a"] and calls.count("setup2") == 4
    assert [len(t.wall) for t in timed] == [3, 3, 3] and all(len(t.cpu) == 3 for t in timed)
    with pytest.raises(ValueError):
        time_alternating([do("a")], repeats=0, warmup=0)
    # Ratios within rounds: the other run is twice as slow in every round, whatever the drift.
    assert round_ratios([1.0, 3.0, 2.0], [2.0, 6.0, 4.0]) == {"median": 0.5, "min": 0.5, "max": 0.5}
    assert round_ratios([1.0, 1.0, 1.0], [0.5, 1.0, 2.0]) == {"median": 1.0, "min": 0.5, "max": 2.0}


def test_film_clip_has_texture_motion_and_cuts(tmp_path: Path) -> None:
    frames = FilmFrames(96, 64)
    a, b = frames(0), frames(1)
    assert a.dtype.name == "uint8" and a.shape == (64, 96)
    assert 16 <= a.min() and a.max() <= 235  # limited range
    assert a.std() > 10  # texture, not a flat field
    assert 0 < abs(a.astype(int) - b.astype(int)).mean() < 20  # motion within a shot
    path = make_film_clip(tmp_path / "c.mp4", 96, 64, 6, audio=True)
    import av

    with av.open(str(path)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(video=0)) == 6
    assert size_of("480p") == (854, 480) and size_of("320x180") == (320, 180)
    with pytest.raises(ValueError):
        size_of("big")


def test_profile_sorts_samples_into_work_and_waiting() -> None:
    from vidcolor.benchmark.profile import summarise

    root = "Thread._bootstrap (threading.py:1002);target (vidcolor/pipeline/threads.py:75)"
    raw = "\n".join(
        [
            f"thread (0x1): vidcolor-model;{root};colour (vidcolor/pipeline/run.py:316);"
            "ModelStep.__call__ (vidcolor/stages/model_step.py:50);"
            "forward (vidcolor/models/colorizer.py:140) 30",
            f"thread (0x1): vidcolor-model;{root};colour (vidcolor/pipeline/run.py:310);"
            "Pipe.__iter__ (vidcolor/pipeline/threads.py:50) 10",
            f"thread (0x2): vidcolor-merge;{root};merge (vidcolor/pipeline/run.py:330);"
            "Pipe.put (vidcolor/pipeline/threads.py:30) 5",
            "thread (0x3): MainThread;main (vidcolor/cli.py:1);run_stages (vidcolor/pipeline/run.py:340);"
            "VideoWriter.write (vidcolor/media/encode.py:500) 4",
            "thread (0x3): MainThread;main (vidcolor/cli.py:1);"
            "verify_output (vidcolor/pipeline/verify.py:40);decode_frames (vidcolor/media/decode.py:140) 1",
            "thread (0x3): MainThread;import (vidcolor/models/registry.py:3) 99",  # before the run: ignored
            f"thread (0x4): vidcolor-verify;{root};LiveCheck._run (vidcolor/pipeline/verify.py:140);"
            "LiveCheck._check (vidcolor/pipeline/verify.py:160);get (queue.py:171);wait (threading.py:320) 3",
            f"thread (0x4): vidcolor-verify;{root};LiveCheck._run (vidcolor/pipeline/verify.py:140);"
            "LiveCheck._check (vidcolor/pipeline/verify.py:170);"
            "LiveCheck._compare (vidcolor/pipeline/verify.py:180) 1",
        ]
    )
    t = summarise(raw)
    assert t["vidcolor-model"]["samples"] == 40
    assert t["vidcolor-model"]["shares"] == {"work: model": 0.75, "wait: input": 0.25}
    assert t["vidcolor-merge"]["shares"] == {"wait: room": 1.0} and t["vidcolor-merge"]["waiting"] == 1.0
    assert t["MainThread"]["shares"] == {"work: encode": 0.8, "work: verify": 0.2}
    assert t["vidcolor-verify"]["shares"] == {"wait: input": 0.75, "work: verify": 0.25}


def test_presets_measure_fidelity_against_the_lossless_output(clip, tmp_path) -> None:
    from vidcolor.benchmark.presets import measure, plane_psnr

    src = clip("src.mp4", frames=6)
    rows = measure(src, ("medium", "ultrafast"), tmp_path)
    assert set(rows) == {"medium", "ultrafast"}
    for row in rows.values():
        assert 20 < row["psnr_y"] < math.inf and 20 < row["psnr_cb"] < math.inf and row["bytes"] > 0
    assert plane_psnr(tmp_path / "lossless.mkv", tmp_path / "lossless.mkv") == [math.inf] * 3
