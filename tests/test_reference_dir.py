"""A folder of colour stills as references (``--reference-dir``): the index and its cache (added,
changed and removed files, bad files, a stale or unwritable cache), the choice shot by shot, its
threshold, explicit references and dropped stills, and the command line with its report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vidcolor.guidance.choose as choose
from vidcolor.batch import run_batch
from vidcolor.cli import main
from vidcolor.color import rgb_to_lab
from vidcolor.errors import UsageError
from vidcolor.guidance.library import CACHE_NAME, describe_still, index_folder
from vidcolor.media.image_io import write_image
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.stream import colorize_frames
from vidcolor.stages.model_step import ModelStep

RENDER = 96
H, W = 96, 128
SHOT = 5  # frames per shot of the test film


@pytest.fixture(scope="module")
def step() -> Iterator[ModelStep]:
    """A tiny untrained colorizer (seeded) rendering at RENDER: choosing needs features, not skill.
    On one torch thread, as conftest's tiny_model (torch's spinning workers slow a busy machine),
    and in PyTorch: a guided batch always runs there, and shots the guidance leaves alone are
    compared bit for bit with the automatic path, so both must run the same arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=RENDER)).eval()
    yield ModelStep.create(ColorizeOptions(runtime="torch"), model)
    torch.set_num_threads(threads)


def picture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """RGB uint8: a textured scene of colour blocks laid out and coloured by ``seed``."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5) * 12
    n = int(rng.integers(2, 5))
    rgb = np.zeros((h, w, 3), np.float32)
    ys, xs = np.sort(rng.integers(8, h - 8, n - 1)), np.sort(rng.integers(8, w - 8, n - 1))
    for i, (y0, y1) in enumerate(zip([0, *ys], [*ys, h], strict=True)):
        for j, (x0, x1) in enumerate(zip([0, *xs], [*xs, w], strict=True)):
            rgb[y0:y1, x0:x1] = rng.uniform(20, 235, 3) * (0.6 + 0.4 * ((i + j) % 2))
    return np.clip(rgb + tex[..., None], 0, 255).astype(np.uint8)


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Stills a.png and b.png (the two shots of the test film), six unrelated ones at two depths,
    a text file and a damaged JPEG."""
    d = tmp_path / "stills"
    (d / "more" / "deeper").mkdir(parents=True)
    write_image(d / "a.png", picture(1), 8)
    write_image(d / "b.png", picture(2), 8)
    for k in range(6):
        where = d / "more" if k < 3 else d / "more" / "deeper"
        write_image(where / f"u{k}.jpg", picture(100 + k, 120, 90), 8)
    (d / "notes.txt").write_text("list of photographs\n")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a picture")
    return d


def film() -> list[np.ndarray]:
    """Grey frames: SHOT frames of picture 1 moving right, then SHOT of picture 2 moving down."""
    a, b = picture(1), picture(2)
    return [grey(np.roll(a, i, axis=1)) for i in range(SHOT)] + [
        grey(np.roll(b, i, axis=0)) for i in range(SHOT)
    ]


def test_index_is_kept_in_a_cache_and_follows_the_folder(step: ModelStep, folder: Path) -> None:
    first = index_folder(folder, step, RENDER)
    assert first.names == [
        "a.png",
        "b.png",
        *(f"more/u{k}.jpg" for k in range(3)),
        *(f"more/deeper/u{k}.jpg" for k in range(3, 6)),
    ]
    assert dict(first.skipped) == {"broken.jpg": "not a decodable picture", "notes.txt": "not a still"}
    assert first.cache == folder / CACHE_NAME and first.cache.is_file()
    assert first.desc.shape[0] == 8 and torch.allclose(first.desc.norm(dim=1), torch.ones(8), atol=1e-4)
    assert any("2 files in the reference folder skipped" in n for n in first.notes())

    again = index_folder(folder, step, RENDER)
    assert (again.described, again.removed) == (0, 0)
    assert torch.equal(again.desc, first.desc)

    # A still changed after indexing (new content, new time), one added, one removed.
    changed = picture(7)
    write_image(folder / "b.png", changed, 8)
    os.utime(folder / "b.png", ns=(10**18, 10**18))
    write_image(folder / "more" / "new.png", picture(8), 8)
    (folder / "more" / "u0.jpg").unlink()
    later = index_folder(folder, step, RENDER)
    assert (later.described, later.removed) == (2, 1)
    assert "more/u0.jpg" not in later.names and "more/new.png" in later.names
    row = later.names.index("b.png")
    assert torch.allclose(later.desc[row], describe_still(step, changed, RENDER), atol=1e-5)
    assert not torch.allclose(later.desc[row], first.desc[1], atol=1e-3)
    unchanged = later.names.index("a.png")
    assert torch.equal(later.desc[unchanged], first.desc[0])


def test_a_stale_or_damaged_cache_is_rebuilt(step: ModelStep, folder: Path) -> None:
    index_folder(folder, step, RENDER)
    other = index_folder(folder, step, RENDER + 32)  # another render size: other descriptors
    assert other.stale is not None and "another model" in other.stale and other.described == 8
    (folder / CACHE_NAME).write_bytes(b"torn")
    torn = index_folder(folder, step, RENDER)
    assert torn.stale is not None and torn.stale.startswith("unreadable") and torn.described == 8
    assert index_folder(folder, step, RENDER).described == 0  # rewritten whole


def test_a_read_only_folder_is_indexed_in_the_user_cache(
    step: ModelStep, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDCOLOR_CACHE", str(tmp_path / "cache"))
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real(p, mode))
    index = index_folder(folder, step, RENDER)
    assert not (folder / CACHE_NAME).exists()
    assert index.cache is not None and index.cache.parent == tmp_path / "cache" / "reference-index"
    assert index_folder(folder, step, RENDER).described == 0


def test_missing_or_empty_folder_is_refused(step: ModelStep, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing at"):
        index_folder(tmp_path / "nowhere", step, RENDER)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(UsageError, match="holding colour stills"):
        list(
            colorize_frames([grey(picture(1))], step, ColorizeOptions(reference_dir=str(tmp_path / "empty")))
        )


def _ab_error(out: list[np.ndarray], truth: list[np.ndarray]) -> float:
    lab = [rgb_to_lab(o.astype(np.float32) / 255) for o in out]
    true = [rgb_to_lab(t.astype(np.float32) / 255) for t in truth]
    return float(np.mean([np.abs(a[..., 1:] - b[..., 1:]).mean() for a, b in zip(lab, true, strict=True)]))


def test_each_shot_takes_its_own_stills(step: ModelStep, folder: Path) -> None:
    opts = ColorizeOptions(smoothing=0.0)
    report: dict = {}
    frames = film()
    by_folder = ColorizeOptions(smoothing=0.0, reference_dir=str(folder))
    guided = list(colorize_frames(frames, step, by_folder, references=report))
    shots = report["shots"]
    assert [s["first_frame"] for s in shots] == [0, SHOT]
    assert [s["stills"][0]["name"] for s in shots] == ["a.png", "b.png"]
    assert all(s["stills"][0]["score"] >= choose.MATCH_MIN and not s["automatic"] for s in shots)
    assert report["skipped"] == [
        {"name": "broken.jpg", "why": "not a decodable picture"},
        {"name": "notes.txt", "why": "not a still"},
    ]
    truth = [np.roll(picture(1), i, axis=1) for i in range(SHOT)] + [
        np.roll(picture(2), i, axis=0) for i in range(SHOT)
    ]
    automatic = list(colorize_frames(frames, step, opts))
    assert _ab_error(guided, truth) < 0.5 * _ab_error(automatic, truth)


def test_below_the_threshold_a_shot_keeps_its_automatic_colour(
    step: ModelStep, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choose, "MATCH_MIN", 1.01)  # nothing can match that well
    report: dict = {}
    frames = film()
    guided = list(
        colorize_frames(frames, step, ColorizeOptions(reference_dir=str(folder)), references=report)
    )
    assert [s["automatic"] for s in report["shots"]] == [True, True]
    assert [s["best"]["name"] for s in report["shots"]] == ["a.png", "b.png"]
    automatic = list(colorize_frames(frames, step, ColorizeOptions(model_every=1)))  # as guided runs
    assert all(np.array_equal(g, a) for g, a in zip(guided, automatic, strict=True))


def test_an_explicit_reference_wins_in_its_range_and_a_dropped_still_is_not_chosen(
    step: ModelStep, folder: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.png"
    write_image(other, picture(1)[:, ::-1], 8)
    frames = film()
    # reason for the type: ignore below: ColorizeOptions converts a list; the field is typed as its tuple
    explicit = ColorizeOptions(smoothing=0.0, reference=[f"{other}@0-{SHOT}"])  # type: ignore[arg-type]
    both = ColorizeOptions(
        smoothing=0.0,
        # reason for the type: ignore below: ColorizeOptions converts a list; the field is typed as its tuple
        reference=[f"{other}@0-{SHOT}"],  # type: ignore[arg-type]
        reference_dir=str(folder),
    )
    only = list(colorize_frames(frames, step, explicit))
    mixed = list(colorize_frames(frames, step, both))
    assert all(np.array_equal(a, b) for a, b in zip(only[:SHOT], mixed[:SHOT], strict=True))
    chosen = list(colorize_frames(frames, step, ColorizeOptions(smoothing=0.0, reference_dir=str(folder))))
    assert all(np.array_equal(a, b) for a, b in zip(chosen[SHOT:], mixed[SHOT:], strict=True))

    report: dict = {}
    dropped = ColorizeOptions(
        reference_dir=str(folder),
        # reason for the type: ignore below: ColorizeOptions converts a list; the field is typed as its tuple
        reference_drop=["a.png", f"{folder / 'b.png'}@0-1"],  # type: ignore[arg-type]
    )
    list(colorize_frames(frames, step, dropped, references=report))
    names = [[c["name"] for c in s["stills"]] for s in report["shots"]]
    assert "a.png" not in names[0] and names[1][0] == "b.png"  # b.png is dropped only before 1 s


def _write_film(path: Path, frames: list[np.ndarray], rate: int = 5) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=rate)
        s.width, s.height, s.pix_fmt = W, H, "gray"
        for i, y in enumerate(frames):
            f = av.VideoFrame.from_ndarray(y, format="gray")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_cli_reports_which_stills_coloured_which_shots(
    folder: Path, tmp_path: Path, tiny_model_path: Path
) -> None:
    src = _write_film(tmp_path / "reel.mkv", film())
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"frame": 1, "point": [10, 10], "color": "#c03030"}]))
    dst, report = tmp_path / "out.mkv", tmp_path / "choices.json"
    r = CliRunner().invoke(
        main,
        [
            "colorize",
            str(src),
            "-o",
            str(dst),
            "--model",
            str(tiny_model_path),
            "--reference-dir",
            str(folder),
            "--references-report",
            str(report),
            "--hints",
            str(hints),
        ],
    )
    assert r.exit_code == 0, r.output
    assert dst.is_file()
    data = json.loads(report.read_text())
    assert data["folder"] == str(folder) and data["stills"] == 8
    assert [s["first_frame"] for s in data["shots"]] == [0, SHOT]
    assert sum(s["frames"] for s in data["shots"]) == 2 * SHOT
    assert "shot 1 (0.00-0.80 s)" in r.output and "8 stills indexed" in r.output
    assert "2 files in the reference folder skipped: broken.jpg (not a decodable picture)" in r.output


def test_cli_refuses_an_empty_folder_and_writes_nothing(tmp_path: Path, tiny_model_path: Path) -> None:
    src = _write_film(tmp_path / "reel.mkv", film()[:3])
    (tmp_path / "empty").mkdir()
    dst, report = tmp_path / "out.mkv", tmp_path / "choices.json"
    r = CliRunner().invoke(
        main,
        [
            "colorize",
            str(src),
            "-o",
            str(dst),
            "--model",
            str(tiny_model_path),
            "--reference-dir",
            str(tmp_path / "empty"),
            "--references-report",
            str(report),
        ],
    )
    assert r.exit_code == UsageError.exit_code
    assert r.output.count("\n") == 1 and "holding colour stills" in r.output and "Traceback" not in r.output
    assert not dst.exists() and not report.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "reel.mkv"]
    r = CliRunner().invoke(main, ["colorize", str(src), "-o", str(dst), "--references-report", str(report)])
    assert r.exit_code == UsageError.exit_code and "--reference-dir" in r.output


def test_batch_indexes_once_and_writes_each_films_choice_beside_it(
    folder: Path, tmp_path: Path, tiny_model: torch.nn.Module
) -> None:
    reels = tmp_path / "reels"
    reels.mkdir()
    _write_film(reels / "one.mkv", film())
    _write_film(reels / "two.mkv", film()[SHOT:])
    out = tmp_path / "out"
    opts = ColorizeOptions(reference_dir=str(folder))
    report = run_batch([str(reels)], out, opts, colorizer=tiny_model)
    assert [r.status for r in report.results] == ["done", "done"]
    one = json.loads((out / "one.mkv.references.json").read_text())
    two = json.loads((out / "two.mkv.references.json").read_text())
    assert len(one["shots"]) == 2 and len(two["shots"]) == 1
    assert report.results[0].references == str(out / "one.mkv.references.json")
    assert (folder / CACHE_NAME).is_file()

    with pytest.raises(UsageError, match="nothing at"):
        run_batch([str(reels)], tmp_path / "out2", ColorizeOptions(reference_dir=str(tmp_path / "gone")))
    assert not (tmp_path / "out2").exists()
