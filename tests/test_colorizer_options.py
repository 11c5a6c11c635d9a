"""The network's options of the second recipe: hints at every scale, the semantic map, dropout,
and the table look-up of the nearest ab bin used by the training loss."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import torch

import vidcolor.models as models
from vidcolor.models.ab_bins import in_gamut_bins, nearest_bin, nearest_bin_fast
from vidcolor.models.checkpoint import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig

TINY = {"widths": (32, 16, 16, 16, 8), "global_dim": 16}


def _net(**kw: object) -> Colorizer:
    torch.manual_seed(0)
    # reason for the type: ignore below: config fields given as a dict of mixed types
    net = Colorizer(ColorizerConfig(**TINY, **kw))  # type: ignore[arg-type]
    return net.eval()


def _width_in(net: Colorizer, conv: str) -> int:
    """in_channels of the convolution at ``conv`` in ``net`` (a dotted path: "fuse.0", "dec8.0.0")."""
    return cast(torch.nn.Conv2d, net.get_submodule(conv)).in_channels


def _hint(size: int, y: int, x: int, ab: tuple[float, float]) -> torch.Tensor:
    h = torch.zeros(1, 3, size, size)
    h[0, 0, y, x], h[0, 1, y, x], h[0, 2, y, x] = ab[0], ab[1], 1.0
    return h


def test_version_2_shows_hints_at_every_scale_and_version_1_only_below_s16() -> None:
    v1, v2 = _net(), _net(hint_version=2)
    assert v1.hint_strides == (8, 4, 2) and v2.hint_strides == (32, 16, 8, 4, 2)
    assert _width_in(v2, "fuse.0") == _width_in(v1, "fuse.0") + 3
    assert _width_in(v2, "dec16.0.0") == _width_in(v1, "dec16.0.0") + 3


def test_version_2_marks_a_one_pixel_hint_as_present_in_its_coarse_cell() -> None:
    net = _net(hint_version=2)
    like = torch.zeros(1, 8, 2, 2)  # a 64x64 picture's s32 grid
    planes = torch.cat(net._hints_at(_hint(64, 5, 40, (30.0, -20.0)), like, 32), dim=1)
    assert planes.shape == (1, 3, 2, 2)
    # The cell (0, 1) holds the hint: its ab in AB_SCALE units and a mask of exactly 1.
    assert planes[0, 2, 0, 1] == 1.0 and planes[0, 2].sum() == 1.0
    assert torch.allclose(planes[0, :2, 0, 1] * 110.0, torch.tensor([30.0, -20.0]))
    # Version 1 shows the same hint as a fraction of the cell, 1/1024: next to nothing.
    frac = torch.cat(_net()._hints_at(_hint(64, 5, 40, (30.0, -20.0)), torch.zeros(1, 8, 8, 8), 8), dim=1)
    assert 0 < float(frac[0, 2].max()) <= 1 / 64


def test_a_hint_moves_the_output_of_an_untrained_version_2_network_far_from_it() -> None:
    net = _net(hint_version=2)
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        plain = net(L)
        hinted = net(L, _hint(64, 2, 2, (60.0, 60.0)))
    # The hint sits in the top-left corner; the bottom-right corner changes only through s32/s16.
    assert not torch.equal(plain[..., 48:, 48:], hinted[..., 48:, 48:])


def test_no_hints_equals_zero_hints() -> None:
    net = _net(hint_version=2, semantic=True)
    L = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        assert torch.equal(net(L), net(L, torch.zeros(2, 3, 64, 96)))


def test_dropout_acts_in_training_only() -> None:
    net = _net(dropout=0.5)
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.equal(net(L), net(L))
        net.train()
        torch.manual_seed(1)
        a = net(L)
        torch.manual_seed(2)
        assert not torch.equal(a, net(L))


def test_semantic_map_and_options_survive_a_checkpoint(tmp_path: Path) -> None:
    net = _net(hint_version=2, semantic=True, dropout=0.1)
    assert net.semantic_proj is not None
    path = tmp_path / "v2.pt"
    save_checkpoint(path, net, data="test", recipe="pytest", metrics={}, step=1, git_sha=None)
    back = models.load(path, device="cpu")
    assert isinstance(back, Colorizer)
    assert back.config.hint_version == 2 and back.config.semantic and back.config.dropout == 0.1
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        assert torch.allclose(net(L), back(L))


def test_an_old_config_builds_the_old_network() -> None:
    net = _net()
    assert net.semantic_proj is None and isinstance(net.drop, torch.nn.Identity)
    assert net._hints_at(None, torch.zeros(1, 8, 2, 2), 32) == []
    assert not any(k.startswith("semantic_proj") for k in net.state_dict())


def test_unknown_hint_version_is_refused() -> None:
    with pytest.raises(ValueError, match="hint_version 1 or 2"):
        _net(hint_version=3)


def test_nearest_bin_fast_agrees_with_the_exact_search() -> None:
    centres = torch.from_numpy(in_gamut_bins())
    torch.manual_seed(0)
    ab = torch.randn(4, 2, 32, 32) * 40
    exact, fast = nearest_bin(ab, centres), nearest_bin_fast(ab)
    assert fast.shape == exact.shape == (4, 32, 32) and fast.dtype == torch.int64
    assert (fast == exact).float().mean() > 0.99
    # Away from the borders between bins (the nearest bin nearer than the second by more than a
    # cell's diagonal) the two are identical.
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).clamp(-109.0, 109.0)
    d = torch.cdist(flat, centres).topk(2, dim=1, largest=False).values
    clear = (d[:, 1] - d[:, 0] > 1.5).view(4, 32, 32) & (ab.abs().amax(dim=1) < 109.0)
    assert clear.float().mean() > 0.6
    assert torch.equal(fast[clear], exact[clear])
    # Far outside the plane: clamped to the edge, still a valid index.
    assert int(nearest_bin_fast(torch.full((1, 2, 1, 1), 500.0)).max()) < len(centres)
