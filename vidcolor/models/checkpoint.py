"""The vidcolor checkpoint format: one self-describing file per trained model.

A checkpoint is a dict saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``,
so it holds only tensors and plain Python values (str, int, float, bool, None, list, tuple, dict):

    format            "vidcolor-checkpoint/1"
    arch              architecture name, a key of ARCHITECTURES ("vidcolor-lite", "eccv16", ...)
    config            the keyword arguments that rebuild the network (its config dataclass as a dict)
    state_dict        parameter and buffer name -> tensor (float32, or float16 in a shipped file)
    vidcolor_version  the version that wrote it
    data              training data id (which corpus, which split)
    recipe            training recipe id or command line
    metrics           evaluation figures, name -> number
    git_sha           commit of the code that trained it, or None
    step              optimiser steps taken
    optimizer, extra  optional, for resuming training

Files are written to a temporary name beside the destination and renamed, so a crash never leaves
a half-written checkpoint under the real name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vidcolor.durable import replacing, sha256_file
from vidcolor.errors import WeightsError
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.models.zhang import build_eccv16, build_siggraph17

FORMAT = "vidcolor-checkpoint/1"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch colours some of its error messages
# Batch-norm running statistics stay float32 in a half file: running_var can sit below float16's
# normal range, and they are a negligible share of the size.
_KEEP_FLOAT32 = ("running_mean", "running_var")


def _build_colorizer(config: dict[str, Any]) -> nn.Module:
    cfg = dict(config)
    if "widths" in cfg:
        cfg["widths"] = tuple(cfg["widths"])
    if "rebalance_log_weights" in cfg:
        cfg["rebalance_log_weights"] = tuple(cfg["rebalance_log_weights"])
    return Colorizer(ColorizerConfig(**cfg))


# arch name -> builder(config dict) -> nn.Module obeying the model contract of DESIGN.md.
ARCHITECTURES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "vidcolor-lite": _build_colorizer,
    "eccv16": build_eccv16,
    "siggraph17": build_siggraph17,
}


def build_model(
    arch: str, config: Mapping[str, Any], source: os.PathLike[str] | str | None = None
) -> nn.Module:
    """A fresh (untrained) network of ``arch`` with ``config``; WeightsError if either is unknown.

    ``source`` is the file the description came from, named in the error.
    """
    where = f" in {source}" if source is not None else ""
    builder = ARCHITECTURES.get(arch)
    if builder is None:
        raise WeightsError(
            f"an architecture among {', '.join(sorted(ARCHITECTURES))}",
            f"{arch!r}{where}",
            "the file comes from another program or a newer vidcolor: upgrade vidcolor or use another file",
        )
    try:
        return builder(dict(config))
    except (TypeError, ValueError) as e:
        raise WeightsError(
            f"a {arch} config this vidcolor understands",
            f"{_one_line(e)}{where}",
            "the file was written by a newer vidcolor; upgrade vidcolor",
        ) from e


def arch_of(model: nn.Module) -> str:
    """The architecture name a model is saved under (``model.config.arch``)."""
    arch = getattr(getattr(model, "config", None), "arch", None)
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise TypeError(f"cannot save {type(model).__name__}: no config.arch among {sorted(ARCHITECTURES)}")
    return arch


def _plain(obj: Any, where: str) -> Any:
    """``obj`` with numpy scalars turned into Python numbers, checked to hold only what
    ``torch.load(weights_only=True)`` reads back; TypeError naming the key otherwise."""
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass, but pickles as numpy
        return obj.item()
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {k: _plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        seq = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return seq if isinstance(obj, list) else tuple(seq)
    raise TypeError(f"{where} holds a {type(obj).__name__}, which torch.load(weights_only=True) cannot read")


def _state_for_file(model: nn.Module, half: bool) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point() and not k.endswith(_KEEP_FLOAT32):
            v = v.half()
        elif v.is_floating_point():
            v = v.float()
        out[k] = v.clone()  # its own storage: a view would save the whole underlying buffer
    return out


def save_checkpoint(
    path: os.PathLike[str] | str,
    model: nn.Module,
    *,
    data: str,
    recipe: str,
    metrics: Mapping[str, Any],
    step: int,
    git_sha: str | None,
    extra: Mapping[str, Any] | None = None,
    optimizer: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` as a vidcolor checkpoint at ``path``, atomically; returns the path.

    ``half`` stores floating tensors as float16 (batch-norm statistics stay float32): half the
    size, for the shipped file; loading casts back to the model's dtype. ``optimizer`` (an
    optimiser's ``state_dict()``) and ``extra`` are for resuming training.
    """
    from vidcolor.version import __version__

    dest = Path(path)
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "arch": arch_of(model),
        "config": _plain(model.config_dict(), "config"),  # type: ignore[operator]  # nn.Module types its attributes as Tensor | Module
        "state_dict": _state_for_file(model, half),
        "vidcolor_version": __version__,
        "data": str(data),
        "recipe": str(recipe),
        "metrics": _plain(dict(metrics), "metrics"),
        "git_sha": git_sha,
        "step": int(step),
    }
    if optimizer is not None:
        ckpt["optimizer"] = _plain(optimizer, "optimizer")
    if extra is not None:
        ckpt["extra"] = _plain(dict(extra), "extra")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dest, durable=True) as tmp:
        torch.save(ckpt, tmp)
    return dest


def _one_line(e: BaseException) -> str:
    text = _ANSI.sub("", str(e)).strip().splitlines()
    msg = text[0] if text else type(e).__name__
    return msg if len(msg) <= 160 else msg[:157] + "..."


def check_sha256(path: Path, digest: str, expected: str | None, action: str) -> None:
    """WeightsError unless ``digest`` starts with ``expected`` (a full hash or a hub-style prefix)."""
    if expected and not digest.startswith(expected.lower()):
        what = "sha256" if len(expected) == 64 else "sha256 starting"
        raise WeightsError(
            f"{path} with {what} {expected}",
            f"sha256 {digest[:16]}... ({path.stat().st_size} bytes: truncated, corrupt or another file)",
            action,
        )


def open_weights(
    path: os.PathLike[str] | str, *, sha256: str | None = None, action: str | None = None
) -> tuple[dict[str, Any], str]:
    """Read any torch weights file (a vidcolor checkpoint or a raw state dict) -> (dict, its sha256).

    ``sha256`` is the expected hash, full or a prefix; it is checked before unpickling. Every
    failure is a WeightsError naming the file (and the expected hash when known); ``action`` is
    what the message tells the user to do about a bad file.
    """
    p = Path(path)
    want = f" with sha256 {'' if sha256 and len(sha256) == 64 else 'starting '}{sha256}" if sha256 else ""
    todo = action or "check the path, or download the file again"
    if not p.is_file():
        raise WeightsError(f"a weights file at {p}{want}", "no such file", todo)
    digest = sha256_file(p)
    check_sha256(p, digest, sha256, todo)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, text: torch raises many types
        why = _one_line(e)
        if "Weights only load failed" in why:
            why = "it holds Python objects other than tensors and plain values, which are never unpickled"
        raise WeightsError(
            f"a PyTorch weights file at {p}{want}",
            f"an unreadable file of {p.stat().st_size} bytes ({why})",
            todo,
        ) from e
    if not isinstance(obj, dict):
        raise WeightsError(
            f"a checkpoint or state dict (a dict) in {p}", f"a {type(obj).__name__}", "pass a weights file"
        )
    return obj, digest


def is_checkpoint(obj: Mapping[str, Any]) -> bool:
    """True for a dict in the vidcolor checkpoint layout (of any format version)."""
    return isinstance(obj.get("format"), str) and str(obj["format"]).startswith("vidcolor-checkpoint/")


def validate_checkpoint(obj: Mapping[str, Any], path: os.PathLike[str] | str) -> dict[str, Any]:
    """WeightsError unless ``obj`` (read from ``path``) is a checkpoint this version can load."""
    p = Path(path)
    if not is_checkpoint(obj):
        raise WeightsError(
            f"a vidcolor checkpoint ({FORMAT}) in {p}",
            "a raw state dict or another program's file" if obj else "an empty dict",
            "for upstream weights pass the model name with --weights FILE (load('eccv16', weights=FILE))",
        )
    if obj["format"] != FORMAT:
        raise WeightsError(f"checkpoint format {FORMAT} in {p}", repr(obj["format"]), "upgrade vidcolor")
    for key, kind in (("arch", str), ("config", dict), ("state_dict", dict)):
        if not isinstance(obj.get(key), kind):
            raise WeightsError(
                f"a {kind.__name__} under {key!r} in {p}",
                type(obj.get(key)).__name__,
                "the checkpoint is damaged; use another file",
            )
    return dict(obj)


def read_checkpoint(path: os.PathLike[str] | str, *, sha256: str | None = None) -> dict[str, Any]:
    """Read and validate a vidcolor checkpoint; WeightsError naming the file on any problem."""
    obj, _ = open_weights(path, sha256=sha256)
    return validate_checkpoint(obj, path)


def load_state_checked(
    model: nn.Module, state_dict: Mapping[str, Any], source: os.PathLike[str] | str
) -> None:
    """Load ``state_dict`` into ``model`` strictly, with a WeightsError that lists what differs.

    A missing ``num_batches_tracked`` is filled in: files saved before PyTorch 0.4.1 lack it and it
    only matters for training with momentum=None.
    """
    own = model.state_dict()
    sd = dict(state_dict)
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros_like(v)
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [
        f"{k} {_shape(sd[k])} vs {tuple(own[k].shape)}"
        for k in own
        if k in sd and (not isinstance(sd[k], Tensor) or sd[k].shape != own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise WeightsError(
            f"weights for {type(model).__name__} ({len(own)} tensors) in {source}",
            ", ".join(parts),
            "pass a weights file made for this architecture",
        )
    model.load_state_dict(sd, strict=True)


def _shape(v: Any) -> str:
    return str(tuple(v.shape)) if isinstance(v, Tensor) else f"a {type(v).__name__}"
