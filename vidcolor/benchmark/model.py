"""The colorizer a benchmark times: the named or given model, else the shipped architecture with
random weights (same layers, same cost per frame: a convolution costs the same whatever its weights)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import torch

from vidcolor.errors import WeightsError
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.models.info import ModelInfo
from vidcolor.models.registry import resolve_device
from vidcolor.options import DEFAULT_MODEL


def build_model(
    model: str | None, device: str = "auto", half: bool | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A colorizer ready for inference, and a description of it for the results.

    ``model``: a registry name or checkpoint path (loaded with ``models.load``); None tries the
    default model and falls back to its architecture with random weights when its weights are
    not here yet. On CUDA the model runs in half precision (unless ``half`` is False) and
    channels_last, as ``models.load`` sets it up for a real run.
    """
    import vidcolor.models as models

    dev = resolve_device(device)
    use_half = dev.type == "cuda" if half is None else bool(half)
    try:
        net = models.load(model or DEFAULT_MODEL, device=str(dev), half=use_half)
        weights = "trained"
    except WeightsError:
        if model is not None:
            raise
        net = Colorizer(ColorizerConfig())
        net.info = replace(net.info, name=f"{DEFAULT_MODEL} (random weights)", weights_present=False)
        net = net.eval().to(dev)
        if use_half:
            net = net.half()
        if dev.type == "cuda":
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs leave memory_format out of Module.to
        weights = "random"
    info = cast(ModelInfo, net.info)
    p = next(net.parameters())
    desc = {
        "name": info.name,
        "weights": weights,
        "sha256": info.sha256,
        "render_size": info.render_size,
        "stride": info.stride,
        "parameters": sum(x.numel() for x in net.parameters()),
        "device": str(p.device),
        "dtype": str(p.dtype).replace("torch.", ""),
        "channels_last": dev.type == "cuda",
    }
    return net, desc
