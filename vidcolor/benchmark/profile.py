"""Where the time of one end-to-end run goes, thread by thread, from py-spy samples.

``python -m vidcolor.benchmark.profile --size 480p`` runs one ``colorize_video`` (the memory
child, in a fresh process) under ``py-spy record --threads --idle`` and sorts every sample of
each pipeline thread into: *working* (by the deepest vidcolor function on the stack: the model
call, merge, encode, ...), *waiting for input* (blocked reading its queue: the stage before is
slower) and *waiting for room* (blocked writing its queue: the stage after is slower). The
thread that never waits is the bottleneck; a stage that waits for input while the bottleneck
also waits shows a serialisation. py-spy is an optional tool: ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from vidcolor.durable import write_atomic

from .clip import cached_film_clip

_THREAD = re.compile(r"^thread \((?P<tid>\w+)\)(?:: (?P<name>[^;]*))?;(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+):(?P<line>\d+)\)$")
#: Stage threads of the runner and what their work is called here.
THREADS = {
    "vidcolor-decode": "[1] decode + [2] to L + key frames and their flow (+ guidance: tracking)",
    "vidcolor-model": "[3] model",
    "vidcolor-colour": "[4] smooth (+ guidance: colours applied)",
    "vidcolor-merge": "[5] merge",
    "MainThread": "[6] encode (the file check after it: packets counted, or both files decoded)",
    "vidcolor-verify": "[6] the output check beside the encoder (its packets decoded back)",
}


#: A function on the stack -> the stage it works for (first match, deepest frame first).
_WORK = (
    ("ModelStep.__call__", "model"),
    ("split_forward", "model"),
    ("Guide.plan", "guide: plan"),
    ("Guide.finish", "guide: finish"),
    ("TemporalSmoother.", "smooth"),
    ("make_batch", "to L"),
    ("merge_frame", "merge"),
    ("VideoWriter.", "encode"),
    ("LiveCheck.", "verify"),
    ("decode_frames", "decode"),
    ("_DecodePass.", "decode"),
)


def classify(stack: list[str]) -> str:
    """A sample's stack (outermost first) -> 'wait: input', 'wait: room' or 'work: <stage>'."""
    ours = [f for f in stack if "vidcolor/" in f and "vidcolor/benchmark/" not in f]
    if not ours:
        return "other"
    last = _FRAME.match(ours[-1])
    func = last.group("func") if last else ours[-1]
    queued = func == "LiveCheck._check" and any(f.startswith("get (queue.py:") for f in stack)
    if func == "Pipe.__iter__" or queued:  # the output check's thread waits on a queue of its own
        return "wait: input"
    if func == "Pipe.put":
        return "wait: room"
    if func == "StageGroup.join":
        return "wait: other stages"
    if any("verify_output" in f or "LiveCheck.result" in f for f in ours):
        return "work: verify"  # it decodes both files, or counts packets: not the decode stage
    for frame in reversed(ours):
        for key, stage in _WORK:
            if key in frame:
                return f"work: {stage}"
    return f"work: {func}"


def summarise(raw: str) -> dict[str, Any]:
    """py-spy raw (collapsed) output -> per pipeline thread: samples and their shares by category."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.splitlines():
        m = _THREAD.match(line.strip())
        if m is None:
            continue
        name = m.group("name") or m.group("tid")
        stack = m.group("stack").split(";")
        if name == "MainThread" and not any(
            "run_stages" in f or "verify_output" in f or "LiveCheck.result" in f for f in stack
        ):
            continue  # imports, model building: before the run
        per[name][classify(stack)] += int(m.group("count"))
    out: dict[str, Any] = {}
    for name, counts in per.items():
        if name not in THREADS:
            continue
        total = sum(counts.values())
        out[name] = {
            "stage": THREADS[name],
            "samples": total,
            "shares": {k: round(v / total, 4) for k, v in counts.most_common()},
            "waiting": round(sum(v for k, v in counts.items() if k.startswith("wait")) / total, 4),
        }
    return out


def profile_run(
    src: Path, options: dict[str, Any], rate: int = 50, model: str | None = None, raw_out: Path | None = None
) -> dict[str, Any]:
    """Record one colorize_video of ``src`` with py-spy and return :func:`summarise` of it."""
    from vidcolor.errors import UsageError

    spy = shutil.which("py-spy")
    if spy is None:
        raise UsageError("py-spy on the PATH", "none", "pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        dst = Path(tmp) / f"out{src.suffix}"
        cmd = [
            spy,
            "record",
            "--threads",
            "--idle",
            "--rate",
            str(rate),
            "--format",
            "raw",
            "-o",
            str(raw),
            "--",
        ]
        cmd += [sys.executable, "-m", "vidcolor.benchmark.memory", str(src), str(dst), "--options"]
        cmd += [json.dumps({"overwrite": True, **options}), *(["--model", model] if model else [])]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=7200)
        if proc.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"py-spy run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        # py-spy writes its own lines after the child's JSON line
        run = json.loads(next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")))
        text = raw.read_text()
        if raw_out is not None:
            write_atomic(raw_out, text)
    return {
        "source": str(src),
        "options": options,
        "frames": run["frames"],
        "fps": run["fps"],
        "rate_hz": rate,
        "threads": summarise(text),
    }


def markdown(prof: dict[str, Any], top: int = 4) -> str:
    lines = [
        f"Profile of one run ({prof['frames']} frames, {prof['fps']:.2f} frames/s under py-spy at "
        f"{prof['rate_hz']} Hz, options {prof['options'] or 'default'}):",
        "",
        "| thread | stages | waiting | where the time goes |",
        "|---|---|---:|---|",
    ]
    for name in THREADS:
        t = prof["threads"].get(name)
        if t is None:
            continue
        where = ", ".join(f"{k} {100 * v:.0f}%" for k, v in list(t["shares"].items())[:top])
        lines.append(f"| {name} | {t['stage']} | {100 * t['waiting']:.0f}% | {where} |")
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="profile one end-to-end run with py-spy, thread by thread")
    p.add_argument("input", nargs="?", type=Path, help="a film (default: a generated clip)")
    p.add_argument("--size", default="480p")
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--rate", type=int, default=50, help="samples per second")
    p.add_argument("--options", default="{}", help='ColorizeOptions changes as JSON, e.g. {"threads": 1}')
    p.add_argument("--model", default=None)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vidcolor-bench")
    p.add_argument("--out", type=Path, default=None, help="JSON results")
    p.add_argument(
        "--stacks", type=Path, default=None, help="keep py-spy's raw stacks here (collapsed format)"
    )
    a = p.parse_args(argv)
    src = a.input or cached_film_clip(a.work_dir, a.size, a.frames)
    prof = profile_run(src, json.loads(a.options), a.rate, a.model, a.stacks)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(a.out, json.dumps(prof, indent=1) + "\n")
    print(markdown(prof))


if __name__ == "__main__":
    _main()
