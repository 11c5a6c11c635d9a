"""The upstream colorizers of Richard Zhang et al., rebuilt to load their released weights unchanged.

- ECCV16: "Colorful Image Colorization" (Zhang, Isola, Efros, ECCV 2016), released weights
  ``colorization_release_v2-9b330a0b.pth``: a VGG-style trunk, 313-bin classification head at 1/4
  of the input size, ab read out as the mean of the bin distribution.
- SIGGRAPH17: "Real-Time User-Guided Image Colorization with Learned Deep Priors" (Zhang, Zhu et
  al., SIGGRAPH 2017), released weights ``siggraph17-df00044c.pth``: the same trunk with U-Net
  shortcuts and a tanh regression head at full size; its input also takes user hints (ab + mask).

The module attributes (``model1`` ... ``model_out``) and the position of every layer inside its
``nn.Sequential`` reproduce richzhang/colorization ``colorizers/eccv16.py`` and ``siggraph17.py``,
because the state-dict keys of the released files are those positions (``model1.0.weight``,
``model8.6.bias``, ...). Both generators obey the vidcolor model contract directly, so no wrapper
prefix enters the keys: ``forward(L (B,1,h,w) in [0,100]) -> ab (B,2,h,w) raw a*b*``, with h and w
multiples of ``stride`` (8). Both own their normalisation: L enters as (L - 50) / 100 and ab leaves
as ab * 110, as upstream.

Shapes for an input of (B, 1, h, w):

    ECCV16:     conv1 (64, h/2) conv2 (128, h/4) conv3 (256, h/8) conv4..7 (512, h/8, dilated 5, 6)
                conv8 (256, h/4) -> logits (B,313,h/4,w/4) -> softmax(logits / T) -> mean bin
                (1x1 conv whose weights are the bin centres / 110) -> bilinear x4 -> (B,2,h,w)
    SIGGRAPH17: conv1 (64, h) conv2 (128, h/2) conv3 (256, h/4) conv4..7 (512, h/8)
                up + shortcut: conv8 (256, h/4), conv9 (128, h/2), conv10 (128, h)
                -> tanh regression (B,2,h,w); ``model_class`` (529 bins at h/4) is kept only so the
                released weights load; the released forward pass does not use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidcolor.models.info import ModelInfo

L_CENT = 50.0  # L in [0,100] enters the network as (L - L_CENT) / L_NORM
L_NORM = 100.0
AB_NORM = 110.0  # the network's ab is raw ab / AB_NORM
ECCV16_BINS = 313
SIGGRAPH17_BINS = 529
STRIDE = 8  # both trunks go down to 1/8 and back up, so h and w must be multiples of 8
RENDER_SIZE = 256  # the size both were trained at
LICENCE = "BSD-2-Clause"


@dataclass(frozen=True)
class ZhangConfig:
    """What a checkpoint stores to rebuild either generator.

    ``temperature`` only applies to ECCV16: 1.0 is the plain mean of the bin distribution, which is
    what the released code computes; the paper's annealed mean uses 0.38 (more vivid, and more often
    wrong).
    """

    arch: str
    temperature: float = 1.0
    render_size: int = RENDER_SIZE


def _conv_relu(cin: int, cout: int, *, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    # Every trunk conv is 3x3 with "same" padding for its dilation, as upstream.
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]


def _block(widths: list[int], *, last_stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Convs (each followed by ReLU) through ``widths``, then a BatchNorm: ``[conv, relu]*n + [bn]``.

    Layer positions, and hence state-dict keys, are conv i at index 2*i, the norm at index 2*n.
    """
    layers: list[nn.Module] = []
    n = len(widths) - 1
    for i in range(n):
        s = last_stride if i == n - 1 else 1
        layers += _conv_relu(widths[i], widths[i + 1], stride=s, dilation=dilation)
    layers.append(nn.BatchNorm2d(widths[-1]))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    """x2 upsampling: 4x4 transposed conv, stride 2, padding 1 (weight shape (cin, cout, 4, 4))."""
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)


class ECCVGenerator(nn.Module):
    """ECCV16 colorizer. ``forward(L (B,1,h,w) in [0,100]) -> ab (B,2,h,w) float32``, h, w % 8 == 0."""

    stride = STRIDE

    def __init__(self, config: ZhangConfig | None = None, info: ModelInfo | None = None) -> None:
        super().__init__()
        self.config = config or ZhangConfig("eccv16")
        self.info = info or ModelInfo("eccv16", LICENCE, None, self.config.render_size, STRIDE)
        # conv1 and conv2 end with a stride-2 conv, conv3 too: the trunk works at 1/8.
        self.model1 = _block([1, 64, 64], last_stride=2)
        self.model2 = _block([64, 128, 128], last_stride=2)
        self.model3 = _block([128, 256, 256, 256], last_stride=2)
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        # conv8: up to 1/4, two convs, then the 1x1 classifier over the 313 in-gamut bins (no norm).
        self.model8 = nn.Sequential(
            _up(512, 256),
            nn.ReLU(True),
            *_conv_relu(256, 256),
            *_conv_relu(256, 256),
            nn.Conv2d(256, ECCV16_BINS, 1),
        )
        # The weights of this 1x1 conv are the 313 bin centres / 110: applied to the softmax it
        # gives the expected ab of the distribution.
        self.model_out = nn.Conv2d(ECCV16_BINS, 2, 1, bias=False)

    def logits(self, L: Tensor) -> Tensor:
        """L (B,1,h,w) in [0,100] -> bin logits (B,313,h/4,w/4) (for training and inspection)."""
        # Cast to the weights' dtype: the pipeline hands float32 L, a CUDA model runs float16.
        h = (L.to(next(self.parameters()).dtype) - L_CENT) / L_NORM
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6):
            h = block(h)
        return self.model8(self.model7(h))

    def forward(self, L: Tensor) -> Tensor:
        """L: (B,1,h,w) float, CIE L in [0,100]. Returns ab: (B,2,h,w) float32, raw a*b*."""
        logits = self.logits(L).float()
        # Softmax and read-out in float32: the 313-way softmax at T < 1 is not safe in half.
        p = torch.softmax(logits / self.config.temperature, dim=1)
        ab = F.conv2d(p, self.model_out.weight.float()) * AB_NORM  # (B,2,h/4,w/4)
        return F.interpolate(ab, size=(L.shape[2], L.shape[3]), mode="bilinear", align_corners=False)

    def config_dict(self) -> dict[str, object]:
        return asdict(self.config)


class SIGGRAPHGenerator(nn.Module):
    """SIGGRAPH17 colorizer. ``forward(L (B,1,h,w) in [0,100], hints=None) -> ab (B,2,h,w) float32``.

    ``hints`` (B,3,h,w) = [a, b, mask] in raw ab units, as the shipped colorizer takes them; they
    enter the network as ab / 110 and the mask as given. None means no hints (zeros), which is what
    the released demo feeds.
    """

    stride = STRIDE

    def __init__(self, config: ZhangConfig | None = None, info: ModelInfo | None = None) -> None:
        super().__init__()
        self.config = config or ZhangConfig("siggraph17")
        self.info = info or ModelInfo("siggraph17", LICENCE, None, self.config.render_size, STRIDE)
        # Downsampling is by slicing [::2, ::2] between blocks, not by strided convs.
        self.model1 = _block([4, 64, 64])
        self.model2 = _block([64, 128, 128])
        self.model3 = _block([128, 256, 256, 256])
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.model8up = nn.Sequential(_up(512, 256))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        # conv8..10 start with the ReLU of the sum (up + shortcut), so their convs sit at odd indices.
        self.model8 = nn.Sequential(nn.ReLU(True), *_block([256, 256, 256]))
        self.model9up = nn.Sequential(_up(256, 128))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(True), *_block([128, 128]))
        self.model10up = nn.Sequential(_up(128, 128))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, SIGGRAPH17_BINS, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        """L: (B,1,h,w) float, CIE L in [0,100]. Returns ab: (B,2,h,w) float32, raw a*b*."""
        L = L.to(next(self.parameters()).dtype)  # a CUDA model runs float16; the pipeline may hand float32
        if hints is None:
            hints = L.new_zeros(L.shape[0], 3, L.shape[2], L.shape[3])
        hints = hints.to(L.dtype)
        x = torch.cat([(L - L_CENT) / L_NORM, hints[:, :2] / AB_NORM, hints[:, 2:3]], dim=1)
        c1 = self.model1(x)  # (B,64,h,w)
        c2 = self.model2(c1[:, :, ::2, ::2])  # (B,128,h/2,w/2)
        c3 = self.model3(c2[:, :, ::2, ::2])  # (B,256,h/4,w/4)
        c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))  # (B,512,h/8,w/8)
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))  # (B,256,h/4,w/4)
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))  # (B,128,h/2,w/2)
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))  # (B,128,h,w)
        return self.model_out(c10).float() * AB_NORM

    def config_dict(self) -> dict[str, object]:
        return asdict(self.config)


def build_eccv16(config: dict[str, object]) -> ECCVGenerator:
    return ECCVGenerator(ZhangConfig(**{**config, "arch": "eccv16"}))  # type: ignore[arg-type]  # a checkpoint's config dict, checked by ZhangConfig


def build_siggraph17(config: dict[str, object]) -> SIGGRAPHGenerator:
    return SIGGRAPHGenerator(ZhangConfig(**{**config, "arch": "siggraph17"}))  # type: ignore[arg-type]  # a checkpoint's config dict, checked by ZhangConfig
