"""Reference stills: how they are named and checked, and that the film takes their colours where it
matches them (within their time range only)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError, UsageError
from vidcolor.frames import Frame
from vidcolor.guidance.reference import ReferenceMatcher, check_references, load_rgb, split_forward
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.stream import colorize_frames
from vidcolor.references import Reference, as_references, parse_reference
from vidcolor.stages.batch_l import make_batch
from vidcolor.stages.model_step import ModelStep

RENDER = 96


@pytest.fixture(scope="module")
def step() -> ModelStep:
    """A tiny untrained colorizer (seeded) rendering at RENDER: matching needs features, not skill.

    In PyTorch: a guided batch always runs there, and the comparisons below with the automatic
    path are bit for bit, so both sides must run the same arithmetic."""
    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=RENDER)).eval()
    return ModelStep.create(ColorizeOptions(runtime="torch"), model)


def _picture(h: int = 96, w: int = 128) -> np.ndarray:
    """RGB uint8: a textured scene of four colour blocks of clearly different luma (what a grey
    film can tell apart without knowing what things are)."""
    rng = np.random.default_rng(5)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2) * 8
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[: h // 2, : w // 2] = (170, 30, 30)  # red, luma ~71
    rgb[: h // 2, w // 2 :] = (60, 120, 230)  # blue, ~114
    rgb[h // 2 :, : w // 2] = (80, 200, 70)  # green, ~149
    rgb[h // 2 :, w // 2 :] = (250, 235, 140)  # pale yellow, ~228
    return np.clip(rgb + tex[..., None], 0, 255).astype(np.uint8)


def test_parse_reference_and_its_time_range() -> None:
    assert parse_reference("sky.jpg") == Reference("sky.jpg")
    assert parse_reference("sky.jpg@1:00-1:30.5") == Reference("sky.jpg", 60.0, 90.5)
    assert parse_reference("sky.jpg@-5") == Reference("sky.jpg", None, 5.0)
    assert parse_reference("sky.jpg@12-") == Reference("sky.jpg", 12.0, None)
    assert parse_reference("me@home.jpg") == Reference("me@home.jpg")  # no range: the name keeps its @
    with pytest.raises(UsageError, match="ends after it starts"):
        parse_reference("sky.jpg@30-10")
    r = Reference("x", 1.0, 2.0)
    assert [r.covers(t) for t in (0.5, 1.0, 1.99, 2.0)] == [False, True, True, False]


def test_as_references_forms() -> None:
    arr = np.zeros((4, 4, 3), np.uint8)
    refs = as_references(["a.jpg@0-1", Path("b.png"), arr, Reference("c.jpg")])
    assert [r.image for r in refs[:2]] == ["a.jpg", Path("b.png")] and refs[0].end == 1.0
    assert refs[2].image is arr and refs[3] == Reference("c.jpg")
    assert refs[2] == Reference(arr) != Reference(arr.copy())  # arrays compare by identity
    assert as_references("a.jpg") == (Reference("a.jpg"),) and as_references(None) == ()
    with pytest.raises(UsageError, match="reference stills"):
        as_references([3])
    # Options read them on creation.
    # reason for the type: ignore below: ColorizeOptions converts a list; the field is typed as its tuple
    opts = ColorizeOptions(reference=["a.jpg@2-"])  # type: ignore[arg-type]
    assert opts.reference == (Reference("a.jpg", 2.0, None),)


def test_reference_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.jpg"):
        load_rgb(Reference(tmp_path / "missing.jpg"))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError, match="junk.png"):
        load_rgb(Reference(junk))
    with pytest.raises(InputError, match="RGB uint8"):
        load_rgb(Reference(np.zeros((4, 4), np.uint8)))
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((8, 8, 3), np.uint8))
    check_references([Reference(good, start=1.0)], duration=2.0)
    with pytest.raises(UsageError, match="before the end of the film"):
        check_references([Reference(good, start=3.0)], duration=2.0)


def test_split_forward_is_the_model_itself(step: ModelStep) -> None:
    y = cv2.cvtColor(_picture(), cv2.COLOR_RGB2GRAY)
    lb = make_batch(
        [Frame(0, 0, Fraction(1), y), Frame(1, 1, Fraction(1), y[::-1].copy())], 8, True, RENDER, step.stride
    )
    # The first forward pass of a shape in a process can round differently from the later ones
    # on a loaded CPU (up to 3e-4 in ab, seen about one run in five); the arithmetic compared here
    # is that of the passes after it.
    step(lb)
    hints = np.zeros((2, 3, *lb.L.shape[2:]), np.float32)
    hints[:, :, 10:14, 10:14] = 1.0
    assert np.array_equal(split_forward(step, lb, lambda feats: None), step(lb))
    assert np.array_equal(split_forward(step, lb, lambda feats: hints), step(lb, hints))
    # The default CPU step runs unguided batches in ONNX Runtime: the same ab to float rounding.
    auto = ModelStep.create(ColorizeOptions(), step.model)
    assert auto.onnx is not None
    np.testing.assert_allclose(split_forward(step, lb, lambda feats: None), auto(lb), atol=1e-3, rtol=0)


def _mean_ab_error(rgb: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance in the a*b* plane between two RGB uint8 pictures."""
    ab = rgb_to_lab(rgb.astype(np.float32) / 255)[..., 1:]
    ab_t = rgb_to_lab(truth.astype(np.float32) / 255)[..., 1:]
    return float(np.linalg.norm(ab - ab_t, axis=-1).mean())


def test_film_takes_the_reference_colours_in_its_time_range(step: ModelStep) -> None:
    truth = _picture()
    grey = [cv2.cvtColor(np.roll(truth, 2 * i, axis=1), cv2.COLOR_RGB2GRAY) for i in range(4)]
    auto = list(colorize_frames(iter(grey), step, ColorizeOptions(smoothing=0, model_every=1)))  # as guided
    # From t = 2 (frame 2 at rate 1) on: frames 0 and 1 are the automatic ones, bit for bit.
    # reason for the type: ignore below: ColorizeOptions converts a list; the field is typed as its tuple
    opts = ColorizeOptions(smoothing=0, reference=[Reference(truth, start=2.0)])  # type: ignore[arg-type]
    guided = list(colorize_frames(iter(grey), step, opts))
    assert all(np.array_equal(a, g) for a, g in zip(auto[:2], guided[:2], strict=True))
    truths = [np.roll(truth, 2 * i, axis=1) for i in range(2, 4)]
    err_auto = np.mean([_mean_ab_error(a, t) for a, t in zip(auto[2:], truths, strict=True)])
    err_ref = np.mean([_mean_ab_error(g, t) for g, t in zip(guided[2:], truths, strict=True)])
    assert err_ref < 0.3 * err_auto and err_ref < 16, (err_ref, err_auto)


def test_reference_needs_a_model_with_features() -> None:
    class Plain(torch.nn.Module):
        def forward(self, L: torch.Tensor) -> torch.Tensor:
            return torch.zeros(L.shape[0], 2, *L.shape[2:])

    lb = make_batch([Frame(0, 0, Fraction(1), np.zeros((32, 32), np.uint8))], 8, True, 32, 32)
    plain = ModelStep(Plain(), torch.device("cpu"), torch.float32, "plain", 32, 32)
    with pytest.raises(UsageError, match="vidcolor model for --reference"):
        ReferenceMatcher([Reference(np.zeros((8, 8, 3), np.uint8))]).run(plain, lb, [0.0], 32, None)
