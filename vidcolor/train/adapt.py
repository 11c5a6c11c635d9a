"""The ImageNet encoder adapted to grey film before the decoder is trained (``--adapt-steps``).

The encoder learnt its features from colour pictures. Given grey, its feature maps lose what
colour told it (grass from hay, sky from stone) at every scale, and the decoder has to make up for
that from about 1,500 training pictures. Here a copy of the encoder (the student) is trained to
give, from the film-degraded L of a crop, the feature maps that the frozen original (the teacher)
gives from the crop's colour: at every map the decoder reads (1/2 to 1/32 of the size) and the
head map the global context is pooled from. The distance of one map is the mean squared
difference over the teacher's variance of it; the loss is the mean over the maps. Batch norm
statistics stay ImageNet's (the student runs in eval mode), so only the convolutions move.

Only the training side of the run's split is seen. The distance on fixed crops of the validation
side is logged every ``val_every`` steps, and the student with the lowest one is what the decoder
is then trained on, frozen, exactly as the ImageNet weights were.

The result is kept as ``RUN_DIR/encoder-adapted.pt`` with the settings it was made with; a run
(or a resumed one) with the same settings and corpus uses it instead of adapting again.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from vidcolor.color import rgb_to_lab
from vidcolor.durable import replacing
from vidcolor.models.efficientnet_lite import INPUT_MEAN, INPUT_STD, EfficientNetLite
from vidcolor.train.augment import AugmentConfig, degrade_l, random_resized_crop
from vidcolor.train.data import Sample

#: The maps whose distance is taken: the decoder's taps (stride) and the head map.
MAPS: tuple[int | str, ...] = (2, 4, 8, 16, 32, "head_map")
FILE = "encoder-adapted.pt"


@dataclass(frozen=True)
class AdaptConfig:
    steps: int = 0  # 0: the ImageNet weights as they are
    batch: int = 16
    lr: float = 1e-4  # AdamW, one-cycle
    val_every: int = 100
    val_batches: int = 4  # of 16 fixed crops each


def make_pairs(
    samples: Sequence[Sample], n: int, aug: AugmentConfig, rng: np.random.Generator, degrade: bool = True
) -> tuple[Tensor, Tensor]:
    """``n`` random crops as (L (n,1,S,S) raw, film-degraded when ``degrade``; RGB (n,3,S,S) in [0, 1])."""
    Ls, rgbs = [], []
    for i in rng.integers(0, len(samples), n):
        rgb = random_resized_crop(samples[i].rgb, aug, rng).astype(np.float32) / 255.0
        L = rgb_to_lab(rgb)[..., 0]
        Ls.append((degrade_l(L, aug, rng) if degrade else L)[None])
        rgbs.append(rgb.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(Ls)).float(), torch.from_numpy(np.stack(rgbs)).float()


def distance(
    student: EfficientNetLite, teacher: EfficientNetLite, L: Tensor, rgb: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """Mean over :data:`MAPS` of the student's (on L) squared difference from the teacher's (on RGB),
    each over the teacher map's variance; and each map's term."""
    with torch.no_grad():
        want = teacher((rgb - INPUT_MEAN) / INPUT_STD)
    got = student(((L / 100.0 - INPUT_MEAN) / INPUT_STD).expand(-1, 3, -1, -1))
    terms = {str(k): ((got[k] - want[k]) ** 2).mean() / (want[k].var() + 1e-6) for k in MAPS}
    total: Tensor = sum(terms.values()) / len(terms)  # summed as the first runs summed it, bit for bit
    return total, {k: float(v.detach()) for k, v in terms.items()}


def _key(cfg: AdaptConfig, aug: AugmentConfig, data_id: str, seed: int, variant: str) -> str:
    """What an adapted encoder was made from: a saved one is used only by a run with the same."""
    fields = {"adapt": asdict(cfg), "augment": asdict(aug), "data": data_id, "seed": seed, "encoder": variant}
    return json.dumps(fields, sort_keys=True)


def adapted_encoder(
    encoder: EfficientNetLite,
    train_s: Sequence[Sample],
    val_s: Sequence[Sample],
    aug: AugmentConfig,
    cfg: AdaptConfig,
    out: Path,
    *,
    data_id: str,
    seed: int,
    progress: bool = True,
) -> dict[str, Tensor]:
    """The state dict of ``encoder`` (holding the ImageNet weights, on its device) adapted to grey as
    the module docstring says; read from ``out/encoder-adapted.pt`` when that was made with the same
    settings, else made and written there. Appends its log to ``out/adapt.jsonl``."""
    key = _key(cfg, aug, data_id, seed, encoder.variant)
    path = out / FILE
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return dict(saved["state_dict"])
    device = next(encoder.parameters()).device
    teacher = copy.deepcopy(encoder).eval().requires_grad_(False)
    student = copy.deepcopy(encoder).eval()
    student.requires_grad_(True)
    for m in student.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 2), pct_start=0.05
    )
    vrng = np.random.default_rng(12345)
    val = [
        tuple(t.to(device) for t in make_pairs(val_s or train_s, 16, aug, vrng, degrade=False))
        for _ in range(cfg.val_batches)
    ]

    def validate() -> float:
        with torch.no_grad():
            return float(np.mean([float(distance(student, teacher, L, rgb)[0]) for L, rgb in val]))

    rng = np.random.default_rng(seed)
    best, best_state = validate(), copy.deepcopy(student.state_dict())
    with (out / "adapt.jsonl").open("a") as log:
        log.write(json.dumps({"step": 0, "time": time.time(), "val": best}) + "\n")
        bar = tqdm(total=cfg.steps, disable=not progress, desc="adapt encoder", unit="step")
        for step in range(1, cfg.steps + 1):
            L, rgb = (t.to(device) for t in make_pairs(train_s, cfg.batch, aug, rng))
            loss, _ = distance(student, teacher, L, rgb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(distance=f"{float(loss.detach()):.3f}")
            if step % cfg.val_every == 0 or step == cfg.steps:
                v = validate()
                record = {"step": step, "time": time.time(), "train": float(loss.detach()), "val": v}
                log.write(json.dumps(record) + "\n")
                log.flush()
                if v < best:
                    best, best_state = v, copy.deepcopy(student.state_dict())
        bar.close()
    state = {k: t.detach().cpu() for k, t in best_state.items()}
    with replacing(path, durable=True) as tmp:
        torch.save({"key": key, "val": best, "state_dict": state}, tmp)
    return state
