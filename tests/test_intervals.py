"""Bootstrap intervals over pictures, and the comparison of two calibration reports built on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidcolor.evaluate.intervals import paired_difference_interval, ratio_interval
from vidcolor.train import compare

GREY = [10.0, 12.0, 8.0, 11.0, 9.0, 14.0, 10.0, 13.0]


def test_the_ratio_interval_holds_the_ratio_and_shrinks_with_more_pictures() -> None:
    rng = np.random.default_rng(1)
    values = [g * rng.uniform(0.8, 1.2) for g in GREY]
    ratio = sum(values) / sum(GREY)
    lo, hi = ratio_interval(values, GREY)
    assert lo < ratio < hi
    lo4, hi4 = ratio_interval(values * 4, GREY * 4)
    assert lo4 < ratio < hi4 and hi4 - lo4 < 0.7 * (hi - lo)
    assert ratio_interval(GREY, GREY) == (1.0, 1.0)  # every picture at the baseline: no doubt
    assert ratio_interval(values, GREY) == (lo, hi)  # the same draws every time


def test_a_paired_difference_is_told_apart_only_when_it_holds_picture_by_picture() -> None:
    a = [g * 1.05 for g in GREY]
    better = [x - 0.5 for x in a]  # lower on every picture
    lo, hi = paired_difference_interval(a, better, GREY)
    # The same 0.5 on every picture: only the resampled baseline moves the difference.
    assert -0.5 / min(GREY) <= lo <= hi <= -0.5 / max(GREY) < 0
    # Better on some pictures and worse on others by as much: no verdict.
    mixed = [x + (1.0 if i % 2 else -1.0) for i, x in enumerate(a)]
    lo, hi = paired_difference_interval(a, mixed, GREY)
    assert lo < 0 < hi
    with pytest.raises(ValueError, match="one length"):
        paired_difference_interval(a, better[:-1], GREY)


def _report(per_picture: list[list[float]], colourfulness: list[float], grey: list[float]) -> dict[str, Any]:
    readouts = [
        {
            "head": "class",
            "class_readout": "mean",
            "temperature": 0.38,
            "prior_correction": 0.75,
            "confidence_gamma": 2.0,
            "blend": 1.0,
            "saturation": s,
            "ciede2000": sum(c) / len(c),
            "ciede2000_vs_grey": sum(c) / sum(grey),
            "colourfulness_vs_truth": f,
            "per_picture_ciede2000": c,
        }
        for s, c, f in zip((1.0, 1.5), per_picture, colourfulness, strict=True)
    ]
    chosen = {k: v for k, v in readouts[0].items() if k != "per_picture_ciede2000"}
    return {
        "chosen": chosen,
        "all": readouts,
        "pictures": {"grey_ciede2000": grey, "truth_colourfulness": grey},
    }


def test_compare_takes_each_choice_or_the_one_at_a_colourfulness(tmp_path: Path, capsys: Any) -> None:
    a = _report([[g * 0.95 for g in GREY], [g * 1.10 for g in GREY]], [0.5, 0.7], GREY)
    b = _report([[g * 0.90 for g in GREY], [g * 1.02 for g in GREY]], [0.5, 0.7], GREY)
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p, r in zip(paths, (a, b), strict=True):
        p.write_text(json.dumps(r))
    assert compare.main([str(p) for p in paths]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pictures"] == len(GREY) and out["verdict"] == "b lower"
    assert out["a"]["ciede2000_vs_grey"] == pytest.approx(0.95) and out["b_minus_a"] == pytest.approx(-0.05)
    lo, hi = out["b_minus_a_90"]
    assert lo <= -0.05 <= hi < 0
    # At a colourfulness only the saturated readouts reach, those are compared.
    assert compare.main([*map(str, paths), "--min-colourfulness", "0.65"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["a"]["colourfulness_vs_truth"] == 0.7 and out["b_minus_a"] == pytest.approx(-0.08)


def test_compare_refuses_reports_of_other_pictures_or_without_per_picture_scores(tmp_path: Path) -> None:
    a = _report([GREY, GREY], [0.5, 0.7], GREY)
    other = _report([GREY[:-1], GREY[:-1]], [0.5, 0.7], GREY[:-1])
    old = {
        "chosen": a["chosen"],
        "all": [{k: v for k, v in r.items() if k != "per_picture_ciede2000"} for r in a["all"]],
    }
    paths = {}
    for name, r in (("a", a), ("other", other), ("old", old)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(r))
    with pytest.raises(SystemExit, match="same pictures"):
        compare.main([str(paths["a"]), str(paths["other"])])
    with pytest.raises(SystemExit, match="per-picture scores .* calibrate it again"):
        compare.main([str(paths["a"]), str(paths["old"])])
    with pytest.raises(SystemExit, match="expected a calibration report"):
        compare.main([str(paths["a"]), str(tmp_path / "missing.json")])
