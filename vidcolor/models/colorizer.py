"""The shipped colorizer: frozen EfficientNet-Lite encoder, global fusion, U-Net decoder, two heads.

Shapes for an input of (B, 1, h, w), h and w multiples of 32:

    L (B,1,h,w) in [0,100] -> x = (L/100 - mean)/std, repeated to 3 channels
    encoder: s2 (B,16,h/2,w/2)  s4 (B,24,h/4)  s8 (B,40,h/8)  s16 (B,112,h/16)  s32 (B,320,h/32)
             head (B,1280) global average of the 1x1 head conv
             (widths of lite0 and lite1; lite2's s8, s16 and s32 are 48, 120 and 352)
    fusion:  global (B,256) replicated over s32's grid, concatenated, mixed by a 1x1 conv -> 256
    decoder: up x2 + skip at s16 -> 128, s8 -> 96, s4 -> 64, s2 -> 32
    heads:   class logits (B,Q,h/4,w/4) from the s4 features (Q in-gamut ab bins)
             regression ab (B,2,h/2,w/2) from the s2 features
    output:  ab (B,2,h,w), bilinear from the chosen head ("class": annealed mean at temperature T,
             "regression", or "blend": a convex mix of both)

Optional hints (B,3,h,w) = [a, b, mask] (raw ab where mask is 1, zero elsewhere) enter the decoder
so sparse user colours steer the result; zeros mean "no hints". ``hint_version`` 1 shows them at
s8, s4 and s2 as (mean hinted ab, hinted fraction of the cell); version 2 at every scale from the
fusion (s32) down, as (mean hinted ab, 1 where the cell holds a hint): a coarse cell holds a hint
of a few pixels as a fraction near 0, which says nothing, and only the coarse scales let a hint
reach across a whole surface.

With ``semantic`` the encoder's 1280-channel head map (what its ImageNet classifier reads, per
s32 cell) also joins the fusion, projected to ``global_dim``: the pooled vector says what the
picture shows, the map says where. ``dropout`` drops whole channels of the fused and s16 features
in training, against a decoder learning its small corpus by heart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidcolor.models.ab_bins import (
    corrected_annealed_mean,
    geometric_median,
    hue_concentration,
    in_gamut_bins,
    mode_mean,
)
from vidcolor.models.efficientnet_lite import (
    HEAD_WIDTH,
    INPUT_MEAN,
    INPUT_STD,
    EfficientNetLite,
    Variant,
    tap_widths,
)
from vidcolor.models.info import ModelInfo

Head = Literal["class", "regression", "blend"]
AB_SCALE = 110.0  # regression head and hints work in ab / AB_SCALE


@dataclass(frozen=True)
class ColorizerConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    arch: str = "vidcolor-lite"
    # Which EfficientNet-Lite encodes; the decoder's skip widths follow it. Checkpoints written
    # before the field existed hold lite0.
    encoder: Variant = "lite0"
    global_dim: int = 256
    widths: tuple[int, int, int, int, int] = (256, 128, 96, 64, 32)  # fusion, s16, s8, s4, s2
    head: Head = "blend"  # which head produces the output ab
    temperature: float = 0.38  # annealed-mean temperature of the class head
    # annealed mean, geometric median, or the annealed mean of the main mode (ab_bins.mode_mean)
    class_readout: Literal["mean", "median", "mode"] = "mean"
    blend: float = 0.5  # weight of the class head in "blend"
    saturation: float = 1.0  # final chroma gain (calibrated after training)
    # Training rebalances rare colours (weights w per ab bin), which tilts the class head towards
    # them: it learns p(q|x) w(q) rather than p(q|x). The readout divides w**prior_correction back
    # out (0: as trained, vivid; 1: the plain posterior, most likely). log w per bin, or empty.
    prior_correction: float = 0.0
    # Chroma times R**confidence_gamma, R = |E[ab]| / E[|ab|] of the class head's distribution
    # (1 when all its mass lies in one hue direction, near 0 when it doubts between hues): where
    # the network does not know the hue, grey is the smaller error; where it knows, full colour.
    confidence_gamma: float = 0.0
    rebalance_log_weights: tuple[float, ...] = ()
    render_size: int = 224
    hints: bool = True
    hint_version: int = 1  # how hints are shown to the decoder, see the module docstring
    semantic: bool = False  # the encoder's head map joins the fusion
    dropout: float = 0.0  # channel dropout of the fused and s16 features, training only


def _conv_bn(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def _sep_block(cin: int, cout: int) -> nn.Sequential:
    """1x1 -> depthwise 3x3 -> 1x1: cheap enough for the high-resolution stages."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Colorizer(nn.Module):
    """The model contract of DESIGN.md: raw L (B,1,h,w) in, raw ab (B,2,h,w) out."""

    stride = 32
    centres: Tensor  # (Q, 2) ab bin centres, a non-persistent buffer

    def __init__(self, config: ColorizerConfig | None = None, info: ModelInfo | None = None) -> None:
        super().__init__()
        self.config = config or ColorizerConfig()
        c = self.config
        self.info = info or ModelInfo(c.arch, "Apache-2.0", None, c.render_size, self.stride)
        self.encoder = EfficientNetLite(c.encoder)
        e = tap_widths(c.encoder)
        centres = torch.from_numpy(in_gamut_bins())
        self.register_buffer("centres", centres, persistent=False)
        q = centres.shape[0]
        if c.hint_version not in (1, 2):
            raise ValueError(f"hint_version 1 or 2 expected, found {c.hint_version}")
        self.hint_strides = () if not c.hints else (8, 4, 2) if c.hint_version == 1 else (32, 16, 8, 4, 2)
        hc = {s: 3 if s in self.hint_strides else 0 for s in (32, 16, 8, 4, 2)}
        f, w16, w8, w4, w2 = c.widths
        self.global_proj = nn.Sequential(nn.Linear(HEAD_WIDTH, c.global_dim), nn.ReLU(inplace=True))
        self.semantic_proj = _conv_bn(HEAD_WIDTH, c.global_dim, 1) if c.semantic else None
        sem = c.global_dim if c.semantic else 0
        self.fuse = _conv_bn(e[32] + c.global_dim + sem + hc[32], f, 1)
        self.dec16 = nn.Sequential(_conv_bn(f + e[16] + hc[16], w16), _conv_bn(w16, w16))
        self.dec8 = nn.Sequential(_conv_bn(w16 + e[8] + hc[8], w8), _conv_bn(w8, w8))
        self.dec4 = nn.Sequential(_conv_bn(w8 + e[4] + hc[4], w4), _conv_bn(w4, w4))
        self.dec2 = _sep_block(w4 + e[2] + hc[2], w2)
        self.drop = nn.Dropout2d(c.dropout) if c.dropout > 0 else nn.Identity()
        self.class_head = nn.Conv2d(w4, q, 1)
        self.reg_head = nn.Conv2d(w2, 2, 3, padding=1)

    # -- parts, so training can run the frozen encoder under no_grad --------------------------

    def encode(self, L: Tensor) -> dict[int | str, Tensor]:
        x = (L / 100.0 - INPUT_MEAN) / INPUT_STD
        return self.encoder(x.expand(-1, 3, -1, -1))

    def decode(self, feats: dict[int | str, Tensor], hints: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Encoder features -> (class logits (B,Q,h/4,w/4), regression ab/AB_SCALE (B,2,h/2,w/2))."""
        s32 = feats[32]
        g = self.global_proj(feats["head"])[:, :, None, None].expand(-1, -1, *s32.shape[2:])
        parts = [s32, g]
        if self.semantic_proj is not None:
            parts.append(self.semantic_proj(feats["head_map"]))
        h = self.drop(self.fuse(torch.cat([*parts, *self._hints_at(hints, s32, 32)], dim=1)))
        f16 = feats[16]
        h = self.drop(self.dec16(torch.cat([_up(h, f16), f16, *self._hints_at(hints, f16, 16)], dim=1)))
        h = self.dec8(torch.cat([_up(h, feats[8]), feats[8], *self._hints_at(hints, feats[8], 8)], dim=1))
        h4 = self.dec4(torch.cat([_up(h, feats[4]), feats[4], *self._hints_at(hints, feats[4], 4)], dim=1))
        h2 = self.dec2(torch.cat([_up(h4, feats[2]), feats[2], *self._hints_at(hints, feats[2], 2)], dim=1))
        return self.class_head(h4), torch.tanh(self.reg_head(h2))

    def _hints_at(self, hints: Tensor | None, like: Tensor, stride: int) -> list[Tensor]:
        """The hint planes shown at ``stride``, 3 channels in all at the grid of ``like``
        ([ab (B,2,h',w'), mask (B,1,h',w')], or zeros (B,3,h',w') without hints); [] where hints
        do not enter."""
        if stride not in self.hint_strides:
            return []
        size = (like.shape[2], like.shape[3])
        if hints is None:
            return [like.new_zeros(like.shape[0], 3, *size)]
        ab, mask = hints[:, :2] / AB_SCALE, hints[:, 2:3]
        # Average of the hinted ab over each cell, and how much of the cell is hinted (version 1)
        # or whether any of it is (version 2).
        m = F.adaptive_avg_pool2d(mask, size)
        abm = F.adaptive_avg_pool2d(ab * mask, size) / m.clamp(min=1e-6)
        present = (m > 0).to(m.dtype)
        shown = m if self.config.hint_version == 1 else present
        return [(abm * present).to(like.dtype), shown.to(like.dtype)]

    def ab_from_heads(self, logits: Tensor, reg: Tensor, size: tuple[int, int]) -> Tensor:
        """Read the output ab (B,2,*size) in raw units from the two heads, per ``config.head``."""
        c = self.config
        parts: list[Tensor] = []
        if c.head in ("class", "blend"):
            log_w = None
            if c.prior_correction and c.rebalance_log_weights:
                log_w = _log_weights(c.rebalance_log_weights, logits.device)
            if c.class_readout == "mean":
                ab_c = corrected_annealed_mean(
                    logits, self.centres, c.temperature, log_w, c.prior_correction, c.confidence_gamma
                )
            else:
                if log_w is not None:
                    logits = logits.float() - c.prior_correction * log_w[None, :, None, None]
                if c.class_readout == "median":
                    ab_c = geometric_median(logits, self.centres, c.temperature)
                else:
                    ab_c = mode_mean(logits, self.centres, c.temperature)
                if c.confidence_gamma:
                    ab_c = ab_c * hue_concentration(logits, self.centres) ** c.confidence_gamma
            parts.append(F.interpolate(ab_c, size=size, mode="bilinear", align_corners=False))
        if c.head in ("regression", "blend"):
            parts.append(
                F.interpolate(reg.float() * AB_SCALE, size=size, mode="bilinear", align_corners=False)
            )
        ab = parts[0] if len(parts) == 1 else c.blend * parts[0] + (1.0 - c.blend) * parts[1]
        return ab * c.saturation

    def forward(self, L: Tensor, hints: Tensor | None = None) -> Tensor:
        """L: (B,1,h,w) float32, CIE L in [0,100]. Returns ab: (B,2,h,w) float32, raw a*b*."""
        L = L.to(next(self.parameters()).dtype)  # fp16 weights on CUDA take fp16 input
        logits, reg = self.decode(self.encode(L), hints)
        return self.ab_from_heads(logits, reg, (L.shape[2], L.shape[3])).float()

    def config_dict(self) -> dict[str, object]:
        d = asdict(self.config)
        d["widths"] = list(self.config.widths)
        d["rebalance_log_weights"] = list(self.config.rebalance_log_weights)
        return d


@lru_cache(maxsize=4)
def _log_weights(values: tuple[float, ...], device: torch.device) -> Tensor:
    """The config's log rebalancing weights as a (Q,) float32 tensor on ``device``, made once: a
    fresh host-to-device copy per batch would stall the stream on CUDA."""
    return torch.tensor(values, dtype=torch.float32, device=device)


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)
