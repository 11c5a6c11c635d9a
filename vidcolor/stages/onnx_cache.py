"""Exported ONNX graphs kept on disk, so a process does not export the same model again.

The first export in a process costs 1 to 4 s on this project's 2-core CPU (the exporter's own
start-up and tracing), more than the whole run of a short clip or a still gains from ONNX Runtime.
A graph depends only on the model's code, its weights and readout, and the exporter: the file is
named by a sha256 of exactly those, so a changed weight, readout or line of the model's code gives
a new name and a stale graph is never read:

- every parameter and buffer (persistent or not: the bin centres are computed, not stored), by
  name, dtype, shape and bytes;
- ``repr`` of the model's ``config``, its class, the example shape and the exporter's arguments;
- the source of every module under ``vidcolor/models/`` and of ``stages/onnx_export.py``;
- the torch and vidcolor versions and the opset.

Files live in ``cache_dir()/onnx`` (``$VIDCOLOR_CACHE``, else ``$XDG_CACHE_HOME/vidcolor``, else
``~/.cache/vidcolor``), are written whole (``durable.write_atomic``), and only the ``KEEP`` most
recently used are kept (about 20 MB each for vidcolor-lite). A cache that cannot be written only
costs the export.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import vidcolor.models as models_package
from vidcolor.durable import write_atomic
from vidcolor.models.download import cache_dir
from vidcolor.stages import onnx_export
from vidcolor.version import __version__

log = logging.getLogger(__name__)

KEEP = 6  # graphs kept; the least recently used beyond this are removed


def folder() -> Path:
    """Where the graphs are kept (not created here)."""
    return cache_dir() / "onnx"


def cached_graph(model: nn.Module, example: tuple[int, int], export: Callable[[], bytes]) -> bytes:
    """The graph of ``model`` exported at ``example`` (h, w): from the cache, else ``export()``
    (then kept). Same bytes either way."""
    path = folder() / f"{graph_key(model, example)}.onnx"
    try:
        data = path.read_bytes()
        os.utime(path)  # recently used: kept by the trim below
        return data
    except OSError:
        pass
    data = export()
    try:
        write_atomic(path, data)
        _trim(path.parent)
    except OSError as e:
        log.debug("ONNX graph not cached (%s): the next run exports it again", e)
    return data


def graph_key(model: nn.Module, example: tuple[int, int]) -> str:
    """sha256 (hex) of everything the exported graph depends on (the module docstring)."""
    h = hashlib.sha256()
    for part in (
        f"opset {onnx_export.OPSET} torch {torch.__version__} vidcolor {__version__}",
        f"{type(model).__module__}.{type(model).__qualname__} example {example}",
        repr(getattr(model, "config", None)),
    ):
        h.update(part.encode())
        h.update(b"\0")
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for source in _code_files():
        h.update(source.name.encode())
        h.update(source.read_bytes())
    return h.hexdigest()


def _code_files() -> list[Path]:
    here = Path(models_package.__file__).parent
    return [*sorted(here.glob("*.py")), Path(onnx_export.__file__)]


def _trim(where: Path) -> None:
    graphs = sorted(where.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in graphs[KEEP:]:
        old.unlink(missing_ok=True)
