"""What ``vidcolor bench`` measures (:class:`BenchConfig`), apart from the suite that measures it:
the command line reads its defaults here without loading torch."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcolor.options import ColorizeOptions


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``inputs`` empty: generated film-like clips of ``sizes``, ``frames`` long."""

    opts: ColorizeOptions = field(default_factory=ColorizeOptions)
    model: str | None = None  # registry name or checkpoint; None: default model or its random-weight twin
    inputs: tuple[Path, ...] = ()
    sizes: tuple[str, ...] = ("480p", "720p", "1080p")
    frames: int = 96
    repeats: int = 3
    warmup: int = 1
    model_frames: int = 32
    encode_frames: int = 48
    codecs: tuple[str, ...] = ("libx264", "libx265", "ffv1")
    sweep_renders: tuple[int, ...] = (160, 224, 320)
    sweep_batches: tuple[int, ...] = (1, 4, 8)
    variants: bool = (
        True  # time faster ways to run the model (channels_last, bfloat16, ...) on the first clip
    )
    knobs: tuple[dict[str, Any], ...] = ()  # end-to-end variants on the first clip, e.g. {"threads": 1}
    stages: bool = True
    e2e: bool = True
    memory: bool = True
    memory_size: str = "480p"
    memory_frames: int | None = None  # None: ``frames``
    memory_scale: int = 10
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "vidcolor-bench")
