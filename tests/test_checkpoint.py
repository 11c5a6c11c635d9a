"""The checkpoint format: round trip through load(path), half files, metadata, atomic writes, bad files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch

import vidcolor
import vidcolor.models as models
from vidcolor.errors import WeightsError
from vidcolor.models.checkpoint import FORMAT, read_checkpoint, save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig

TINY = ColorizerConfig(global_dim=8, widths=(16, 8, 8, 8, 8))


@pytest.fixture(scope="module")
def tiny() -> Colorizer:
    torch.manual_seed(0)
    model = Colorizer(TINY)
    # Non-trivial batch-norm statistics, so a round trip that dropped buffers would show.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None  # tracked by default
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _save(path: Path, model: torch.nn.Module, **kw: object) -> Path:
    args: dict[str, object] = dict(
        data="test-data/1", recipe="pytest", metrics={"loss": 1.5}, step=7, git_sha=None
    )
    args.update(kw)
    # reason for the type: ignore below: save_checkpoint's keyword arguments gathered in a dict
    return save_checkpoint(path, model, **args)  # type: ignore[arg-type]


def test_round_trip_through_load_gives_equal_outputs(tiny: Colorizer, tmp_path: Path) -> None:
    path = _save(tmp_path / "tiny.pt", tiny)
    model = models.load(path, device="cpu")
    assert isinstance(model, Colorizer) and not model.training
    assert model.config == TINY
    assert model.info.name == "tiny" and model.info.stride == 32 and model.info.weights_present
    assert model.info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    L = torch.rand(1, 1, 64, 96) * 100
    with torch.inference_mode():
        assert torch.equal(model(L), tiny(L))


def test_metadata_is_stored(tiny: Colorizer, tmp_path: Path) -> None:
    path = _save(
        tmp_path / "m.pt",
        tiny,
        metrics={"ciede2000": np.float64(7.25), "n": np.int32(3)},
        git_sha="abc123",
        extra={"seed": 1, "sizes": (128, 128)},
    )
    ckpt = read_checkpoint(path)
    assert ckpt["format"] == FORMAT and ckpt["arch"] == "vidcolor-lite"
    assert ckpt["config"]["widths"] == [16, 8, 8, 8, 8]
    assert ckpt["vidcolor_version"] == vidcolor.__version__
    assert (ckpt["data"], ckpt["recipe"], ckpt["step"], ckpt["git_sha"]) == (
        "test-data/1",
        "pytest",
        7,
        "abc123",
    )
    assert ckpt["metrics"] == {"ciede2000": 7.25, "n": 3} and type(ckpt["metrics"]["n"]) is int
    assert ckpt["extra"]["seed"] == 1
    assert "optimizer" not in ckpt


def test_optimizer_state_survives_for_resume(tiny: Colorizer, tmp_path: Path) -> None:
    model = Colorizer(TINY)
    opt = torch.optim.AdamW(model.reg_head.parameters(), lr=1e-3)
    model.reg_head(torch.rand(1, 8, 4, 4)).sum().backward()
    opt.step()
    path = _save(tmp_path / "resume.pt", model, optimizer=opt.state_dict())
    ckpt = read_checkpoint(path)
    opt2 = torch.optim.AdamW(Colorizer(TINY).reg_head.parameters(), lr=1.0)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.param_groups[0]["lr"] == 1e-3
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_half_file_is_smaller_and_loads_to_float32_on_cpu(tiny: Colorizer, tmp_path: Path) -> None:
    full = _save(tmp_path / "full.pt", tiny)
    half = _save(tmp_path / "half.pt", tiny, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    sd = read_checkpoint(half)["state_dict"]
    assert sd["reg_head.weight"].dtype == torch.float16
    assert sd["fuse.1.running_var"].dtype == torch.float32  # statistics stay float32
    model = models.load(half, device="cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.inference_mode():
        ab, ref = model(L), tiny(L)
    assert ab.dtype == torch.float32
    assert (ab - ref).abs().max() < 1.0  # float16 weights: well under a just noticeable ab difference


def test_write_is_atomic(tiny: Colorizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = _save(tmp_path / "ok.pt", tiny)
    before = dest.read_bytes()

    def broken_save(obj: object, f: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _save(dest, tiny, step=8)
    assert dest.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.pt"]  # and no temporary is left


def test_unsaveable_metric_is_refused_before_writing(tiny: Colorizer, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"metrics\.when"):
        _save(tmp_path / "x.pt", tiny, metrics={"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pt"
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        read_checkpoint(path)


def test_truncated_file_names_file_and_expected_hash(tiny: Colorizer, tmp_path: Path) -> None:
    good = _save(tmp_path / "good.pt", tiny)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match=re.escape(str(bad))):
        read_checkpoint(bad)
    with pytest.raises(WeightsError) as e:
        read_checkpoint(bad, sha256=digest)
    assert str(bad) in str(e.value) and digest in str(e.value)
    assert read_checkpoint(good, sha256=digest)["step"] == 7


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", b"PK\x03\x04" + b"\0" * 64])
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(content)
    with pytest.raises(WeightsError, match=re.escape(str(bad))):
        read_checkpoint(bad)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    # weights_only: a file that would run code on load is an error, not an execution.
    bad = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "payload": Path("x")}, bad)
    with pytest.raises(WeightsError, match=re.escape(str(bad))):
        read_checkpoint(bad)


def test_foreign_files(tiny: Colorizer, tmp_path: Path) -> None:
    raw = tmp_path / "raw.pth"
    torch.save(tiny.state_dict(), raw)
    with pytest.raises(WeightsError, match="raw state dict"):
        read_checkpoint(raw)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(WeightsError, match="list"):
        read_checkpoint(listed)


def test_newer_format_and_unknown_arch(tiny: Colorizer, tmp_path: Path) -> None:
    path = _save(tmp_path / "c.pt", tiny)
    ckpt = torch.load(path, weights_only=True)
    newer = tmp_path / "newer.pt"
    torch.save({**ckpt, "format": "vidcolor-checkpoint/2"}, newer)
    with pytest.raises(WeightsError, match="upgrade vidcolor"):
        read_checkpoint(newer)
    alien = tmp_path / "alien.pt"
    torch.save({**ckpt, "arch": "transformer-xl"}, alien)
    with pytest.raises(WeightsError, match="transformer-xl"):
        models.load(alien, device="cpu")
    odd = tmp_path / "odd.pt"
    torch.save({**ckpt, "config": {**ckpt["config"], "depth": 99}}, odd)
    with pytest.raises(WeightsError, match=re.escape(str(odd))):
        models.load(odd, device="cpu")


def test_state_dict_that_does_not_fit_lists_the_keys(tiny: Colorizer, tmp_path: Path) -> None:
    path = _save(tmp_path / "c.pt", tiny)
    ckpt = torch.load(path, weights_only=True)
    sd = dict(ckpt["state_dict"])
    del sd["reg_head.bias"]
    sd["class_head.weight"] = sd["class_head.weight"][:5]
    broken = tmp_path / "broken.pt"
    torch.save({**ckpt, "state_dict": sd}, broken)
    with pytest.raises(WeightsError) as e:
        models.load(broken, device="cpu")
    msg = str(e.value)
    assert str(broken) in msg and "reg_head.bias" in msg and "class_head.weight" in msg


def test_zhang_models_save_as_checkpoints(tmp_path: Path) -> None:
    from vidcolor.models.zhang import ECCVGenerator, ZhangConfig

    model = ECCVGenerator(ZhangConfig("eccv16", temperature=0.38))
    path = _save(tmp_path / "eccv.pt", model, half=True)
    loaded = models.load(path, device="cpu")
    assert isinstance(loaded, ECCVGenerator) and loaded.config.temperature == 0.38
    # A vidcolor checkpoint of the right arch is also accepted with --weights and a name.
    assert cast(ECCVGenerator, models.load("eccv16", device="cpu", weights=path)).config.temperature == 0.38
    with pytest.raises(WeightsError, match="eccv16 checkpoint"):
        models.load("siggraph17", device="cpu", weights=path)
