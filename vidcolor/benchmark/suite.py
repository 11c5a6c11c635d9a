"""The benchmark suite: stages, end to end, knobs and memory on given files or generated clips,
gathered into one JSON-ready dict (schema ``vidcolor.bench/1``, see benchmarks/README.md)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from vidcolor.media.probe import probe
from vidcolor.stages.model_step import ModelStep

from .clip import cached_film_clip
from .config import BenchConfig
from .e2e import bench_e2e, bench_e2e_in_turn
from .env import environment, load_average
from .guidance import guidance_options
from .memory import bench_memory
from .model import build_model
from .stages import StageSettings, bench_stages
from .timing import round_ratios

SCHEMA = "vidcolor.bench/1"


def slowest(stages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The slowest stage of the run's own configuration (entries with params.pipeline)."""
    own = [s for s in stages if s["params"].get("pipeline")]
    return min(own, key=lambda s: s["fps"]) if own else None


def cpu_budget(stages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """CPU time per frame of the run's own stages, summed, and the frame rate the machine's cores
    could give if the stages overlapped perfectly: cores x 1000 / sum(ms per frame)."""
    own = [s for s in stages if s["params"].get("pipeline") and "cpu_ms_per_frame" in s]
    if not own:
        return None
    total = sum(s["cpu_ms_per_frame"] for s in own)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {
        "ms_per_frame": {s["stage"]: s["cpu_ms_per_frame"] for s in own},
        "sum_ms_per_frame": round(total, 3),
        "cores": cores,
        "ceiling_fps": round(cores * 1000.0 / total, 3) if total > 0 else None,
    }


def _clip_meta(path: Path, label: str, generated: bool) -> dict[str, Any]:
    v = probe(path).video
    return {
        "label": label,
        "path": str(path),
        "generated": generated,
        "width": v.width,
        "height": v.height,
        "codec": v.codec,
        "pix_fmt": v.pix_fmt,
        "frames": v.frames,
        "rate": float(v.average_rate) if v.average_rate else None,
    }


def run_benchmark(cfg: BenchConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run what ``cfg`` asks and return the results (nothing is written but scratch files in work_dir)."""
    say = log or (lambda _m: None)
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    base_threads = torch.get_num_threads()
    if cfg.opts.threads:
        torch.set_num_threads(cfg.opts.threads)
    net, desc = build_model(cfg.model, cfg.opts.device, cfg.opts.half)
    device = str(next(net.parameters()).device)
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(device),
        "model": desc,
        "settings": _settings(cfg),
        "clips": [],
        "model_sweep": [],
        "model_variants": [],
    }
    if cfg.inputs:
        clips = [(p, p.stem, False) for p in cfg.inputs]
    else:
        clips = []
        for size in cfg.sizes:
            say(f"making the {size} clip ({cfg.frames} frames)")
            clips.append((cached_film_clip(work, size, cfg.frames), size, True))
    settings = StageSettings(
        cfg.opts, cfg.repeats, cfg.warmup, cfg.model_frames, cfg.encode_frames, cfg.codecs
    )
    for k, (path, label, generated) in enumerate(clips):
        clip = _clip_meta(path, label, generated)
        clip["load_average_start"] = load_average()
        if cfg.stages:
            say(f"{label}: stages")
            step = ModelStep.create(cfg.opts, net)
            sweep = (cfg.sweep_renders, cfg.sweep_batches) if k == 0 else None
            measures, grid = bench_stages(
                path, step, settings, work, sweep=sweep, variants=cfg.variants and k == 0
            )
            clip["stages"] = [m.to_dict() for m in measures]
            for m in grid:
                key = "model_variants" if "variant" in m.params else "model_sweep"
                result[key].append(dict(m.to_dict(), clip=label))
            clip["cpu_budget"] = cpu_budget(clip["stages"])
            low = slowest(clip["stages"])
            clip["slowest_stage"] = (
                {"stage": low["stage"], "params": low["params"], "fps": low["fps"]} if low else None
            )
        if cfg.e2e:
            say(f"{label}: end to end")
            if k == 0 and cfg.knobs:
                e2e, clip["knobs"] = _e2e_with_knobs(path, cfg, net, work, say, base_threads)
            else:
                e2e = bench_e2e(path, cfg.opts, net, work, repeats=cfg.repeats, warmup=cfg.warmup).to_dict()
            clip["e2e"] = e2e
            if clip.get("slowest_stage"):
                clip["e2e_vs_slowest"] = round(e2e["fps"] / clip["slowest_stage"]["fps"], 4)
        clip["load_average_end"] = load_average()
        result["clips"].append(clip)
    torch.set_num_threads(base_threads)
    if cfg.memory:
        # Always on generated clips: a given file has no 10x longer twin.
        n = cfg.memory_frames or cfg.frames
        short = cached_film_clip(work, cfg.memory_size, n)
        say(f"memory: making the {n * cfg.memory_scale}-frame clip")
        long = cached_film_clip(work, cfg.memory_size, n * cfg.memory_scale)
        say(f"memory: {n} and {n * cfg.memory_scale} frames, each in a fresh process")
        result["memory"] = dict(
            bench_memory(short, long, cfg.opts, cfg.model, work, cfg.memory_scale), clip=cfg.memory_size
        )
    result["environment"]["load_average_end"] = load_average()
    return result


def _e2e_with_knobs(
    path: Path,
    cfg: BenchConfig,
    net: torch.nn.Module,
    work: Path,
    say: Callable[[str], None],
    base_threads: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The default end-to-end run and each knob's, taken in turn round after round, so a knob's
    ``vs_default`` (the median per-round speed ratio, > 1: faster) compares runs minutes apart
    at most; returns (the default's measure, the knobs' measures)."""
    cases = [("e2e", cfg.opts)]
    for knob in cfg.knobs:
        say(f"  knob {knob}")
        label = "e2e " + ", ".join(f"{k}={v}" for k, v in knob.items())
        cases.append((label, replace(cfg.opts, **guidance_options(path, knob))))
    threads = cfg.opts.threads or base_threads

    def setup(_k: int) -> None:
        torch.set_num_threads(threads)  # a run with its own threads sets them globally

    try:
        measures = bench_e2e_in_turn(
            path, cases, net, work, repeats=cfg.repeats, warmup=cfg.warmup, setup=setup
        )
    finally:
        torch.set_num_threads(threads)
    base, *knobs = measures
    return base.to_dict(), [
        dict(m.to_dict(), vs_default=round_ratios(base.seconds, m.seconds)) for m in knobs
    ]


def _settings(cfg: BenchConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["inputs"] = [str(p) for p in cfg.inputs]
    d["work_dir"] = str(cfg.work_dir)
    d["opts"] = {k: v for k, v in asdict(cfg.opts).items() if k not in ("overwrite",)}
    return d
