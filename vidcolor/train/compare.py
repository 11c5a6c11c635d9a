"""Whether one checkpoint's colour beats another's on the same validation pictures, or the split
cannot tell them apart.

    python -m vidcolor.train.compare runs/cal-A.json runs/cal-B.json --min-colourfulness 0.65

Takes two reports of ``python -m vidcolor.train.calibrate --report`` made on the same pictures
(the same corpus and split), the readout each calibration chooses at ``--min-colourfulness``
(default: each report's own choice), and prints one JSON line: both CIEDE2000 / grey ratios, B - A,
and the 90% interval of B - A over the pictures resampled together (a paired bootstrap). An
interval that holds 0 means the split cannot tell the two apart. Each readout is chosen once, on
all the pictures; the interval is of which pictures the split happens to hold, not of that choice
(which flatters both sides alike).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vidcolor.evaluate.intervals import LEVEL, paired_difference_interval
from vidcolor.train.calibrate import PER_PICTURE, READOUT_KEYS, choose


def _report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"expected a calibration report (JSON) at {path}, found: {exc}") from None
    if "pictures" not in report or not all(PER_PICTURE in r for r in report.get("all", [])):
        raise SystemExit(
            f"expected per-picture scores in {path}, found none: calibrate it again with this version's"
            " `python -m vidcolor.train.calibrate --report`"
        )
    return dict(report)


def _readout(report: dict[str, Any], min_colourfulness: float | None) -> dict[str, Any]:
    if min_colourfulness is not None:
        return choose(report["all"], min_colourfulness)
    chosen = report["chosen"]
    return next(r for r in report["all"] if all(r[k] == chosen[k] for k in READOUT_KEYS))


def compare(a: dict[str, Any], b: dict[str, Any], min_colourfulness: float | None = None) -> dict[str, Any]:
    """Both reports' chosen ratios and the paired interval of their difference (B - A)."""
    grey = a["pictures"]["grey_ciede2000"]
    if grey != b["pictures"]["grey_ciede2000"]:
        raise SystemExit(
            f"expected two reports on the same pictures, found {len(grey)} and"
            f" {len(b['pictures']['grey_ciede2000'])} pictures that differ:"
            " calibrate both on one corpus and split"
        )
    ra, rb = _readout(a, min_colourfulness), _readout(b, min_colourfulness)
    lo, hi = paired_difference_interval(ra[PER_PICTURE], rb[PER_PICTURE], grey)
    return {
        "pictures": len(grey),
        "a": {k: ra[k] for k in ("ciede2000_vs_grey", "colourfulness_vs_truth")},
        "b": {k: rb[k] for k in ("ciede2000_vs_grey", "colourfulness_vs_truth")},
        "b_minus_a": rb["ciede2000_vs_grey"] - ra["ciede2000_vs_grey"],
        f"b_minus_a_{round(LEVEL * 100)}": [lo, hi],
        "verdict": "b lower" if hi < 0 else "a lower" if lo > 0 else "not told apart",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="calibration report of the reference")
    ap.add_argument("b", type=Path, help="calibration report of the candidate")
    ap.add_argument("--min-colourfulness", type=float, default=None)
    args = ap.parse_args(argv)
    print(json.dumps(compare(_report(args.a), _report(args.b), args.min_colourfulness)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
