"""The record of a segmented run, kept beside its destination until the end: ``plan.json`` (what the
run is: source, options, cut points, under a key) and ``done.jsonl`` (one line per finished
segment: file, frames, size, sha256). A resumed run keeps every segment whose record and file agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch

from vidcolor.durable import sha256_file, write_atomic
from vidcolor.frames import SourceInfo
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.cuts import Segment
from vidcolor.version import __version__

PLAN_FILE = "plan.json"
DONE_FILE = "done.jsonl"
PLAN_VERSION = 1


def segment_dir(dst: str | os.PathLike[str]) -> Path:
    """The hidden folder beside ``dst`` that holds its segments while a run is unfinished."""
    dst = Path(dst)
    return dst.parent / f".{dst.name}.segments"


def run_key(
    src: Path, info: SourceInfo, options: ColorizeOptions, segments: list[Segment], model: str
) -> str:
    """What makes finished segments reusable: the same source file, settings, model and cuts."""
    st = src.stat()
    opts = dataclasses.asdict(options)
    for k in ("overwrite", "verify", "threads", "device", "batch_size"):
        opts.pop(k, None)  # these do not change the pictures of a segment
    doc = {
        "version": __version__,
        "source": str(src.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "options": opts,
        "model": model,
        "segments": [dataclasses.asdict(s) for s in segments],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def read_done(folder: Path) -> dict[int, dict[str, object]]:
    """Finished segments from done.jsonl; a torn last line (a kill mid-write) is ignored."""
    done: dict[int, dict[str, object]] = {}
    path = folder / DONE_FILE
    if not path.exists():
        return done
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
            done[int(rec["number"])] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return done


def segment_ok(folder: Path, rec: dict[str, object]) -> bool:
    path = folder / str(rec.get("file", ""))
    try:
        return (
            path.is_file()
            and path.stat().st_size == rec.get("size")
            and sha256_file(path) == rec.get("sha256")
        )
    except OSError:
        return False


def write_plan(folder: Path, key: str, segments: list[Segment], src: Path, dst: Path) -> None:
    doc = {
        "version": PLAN_VERSION,
        "key": key,
        "source": str(src),
        "destination": str(dst),
        "segments": [dataclasses.asdict(s) for s in segments],
    }
    write_atomic(folder / PLAN_FILE, json.dumps(doc, indent=1), durable=True)


def plan_key(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / PLAN_FILE).read_text())["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fingerprint(model: torch.nn.Module) -> str:
    """A hash of the model's weights: two models of one name (say, before and after training)
    must not share segments."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
