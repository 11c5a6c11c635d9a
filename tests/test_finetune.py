"""Fine-tuning kit: the packed corpus, a run started from a checkpoint, slim checkpoints, and the
GPU script (run here on the CPU with a budget of seconds)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny_training import picture, tiny_run

from vidcolor.errors import WeightsError
from vidcolor.models import read_checkpoint
from vidcolor.models.colorizer import ColorizerConfig
from vidcolor.train import pack, slim
from vidcolor.train.data import TRAIN_SIDE, load_corpus, split
from vidcolor.train.loop import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def big_corpus(tmp_path: Path) -> Path:
    """A corpus folder as the builders write it: JPEGs (some above the training size, two tiles of
    one scene), a PNG, manifest.csv, ATTRIBUTION.md and the builder's hidden state."""
    root = tmp_path / "corpus"
    (root / "pkg").mkdir(parents=True)
    rows = []
    for i, (h, w) in enumerate([(400, 600), (300, 300), (200, 260), (512, 384), (600, 400), (240, 320)]):
        name = f"pkg/p{i}.jpg"
        cv2.imwrite(str(root / name), cv2.cvtColor(picture(i, h, w), cv2.COLOR_RGB2BGR))
        rows.append({"file": name, "original_path": "scene-a" if i in (0, 1) else f"orig{i}"})
    cv2.imwrite(str(root / "pkg/q.png"), picture(7, 300, 500))
    rows.append({"file": "pkg/q.png", "original_path": "orig-q"})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "original_path"])
        writer.writeheader()
        writer.writerows(rows)
    (root / "ATTRIBUTION.md").write_text("# who made each picture\n")
    (root / ".state").mkdir()
    (root / ".state" / "pkg.json").write_text("{}")
    return root


def test_pack_shrinks_to_the_training_size_and_keeps_names_groups_and_split(
    tmp_path: Path, big_corpus: Path
) -> None:
    out = tmp_path / "packed"
    assert pack.main([str(big_corpus), "--out", str(out)]) == 0
    copy = out / "corpus"
    assert (copy / "ATTRIBUTION.md").read_text() == (big_corpus / "ATTRIBUTION.md").read_text()
    assert (copy / "manifest.csv").read_bytes() == (big_corpus / "manifest.csv").read_bytes()
    assert not (copy / ".state").exists()
    for p in (copy / "pkg").iterdir():
        img = cv2.imread(str(p))
        orig = cv2.imread(str(big_corpus / "pkg" / p.name))
        assert img is not None and orig is not None
        assert min(img.shape[:2]) == min(TRAIN_SIDE, min(orig.shape[:2]))
    small = copy / "pkg" / "p2.jpg"  # short side 200: copied as it is
    assert small.read_bytes() == (big_corpus / "pkg" / "p2.jpg").read_bytes()
    a, b = load_corpus([big_corpus]), load_corpus([copy])
    assert [(s.name, s.group, s.rgb.shape) for s in a] == [(s.name, s.group, s.rgb.shape) for s in b]
    for x, y in zip(a, b, strict=True):  # the same picture, up to JPEG's rounding
        assert np.abs(x.rgb.astype(int) - y.rgb.astype(int)).mean() < 3.0
    for seed in range(3):
        assert [s.name for s in split(a, 0.4, seed)[1]] == [s.name for s in split(b, 0.4, seed)[1]]
    # Deterministic: packing again gives the same bytes.
    assert pack.main([str(big_corpus), "--out", str(tmp_path / "again")]) == 0
    for p in sorted(copy.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "again" / "corpus" / p.relative_to(copy)).read_bytes()


def test_pack_refuses_two_corpora_of_one_name(tmp_path: Path, big_corpus: Path, capsys) -> None:
    other = tmp_path / "elsewhere" / "corpus"
    other.mkdir(parents=True)
    assert pack.main([str(big_corpus), str(other), "--out", str(tmp_path / "p")]) == 5
    err = capsys.readouterr().err
    assert err.startswith("vidcolor: error: expected corpus folders of different names")
    assert err.count("\n") == 1
    assert pack.main([str(tmp_path / "missing"), "--out", str(tmp_path / "p")]) == 2


def test_a_run_can_start_from_a_checkpoint_and_tune_its_encoder_slower(
    tmp_path: Path, big_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    first = train(tiny_run(tmp_path / "first", big_corpus, 2), progress=False)
    start = read_checkpoint(first)["state_dict"]
    groups: list[list[dict[str, object]]] = []
    real = torch.optim.AdamW

    def spy(params: list[dict[str, object]], **kw: object) -> torch.optim.Optimizer:
        groups.append(params)
        return real(params, **kw)  # type: ignore[arg-type]  # the groups as train passes them

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    # A learning rate of nearly nothing: the run's weights are where it started.
    cfg = tiny_run(tmp_path / "second", big_corpus, 2, init=str(first), freeze_encoder=False, lr=1e-12)
    second = read_checkpoint(train(cfg, progress=False))["state_dict"]
    for k, v in start.items():
        if v.is_floating_point() and "running" not in k:
            torch.testing.assert_close(second[k], v, atol=1e-6, rtol=0)
    ((decoder, encoder),) = groups
    assert encoder["lr"] == pytest.approx(1e-13) and decoder["lr"] == pytest.approx(1e-12)
    encoder_params = encoder["params"]
    assert isinstance(encoder_params, list) and len(encoder_params) > 50  # the whole encoder trains
    with pytest.raises(WeightsError, match="weights for Colorizer"):
        train(
            tiny_run(tmp_path / "third", big_corpus, 2, init=str(first), model=ColorizerConfig()),
            progress=False,
        )


def test_slim_copy_is_half_the_size_without_optimizer_and_keeps_what_calibration_reads(
    tmp_path: Path, big_corpus: Path
) -> None:
    torch.manual_seed(0)
    last = train(tiny_run(tmp_path / "run", big_corpus, 2), progress=False)
    dest = tmp_path / "slim.pt"
    assert slim.main([str(last), str(dest)]) == 0
    full, small = read_checkpoint(last), read_checkpoint(dest)
    assert "optimizer" in full and "optimizer" not in small
    assert small["recipe"] == full["recipe"] and small["step"] == full["step"]
    torch.testing.assert_close(small["extra"]["rebalance_weights"], full["extra"]["rebalance_weights"])
    assert dest.stat().st_size < last.stat().st_size / 2
    assert {v.dtype for v in small["state_dict"].values() if v.is_floating_point()} >= {torch.float16}
    from vidcolor.train import calibrate

    argv = ["--checkpoint", str(dest), "--data", str(big_corpus / "pkg"), "--render-size", "64"]
    argv += ["--temperatures", "0.38", "--blends", "0.5", "--saturations", "1.0", "--prior-corrections", "1"]
    assert calibrate.main([*argv, "--threads", "1", "--min-colourfulness", "0"]) == 0


def test_the_gpu_script_trains_in_its_budget_and_writes_slim_checkpoints(
    tmp_path: Path, big_corpus: Path
) -> None:
    packed = tmp_path / "packed"
    assert pack.main([str(big_corpus), "--out", str(packed)]) == 0
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DEVICE": "cpu",
        "BUDGET_S": "4",
        "PROBE_STEPS": "3",
        "BATCH": "2",
        "CROP": "64",
        "ENCODER_LR_SCALE": "0.05",
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "training" / "finetune-gpu.sh"), str(packed), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (out / "train.log").read_text()
    steps = int(log.split("pace from the probe: ")[1].split()[0])
    assert f"trained {steps} steps" in log
    for name in ("last.pt", "best.pt"):
        ck = read_checkpoint(out / name)
        assert "optimizer" not in ck and "rebalance_weights" in ck["extra"]
    assert read_checkpoint(out / "last.pt")["step"] == steps
    config = json.loads((out / "config.json").read_text())
    assert config["init"].endswith("vidcolor-lite.pt") and config["freeze_encoder"] is False
    assert config["encoder_lr_scale"] == 0.05
    assert len((out / "log.jsonl").read_text().splitlines()) >= 1
    # A folder without packed corpora: one line and a non-zero exit.
    empty = subprocess.run(
        ["bash", str(ROOT / "training" / "finetune-gpu.sh"), str(tmp_path / "none"), str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1
