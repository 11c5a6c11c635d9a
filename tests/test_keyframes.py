"""The model on key frames only, colour carried along the motion (stages/keyframes.py)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from clips import read_video_pts

from vidcolor.cli import main
from vidcolor.errors import UsageError
from vidcolor.frames import LBatch
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.run import colorize_video
from vidcolor.pipeline.stream import colorize_frames
from vidcolor.stages.keyframes import CPU_MODEL_EVERY, CarryPlan, KeyframeCarry, key_interval

H, W = 64, 96


def scene(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A smooth random picture, CIE L float32 (h, w) in [10, 90], wider than the view (for pans)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w + 64)).astype(np.float32)
    pic = cv2.GaussianBlur(noise, (0, 0), 4)
    pic = (pic - pic.min()) / (pic.max() - pic.min())
    return 10 + 80 * pic


def pan(seed: int, n: int, speed: int = 2) -> list[np.ndarray]:
    """``n`` views of one scene, the camera moving ``speed`` px to the right each frame."""
    pic = scene(seed)
    return [np.ascontiguousarray(pic[:, i * speed : i * speed + W]) for i in range(n)]


class FakeStep:
    """A model step whose ab is a fixed function of L, so every frame's right answer is known;
    it counts the frames it is asked for."""

    def __init__(self) -> None:
        self.frames: list[int] = []

    @staticmethod
    def truth(L: np.ndarray) -> np.ndarray:
        """L (..., h, w) -> ab (..., 2, h, w)."""
        return np.stack([L - 50.0, 0.5 * (50.0 - L)], axis=-3).astype(np.float32)

    def __call__(self, lb: LBatch) -> np.ndarray:
        self.frames.extend(lb.indices)
        return self.truth(lb.L[:, 0])


def batch(frames: list[np.ndarray], first: int) -> LBatch:
    L = np.stack(frames)[:, None].astype(np.float32)
    return LBatch(tuple(range(first, first + len(frames))), L, frames[0].shape)


def run(carry: KeyframeCarry, frames: list[np.ndarray], size: int = 8) -> np.ndarray:
    out = [carry(batch(frames[i : i + size], i)) for i in range(0, len(frames), size)]
    return np.concatenate(out)


def inner(a: np.ndarray) -> np.ndarray:
    """Leave out a margin where content enters the view (no key frame saw it)."""
    return a[..., 8:-8, 8:-8]


def test_every_one_is_the_model_on_every_frame():
    step = FakeStep()
    frames = pan(0, 12)
    out = run(KeyframeCarry(step, 1), frames)
    assert step.frames == list(range(12))
    np.testing.assert_array_equal(out, FakeStep.truth(np.stack(frames)))


def test_carried_colour_follows_the_motion():
    step = FakeStep()
    carry = KeyframeCarry(step, 3)
    frames = pan(1, 12)
    out = run(carry, frames)
    assert step.frames == [0, 3, 6, 9]  # one frame in three, across batch boundaries too
    assert (carry.stats.model_frames, carry.stats.carried_frames) == (4, 8)
    truth = FakeStep.truth(np.stack(frames))
    carried = [i for i in range(12) if i % 3]
    err = np.abs(inner(out[carried] - truth[carried])).mean()
    # Holding the key frame's colour still, without the motion, is far worse.
    held = np.stack([truth[i - i % 3] for i in carried])
    held_err = np.abs(inner(held - truth[carried])).mean()
    assert err < 0.25 * held_err and err < 1.0, (err, held_err)
    np.testing.assert_array_equal(out[::3], truth[::3])  # key frames are the model's own


def test_a_cut_between_key_frames_runs_the_model_on_the_new_shot():
    step = FakeStep()
    carry = KeyframeCarry(step, 4)
    frames = pan(2, 5) + pan(3, 7)  # a cut at frame 5, inside an interval of 4
    out = run(carry, frames)
    assert 5 in step.frames and step.frames[:2] == [0, 4]
    assert step.frames == [0, 4, 5, 8]  # the cut, and the film's multiples of 4 still
    truth = FakeStep.truth(np.stack(frames))
    assert np.abs(inner(out[5:] - truth[5:])).mean() < 1.0  # no colour of the old shot after the cut


def test_a_key_frame_from_the_previous_batch_is_carried_on():
    step = FakeStep()
    carry = KeyframeCarry(step, 5)
    frames = pan(4, 10)
    run(carry, frames, size=3)  # batches 0-2, 3-5, 6-8, 9
    assert step.frames == [0, 5]


def test_reset_and_a_new_picture_size_start_from_a_key_frame():
    step = FakeStep()
    carry = KeyframeCarry(step, 4)
    carry(batch(pan(5, 2), 0))
    carry.reset()
    carry(batch(pan(5, 2), 2))
    small = [f[:32, :48].copy() for f in pan(5, 2)]
    carry(batch(small, 4))
    assert step.frames == [0, 2, 4]


def test_decisions_made_ahead_on_another_thread_give_the_same_colour() -> None:
    """The film runner decides every batch's key frames on the decode thread, batches ahead of the
    model thread that applies them: the same frames go through the model, the same colour comes out."""
    frames = pan(6, 7) + pan(7, 9)
    step_a, step_b = FakeStep(), FakeStep()
    alone = run(KeyframeCarry(step_a, 3), frames, size=4)
    carry = KeyframeCarry(step_b, 3)
    batches = [batch(frames[i : i + 4], i) for i in range(0, len(frames), 4)]
    plans: list[CarryPlan] = []
    decider = threading.Thread(target=lambda: plans.extend(carry.decide(b) for b in batches))
    decider.start()
    decider.join()  # every decision made before the first batch reaches the model
    ahead = np.concatenate([carry.apply(b, p) for b, p in zip(batches, plans, strict=True)])
    assert step_b.frames == step_a.frames
    np.testing.assert_array_equal(ahead, alone)


def test_apply_after_a_reset_runs_the_model_where_the_plan_carried_from_the_last_batch() -> None:
    step = FakeStep()
    carry = KeyframeCarry(step, 4)
    frames = pan(8, 8)
    first, second = batch(frames[:3], 0), batch(frames[3:6], 3)
    p1, p2 = carry.decide(first), carry.decide(second)
    assert any(k < 0 for k, _ in p2.maps.values())  # frame 3 was to take frame 0's colour
    carry.apply(first, p1)
    carry.reset_apply()  # e.g. guided frames went through the model in between
    out = carry.apply(second, p2)
    assert step.frames == [0, 3, 4]  # frame 3 through the model, frame 4 a key of the film's own
    np.testing.assert_array_equal(out[:2], FakeStep.truth(np.stack(frames[3:5])))


def test_the_streaming_api_with_model_every(tiny_model):
    from vidcolor.stages.model_step import ModelStep

    frames = [np.clip(f * 2.55, 0, 255).astype(np.uint8) for f in pan(6, 10)]
    step = ModelStep.create(ColorizeOptions(device="cpu"), tiny_model)
    every = list(colorize_frames(frames, step, ColorizeOptions(device="cpu", model_every=3, smoothing=0)))
    alone = list(colorize_frames(frames, step, ColorizeOptions(device="cpu", model_every=1, smoothing=0)))
    assert len(every) == len(alone) == 10
    assert all(a.shape == (H, W, 3) and a.dtype == np.uint8 for a in every)
    # Key frames are the model's own (a batch of 4 instead of 8: float rounding only).
    for i in (0, 3, 6, 9):
        assert np.abs(every[i].astype(int) - alone[i]).max() <= 1


def test_colorize_with_model_every_keeps_every_frame_and_says_so(tiny_model, clip, tmp_path):
    src = clip(frames=12)
    dst = tmp_path / "out.mp4"
    summary = colorize_video(src, dst, ColorizeOptions(device="cpu", model_every=3), colorizer=tiny_model)
    assert summary.frames == 12 and summary.verify is not None
    assert read_video_pts(dst) == read_video_pts(src)
    note = next(n for n in summary.notes if "model ran on" in n)
    assert "of 12 frames" in note


def test_a_negative_model_every_is_refused_in_one_line(tiny_model_path, clip, tmp_path):
    with pytest.raises(UsageError, match="--model-every of 0 \\(by device\\) or more"):
        ColorizeOptions(model_every=-1)
    src = clip(frames=2)
    dst = tmp_path / "out.mp4"
    res = CliRunner().invoke(
        main, ["colorize", str(src), "-o", str(dst), "--model", str(tiny_model_path), "--model-every", "-1"]
    )
    assert res.exit_code != 0 and "--model-every of 0 (by device) or more" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not dst.exists()


def test_by_default_one_frame_in_three_on_the_cpu_all_on_a_gpu_or_guided(tiny_model, clip, tmp_path):
    assert key_interval(0, torch.device("cpu")) == CPU_MODEL_EVERY == 3
    assert key_interval(0, torch.device("cuda", 0)) == 1
    assert key_interval(2, torch.device("cuda", 0)) == key_interval(2, torch.device("cpu")) == 2
    src = clip(frames=12)
    plain = colorize_video(src, tmp_path / "plain.mp4", ColorizeOptions(device="cpu"), colorizer=tiny_model)
    assert any(n.startswith("the model ran on") and "of 12 frames" in n for n in plain.notes)
    hint = {"frame": 0, "point": [32, 24], "color": "#c04020"}
    opts = ColorizeOptions(device="cpu", hints=[hint])
    guided = colorize_video(src, tmp_path / "guided.mp4", opts, colorizer=tiny_model)
    assert guided.frames == 12 and not any(n.startswith("the model ran on") for n in guided.notes)
