"""Training data: colour images from folders, tar shards of images, and frames sampled from videos.

Everything is loaded once into memory as RGB uint8, resized so that the short side is at most
``max_side`` pixels: the corpus is small (hundreds of photos), and random crops from RAM keep two CPU
cores busy with the network instead of with JPEG decoding.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcolor.errors import InputError
from vidcolor.formats import FILM_SUFFIXES, STILL_SUFFIXES

TAR_EXTS = (".tar", ".tar.gz", ".tgz")
TRAIN_SIDE = 256  # px: the short side every picture is loaded at (a crop then takes part of it)


@dataclass(frozen=True)
class Sample:
    """One training picture. ``group`` ties together pictures of one scene (tiles of one photo,
    frames of one video) so that the validation split never shares a scene with training."""

    name: str
    group: str
    rgb: np.ndarray  # (H, W, 3) uint8 sRGB


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """A picture (H, W, C) with its short side cut to ``max_side`` px (area averaging); no larger."""
    h, w = rgb.shape[:2]
    s = max_side / min(h, w)
    if s >= 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _decode_image(data: bytes) -> np.ndarray | None:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        return None
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def _is_colour(rgb: np.ndarray) -> bool:
    """Grey pictures teach the network nothing but 'leave it grey': drop them."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
    chroma = np.abs(small - small.mean(axis=2, keepdims=True)).mean()
    return bool(chroma > 2.0)


def _manifest_groups(folder: Path) -> dict[str, str]:
    """file -> original_path from a corpus manifest.csv, when the folder has one."""
    m = folder / "manifest.csv"
    if not m.is_file():
        return {}
    with m.open(newline="", encoding="utf-8") as f:
        return {row["file"]: row["original_path"] for row in csv.DictReader(f)}


def _video_frames(path: Path, every_s: float, max_frames: int) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        if not c.streams.video:
            return
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        next_t = 0.0
        n = 0
        for frame in c.decode(stream):
            t = float(frame.time) if frame.time is not None else next_t
            if t + 1e-6 >= next_t:
                yield frame.to_ndarray(format="rgb24")
                n += 1
                next_t = t + every_s
                if n >= max_frames:
                    return


def load_corpus(
    dirs: Sequence[str | Path],
    max_side: int = TRAIN_SIDE,
    video_every_s: float = 2.0,
    video_max_frames: int = 30,
) -> list[Sample]:
    """Load every colour picture under ``dirs`` (folders, tar shards, videos, or single files)."""
    samples: list[Sample] = []
    for d in map(Path, dirs):
        if not d.exists():
            raise InputError(f"a training folder or file at {d}", "nothing there", "check the --data paths")
        files = sorted(p for p in d.rglob("*") if p.is_file()) if d.is_dir() else [d]
        base = d if d.is_dir() else d.parent
        groups = _manifest_groups(base)
        for p in files:
            rel = p.relative_to(base).as_posix()
            ext = p.suffix.lower()
            if ext in STILL_SUFFIXES:
                rgb = _decode_image(p.read_bytes())
                if rgb is not None and _is_colour(rgb):
                    samples.append(Sample(rel, groups.get(rel, rel), shrink(rgb, max_side)))
            elif p.name.lower().endswith(TAR_EXTS):
                with tarfile.open(p) as tf:
                    for m in tf:
                        if m.isfile() and Path(m.name).suffix.lower() in STILL_SUFFIXES:
                            fobj = tf.extractfile(m)
                            rgb = _decode_image(fobj.read()) if fobj else None
                            if rgb is not None and _is_colour(rgb):
                                name = f"{rel}::{m.name}"
                                samples.append(Sample(name, name, shrink(rgb, max_side)))
            elif ext in FILM_SUFFIXES:
                for i, rgb in enumerate(_video_frames(p, video_every_s, video_max_frames)):
                    if _is_colour(rgb):
                        samples.append(Sample(f"{rel}#{i}", rel, shrink(rgb, max_side)))
    if not samples:
        raise InputError(
            "colour images, tar shards of images or videos",
            f"none in {', '.join(map(str, dirs))}",
            "point --data at the training corpus (see shared/data/train/README.md)",
        )
    return samples


def split(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split by scene group, deterministically: a group's hash decides its side."""
    train: list[Sample] = []
    val: list[Sample] = []
    for s in samples:
        h = int(hashlib.sha256(f"{seed}:{s.group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(s)
    return train, val


def corpus_id(samples: Sequence[Sample]) -> str:
    """A short fingerprint of the corpus (names and sizes), recorded in checkpoints."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.name}:{s.rgb.shape}".encode())
    return f"{len(samples)} pictures, sha256:{h.hexdigest()[:16]}"


def encode_png(rgb: np.ndarray) -> bytes:
    """For tests and tar-shard writers: RGB uint8 -> PNG bytes."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return io.BytesIO(buf.tobytes()).getvalue()
