"""A training corpus made small enough to travel: every picture at the size training reads it.

Training loads each picture with its short side cut to 256 px (``data.load_corpus``), so a copy
of a corpus folder at that size trains on the same pictures, and takes a fraction of the space:
the three corpora of the shipped run (160 MB) pack to 47 MB, small enough to send with a training
run to a machine with a GPU. Each folder is copied with the same relative names: pictures larger
than the short side are shrunk (area averaging) and written again in their own format (JPEG at
``quality``, chroma at full resolution); smaller ones and every other file (``manifest.csv``, and
``ATTRIBUTION.md``: licence and attribution travel with the pictures) are copied as they are.
Scene groups come from the manifest's names, so the copy splits into training and validation
exactly as the original.

    python -m vidcolor.train.pack /data/vidcolor-train /data/vidcolor-extra /data/vidcolor-extra2 \\
        --out /tmp/corpus-small

Deterministic: the same folders give byte-identical copies. Files are written whole (a failure
leaves no half-written picture); a copy's folder ``OUT/NAME`` is named after its source folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from vidcolor.durable import replacing, write_atomic
from vidcolor.errors import InputError, UsageError, VidcolorError
from vidcolor.formats import STILL_SUFFIXES
from vidcolor.train.data import TRAIN_SIDE, shrink

JPEG_QUALITY = 85  # the shipped run's three corpora pack to 47 MB, inside what a GPU run can carry


@dataclass
class Packed:
    """What :func:`pack_folder` wrote: files, of which pictures shrunk, and bytes in and out."""

    files: int = 0
    shrunk: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def pack_folder(src: Path, dest: Path, short_side: int = TRAIN_SIDE, quality: int = JPEG_QUALITY) -> Packed:
    """Copy the corpus folder ``src`` to ``dest`` (made if missing) with every still whose short
    side is above ``short_side`` px shrunk to it; hidden files and folders (a builder's state) are
    left out."""
    if not src.is_dir():
        raise InputError(f"a corpus folder at {src}", "no folder there", "pass the corpus folders to pack")
    out = Packed()
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        out.files += 1
        out.bytes_in += p.stat().st_size
        data = _shrunk(p, short_side, quality) if p.suffix.lower() in STILL_SUFFIXES else None
        if data is None:
            with replacing(target) as tmp:
                shutil.copyfile(p, tmp)
        else:
            write_atomic(target, data)
            out.shrunk += 1
        out.bytes_out += target.stat().st_size
    return out


def _shrunk(path: Path, short_side: int, quality: int) -> bytes | None:
    """The still at ``path`` shrunk to ``short_side`` and encoded again in its own format, or None
    when it is no larger (or cannot be read: it is then copied, and training skips it as before)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or min(img.shape[:2]) <= short_side:
        return None
    small = shrink(img, short_side)
    suffix = path.suffix.lower()
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        # Full-resolution chroma, as the corpus builders write: halved chroma would blur the colour
        # the network learns from.
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ]
    ok, buf = cv2.imencode(suffix, small, params)
    return buf.tobytes() if ok else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpora", nargs="+", type=Path, metavar="CORPUS", help="corpus folders")
    ap.add_argument("--out", type=Path, required=True, help="folder that receives one copy per corpus")
    ap.add_argument("--short-side", type=int, default=TRAIN_SIDE)
    ap.add_argument("--quality", type=int, default=JPEG_QUALITY, help="JPEG quality of shrunk pictures")
    args = ap.parse_args(argv)
    try:
        names = [c.resolve().name for c in args.corpora]
        if len(set(names)) != len(names):
            raise UsageError(
                "corpus folders of different names", ", ".join(names), "rename or link one of them"
            )
        for corpus, name in zip(args.corpora, names, strict=True):
            r = pack_folder(corpus, args.out / name, args.short_side, args.quality)
            print(
                f"{corpus} -> {args.out / name}: {r.files} files ({r.shrunk} pictures shrunk), "
                f"{r.bytes_in / 1e6:.1f} -> {r.bytes_out / 1e6:.1f} MB"
            )
    except VidcolorError as e:
        print(e.line(), file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
