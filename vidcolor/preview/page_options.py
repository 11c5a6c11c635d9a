"""The page's settings as :class:`~vidcolor.options.ColorizeOptions`, and the CLI line that does the same.

The page sends its settings as JSON (``{"model": ..., "render_size": ..., "smoothing": ...,
"codec": ..., "crf": ..., "preset": ...}``); :func:`parse_settings` checks every field and builds
the options the library takes, so the page can only ask for what ``vidcolor colorize`` itself
accepts, and :func:`command_line` writes the command that reproduces a render.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcolor.errors import UsageError
from vidcolor.formats import CODECS, presets_for
from vidcolor.options import DEFAULT_CODEC, DEFAULT_MODEL, DEFAULT_SMOOTHING, ColorizeOptions

MAX_RENDER_SIZE = 2160  # pixels; beyond this a preview is no longer a preview
CRF_RANGE = (0.0, 63.0)


@dataclass(frozen=True)
class ModelChoice:
    """A model the page may pick: ``key`` is what the page sends, ``ref`` what ``models.load`` takes
    (a registry name or a checkpoint path), ``arg`` the ``--model`` value of the command line,
    ``label`` what the page shows."""

    key: str
    ref: str
    arg: str
    label: str
    present: bool
    render_size: int | None = None


def _number(settings: dict[str, Any], key: str, default: float | None) -> float | None:
    value = settings.get(key, default)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"a number for {key}", repr(value), f"set {key} to a number")
    return float(value)


def parse_settings(
    settings: Any, models: dict[str, ModelChoice], device: str, *, threads: int
) -> ColorizeOptions:
    """The page's settings (a JSON object) -> ColorizeOptions; ``device`` and ``threads`` are the
    server's (``vidcolor preview --device/--threads``). Raises UsageError for a bad field."""
    if not isinstance(settings, dict):
        raise UsageError("an object of settings", type(settings).__name__, 'send {"model": ..., ...}')
    key = settings.get("model") or next(iter(models), DEFAULT_MODEL)
    if key not in models:
        raise UsageError("a model among " + ", ".join(models), repr(key), "pick one of the listed models")
    render = _number(settings, "render_size", None)
    if render is not None and (render != int(render) or not 16 <= render <= MAX_RENDER_SIZE):
        raise UsageError(f"a render size of 16..{MAX_RENDER_SIZE} pixels", repr(render), "pass e.g. 224")
    smoothing = _number(settings, "smoothing", DEFAULT_SMOOTHING)
    codec = settings.get("codec") or DEFAULT_CODEC
    if codec not in CODECS:
        raise UsageError("a codec among " + ", ".join(CODECS), repr(codec), "pick one of the listed codecs")
    crf = _number(settings, "crf", None)
    if crf is not None and not CRF_RANGE[0] <= crf <= CRF_RANGE[1]:
        raise UsageError(f"a quality (CRF) of {CRF_RANGE[0]:g}..{CRF_RANGE[1]:g}", repr(crf), "pass e.g. 18")
    preset = settings.get("preset") or None
    if preset is not None:
        names = presets_for(codec)
        if not isinstance(preset, str) or (names and preset not in names):
            among = " among " + ", ".join(names) if names else " (it has none)"
            wanted = f"a speed preset of {codec}{among}"
            raise UsageError(wanted, repr(preset), "pick one of the listed presets")
        preset = preset if names else None  # a codec without presets: nothing to set
    start = _number(settings, "start", None)
    duration = _number(settings, "duration", None)
    return ColorizeOptions(
        model=models[key].ref,
        device=device,
        threads=threads,
        render_size=None if render is None else int(render),
        smoothing=DEFAULT_SMOOTHING if smoothing is None else smoothing,
        codec=codec,
        crf=crf,
        preset=preset,
        start=start or None,
        duration=duration,
    )


def _seconds(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".") or "0"


def command_line(
    src: str,
    dst: str | None,
    opts: ColorizeOptions,
    *,
    model_arg: str,
    hints: str | None = None,
    segment_seconds: float | None = None,
    root: Path | None = None,
) -> str:
    """``vidcolor colorize ...`` that does what ``opts`` do to ``src``, run from the preview folder.

    ``model_arg`` is the ``--model`` value as the user would type it; ``hints`` a hints file the
    page exported; ``segment_seconds`` is added when it must be stated (0: never cut the film);
    paths of the reference folder are written relative to ``root``, the preview folder.
    """
    args = ["vidcolor", "colorize", src]
    if dst is not None:
        args += ["-o", dst]
    if model_arg != DEFAULT_MODEL:
        args += ["--model", model_arg]
    if opts.device != "auto":
        args += ["--device", opts.device]
    if opts.render_size is not None:
        args += ["--render-size", str(opts.render_size)]
    if opts.smoothing == 0:
        args.append("--no-smoothing")
    elif opts.smoothing != DEFAULT_SMOOTHING:
        args += ["--smoothing", f"{opts.smoothing:g}"]
    if opts.codec != DEFAULT_CODEC:
        args += ["--codec", opts.codec]
    if opts.crf is not None:
        args += ["--crf", f"{opts.crf:g}"]
    if opts.preset is not None:
        args += ["--preset", opts.preset]
    if opts.start is not None:
        args += ["--start", _seconds(opts.start)]
    if opts.duration is not None:
        args += ["--duration", _seconds(opts.duration)]
    if hints is not None:
        args += ["--hints", hints]
    if opts.reference_dir:

        def rel(path: str) -> str:
            p = Path(path)
            return p.relative_to(root).as_posix() if root is not None and p.is_relative_to(root) else path

        def span(r: Any) -> str:
            return f"@{_seconds(r.start or 0.0)}-{'' if r.end is None else _seconds(r.end)}"

        args += ["--reference-dir", rel(opts.reference_dir)]
        for r in opts.reference:
            args += ["--reference", rel(str(r.image)) + span(r)]
        for r in opts.reference_drop:
            args += ["--drop-reference", str(r.image) + span(r)]
    if segment_seconds is not None:
        args += ["--segment-seconds", f"{segment_seconds:g}"]
    return shlex.join(args)
