"""Shared fixtures: the synthetic clip factory (tests/clips.py) and the edge-case media folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from clips import make_clip

if TYPE_CHECKING:
    import torch

#: Render size (short side, pixels) of the tiny test model: small enough for fast tests.
TINY_RENDER = 32

#: Edge-case media for integration tests (../shared/data/edge relative to the repository).
EDGE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edge"


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """vidcolor's cache (exported ONNX graphs, reference indexes) in a folder of the test session,
    for the tests and the processes they start, never the user's."""
    import os

    before = os.environ.get("VIDCOLOR_CACHE")
    os.environ["VIDCOLOR_CACHE"] = str(tmp_path_factory.mktemp("vidcolor-cache"))
    yield
    if before is None:
        os.environ.pop("VIDCOLOR_CACHE", None)
    else:
        os.environ["VIDCOLOR_CACHE"] = before


@pytest.fixture
def clip(tmp_path: Path) -> Callable[..., Path]:
    """``clip(name, **make_clip_options)`` writes a synthetic clip into tmp_path and returns its path."""

    def _make(name: str = "clip.mp4", **kwargs: object) -> Path:
        # reason for the type: ignore below: make_clip's keyword options pass through untyped
        return make_clip(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return _make


@pytest.fixture
def edge() -> Callable[[str], Path]:
    """``edge(name)``: a file of ../shared/data/edge; skips the test when the folder is absent."""

    def _get(name: str) -> Path:
        path = EDGE_DIR / name
        if not path.exists():
            pytest.skip(f"edge media not available: {path}")
        return path

    return _get


@pytest.fixture(scope="session")
def tiny_model() -> Iterator[torch.nn.Module]:
    """An untrained, very small colorizer (seeded, eval mode) that renders at TINY_RENDER: for
    end-to-end tests that need a model but not a good one. Its colours are random, not neutral.

    While it is in use torch runs on one thread: the pipeline's own stage threads share the
    cores, and torch's spinning worker threads made a 12-frame clip take seconds instead of a
    fraction of one on a busy 2-core machine.
    """
    import torch

    from vidcolor.models.colorizer import Colorizer, ColorizerConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=TINY_RENDER)
    yield Colorizer(config).eval()
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory, tiny_model: torch.nn.Module) -> Path:
    """tiny_model saved once as a checkpoint file, for the CLI's ``--model PATH``."""
    from vidcolor.models import save_checkpoint

    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(path, tiny_model, data="test", recipe="test", metrics={}, step=0, git_sha=None)
