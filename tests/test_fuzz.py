"""Damaged input, made on purpose: small valid films cut short at many points, with bytes flipped
and headers zeroed. Every case must end, within a time bound, either in a colorized film that is
whole or in a clean VidcolorError with nothing at the destination: never another exception, a hang
or a partial file. The mutations are deterministic (fixed seeds), so a failure names its case.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from clips import make_clip

from vidcolor.errors import VidcolorError
from vidcolor.media.probe import probe
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.journal import segment_dir
from vidcolor.pipeline.run import colorize_video
from vidcolor.pipeline.segments import colorize_film

#: Tiny films, so that the whole module stays well under a minute on two cores.
BASES: dict[str, dict[str, object]] = {
    "mp4": {"audio": [("aac", None)], "bframes": 2},
    "mkv": {"audio": [("libopus", "eng")], "subtitles": [("subrip", "eng")]},
    "ts": {"audio": [("mp2", "deu")]},
}
TRUNCATIONS = 25  # cut points spread over the file, plus a few inside the first bytes
FLIPS = 30  # runs of 1, 4 or 16 bytes inverted at seeded places
ZEROED = 15  # the first bytes, and blocks through the file, set to zero
OPTS = ColorizeOptions(render_size=32, threads=1, batch_size=6)


def _mutations() -> list[tuple[str, str, tuple[str, int, int]]]:
    """(id, base, (kind, position or length, run length)); positions as fractions of 10000
    of the file size, resolved when the base file exists."""
    cases = []
    for base in BASES:
        for n in (1, 8, 16, 40):
            cases.append((f"{base}-cut-{n}b", base, ("cut_bytes", n, 0)))
        for k in range(1, TRUNCATIONS - 3):
            at = k * 10000 // (TRUNCATIONS - 2)
            cases.append((f"{base}-cut-{at / 100:.1f}%", base, ("cut", at, 0)))
        rng = np.random.default_rng(sum(map(ord, base)))
        for k in range(FLIPS):
            at, run = int(rng.integers(0, 10000)), (1, 4, 16)[k % 3]
            cases.append((f"{base}-flip-{at / 100:.2f}%x{run}", base, ("flip", at, run)))
        for n in (8, 16, 32, 64, 256):
            cases.append((f"{base}-zero-head-{n}", base, ("zero_head", n, 0)))
        for k in range(ZEROED - 5):
            at = (k * 10000) // (ZEROED - 5) + 250
            cases.append((f"{base}-zero-{at / 100:.1f}%", base, ("zero", at, 64)))
    return cases


CASES = _mutations()
#: Cases that still fail, with the module at fault. Strict: a fix makes them pass, and the mark
#: must then go.
KNOWN: dict[str, str] = {}
PARAMS = [
    pytest.param(
        *c, id=c[0], marks=[pytest.mark.xfail(strict=True, reason=KNOWN[c[0]])] if c[0] in KNOWN else []
    )
    for c in CASES
]


def mutate(data: bytes, kind: str, a: int, run: int) -> bytes:
    buf = bytearray(data)
    n = len(buf)
    if kind == "cut_bytes":
        return bytes(buf[:a])
    if kind == "cut":
        return bytes(buf[: max(1, n * a // 10000)])
    pos = min(n - 1, n * a // 10000)
    if kind == "flip":
        for i in range(pos, min(n, pos + run)):
            buf[i] ^= 0xFF
    elif kind == "zero_head":
        buf[:a] = bytes(min(a, n))
    elif kind == "zero":
        buf[pos : pos + run] = bytes(len(buf[pos : pos + run]))
    return bytes(buf)


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16)).eval()


@pytest.fixture(scope="module")
def base_bytes(tmp_path_factory) -> Callable[[str], bytes]:
    folder = tmp_path_factory.mktemp("fuzz-bases")
    cache: dict[str, bytes] = {}

    def get(name: str) -> bytes:
        if name not in cache:
            path = make_clip(
                folder / f"base.{name}",
                frames=6,
                size=(32, 32),
                rate=24,
                # reason for the type: ignore below: per-format clip options from a dict of mixed types
                **BASES[name],  # type: ignore[arg-type]
            )
            cache[name] = path.read_bytes()
        return cache[name]

    return get


def test_enough_cases() -> None:
    assert len(CASES) >= 200
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("case", "base", "mutation"), PARAMS)
def test_damaged_input_ends_cleanly(
    case: str, base: str, mutation: tuple[str, int, int], base_bytes, tiny, tmp_path: Path
) -> None:
    src = tmp_path / "in" / f"film.{base}"
    src.parent.mkdir()
    src.write_bytes(mutate(base_bytes(base), *mutation))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / f"colour.{base}"
    try:
        summary = colorize_video(src, dst, OPTS, colorizer=tiny)
    except VidcolorError as exc:
        msg = str(exc)
        assert msg.startswith("expected ") and "\n" not in msg, msg
        assert list(out_dir.iterdir()) == [], "a failed run left a file behind"
        return
    except Exception as exc:  # this is what the test is looking for
        pytest.fail(f"{case}: {type(exc).__name__} escaped instead of a VidcolorError: {exc}")
    # Success: the output is whole (verify already compared frames, pts and luma with the source).
    assert [p.name for p in out_dir.iterdir()] == [dst.name]
    assert summary.frames >= 1 and summary.verify is not None and summary.verify.frames == summary.frames
    info = probe(dst)
    assert (info.video.width, info.video.height) == (32, 32)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("case", "base", "mutation"), PARAMS[::3])
def test_damaged_input_ends_cleanly_in_segments(
    case: str, base: str, mutation: tuple[str, int, int], base_bytes, tiny, tmp_path: Path
) -> None:
    """The same through the segmented path (segments of 0.1 s: two to three per film). A failed
    run may keep its finished segments for --resume, in the hidden folder, and nothing else."""
    src = tmp_path / f"film.{base}"
    src.write_bytes(mutate(base_bytes(base), *mutation))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / f"colour.{base}"
    try:
        summary = colorize_film(src, dst, OPTS, segment_seconds=0.1, colorizer=tiny)
    except VidcolorError as exc:
        assert str(exc).startswith("expected ") and "\n" not in str(exc)
        assert not dst.exists()
        assert [p.name for p in out_dir.iterdir()] in ([], [segment_dir(dst).name])
        assert not list(out_dir.rglob("*.partial*")), "a temporary file was left behind"
        return
    except Exception as exc:  # this is what the test is looking for
        pytest.fail(f"{case}: {type(exc).__name__} escaped instead of a VidcolorError: {exc}")
    assert [p.name for p in out_dir.iterdir()] == [dst.name]
    assert summary.frames >= 1 and summary.verify is not None
