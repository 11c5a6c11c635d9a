"""A folder of colour stills (an archive's photographs), indexed once by a compact descriptor each.

The descriptor of a picture says what it shows and how its light is laid out, in one unit vector:

- the colorizer encoder's pooled head embedding (1280 values: the global average of its last 1x1
  convolution, the vector the model's global-context fusion reads), square-rooted (the values
  are non-negative and bursty; the square root lets many weak features count against a few
  strong ones) and normalised;
- the picture's lightness laid out on a coarse ``LAYOUT`` x ``LAYOUT`` grid (mean CIE L of each
  block, less the picture's mean, normalised): two views of the same street share it, a portrait
  and a landscape of similar things do not.

Both parts are weighted so that the cosine similarity of two descriptors is
``(1 - LAYOUT_WEIGHT) * cos(embedding) + LAYOUT_WEIGHT * cos(layout)``. A still's descriptor
is computed from its own L exactly as a film frame's is at run time (same render size, same
padding), so a grey frame and its colour original describe alike.

The index of a folder is kept in a cache file, ``.vidcolor-index.npz`` in the folder itself, or,
when the folder cannot be written (a read-only archive share), in the user cache
(``$VIDCOLOR_CACHE`` / ``$XDG_CACHE_HOME/vidcolor`` / ``~/.cache/vidcolor``, under
``reference-index/``, named by a hash of the folder's path). The cache records, per file, its
size and modification time (ns): a run describes only the files that were added or changed
since, and forgets the removed ones. A cache made for another encoder (its weights' hash),
render size or descriptor layout, or one that cannot be read, is stale and is rebuilt whole.
Files that are not stills (by extension) or cannot be decoded are listed once and skipped; the
undecodable ones are remembered with their size and time, so they are not decoded again.

Memory holds the descriptors (about 5 KiB per still), never the pictures.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidcolor.durable import replacing
from vidcolor.errors import InputError, UsageError, VidcolorError
from vidcolor.formats import STILL_SUFFIXES
from vidcolor.guidance.reference import has_encoder, load_rgb, still_features
from vidcolor.models.download import cache_dir
from vidcolor.references import Reference

if TYPE_CHECKING:
    from vidcolor.stages.model_step import ModelStep

CACHE_NAME = ".vidcolor-index.npz"
FORMAT = 1  # of the cache file; another value makes a cache stale
LAYOUT = 4  # blocks per side of the coarse layout of L
LAYOUT_WEIGHT = 0.25  # share of the layout in the descriptors' cosine similarity


def global_descriptors(
    feats: dict[Any, torch.Tensor], L: torch.Tensor, content: tuple[int, int]
) -> torch.Tensor:
    """Per picture of a batch, its descriptor (N, 1280 + LAYOUT^2) float32 of unit length, from the
    encoder's features ``feats`` and its CIE L (N, 1, hp, wp) whose picture area is the top-left
    ``content`` = (ch, cw) render pixels."""
    head = F.normalize(feats["head"].float().clamp(min=0).sqrt(), dim=1)
    ch, cw = content
    grid = F.adaptive_avg_pool2d(L[:, :, :ch, :cw].float(), LAYOUT).flatten(1)
    grid = F.normalize(grid - grid.mean(dim=1, keepdim=True), dim=1)
    w = LAYOUT_WEIGHT
    return torch.cat([head * (1 - w) ** 0.5, grid.to(head.device) * w**0.5], dim=1)


def encoder_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (hex, 16 digits) of the weights the descriptors depend on: the encoder's when the
    model has one apart, else the whole model's."""
    part = getattr(model, "encoder", model)
    h = hashlib.sha256()
    for name, t in sorted(part.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def describe_still(step: ModelStep, rgb: np.ndarray, render: int) -> torch.Tensor:
    """The descriptor (D,) float32 of a colour still RGB uint8 (H, W, 3) at short side ``render``."""
    lab, feats, content = still_features(step, rgb, render)
    ph, pw = feats[16].shape[2] * 16, feats[16].shape[3] * 16
    L = np.zeros((ph, pw), np.float32)
    L[: content[0], : content[1]] = lab[..., 0]
    return global_descriptors(feats, torch.from_numpy(L)[None, None], content)[0].cpu()


@dataclass
class StillIndex:
    """The descriptors of a folder's stills; names are paths relative to the folder (POSIX)."""

    folder: Path
    names: list[str]
    desc: torch.Tensor  # (N, D) float32, unit rows
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why), files left out
    cache: Path | None = None  # where the index is kept (None: it could not be written anywhere)
    described: int = 0  # stills described on this run (added, changed, or all on a rebuild)
    removed: int = 0  # stills of the cache no longer in the folder
    stale: str | None = None  # why the cache was rebuilt whole, if it was

    def path(self, i: int) -> Path:
        return self.folder / self.names[i]

    def notes(self) -> list[str]:
        """One line on the index, and one listing the files left out (if any)."""
        where = f", kept in {self.cache}" if self.cache is not None else ""
        line = f"reference folder {self.folder}: {len(self.names)} stills indexed{where}"
        if self.stale:
            line += f" (cache rebuilt: {self.stale})"
        elif self.described or self.removed:
            line += f" ({self.described} described, {self.removed} removed since the last run)"
        out = [line]
        if self.skipped:
            shown = ", ".join(f"{n} ({why})" for n, why in self.skipped[:10])
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            out.append(f"{len(self.skipped)} files in the reference folder skipped: {shown}{more}")
        return out


def check_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder, or a UsageError when it is missing, not a folder, or holds no still."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        what = "a file" if path.exists() else "nothing"
        raise UsageError(
            "a folder of colour stills for --reference-dir", f"{what} at {path}", "check the path"
        )
    if not any(True for _ in _stills(path)):
        raise UsageError(
            "a --reference-dir holding colour stills (PNG, JPEG, TIFF, BMP or WebP, at any depth)",
            f"none in {path}",
            "point it at the folder of photographs",
        )
    return path


def _walk(folder: Path) -> Iterator[Path]:
    """Every file under ``folder``, hidden files and folders left out, in a stable order."""
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith("."):
                yield Path(root) / f


def _stills(folder: Path) -> Iterator[Path]:
    return (p for p in _walk(folder) if p.suffix.lower() in STILL_SUFFIXES)


def cache_path(folder: Path) -> Path:
    """Where the index of ``folder`` is kept: in it when it can be written, else the user cache."""
    if os.access(folder, os.W_OK | os.X_OK):
        return folder / CACHE_NAME
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]
    return cache_dir() / "reference-index" / f"{key}.npz"


def _read_cache(path: Path, key: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray] | str:
    """(meta, descriptors) of a cache made with ``key``, or why it cannot be used."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            desc = np.asarray(z["desc"], np.float32)
    except FileNotFoundError:
        return "none yet"
    except Exception as e:  # any unreadable cache (torn, foreign, old numpy) is rebuilt
        return f"unreadable ({type(e).__name__})"
    if not isinstance(meta, dict) or meta.get("key") != key:
        return "made with another model, render size or descriptor"
    if len(meta.get("stills", [])) != len(desc):
        return "its descriptors do not match its list of files"
    return meta, desc


def _write_cache(path: Path, meta: dict[str, Any], desc: np.ndarray) -> Path | None:
    """Write the cache atomically; None when it cannot be written (the run goes on without)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), desc=desc.astype(np.float32))
    except (OSError, VidcolorError):
        return None
    return path


def index_folder(
    folder: str | os.PathLike[str], step: ModelStep, render: int, *, progress: bool = False
) -> StillIndex:
    """The index of ``folder`` for the model of ``step`` at short side ``render``: read from its
    cache, the added and changed stills described (with a progress bar when ``progress``), the
    removed ones dropped, and the cache written back. UsageError for a missing or empty folder,
    or a model whose features cannot be matched."""
    path = check_folder(folder)
    if not has_encoder(step.model):
        raise UsageError(
            "a vidcolor model for --reference-dir (it matches on the model's own features)",
            step.name,
            "use the default model, or drop --reference-dir",
        )
    key = {
        "format": FORMAT,
        "encoder": encoder_fingerprint(step.model),
        "render": render,
        "stride": step.stride,
        "layout": LAYOUT,
        "layout_weight": LAYOUT_WEIGHT,
    }
    where = cache_path(path)
    cached = _read_cache(where, key)
    old: dict[str, tuple[int, int, int]] = {}  # name -> (size, mtime_ns, row)
    bad_old: dict[str, tuple[int, int, str]] = {}  # name -> (size, mtime_ns, why)
    old_desc = np.zeros((0, 0), np.float32)
    stale = None
    if isinstance(cached, str):
        stale = None if cached == "none yet" else cached
    else:
        meta, old_desc = cached
        old = {n: (s, m, i) for i, (n, s, m) in enumerate(meta["stills"])}
        bad_old = {n: (s, m, why) for n, s, m, why in meta.get("skipped", [])}
    names: list[str] = []
    rows: list[np.ndarray | None] = []
    stats: list[tuple[int, int]] = []
    skipped: list[tuple[str, str]] = []
    bad: list[tuple[str, int, int, str]] = []
    todo: list[int] = []
    for p in _walk(path):
        name = p.relative_to(path).as_posix()
        if p.suffix.lower() not in STILL_SUFFIXES:
            skipped.append((name, "not a still"))
            continue
        try:
            st = p.stat()
        except OSError as e:
            skipped.append((name, e.strerror or "cannot be read"))
            continue
        stat = (st.st_size, st.st_mtime_ns)
        if name in bad_old and bad_old[name][:2] == stat:
            skipped.append((name, bad_old[name][2]))
            bad.append((name, *stat, bad_old[name][2]))
            continue
        names.append(name)
        stats.append(stat)
        if name in old and old[name][:2] == stat:
            rows.append(old_desc[old[name][2]])
        else:
            rows.append(None)
            todo.append(len(names) - 1)
    removed = len(set(old) - set(names))
    keep = np.ones(len(names), bool)
    for i in tqdm(todo, desc=f"indexing {path.name}", unit="still", disable=not progress or not todo):
        try:
            rgb = load_rgb(Reference(path / names[i]))
        except InputError as e:
            why = "cannot be read" if "readable" in e.expected else "not a decodable picture"
            skipped.append((names[i], why))
            bad.append((names[i], *stats[i], why))
            keep[i] = False
            continue
        rows[i] = describe_still(step, rgb, render).numpy()
    names = [n for n, k in zip(names, keep, strict=True) if k]
    stats = [s for s, k in zip(stats, keep, strict=True) if k]
    got = [r for r, k in zip(rows, keep, strict=True) if k and r is not None]
    desc = np.stack(got).astype(np.float32) if got else np.zeros((0, 1), np.float32)
    written: Path | None = where
    if todo or removed or isinstance(cached, str) or len(bad) != len(bad_old):
        meta = {
            "key": key,
            "stills": [[n, s, m] for n, (s, m) in zip(names, stats, strict=True)],
            "skipped": [list(b) for b in bad],
        }
        written = _write_cache(where, meta, desc)
    if not names:
        raise UsageError(
            "a --reference-dir holding colour stills that can be decoded",
            f"none in {path} ({len(skipped)} files skipped)",
            "point it at the folder of photographs",
        )
    return StillIndex(
        path,
        names,
        torch.from_numpy(desc),
        sorted(skipped),
        written,
        described=len(todo) - int((~keep).sum()),
        removed=removed,
        stale=stale,
    )
