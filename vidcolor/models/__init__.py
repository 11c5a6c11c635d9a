"""Colorizer models: the registry of named models, checkpoints, and the networks themselves.

    load(name_or_path="vidcolor-lite", device="auto", half=None, weights=None) -> nn.Module
    available() -> list[ModelInfo]
    save_checkpoint(path, model, *, data, recipe, metrics, step, git_sha, extra=None, half=False)
    write_weights_record(path, *, licence, **fields)  # the .json beside a shipped file

Every model obeys the contract of DESIGN.md: ``forward(L (B,1,h,w) in [0,100]) -> ab (B,2,h,w)``
in raw a*b* units, with ``.info: ModelInfo``.
"""

from __future__ import annotations

from vidcolor.models.checkpoint import ARCHITECTURES, FORMAT, read_checkpoint, save_checkpoint
from vidcolor.models.info import ModelInfo
from vidcolor.models.registry import (
    DEFAULT,
    REGISTRY,
    available,
    format_models_table,
    load,
    write_weights_record,
)

__all__ = [
    "ARCHITECTURES",
    "DEFAULT",
    "FORMAT",
    "REGISTRY",
    "ModelInfo",
    "available",
    "format_models_table",
    "load",
    "read_checkpoint",
    "save_checkpoint",
    "write_weights_record",
]
