"""A benchmark result as Markdown tables (for benchmarks/README.md and the console)."""

from __future__ import annotations

from typing import Any

from .chart import _stage_label


def _f(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _vs_default(knob: dict[str, Any], base_fps: float) -> str:
    """A knob's speed over the default's: the per-round ratio when the runs were taken in turn
    (results before that have only the medians' ratio)."""
    vs = knob.get("vs_default")
    if vs is None:
        return f"{knob['fps'] / base_fps:.2f}"
    return f"{vs['median']:.3f} ({vs['min']:.3f} - {vs['max']:.3f})"


def _row(label: str, cells: list[str]) -> str:
    """One Markdown table row: the label, then its cells."""
    return f"| {label} | " + " | ".join(cells) + " |"


def _stage(clip: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The clip's stage measurement shown in the row ``name`` (None: the clip has none)."""
    return next((m for m in clip.get("stages", []) if _row_name(m) == name), None)


def markdown(result: dict[str, Any]) -> str:
    """Stage and end-to-end frames/s per clip, the model grid, the memory figures."""
    env, model = result.get("environment", {}), result.get("model", {})
    out = [
        f"Measured {result.get('created', '')} on {env.get('cpu')} ({env.get('cpus_usable')} CPUs, "
        f"{env.get('memory_gib')} GiB), {model.get('name')} on {model.get('device')} ({model.get('dtype')}), "
        f"torch {env.get('torch')} with {env.get('torch_threads')} threads, FFmpeg {env.get('ffmpeg')}, "
        f"git {env.get('git')}; load average {env.get('load_average_start')} at the start, "
        f"{env.get('load_average_end')} at the end.",
        "",
    ]
    clips = result.get("clips", [])
    if clips:
        names: list[str] = []
        for c in clips:
            for m in c.get("stages", []):
                label = _row_name(m)
                if label not in names:
                    names.append(label)
        out.append(
            _row("frames/s (median; min..max)", [f"{c['label']} {c['width']}x{c['height']}" for c in clips])
        )
        out.append("|---|" + "---:|" * len(clips))
        for name in names:
            out.append(_row(name, [_cell(_stage(c, name), c) for c in clips]))
        out.append(
            _row(
                "**end to end**",
                [
                    f"**{_f(c['e2e']['fps'])}** ({_f(c['e2e']['fps_min'])}..{_f(c['e2e']['fps_max'])})"
                    if "e2e" in c
                    else "-"
                    for c in clips
                ],
            )
        )
        out.append(
            _row(
                "end to end / slowest stage",
                [
                    f"{c['e2e_vs_slowest']:.2f} ({c['slowest_stage']['stage']})"
                    if "e2e_vs_slowest" in c
                    else "-"
                    for c in clips
                ],
            )
        )
        out.append("")
        if any(c.get("cpu_budget") for c in clips):
            out.append("CPU time per frame (ms, every thread of the process, median pass):")
            out.append("")
            out.append(_row("CPU ms/frame", [c["label"] for c in clips]))
            out.append("|---|" + "---:|" * len(clips))
            for name in names:
                ms = [_stage(c, name) for c in clips]
                out.append(
                    _row(
                        name,
                        [
                            f"{m['cpu_ms_per_frame']:.1f}" if m and "cpu_ms_per_frame" in m else "-"
                            for m in ms
                        ],
                    )
                )
            budgets = [c.get("cpu_budget") for c in clips]
            out.append(
                _row(
                    "sum of the run's own stages",
                    [f"{b['sum_ms_per_frame']:.1f}" if b else "-" for b in budgets],
                )
            )
            out.append(
                _row(
                    "end to end (with verification)",
                    [
                        f"{c['e2e']['cpu_ms_per_frame']:.1f}"
                        if "cpu_ms_per_frame" in c.get("e2e", {})
                        else "-"
                        for c in clips
                    ],
                )
            )
            out.append(
                _row(
                    "ceiling: cores x 1000 / sum, frames/s",
                    [f"{b['ceiling_fps']:.2f}" if b else "-" for b in budgets],
                )
            )
            out.append("")
        knobs = [k for c in clips for k in c.get("knobs", [])]
        if knobs:
            first = clips[0]
            out.append(f"End to end on {first['label']}, one knob changed at a time:")
            out.append("")
            out.append("| run | frames/s | vs default (per round: lowest - highest) |")
            out.append("|---|---:|---:|")
            base = first["e2e"]["fps"]
            out.append(f"| default ({_opts(first['e2e'])}) | {_f(base)} | 1.00 |")
            for k in knobs:
                out.append(f"| {k['stage'][4:]} | {_f(k['fps'])} | {_vs_default(k, base)} |")
            out.append("")
    sweep = result.get("model_sweep", [])
    if sweep:
        renders = sorted({m["params"]["render_size"] for m in sweep})
        batches = sorted({m["params"]["batch_size"] for m in sweep})
        out.append(
            f"Model alone ({sweep[0]['params'].get('dtype')}, {sweep[0]['params'].get('device')}), "
            "frames/s by render size and batch size:"
        )
        out.append("")
        out.append(_row("render (input)", [f"batch {b}" for b in batches]))
        out.append("|---|" + "---:|" * len(batches))
        for r in renders:
            row = [m for m in sweep if m["params"]["render_size"] == r]
            shape = row[0]["params"]["input"]
            cells = [
                next((_f(m["fps"]) for m in row if m["params"]["batch_size"] == b), "-") for b in batches
            ]
            out.append(_row(f"{r} ({shape[-2]}x{shape[-1]})", cells))
        out.append("")
    variants = result.get("model_variants", [])
    if variants:
        p0 = variants[0]["params"]
        base = next((m for m in clips[0].get("stages", []) if m["stage"] == "model"), None) if clips else None
        out.append(
            f"Model alone at render {p0['render_size']}, batch {p0['batch_size']} ({p0['device']}), "
            "run in other ways (none of them is what the pipeline does today):"
        )
        out.append("")
        out.append("| variant | frames/s | vs the pipeline's call | ab change: mean, largest |")
        out.append("|---|---:|---:|---:|")
        if base is not None:
            out.append(
                f"| as the pipeline runs it ({base['params'].get('dtype')}) | {_f(base['fps'])} | 1.00 | 0 |"
            )
        for m in variants:
            ratio = f"{m['fps'] / base['fps']:.2f}" if base is not None else "-"
            out.append(
                f"| {m['params']['variant']} | {_f(m['fps'])} | {ratio} | "
                f"{m['params'].get('mean_ab_diff', 0):.3g}, {m['params']['max_ab_diff']:.3g} |"
            )
        out.append("")
    mem = result.get("memory")
    if mem:
        s, lg = mem["short"], mem["long"]
        out.append(f"Memory ({mem.get('clip')}, each run in a fresh process):")
        out.append("")
        out.append(
            "| clip | frames | peak RSS MiB | RSS after model load MiB | frames/s |"
            + (" peak CUDA MiB |" if "cuda_peak_allocated_mib" in s else "")
        )
        out.append("|---|---:|---:|---:|---:|" + ("---:|" if "cuda_peak_allocated_mib" in s else ""))
        for name, r in (("short", s), (f"{mem['scale']}x longer", lg)):
            cuda = f" {r['cuda_peak_allocated_mib']:.0f} |" if "cuda_peak_allocated_mib" in r else ""
            out.append(
                f"| {name} | {r['frames']} | {r['peak_rss_mib']:.0f} | {r['rss_after_model_load_mib']:.0f} | "
                f"{_f(r['fps'])} |{cuda}"
            )
        out.append("")
        out.append(
            f"Peak RSS of the longer clip / the shorter: **{mem['peak_rss_ratio']:.3f}** "
            f"({mem['peak_rss_growth_mib']:+.0f} MiB)."
        )
    return "\n".join(out)


def _row_name(m: dict[str, Any]) -> str:
    label = _stage_label(m).split(" (")[0] if m["stage"] in ("to_l", "decode") else _stage_label(m)
    return "[5] merge to full size" if m["stage"] == "merge" else label


def _cell(m: dict[str, Any] | None, clip: dict[str, Any]) -> str:
    if m is None:
        return "-"
    s = f"{_f(m['fps'])} ({_f(m['fps_min'])}..{_f(m['fps_max'])})"
    low = clip.get("slowest_stage")
    if low and m["params"].get("pipeline") and m["stage"] == low["stage"] and m["fps"] == low["fps"]:
        s = f"**{s}**"
    return s


def _opts(m: dict[str, Any]) -> str:
    p = m["params"]
    return f"render {p.get('render_size')}, batch {p.get('batch_size')}, {p.get('threads')} threads"
