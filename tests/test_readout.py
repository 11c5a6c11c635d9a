"""How the class head's distribution over ab bins becomes a colour: annealed mean, geometric
median, and the prior correction that undoes the rebalancing of training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from vidcolor.models.ab_bins import (
    annealed_mean,
    corrected_annealed_mean,
    geometric_median,
    hue_concentration,
    in_gamut_bins,
    mode_mean,
)
from vidcolor.models.colorizer import Colorizer, ColorizerConfig


def _centres() -> torch.Tensor:
    return torch.from_numpy(in_gamut_bins())


def _index(c: torch.Tensor, a: float, b: float) -> int:
    return int(((c - torch.tensor([a, b])) ** 2).sum(1).argmin())


def _logits_for(c: torch.Tensor, masses: dict[tuple[float, float], float]) -> torch.Tensor:
    """(1,Q,1,1) logits whose softmax at T=1 puts ``masses`` on the bins nearest those ab."""
    p = torch.full((c.shape[0],), 1e-9)
    for (a, b), m in masses.items():
        p[_index(c, a, b)] += m
    return torch.log(p / p.sum())[None, :, None, None]


def test_geometric_median_stays_on_a_majority_mode_where_the_mean_drifts_to_grey() -> None:
    c = _centres()
    logits = _logits_for(c, {(40.0, 40.0): 0.6, (-40.0, -40.0): 0.2, (40.0, -40.0): 0.2})
    med = geometric_median(logits, c, 1.0, iterations=30)[0, :, 0, 0]
    mean = annealed_mean(logits, c, 1.0)[0, :, 0, 0]
    assert torch.allclose(med, torch.tensor([40.0, 40.0]), atol=2.0)
    assert float(mean.norm()) < 0.5 * float(med.norm())


def test_geometric_median_of_one_bin_is_that_bin_and_keeps_shape() -> None:
    c = _centres()
    logits = _logits_for(c, {(20.0, -30.0): 1.0}).expand(2, -1, 3, 4).contiguous()
    med = geometric_median(logits, c, 0.5)
    assert med.shape == (2, 2, 3, 4)
    assert torch.allclose(med, torch.tensor([20.0, -30.0])[None, :, None, None].expand(2, 2, 3, 4), atol=0.5)


def _model(**kw: object) -> Colorizer:
    torch.manual_seed(0)
    # reason for the type: ignore below: config fields given as a dict of mixed types
    m = Colorizer(ColorizerConfig(head="class", saturation=1.0, **kw)).eval()  # type: ignore[arg-type]
    return m


def test_mode_readout_picks_the_stronger_of_two_distant_colours_where_the_mean_mixes_them() -> None:
    c = _centres()
    # Green grass 55%, dry brown 45%: the mean is a dull olive, the mode readout stays green.
    logits = _logits_for(c, {(-40.0, 40.0): 0.55, (20.0, 30.0): 0.45}).expand(1, -1, 6, 6)
    mean = annealed_mean(logits, c, 1.0)[0, :, 3, 3]
    mode = mode_mean(logits, c, 1.0)[0, :, 3, 3]
    assert torch.allclose(mode, torch.tensor([-40.0, 40.0]), atol=0.5)
    assert float((mean - torch.tensor([-40.0, 40.0])).norm()) > 20.0


def test_mode_readout_equals_the_annealed_mean_with_one_mode_and_keeps_shape() -> None:
    c = _centres()
    logits = _logits_for(c, {(30.0, 20.0): 0.6, (40.0, 20.0): 0.4}).expand(2, -1, 5, 7).contiguous()
    for t in (0.38, 1.0):
        assert torch.allclose(mode_mean(logits, c, t), annealed_mean(logits, c, t), atol=1e-4)
    assert mode_mean(logits, c, 0.38).shape == (2, 2, 5, 7)


def test_mode_readout_decides_over_a_region_not_pixel_by_pixel() -> None:
    c = _centres()
    green = _logits_for(c, {(-40.0, 40.0): 0.6, (20.0, 30.0): 0.4})
    brown = _logits_for(c, {(-40.0, 40.0): 0.45, (20.0, 30.0): 0.55})
    logits = green.expand(1, -1, 8, 8).clone()
    logits[..., 4, 4] = brown[..., 0, 0]  # one doubting pixel inside a green surface
    ab = mode_mean(logits, c, 1.0)
    assert torch.allclose(ab[0, :, 4, 4], torch.tensor([-40.0, 40.0]), atol=0.5)


def test_prior_correction_divides_the_rebalancing_weights_out() -> None:
    c = _centres()
    q = c.shape[0]
    log_w = np.zeros(q)
    rare = _index(c, 60.0, 60.0)
    log_w[rare] = np.log(8.0)  # a rare colour the training boosted 8x
    logits = _logits_for(c, {(60.0, 60.0): 0.5, (0.0, 0.0): 0.5})
    m = _model(temperature=1.0, rebalance_log_weights=tuple(log_w.tolist()))
    vivid = m.ab_from_heads(logits, torch.zeros(1, 2, 1, 1), (1, 1))[0, :, 0, 0]
    m.config = replace(m.config, prior_correction=1.0)
    plain = m.ab_from_heads(logits, torch.zeros(1, 2, 1, 1), (1, 1))[0, :, 0, 0]
    # Corrected, the rare bin weighs 0.5/8 against 0.5: the colour moves most of the way to grey.
    expected = torch.tensor([60.0, 60.0]) * (0.5 / 8) / (0.5 / 8 + 0.5)
    assert torch.allclose(plain, expected, atol=0.5)
    assert float(vivid.norm()) > 3 * float(plain.norm())


def test_prior_correction_without_weights_or_at_zero_changes_nothing() -> None:
    x = torch.rand(1, 1, 64, 64) * 100
    base = _model()(x)
    assert torch.equal(_model(prior_correction=1.0)(x), base)  # no weights stored
    log_w = tuple(float(v) for v in np.linspace(-1, 1, in_gamut_bins().shape[0]))
    assert torch.equal(_model(rebalance_log_weights=log_w)(x), base)  # weights, correction 0


def test_readout_settings_survive_a_checkpoint(tmp_path) -> None:
    from vidcolor.models import load, save_checkpoint

    log_w = tuple(float(v) for v in np.linspace(-1, 1, in_gamut_bins().shape[0]))
    m = _model(class_readout="median", prior_correction=0.75, rebalance_log_weights=log_w)
    path = tmp_path / "m.pt"
    save_checkpoint(path, m, data="test", recipe="{}", metrics={}, step=1, git_sha=None, half=False)
    back = load(path, device="cpu", half=False)
    assert back.config == m.config
    x = torch.rand(1, 1, 64, 64) * 100
    assert torch.allclose(back(x), m(x), atol=1e-4)


def test_one_pass_readout_equals_the_mean_times_the_hue_concentration_of_corrected_logits() -> None:
    c = _centres()
    gen = torch.Generator().manual_seed(3)
    log_w = torch.randn(c.shape[0], generator=gen) * 0.8
    for scale in (1.0, 6.0, 40.0):  # 40: logits far apart, where a naive exp would overflow
        logits = torch.randn(2, c.shape[0], 5, 7, generator=gen) * scale
        before = logits.clone()
        for correction in (0.0, 0.75):
            for gamma in (0.0, 2.0):
                z = logits - correction * log_w[None, :, None, None]
                want = annealed_mean(z, c, 0.38)
                if gamma:
                    want = want * hue_concentration(z, c) ** gamma
                got = corrected_annealed_mean(logits, c, 0.38, log_w, correction, gamma)
                assert got.shape == (2, 2, 5, 7)
                assert torch.isfinite(got).all()
                assert torch.allclose(got, want, atol=1e-3), (scale, correction, gamma)
        assert torch.equal(logits, before)  # the caller's logits are left alone
