"""The training loop of the shipped colorizer: frozen pretrained encoder, trained decoder and heads.

Reads top to bottom: load the corpus, split by scene, measure the ab prior, then steps of
(augment -> encoder under no_grad -> decoder -> rebalanced cross-entropy + rebalanced Huber), with
validation and a checkpoint every few minutes. Each checkpoint carries the resolved config, the git
sha, the data fingerprint and the optimizer, so ``--resume`` continues where a run stopped.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidcolor.durable import write_atomic
from vidcolor.models.ab_bins import nearest_bin, nearest_bin_fast, rebalance_weights, soft_encode
from vidcolor.models.checkpoint import load_state_checked, read_checkpoint, save_checkpoint
from vidcolor.models.colorizer import AB_SCALE, Colorizer, ColorizerConfig, Head
from vidcolor.train.adapt import AdaptConfig, adapted_encoder
from vidcolor.train.augment import AugmentConfig, make_example
from vidcolor.train.data import Sample, corpus_id, load_corpus, split

RECIPE = "vidcolor-lite/1"


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...]
    out: str
    steps: int  # no default here: `vidcolor train --steps` holds the one default
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rebalance_lambda: float = 0.5
    reg_weight: float = 1.0  # Huber term relative to the cross-entropy
    huber_delta: float = 0.05  # in ab / AB_SCALE units (about 5.5 raw)
    val_fraction: float = 0.05
    # Which scenes are held out for validation. Apart from ``seed`` (crops, batches, the decoder's
    # start) so that runs of different seeds are scored on the same validation pictures.
    split_seed: int = 0
    val_every: int = 250
    val_batches: int = 8  # of 16 fixed crops each
    ckpt_minutes: float = 5.0
    seed: int = 0
    threads: int = 0  # 0: torch's default
    device: str = "auto"
    freeze_encoder: bool = True
    # With a frozen encoder, its last ``encoder_tail`` blocks and the head convolution still train:
    # they run at 1/32 of the crop's size, so they cost little, and they let the semantics the fusion
    # reads adapt to grey film (the ImageNet encoder saw colour). 0: all frozen.
    encoder_tail: int = 0
    # The encoder's trained weights (its tail, or all of it when not frozen) learn at this times the
    # decoder's rate: a rate the fresh decoder needs would wash out what ImageNet taught them.
    encoder_lr_scale: float = 0.1
    # A vidcolor checkpoint of the same architecture whose weights the network starts from (encoder
    # and decoder), instead of the ImageNet encoder and a fresh decoder: to fine-tune a trained model.
    init: str | None = None
    # Before the decoder trains, the encoder can be adapted to grey film (train/adapt.py); its
    # ``steps`` 0 keeps the ImageNet weights.
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ColorizerConfig = field(default_factory=ColorizerConfig)


def encoder_tail(model: Colorizer, blocks: int) -> list[torch.nn.Module]:
    """The encoder's last ``blocks`` blocks and its head convolution (none when ``blocks`` is 0)."""
    if blocks <= 0:
        return []
    enc = model.encoder
    return [*list(enc._blocks)[-blocks:], enc._conv_head, enc._bn1]


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def ab_prior(
    samples: list[Sample], centres: torch.Tensor, per_image: int = 4000, seed: int = 0
) -> np.ndarray:
    """Empirical distribution (Q,) of the nearest ab bin over random pixels of the corpus."""
    from vidcolor.color import rgb_to_lab

    rng = np.random.default_rng(seed)
    counts = np.zeros(len(centres), np.float64)
    for s in samples:
        px = s.rgb.reshape(-1, 3)
        px = px[rng.integers(0, len(px), min(per_image, len(px)))]
        ab = rgb_to_lab(px.astype(np.float32) / 255.0)[:, 1:]
        idx = nearest_bin(torch.from_numpy(ab.T.copy())[None, :, :, None], centres).ravel()
        counts += np.bincount(idx.numpy(), minlength=len(centres))
    return (counts / counts.sum()).astype(np.float32)


def make_batch(
    samples: list[Sample], n: int, cfg: AugmentConfig, rng: np.random.Generator, augment: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L_in (N,1,S,S), ab (N,2,S,S), hints (N,3,S,S)) float32 tensors."""
    picks = rng.integers(0, len(samples), n)
    parts = [make_example(samples[i].rgb, cfg, rng, augment) for i in picks]
    return tuple(torch.from_numpy(np.stack(p)) for p in zip(*parts, strict=True))  # type: ignore[return-value]  # a tuple of the batch's arrays, as many as the parts


def losses(
    model: Colorizer,
    L: torch.Tensor,
    ab: torch.Tensor,
    hints: torch.Tensor,
    weights: torch.Tensor,
    cfg: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rebalanced cross-entropy at 1/4 resolution plus rebalanced Huber at 1/2 resolution."""
    # Frozen layers hold no trainable parameters, so autograd records from the first trainable one on.
    with torch.set_grad_enabled((not cfg.freeze_encoder or cfg.encoder_tail > 0) and model.training):
        feats = model.encode(L)
    return losses_of_features(model, feats, ab, hints, weights, cfg)


def losses_of_features(
    model: Colorizer,
    feats: dict[int | str, torch.Tensor],
    ab: torch.Tensor,
    hints: torch.Tensor,
    weights: torch.Tensor,
    cfg: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`losses` from the encoder's features, for callers that already have them."""
    logits, reg = model.decode(feats, hints)
    ab4 = F.adaptive_avg_pool2d(ab, (logits.shape[2], logits.shape[3]))
    target = soft_encode(ab4, model.centres)
    w4 = weights[nearest_bin_fast(ab4)]  # (B,h/4,w/4)
    ce = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    ce = (ce * w4).mean()
    ab2 = F.adaptive_avg_pool2d(ab, (reg.shape[2], reg.shape[3]))
    w2 = weights[nearest_bin_fast(ab2)]
    hub = F.huber_loss(reg.float(), ab2 / AB_SCALE, delta=cfg.huber_delta, reduction="none").sum(dim=1)
    hub = (hub * w2).mean() / cfg.huber_delta  # ~ L1 in units of delta, comparable to the CE
    return ce + cfg.reg_weight * hub, {"ce": float(ce.detach()), "huber": float(hub.detach())}


@torch.no_grad()
def validate(
    model: Colorizer, val: list[tuple[torch.Tensor, ...]], weights: torch.Tensor, cfg: TrainConfig
) -> dict[str, float]:
    """Validation losses and the mean ab error of each head (raw units) on fixed crops."""
    model.eval()
    config = model.config
    tot: dict[str, float] = {"ce": 0.0, "huber": 0.0, "ab_err_class": 0.0, "ab_err_reg": 0.0}
    for L, ab, hints in val:
        feats = model.encode(L)  # once: the losses (with hints) and the ab errors (without) share it
        _, parts = losses_of_features(model, feats, ab, hints, weights, cfg)
        tot["ce"] += parts["ce"]
        tot["huber"] += parts["huber"]
        logits, reg = model.decode(feats, None)
        heads: tuple[tuple[Head, str], ...] = (("class", "ab_err_class"), ("regression", "ab_err_reg"))
        for head, key in heads:
            model.config = replace(model.config, head=head, saturation=1.0)
            pred = model.ab_from_heads(logits, reg, (L.shape[2], L.shape[3]))
            tot[key] += float((pred - ab).norm(dim=1).mean())
    model.config = config
    return {k: v / len(val) for k, v in tot.items()}


def save(
    path: Path,
    model: Colorizer,
    opt: torch.optim.Optimizer,
    step: int,
    cfg: TrainConfig,
    data_id: str,
    weights: torch.Tensor,
    metrics: dict[str, float],
) -> None:
    """A resumable checkpoint: model, optimizer, rebalancing weights, resolved config."""
    save_checkpoint(
        path,
        model,
        data=data_id,
        recipe=recipe_of(cfg),
        metrics=metrics,
        step=step,
        git_sha=git_sha(),
        optimizer=opt.state_dict(),
        extra={"rebalance_weights": weights.cpu()},
    )


def recipe_of(cfg: TrainConfig) -> str:
    """The recipe id and the resolved training config, as recorded in checkpoints."""
    return RECIPE + " " + json.dumps(_jsonable(asdict(cfg)), sort_keys=True)


def config_of_recipe(recipe: str) -> dict[str, Any]:
    """The resolved training config recorded by :func:`recipe_of`, as a plain dict."""
    return dict(json.loads(recipe.split(" ", 1)[1]))


def _jsonable(d: object) -> object:
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) training; returns the path of the last checkpoint."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.json", json.dumps(_jsonable(asdict(cfg)), indent=2))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(
        "cuda"
        if cfg.device == "auto" and torch.cuda.is_available()
        else ("cpu" if cfg.device == "auto" else cfg.device)
    )
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    samples = load_corpus(cfg.data)
    train_s, val_s = split(samples, cfg.val_fraction, cfg.split_seed)
    data_id = corpus_id(samples)

    model = Colorizer(cfg.model)
    if cfg.init:
        # Loading copies into the model's float32 tensors, so a float16 (shipped or slim) file fits too.
        load_state_checked(model, read_checkpoint(cfg.init)["state_dict"], cfg.init)
    else:
        model.encoder.load_pretrained()
    model.to(device)
    last = out / "last.pt"
    if cfg.adapt.steps > 0 and not (resume and last.is_file()):  # a resumed run's checkpoint holds it
        state = adapted_encoder(
            model.encoder,
            train_s,
            val_s,
            cfg.augment,
            cfg.adapt,
            out,
            data_id=data_id,
            seed=cfg.seed,
            progress=progress,
        )
        model.encoder.load_state_dict(state)
    if cfg.freeze_encoder:
        model.encoder.requires_grad_(False)
        for part in encoder_tail(model, cfg.encoder_tail):
            part.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    encoder_ids = {id(p) for p in model.encoder.parameters() if p.requires_grad}
    rates = [
        ([p for p in params if id(p) not in encoder_ids], cfg.lr),
        ([p for p in params if id(p) in encoder_ids], cfg.lr * cfg.encoder_lr_scale),
    ]
    rates = [(ps, lr) for ps, lr in rates if ps]
    opt = torch.optim.AdamW(
        [{"params": ps, "lr": lr} for ps, lr in rates], lr=cfg.lr, weight_decay=cfg.weight_decay
    )

    step = 0
    if resume and last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"] if "optimizer" in ckpt else ckpt["extra"]["optimizer"])
        weights = ckpt["extra"]["rebalance_weights"].to(device)
        step = int(ckpt["step"])
        rng = np.random.default_rng([cfg.seed, step])
    else:
        prior = ab_prior(train_s, model.centres.cpu(), seed=cfg.seed)
        weights = torch.from_numpy(
            rebalance_weights(prior, model.centres.cpu().numpy(), cfg.rebalance_lambda)
        ).to(device)

    vrng = np.random.default_rng(12345)
    val = [
        tuple(t.to(device) for t in make_batch(val_s or train_s, 16, cfg.augment, vrng, augment=False))
        for _ in range(cfg.val_batches)
    ]
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=[lr for _, lr in rates],
        total_steps=cfg.steps,
        pct_start=0.05,
        last_epoch=step - 1 if step else -1,
    )
    best = float("inf")
    last_ckpt = time.monotonic()
    log = (out / "log.jsonl").open("a")
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", unit="step")
    metrics: dict[str, float] = {}
    while step < cfg.steps:
        model.train()
        model.encoder.eval()  # frozen BN statistics
        L, ab, hints = (
            t.to(device, non_blocking=True) for t in make_batch(train_s, cfg.batch, cfg.augment, rng)
        )
        loss, parts = losses(model, L, ab, hints, weights, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        bar.set_postfix(
            loss=f"{float(loss.detach()):.3f}", ce=f"{parts['ce']:.3f}", hub=f"{parts['huber']:.3f}"
        )
        if step % cfg.val_every == 0 or step == cfg.steps:
            metrics = validate(model, val, weights, cfg)
            log.write(json.dumps({"step": step, "time": time.time(), "train": parts, "val": metrics}) + "\n")
            log.flush()
            score = metrics["ce"] + cfg.reg_weight * metrics["huber"]
            if score < best:
                best = score
                save(out / "best.pt", model, opt, step, cfg, data_id, weights, metrics)
        if time.monotonic() - last_ckpt > cfg.ckpt_minutes * 60 or step == cfg.steps:
            save(last, model, opt, step, cfg, data_id, weights, metrics)
            last_ckpt = time.monotonic()
    bar.close()
    log.close()
    return last
