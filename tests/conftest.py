"""Shared fixtures: the synthetic clip factory (tests/clips.py) and the edge-case media folder."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clips import make_clip  # noqa: E402

#: Edge-case media for integration tests (../shared/data/edge relative to the repository).
EDGE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edge"


@pytest.fixture
def clip(tmp_path: Path) -> Callable[..., Path]:
    """``clip(name, **make_clip_options)`` writes a synthetic clip into tmp_path and returns its path."""

    def _make(name: str = "clip.mp4", **kwargs: object) -> Path:
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
