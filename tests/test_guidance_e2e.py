"""Guidance end to end, on films the tests make: no guidance changes nothing; a hint on a moving
object stays on it for its shot and not past the cut; bad hints are refused before anything is
written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
import torch
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.color import rgb_to_lab
from vidcolor.errors import UsageError
from vidcolor.evaluate.colorizers import model_variants, truth_guidance
from vidcolor.evaluate.metrics import ciede2000
from vidcolor.evaluate.run import evaluate
from vidcolor.guidance.guide import Guide, guide_for
from vidcolor.models import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.image import colorize_image
from vidcolor.pipeline.run import colorize_video
from vidcolor.stages.model_step import ModelStep
from vidcolor.stages.scene_cut import SceneCutDetector

W, H = 192, 144  # the clip's size; the model renders it at its own size (no resampling)
SIDE = 36  # the square's side, pixels
SHOT = 24  # frames of the first shot (the square moves 3 px right and 1 px down a frame) ...
FRAMES = 30  # ... then a cut to another background
COLOUR = (40, 110, 200)  # the square's true colour, sRGB
HEX = "#" + "".join(f"{c:02x}" for c in COLOUR)
RATE = 12


def _texture(seed: int, h: int, w: int, sigma: float, amp: float, mean: float) -> np.ndarray:
    n = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    return mean + amp * n / n.std()


def scene() -> tuple[list[np.ndarray], list[tuple[int, int] | None]]:
    """The colour truth: RGB uint8 frames of a textured blue square moving over a textured grey
    background, then (from frame SHOT) a cut to another background; and the square's top-left
    corner per frame (None after the cut)."""
    bg1, bg2 = _texture(1, H, W, 2.0, 18, 70), _texture(2, H, W, 4.0, 25, 140)
    sq = np.array(COLOUR, np.float32) + _texture(3, SIDE, SIDE, 1.5, 10, 0)[..., None]
    frames: list[np.ndarray] = []
    boxes: list[tuple[int, int] | None] = []
    for i in range(FRAMES):
        if i < SHOT:
            rgb = np.repeat(bg1[..., None], 3, 2)
            x0, y0 = 20 + 3 * i, 40 + i
            rgb[y0 : y0 + SIDE, x0 : x0 + SIDE] = sq
            boxes.append((x0, y0))
        else:
            rgb = np.repeat(np.roll(bg2, 2 * i, axis=1)[..., None], 3, 2)
            boxes.append(None)
        frames.append(np.clip(rgb, 0, 255).round().astype(np.uint8))
    return frames, boxes


def write_grey(path: Path, frames: list[np.ndarray]) -> Path:
    """The truth turned grey (BT.601 luma), as a lossless grey FFV1 film."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=RATE)
        s.width, s.height, s.pix_fmt = W, H, "gray"
        for i, rgb in enumerate(frames):
            grey = cast(npt.NDArray[np.uint8], cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))  # of uint8 RGB
            f = av.VideoFrame.from_ndarray(grey, format="gray")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def read_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def model() -> Colorizer:
    """A tiny untrained colorizer (seeded) that renders the clip at its own size."""
    torch.manual_seed(0)
    return Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=H)).eval()


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int] | None]]:
    frames, boxes = scene()
    return write_grey(tmp_path_factory.mktemp("film") / "square.mkv", frames), boxes


def _hint_at(boxes: list[tuple[int, int] | None], frame: int = 0) -> dict[str, object]:
    box = boxes[frame]
    assert box is not None
    return {"frame": frame, "point": [box[0] + SIDE / 2, box[1] + SIDE / 2], "color": HEX}


def test_no_guidance_is_the_unguided_path(film, model, tmp_path: Path, monkeypatch) -> None:
    src, _ = film
    # reason for the type: ignore below: ColorizeOptions converts a list; the field is typed as its tuple
    assert ColorizeOptions(hints=[], reference=[]) == ColorizeOptions()  # type: ignore[arg-type]
    assert guide_for(ColorizeOptions(), W, H, RATE) is None
    calls: list[object] = []
    real = ModelStep.__call__

    def spy(self: ModelStep, batch, hints=None):
        calls.append(hints)
        return real(self, batch, hints)

    monkeypatch.setattr(ModelStep, "__call__", spy)
    colorize_video(src, tmp_path / "auto.mkv", colorizer=model, lossless=True)
    assert calls and all(h is None for h in calls)  # the model is called exactly as before


def test_a_guided_run_builds_its_guide_once_and_detects_each_cut_once(
    film, model, tmp_path: Path, monkeypatch
) -> None:
    """The guide and the smoother both need the film's cuts: the guide's detector decides them,
    and the smoother takes its answer instead of asking a detector of its own. The guide is
    built once, when the hints are checked before the model loads."""
    src, boxes = film
    calls: list[int] = []
    real = SceneCutDetector.is_cut

    def spy(self: SceneCutDetector, small: np.ndarray) -> bool:
        calls.append(id(self))
        return real(self, small)

    monkeypatch.setattr(SceneCutDetector, "is_cut", spy)
    built: list[int] = []
    init = Guide.__init__

    def counted(self: Guide, *args: object, **kw: object) -> None:
        built.append(1)
        # reason for the type: ignore below: the wrapped __init__'s arguments passed through
        init(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Guide, "__init__", counted)
    summary = colorize_video(
        src, tmp_path / "hint.mkv", colorizer=model, lossless=True, hints=[_hint_at(boxes, 2)]
    )
    assert len(calls) == summary.frames and len(set(calls)) == 1
    assert built == [1]  # the guide checked before the model loads is the one that runs


def test_a_hint_changes_nothing_before_it_starts(film, model, tmp_path: Path) -> None:
    """Frames before a hint (in batches without one) come out bit for bit as without guidance."""
    src, boxes = film
    # model_every=1: the automatic colour of the model on every frame, as guided runs have it.
    opts = {"colorizer": model, "lossless": True, "smoothing": 0.0, "batch_size": 4, "model_every": 1}
    colorize_video(src, tmp_path / "auto.mkv", **opts)
    colorize_video(src, tmp_path / "hint.mkv", hints=[_hint_at(boxes, 10)], **opts)
    auto, hinted = read_rgb(tmp_path / "auto.mkv"), read_rgb(tmp_path / "hint.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(auto[:10], hinted[:10], strict=True))
    assert not np.array_equal(auto[10], hinted[10])


def test_hints_outside_the_section_are_said_in_the_summary(film, model, tmp_path: Path) -> None:
    """A hint before --start or after the section's end is not used, and the summary says so."""
    src, boxes = film
    hints = [_hint_at(boxes, 2), _hint_at(boxes, 12), _hint_at(boxes, 22)]
    start, duration = 7.5 / RATE, 8 / RATE  # frames 8-15: the middle hint only
    s = colorize_video(
        src,
        tmp_path / "part.mkv",
        colorizer=model,
        lossless=True,
        hints=hints,
        start=start,
        duration=duration,
    )
    assert s.frames == 8
    assert (
        "hints: 2 of 3 lie outside the decoded section (1 before it, 1 after it) and were not used" in s.notes
    )
    whole = colorize_video(src, tmp_path / "whole.mkv", colorizer=model, lossless=True, hints=hints)
    assert not [n for n in whole.notes if n.startswith("hints:")]


def _square_error(rgb: np.ndarray, box: tuple[int, int]) -> float:
    """Mean CIEDE2000 over the square's inside (3 px in from its edges) between the output and the
    hint's chroma at the output's own lightness (the luma is the film's, never the hint's)."""
    x, y = box
    lab = rgb_to_lab(rgb[y + 3 : y + SIDE - 3, x + 3 : x + SIDE - 3].astype(np.float32) / 255)
    want = lab.copy()
    want[..., 1:] = rgb_to_lab(np.array(COLOUR, np.float32) / 255)[1:]
    return float(ciede2000(lab, want).mean())


def test_hint_stays_on_a_moving_object_for_its_shot_and_no_further(film, model, tmp_path: Path) -> None:
    src, boxes = film
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([_hint_at(boxes)]))
    ckpt = save_checkpoint(
        tmp_path / "tiny.pt", model, data="test", recipe="test", metrics={}, step=0, git_sha=None
    )
    out = tmp_path / "hinted.mkv"
    args = [
        "colorize",
        str(src),
        "-o",
        str(out),
        "--model",
        str(ckpt),
        "--lossless",
        "-q",
        "--hints",
        str(hints),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    hinted = read_rgb(out)
    assert len(hinted) == FRAMES
    errors = [_square_error(hinted[i], b) for i, b in enumerate(boxes) if b is not None]
    assert max(errors) < 5.0, errors
    auto_path = tmp_path / "auto.mkv"
    colorize_video(src, auto_path, colorizer=model, lossless=True, model_every=1)  # as guided runs
    auto = read_rgb(auto_path)
    assert (
        min(_square_error(auto[i], b) for i, b in enumerate(boxes) if b is not None) > 10
    )  # the model alone is off
    # After the cut the film is the automatic one: the smoother of a guided run restarts at the cut,
    # which moves the first frames after it by a code value at most; nothing of the hint is left.
    for a, g in zip(auto[SHOT:], hinted[SHOT:], strict=True):
        assert np.abs(a.astype(int) - g).max() <= 2
    # Without smoothing the frames after the cut are exactly the automatic ones.
    opts = {"colorizer": model, "lossless": True, "smoothing": 0.0}
    colorize_video(src, tmp_path / "a0.mkv", model_every=1, **opts)  # as guided runs
    colorize_video(src, tmp_path / "h0.mkv", hints=[_hint_at(boxes)], **opts)
    a0, h0 = read_rgb(tmp_path / "a0.mkv"), read_rgb(tmp_path / "h0.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(a0[SHOT:], h0[SHOT:], strict=True))


def _cli_error(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output  # one line, no traceback
    return result.exit_code, lines[0]


def test_malformed_hints_file_is_one_line_and_writes_nothing(film, tmp_path: Path) -> None:
    src, boxes = film
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([_hint_at(boxes), {"frame": 2, "point": [10, 10], "color": "teal"}]))
    out = tmp_path / "out" / "x.mkv"
    out.parent.mkdir()
    code, line = _cli_error(["colorize", str(src), "-o", str(out), "--hints", str(bad)])
    assert code == UsageError.exit_code
    assert "entry 2 of bad.json" in line and "'color'" in line and "teal" in line
    broken = tmp_path / "broken.json"
    broken.write_text('[{"frame": 1,\n "point": [1, 2] "color": "#fff"}]')
    code, line = _cli_error(["colorize", str(src), "-o", str(out), "--hints", str(broken)])
    assert code == UsageError.exit_code and "broken.json" in line and "line 2" in line
    assert list(out.parent.iterdir()) == []


def test_hints_outside_the_frame_or_after_the_end_are_refused(film, model, tmp_path: Path) -> None:
    src, _ = film
    cases = [
        ({"frame": 1, "point": [W + 5, 10], "color": HEX}, f"inside the {W}x{H} picture"),
        ({"frame": FRAMES, "point": [10, 10], "color": HEX}, "before the end of the film"),
        ({"time": FRAMES / RATE + 1, "point": [10, 10], "color": HEX}, "before the end of the film"),
    ]
    out = tmp_path / "out" / "x.mkv"
    out.parent.mkdir()
    for entry, words in cases:
        hints = tmp_path / "h.json"
        hints.write_text(json.dumps([entry]))
        code, line = _cli_error(["colorize", str(src), "-o", str(out), "--hints", str(hints)])
        assert code == UsageError.exit_code and "entry 1 of h.json" in line and words in line, line
        with pytest.raises(UsageError, match=words):
            colorize_video(src, out, colorizer=model, hints=[entry])
    assert list(out.parent.iterdir()) == []


def test_reference_and_hints_on_a_still(model, tmp_path: Path) -> None:
    truth = scene()[0][0]
    grey = cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)
    auto = colorize_image(grey, colorizer=model)
    hinted = colorize_image(grey, colorizer=model, hints=[{"frame": 0, "point": [38, 58], "color": HEX}])
    assert _square_error(hinted, (20, 40)) < 5 < _square_error(auto, (20, 40))
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), cv2.cvtColor(truth, cv2.COLOR_RGB2BGR))
    referenced = colorize_image(grey, colorizer=model, reference=[str(ref)])
    assert _square_error(referenced, (20, 40)) < 0.5 * _square_error(auto, (20, 40))
    with pytest.raises(UsageError, match="before the end"):
        colorize_image(grey, colorizer=model, hints=[{"frame": 1, "point": [1, 1], "color": HEX}])


# ------------------------------------------------------------------------------ eval modes


def test_truth_guidance_is_per_shot_and_seeded(model) -> None:
    frames, _ = scene()
    step = ModelStep.create(ColorizeOptions(), model)
    hints, refs = truth_guidance(iter(frames), step, ColorizeOptions(), 3, True, seed=0)
    assert [h.frame for h in hints] == [0, 0, 0, SHOT, SHOT, SHOT]
    assert [(r.start, r.end) for r in refs] == [(0.0, float(SHOT)), (float(SHOT), None)]
    assert np.array_equal(refs[0].image, frames[0]) and np.array_equal(refs[1].image, frames[SHOT])
    for h in hints:  # each carries the truth's chroma where it stands
        x, y = int(h.point[0]), int(h.point[1])
        truth_ab = rgb_to_lab(frames[h.frame or 0][y, x].astype(np.float32) / 255)[1:]
        assert np.hypot(*(np.array(h.ab) - truth_ab)) < 8
    assert truth_guidance(iter(frames), step, ColorizeOptions(), 3, False, seed=0) == (hints, ())
    assert truth_guidance(iter(frames), step, ColorizeOptions(), 3, False, seed=1)[0] != hints


def test_eval_scores_the_guided_modes_and_only_they_see_the_truth(model, tmp_path: Path) -> None:
    frames, _ = scene()
    clip = tmp_path / "truth.mkv"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("ffv1", rate=RATE)
        s.width, s.height, s.pix_fmt = W, H, "yuv444p"
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv444p")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    ckpt = save_checkpoint(
        tmp_path / "t.pt", model, data="test", recipe="test", metrics={}, step=0, git_sha=None
    )
    variants = model_variants(
        ColorizeOptions(model=str(ckpt)), None, [0.5], hints_from_truth=4, reference_from_truth=True
    )
    auto = "t/smooth0.5"
    assert list(variants) == [auto, f"{auto}/hints4", f"{auto}/reference", f"{auto}/hints4+reference"]
    assert not getattr(variants[auto], "wants_truth", False)
    assert all(getattr(variants[n], "wants_truth", False) for n in list(variants)[1:])
    report = evaluate([clip], variants, out_json=None)
    r = report["items"][0]["colorizers"]
    for mode in ("hints4", "reference", "hints4+reference"):
        assert r[f"{auto}/{mode}"]["ciede2000"] < 0.7 * r[auto]["ciede2000"], (mode, r)
