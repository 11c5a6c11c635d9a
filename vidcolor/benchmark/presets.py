"""What an encoder speed preset costs in fidelity: ``python -m vidcolor.benchmark.presets FILM``.

The film is colorized once losslessly (FFV1) and once per preset (libx264 at the default CRF);
each output's planes are compared with the lossless one's, frame by frame in order: PSNR of Y, Cb
and Cr over the whole film (squared errors pooled), and the file size. Writes JSON (``--out``).
The speed of the same presets end to end is ``vidcolor bench --knob preset=NAME``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from vidcolor.durable import write_atomic
from vidcolor.options import ColorizeOptions

PRESETS = ("medium", "fast", "faster", "veryfast")


def _planes(path: Path) -> Iterator[list[np.ndarray]]:
    """The 8-bit planes of every frame of ``path``, line padding stripped."""
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yield [
                np.frombuffer(memoryview(p), np.uint8).reshape(-1, p.line_size)[: p.height, : p.width]
                for p in frame.planes
            ]


def plane_psnr(out: Path, ref: Path) -> list[float]:
    """PSNR (dB) of each plane of ``out`` against ``ref`` over all frames (inf where identical)."""
    se: list[float] = []
    n: list[int] = []
    for a, b in zip(_planes(out), _planes(ref), strict=True):
        for k, (pa, pb) in enumerate(zip(a, b, strict=True)):
            if k == len(se):
                se.append(0.0)
                n.append(0)
            se[k] += float(((pa.astype(np.int32) - pb.astype(np.int32)) ** 2).sum())
            n[k] += pa.size
    return [math.inf if e == 0 else 10 * math.log10(255**2 / (e / m)) for e, m in zip(se, n, strict=True)]


def measure(
    film: Path, presets: tuple[str, ...], work: Path, options: ColorizeOptions | None = None
) -> dict[str, dict[str, float]]:
    """Preset -> its PSNR of Y, Cb and Cr against the lossless output (dB) and its size (bytes)."""
    from vidcolor.pipeline.run import colorize_video

    ref = work / "lossless.mkv"
    base = options or ColorizeOptions()
    colorize_video(film, ref, replace(base, codec="ffv1", overwrite=True))
    rows: dict[str, dict[str, float]] = {}
    for preset in presets:
        out = work / f"{preset}.mp4"
        colorize_video(film, out, replace(base, preset=preset, overwrite=True))
        y, cb, cr = plane_psnr(out, ref)
        rows[preset] = {
            "psnr_y": round(y, 2),
            "psnr_cb": round(cb, 2),
            "psnr_cr": round(cr, 2),
            "bytes": out.stat().st_size,
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("film", type=Path)
    ap.add_argument("--presets", default=",".join(PRESETS), help="comma separated x264 presets")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/presets.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vidcolor-presets-") as tmp:
        rows = measure(args.film, tuple(p for p in args.presets.split(",") if p), Path(tmp))
    write_atomic(
        args.out, json.dumps({"film": str(args.film), "codec": "libx264", "presets": rows}, indent=1)
    )
    for name, row in rows.items():
        print(name, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
