"""The named models vidcolor knows, as data, and ``load`` / ``available`` over them.

Each entry says which architecture to build, with which config, where its weights come from and
under which licence (as torchvision's weights API does). Weights come from one of two places:

- shipped: a vidcolor checkpoint inside the package, ``vidcolor/models/weights/<file>``, with a
  ``<stem>.json`` beside it that records its sha256 and licence (written when the file is made, so
  the hash is never copied by hand into code);
- upstream: a URL, fetched once into the cache (see ``download.cache_dir``). The released files of
  Zhang et al. follow the PyTorch hub convention: the 8 hex digits at the end of the file name are
  the start of the file's sha256, which is checked (and the full hash, once one is recorded in
  ``sha256``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from vidcolor.errors import UsageError, WeightsError
from vidcolor.models.checkpoint import (
    build_model,
    is_checkpoint,
    load_state_checked,
    open_weights,
    validate_checkpoint,
)
from vidcolor.models.download import cache_dir, download
from vidcolor.models.info import ModelInfo

DEFAULT = "vidcolor-lite"
WEIGHTS_DIR = Path(__file__).parent / "weights"  # shipped weights and their .json records
_HUB_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")  # "name-<sha256 prefix>.pth"


@dataclass(frozen=True)
class WeightsEntry:
    """One named model: how to build it and where its weights are. Exactly one of file, url."""

    name: str
    arch: str
    licence: str
    description: str
    render_size: int  # default short side of the render size, pixels
    stride: int  # input h, w must be multiples of this
    config: dict[str, Any] = field(default_factory=dict)  # builder keywords beyond the arch defaults
    file: str | None = None  # shipped checkpoint, inside WEIGHTS_DIR
    url: str | None = None  # upstream weights
    sha256: str | None = None  # full hash of the upstream file, when it has been recorded

    @property
    def shipped(self) -> bool:
        return self.file is not None

    @property
    def file_name(self) -> str:
        """Name of the weights file: the shipped file, or the upstream file's name in the cache."""
        if self.file is not None:
            return self.file
        assert self.url is not None
        return self.url.rsplit("/", 1)[-1]

    def weights_path(self) -> Path:
        """Where the weights are (or will be, once downloaded)."""
        return (WEIGHTS_DIR if self.shipped else cache_dir()) / self.file_name

    def record(self) -> dict[str, Any]:
        """The .json record beside a shipped file ({} when absent or for upstream weights)."""
        if not self.shipped:
            return {}
        rec = WEIGHTS_DIR / (Path(self.file_name).stem + ".json")
        try:
            data = json.loads(rec.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise WeightsError(
                f"a JSON record at {rec}", f"an unreadable file ({e})", "reinstall vidcolor"
            ) from e
        return data if isinstance(data, dict) else {}

    def expected_sha256(self) -> str | None:
        """Full sha256 when recorded, else the hub prefix from the file name, else None."""
        if self.shipped:
            sha = self.record().get("sha256")
            return str(sha).lower() if sha else None
        if self.sha256:
            return self.sha256.lower()
        m = _HUB_HASH.search(self.file_name)
        return m.group(1) if m else None

    def info(self, sha256: str | None = None, present: bool | None = None) -> ModelInfo:
        """This entry as a ModelInfo; ``sha256`` defaults to the full recorded hash (or None)."""
        licence = str(self.record().get("licence", self.licence))
        if present is None:
            present = self.weights_path().is_file()
        if sha256 is None and (self.shipped or self.sha256):
            sha256 = self.expected_sha256()  # a hub prefix alone is not "the sha256 of the weights"
        return ModelInfo(
            self.name,
            licence,
            sha256,
            self.render_size,
            self.stride,
            self.description,
            present,
        )


_ZHANG_S3 = "https://colorizers.s3.us-east-2.amazonaws.com"

REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        WeightsEntry(
            name="vidcolor-lite",
            arch="vidcolor-lite",
            licence="Apache-2.0",
            description="EfficientNet-Lite0 encoder, U-Net decoder, ab-bin and regression heads; fast on CPU",
            render_size=224,
            stride=32,
            file="vidcolor-lite.pt",
        ),
        WeightsEntry(
            name="eccv16",
            arch="eccv16",
            licence="BSD-2-Clause",
            description="Zhang, Isola, Efros, ECCV 2016: VGG trunk, 313 ab bins (upstream, downloaded)",
            render_size=256,
            stride=8,
            url=f"{_ZHANG_S3}/colorization_release_v2-9b330a0b.pth",
        ),
        WeightsEntry(
            name="siggraph17",
            arch="siggraph17",
            licence="BSD-2-Clause",
            description="Zhang, Zhu et al., SIGGRAPH 2017: U-Net, regression head (upstream, downloaded)",
            render_size=256,
            stride=8,
            url=f"{_ZHANG_S3}/siggraph17-df00044c.pth",
        ),
    )
}


def write_weights_record(path: os.PathLike[str] | str, *, licence: str, **fields: Any) -> Path:
    """Write the ``<stem>.json`` record beside a shipped weights file and return its path.

    The record holds the file's sha256 and size (which ``load`` checks), its ``licence`` and any
    other ``fields`` (training data id, metrics, ...), all JSON-serialisable.
    """
    from vidcolor.durable import sha256_file, write_atomic

    pt = Path(path)
    rec = pt.with_suffix(".json")
    data = {
        "file": pt.name,
        "sha256": sha256_file(pt),
        "bytes": pt.stat().st_size,
        "licence": licence,
        **fields,
    }
    write_atomic(rec, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return rec


def available() -> list[ModelInfo]:
    """Every registry entry, default first, with ``weights_present`` (shipped file / cached file).

    ``sha256`` is the recorded hash (shipped .json, or a recorded upstream hash), else None; nothing
    is hashed here.
    """
    return [e.info() for e in REGISTRY.values()]


def format_models_table(infos: list[ModelInfo]) -> str:
    """A plain-text table for ``vidcolor models``: name, licence, weights, render size, description."""
    header = ("name", "licence", "weights", "render", "description")
    rows = [
        (
            i.name + (" (default)" if i.name == DEFAULT else ""),
            i.licence,
            "present" if i.weights_present else ("missing" if _is_shipped(i.name) else "not downloaded"),
            str(i.render_size),
            i.description,
        )
        for i in infos
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    return "\n".join(line.rstrip() for line in lines)


def _is_shipped(name: str) -> bool:
    e = REGISTRY.get(name)
    return e is not None and e.shipped


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``: auto (cuda when available, else cpu), cpu, cuda, cuda:N (checked)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise UsageError(
            "a device: auto, cpu, cuda or cuda:N", repr(str(device)), "pass --device auto"
        ) from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("a CUDA device", f"{device!s} but no CUDA device is usable", "pass --device cpu")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise UsageError(
                f"a CUDA device index below {n}", str(dev), f"pass --device cuda:0..cuda:{n - 1}"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("an MPS device", "none usable", "pass --device cpu")
    elif dev.type != "cpu":
        raise UsageError("a device: auto, cpu, cuda or cuda:N", str(dev), "pass --device auto")
    return dev


def load(
    name_or_path: str | os.PathLike[str] = DEFAULT,
    device: str | torch.device = "auto",
    half: bool | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """A colorizer ready for inference: eval mode, on ``device``, with ``.info`` filled in.

    ``name_or_path``: a registry name (see ``available()``), or the path of a vidcolor checkpoint.
    A registry name wins over a file of the same name in the working folder; write ``./name`` for
    the file. ``weights``: with a registry name, a file to use instead of the registry's (a raw
    upstream state dict or a vidcolor checkpoint of the same architecture); a file bearing the
    upstream file name is checked against the upstream hash.
    ``half``: float16 weights; default True on CUDA, False elsewhere. On CUDA the model is also
    put in channels_last. A float16 model wants float16 input.

    Upstream weights missing from the cache are downloaded once (WeightsError when offline, saying
    how to fetch them by hand). Raises UsageError for an unknown name or device, WeightsError for
    missing, damaged or mismatched weights.
    """
    dev = resolve_device(device)
    use_half = dev.type == "cuda" if half is None else bool(half)
    entry = REGISTRY.get(name_or_path) if isinstance(name_or_path, str) else None
    if entry is None:
        names = ", ".join(REGISTRY)
        if weights is not None:
            raise UsageError(
                f"a model name among {names} with --weights",
                repr(os.fspath(name_or_path)),
                "pass --weights with a model name, or pass the checkpoint path alone",
            )
        path = Path(name_or_path)
        if not path.is_file():
            raise UsageError(
                f"a model name among {names}, or a checkpoint file",
                f"{os.fspath(name_or_path)!r}, which is neither",
                "run `vidcolor models` to list the models",
            )
        model, digest = _load_file(path, arch=None, config={})
        info = replace(_info_of(model), name=path.stem, sha256=digest, weights_present=True)
    else:
        path = _weights_file(entry, weights)
        model, digest = _load_file(
            path,
            arch=entry.arch,
            config=entry.config,
            sha256=_expected_for(entry, path),
            action=_bad_file_action(entry, path, weights is not None),
        )
        own = _info_of(model)
        info = replace(
            entry.info(sha256=digest, present=True), render_size=own.render_size, stride=own.stride
        )
    model.info = info  # type: ignore[assignment]  # nn.Module's attribute typing knows only tensors/modules
    return _place(model, dev, use_half)


def _info_of(model: nn.Module) -> ModelInfo:
    """The ModelInfo every architecture in ARCHITECTURES sets on itself when built."""
    return cast(ModelInfo, model.info)


def _weights_file(entry: WeightsEntry, weights: str | os.PathLike[str] | None) -> Path:
    """The file to read for ``entry``: ``weights`` if given, the shipped file, or the cached
    upstream file (downloaded now if absent)."""
    if weights is not None:
        return Path(weights)
    path = entry.weights_path()
    if entry.shipped:
        if not path.is_file():
            raise WeightsError(
                f"the shipped weights of {entry.name} at {path}",
                "no such file",
                "reinstall vidcolor, or pass a checkpoint path instead of the name",
            )
        return path
    if not path.is_file():
        assert entry.url is not None
        download(entry.url, path, sha256=entry.expected_sha256())
    return path


def _expected_for(entry: WeightsEntry, path: Path) -> str | None:
    """The hash ``path`` must have: the entry's own when it is the entry's file (by name), else
    none (a user's own fine-tuned weights cannot be known in advance; their keys are still checked)."""
    return entry.expected_sha256() if path.name == entry.file_name else None


def _bad_file_action(entry: WeightsEntry, path: Path, user_file: bool) -> str:
    if user_file:
        return f"pass the right file for {entry.name}" + (f" (from {entry.url})" if entry.url else "")
    if entry.shipped:
        return "reinstall vidcolor: its shipped weights are damaged"
    return f"delete {path} to download it again, or download {entry.url} by hand and pass --weights FILE"


def _load_file(
    path: Path,
    *,
    arch: str | None,
    config: dict[str, Any],
    sha256: str | None = None,
    action: str | None = None,
) -> tuple[nn.Module, str]:
    """Build the network a weights file describes and fill it -> (model, the file's sha256).

    ``arch`` None: the file must be a vidcolor checkpoint. Otherwise a checkpoint must be of that
    arch, and a raw state dict is loaded into ``arch`` built with ``config``.
    """
    obj, digest = open_weights(path, sha256=sha256, action=action)
    if arch is None or is_checkpoint(obj):
        ckpt = validate_checkpoint(obj, path)
        if arch is not None and ckpt["arch"] != arch:
            raise WeightsError(
                f"a {arch} checkpoint in {path}",
                f"a {ckpt['arch']} checkpoint",
                f"load it by its path, or pass a {arch} file",
            )
        model = build_model(ckpt["arch"], ckpt["config"], path)
        state = ckpt["state_dict"]
    else:
        model = build_model(arch, config, path)
        state = obj
    load_state_checked(model, state, path)
    return model, digest


def _place(model: nn.Module, dev: torch.device, half: bool) -> nn.Module:
    model.eval()
    model.to(dev)
    if half:
        model.half()
    if dev.type == "cuda":
        # Convolutions on tensor cores run fastest on NHWC.
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs leave memory_format out of Module.to
    return model
