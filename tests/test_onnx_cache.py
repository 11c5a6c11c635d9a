"""Exported ONNX graphs kept on disk: read back instead of exported again, never stale, bounded,
and a cache that cannot be written costs only the export."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vidcolor.stages import onnx_cache
from vidcolor.stages.onnx_cache import cached_graph, graph_key
from vidcolor.stages.onnx_export import graph_bytes

EXAMPLE = (64, 96)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIDCOLOR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _counted(model: torch.nn.Module, calls: list[int]):
    def export() -> bytes:
        calls.append(1)
        return graph_bytes(model, EXAMPLE, dynamic=True)

    return export


def test_a_graph_is_exported_once_then_read_back(tiny_model, cache: Path) -> None:
    calls: list[int] = []
    first = cached_graph(tiny_model, EXAMPLE, _counted(tiny_model, calls))
    again = cached_graph(copy.deepcopy(tiny_model), EXAMPLE, _counted(tiny_model, calls))
    assert calls == [1] and again == first
    assert [p.name for p in cache.iterdir()] == [f"{graph_key(tiny_model, EXAMPLE)}.onnx"]


def test_other_weights_or_readout_get_a_graph_of_their_own(tiny_model) -> None:
    base = graph_key(tiny_model, EXAMPLE)
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        other.reg_head.bias.add_(1e-3)
    assert graph_key(other, EXAMPLE) != base
    other = copy.deepcopy(tiny_model)
    other.config = replace(other.config, temperature=0.5)
    assert graph_key(other, EXAMPLE) != base
    assert graph_key(tiny_model, (96, 96)) != base
    assert graph_key(copy.deepcopy(tiny_model), EXAMPLE) == base  # same model: same name


def test_a_cache_that_cannot_be_written_costs_only_the_export(
    tiny_model, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: object, data: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(onnx_cache, "write_atomic", refuse)
    calls: list[int] = []
    assert cached_graph(tiny_model, EXAMPLE, _counted(tiny_model, calls)) and calls == [1]
    assert not cache.exists() or not list(cache.iterdir())


def test_only_the_most_recently_used_graphs_are_kept(
    tiny_model, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_cache, "KEEP", 2)
    for t in (0.3, 0.4, 0.5):
        m = copy.deepcopy(tiny_model)
        m.config = replace(m.config, temperature=t)
        cached_graph(m, EXAMPLE, lambda: b"graph")
    assert len(list(cache.glob("*.onnx"))) == 2


def test_a_new_process_step_reads_the_graph_instead_of_exporting(
    tiny_model, cache: Path, monkeypatch
) -> None:
    from vidcolor.options import ColorizeOptions
    from vidcolor.stages import onnx_runtime
    from vidcolor.stages.model_step import ModelStep

    first = ModelStep.create(ColorizeOptions(device="cpu", runtime="onnx"), copy.deepcopy(tiny_model))
    assert first.onnx is not None
    first.onnx.session()
    calls: list[int] = []
    real = onnx_runtime.graph_bytes

    def counted(model: torch.nn.Module, shape: tuple[int, int], dynamic: bool = False) -> bytes:
        calls.append(1)
        return real(model, shape, dynamic=dynamic)

    monkeypatch.setattr(onnx_runtime, "graph_bytes", counted)
    # A fresh copy has no session of its own, as in a new process: the graph comes from the disk.
    step = ModelStep.create(ColorizeOptions(device="cpu", runtime="onnx"), copy.deepcopy(tiny_model))
    assert step.onnx is not None and step.onnx.session() is not None and calls == []
