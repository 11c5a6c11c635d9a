"""ModelInfo: what a colorizer says about itself (the registry and the CLI read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str  # registry name, e.g. "vidcolor-lite"
    licence: str  # licence of the weights
    sha256: str | None  # of the weights file; None for an untrained or in-memory model
    render_size: int  # default short side of the render size, in pixels
    stride: int  # input h, w must be multiples of this
    description: str = ""
    weights_present: bool = True
