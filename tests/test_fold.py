"""Batch norms folded into their convolutions for inference: same output, every pair found,
nothing folded across an activation, the loaded model left as it was."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar, cast

import numpy as np
import torch
from torch import nn

from vidcolor.frames import LBatch
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.models.fold import folded_copy
from vidcolor.models.info import ModelInfo
from vidcolor.stages.model_step import ModelStep

M = TypeVar("M", bound=nn.Module)


def _with_random_statistics(model: M, seed: int = 0) -> M:
    """Batch norms with running statistics and affine terms far from the identity, so a fold
    that dropped or misapplied one would show."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            assert m.running_mean is not None and m.running_var is not None  # tracked by default
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)
    return model.eval()


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_every_batch_norm_of_the_colorizer_folds_and_the_output_stays() -> None:
    torch.manual_seed(0)
    model = _with_random_statistics(Colorizer(ColorizerConfig()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    L = torch.rand(2, 1, 64, 96) * 100
    with torch.inference_mode():
        want = model(L)
        folded = folded_copy(model)
        got = folded(L)
    # encoder 49 (stem, head, 3 per block, 2 in the first), decoder 10
    assert _count(model, nn.BatchNorm2d) == 59
    assert _count(folded, nn.BatchNorm2d) == 0
    assert torch.allclose(got, want, atol=2e-3), float((got - want).abs().max())
    state = model.state_dict()
    assert state.keys() == before.keys()
    assert all(torch.equal(state[k], v) for k, v in before.items())  # the original is untouched


def test_a_batch_norm_after_an_activation_is_left_alone() -> None:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8)]
    layers += [nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)]
    net = _with_random_statistics(nn.Sequential(*layers))
    folded = cast(nn.Sequential, folded_copy(net))  # a copy: of the same class
    assert [type(m).__name__ for m in folded] == ["Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "Identity"]
    x = torch.randn(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(folded(x), net(x), atol=1e-4)


def test_the_model_step_runs_the_folded_network_with_the_loaded_models_readout() -> None:
    torch.manual_seed(0)
    model = _with_random_statistics(Colorizer(ColorizerConfig(head="class")))
    model.info = ModelInfo("test", "none", None, 64, 32)
    step = ModelStep(model, torch.device("cpu"), torch.float32, "test", 64, 32, None, fold=True)
    L = (np.random.default_rng(0).random((2, 1, 64, 96)) * 100).astype(np.float32)
    lb = LBatch(indices=(0, 1), L=L, content=(64, 96))
    with torch.inference_mode():
        assert np.allclose(step(lb), model(torch.from_numpy(L)).numpy(), atol=2e-3)
        # eval switches the head on the loaded model: the folded copy must follow
        model.config = replace(model.config, head="regression")
        assert np.allclose(step(lb), model(torch.from_numpy(L)).numpy(), atol=2e-3)
    assert _count(step.runs, nn.BatchNorm2d) == 0


def test_a_run_that_never_needs_pytorch_never_copies_the_model() -> None:
    from vidcolor.options import ColorizeOptions

    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=32)).eval()
    model.info = ModelInfo("test", "none", None, 32, 32)
    step = ModelStep.create(ColorizeOptions(device="cpu"), model)
    assert step.onnx is not None and step.fold
    L = np.full((1, 1, 32, 64), 40.0, np.float32)
    step(LBatch((0,), L, (32, 64)))
    assert step._folded is None  # ONNX Runtime ran it
    step(LBatch((0,), L, (32, 64)), hints=np.zeros((1, 3, 32, 64), np.float32))
    assert step._folded is not None and _count(step.runs, nn.BatchNorm2d) == 0  # hints: PyTorch, folded
