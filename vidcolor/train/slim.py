"""A training checkpoint without what only resuming needs: half the weights' size, no optimizer.

A run's ``last.pt`` and ``best.pt`` hold the optimizer's state (twice the weights again) in float32:
about 58 MB for vidcolor-lite. The slim copy keeps the weights in float16 (batch-norm statistics
stay float32, as in the shipped file), the recipe, metrics and step, and the rebalancing weights
that calibration divides back out (``train/calibrate.py --prior-corrections``): about 10 MB, small
enough to bring back from a machine that trained it.

    python -m vidcolor.train.slim runs/X/last.pt runs/X/last-slim.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidcolor.errors import VidcolorError
from vidcolor.models import load, read_checkpoint, save_checkpoint


def slim_copy(src: Path, dest: Path) -> Path:
    """Write the slim copy of the checkpoint ``src`` at ``dest`` (atomically); returns ``dest``."""
    ckpt = read_checkpoint(src)
    model = load(src, device="cpu", half=False)
    extra = {k: v for k, v in ckpt.get("extra", {}).items() if k == "rebalance_weights"}
    return save_checkpoint(
        dest,
        model,
        data=ckpt["data"],
        recipe=ckpt["recipe"],
        metrics=ckpt.get("metrics", {}),
        step=ckpt["step"],
        git_sha=ckpt.get("git_sha"),
        extra=extra or None,
        half=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("dest", type=Path)
    args = ap.parse_args(argv)
    try:
        out = slim_copy(args.checkpoint, args.dest)
    except VidcolorError as e:
        print(e.line(), file=sys.stderr)
        return e.exit_code
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
