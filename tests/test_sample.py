"""The bundled sample clip (samples/sample.mp4) is what samples/make_sample.py says it is.

Other tests and the README use the clip as a known input: four grey shots with hard cuts at known
frames, a stereo AAC track, limited-range BT.601 tags. These tests pin those facts so that a
regenerated clip that drifts from them fails here rather than somewhere downstream.
"""

from __future__ import annotations

import importlib.util
import sys
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CLIP = SAMPLES / "sample.mp4"
MAX_BYTES = 1_500_000


def _load_script() -> ModuleType:
    """Import samples/make_sample.py (not a package) for its constants; it imports no scikit-image."""
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLES / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_sample", module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


ms = _load_script()


Decoded = tuple[list[np.ndarray], list[np.ndarray], list[int]]


def _decode_video(path: Path) -> Decoded:
    """All frames of the first video stream: Y planes (H,W) uint8, packed U+V rows uint8, and pts."""
    ys: list[np.ndarray] = []
    uvs: list[np.ndarray] = []
    pts: list[int] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.format.name == "yuv420p"
            packed = frame.to_ndarray()  # (H*3/2, W): Y rows, then U and V
            ys.append(packed[: frame.height].copy())
            uvs.append(packed[frame.height :].copy())
            assert frame.pts is not None
            pts.append(frame.pts)
    return ys, uvs, pts


@pytest.fixture(scope="module")
def decoded() -> Decoded:
    return _decode_video(CLIP)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(255.0**2 / mse)


# ------------------------------------------------------------------------------------ committed clip


def test_clip_is_committed_and_small() -> None:
    assert CLIP.is_file(), f"{CLIP} is missing: run python samples/make_sample.py"
    assert 0 < CLIP.stat().st_size < MAX_BYTES


def test_streams_and_format() -> None:
    with av.open(str(CLIP)) as container:
        assert [s.type for s in container.streams] in (["video", "audio"], ["audio", "video"])
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert (video.codec_context.width, video.codec_context.height) == (ms.WIDTH, ms.HEIGHT) == (640, 360)
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate == ms.FPS == 24
        assert video.frames == ms.FRAME_COUNT
        assert video.codec_context.color_range == 1  # limited (MPEG) range
        assert video.codec_context.colorspace == 6  # SMPTE 170M = BT.601 matrix
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == ms.SAMPLE_RATE == 48_000
        assert audio.codec_context.channels in (1, 2)
        assert audio.duration is not None and audio.time_base is not None
        assert container.duration is not None
        assert abs(float(audio.duration * audio.time_base) - float(ms.DURATION)) < 0.05
        assert abs(container.duration / av.time_base - float(ms.DURATION)) < 0.05
        assert "make_sample.py" in container.metadata.get("comment", "")


def test_frame_count_and_timestamps(decoded: Decoded) -> None:
    ys, _, pts = decoded
    assert len(ys) == ms.FRAME_COUNT == 144
    assert float(ms.DURATION) == 6.0
    with av.open(str(CLIP)) as container:
        time_base = container.streams.video[0].time_base
    assert time_base is not None
    step = Fraction(1, ms.FPS) / time_base
    assert step.denominator == 1, "frame duration is not a whole number of time-base ticks"
    assert pts == [pts[0] + i * int(step) for i in range(len(pts))]


def test_chroma_is_neutral(decoded: Decoded) -> None:
    _, uvs, _ = decoded
    worst = max(int(np.abs(uv.astype(np.int16) - 128).max()) for uv in uvs)
    assert worst <= 2, f"chroma departs from 128 by up to {worst}: the clip is not grey"


def test_luma_has_content(decoded: Decoded) -> None:
    ys, _, _ = decoded
    for i, y in enumerate(ys):
        assert y.shape == (ms.HEIGHT, ms.WIDTH)
        assert float(y.std()) > 10.0, f"frame {i} is nearly flat"


def test_hard_cuts_are_where_the_script_says(decoded: Decoded) -> None:
    ys, _, _ = decoded
    diffs = [float(np.abs(ys[i].astype(np.int16) - ys[i - 1]).mean()) for i in range(1, len(ys))]
    biggest = sorted(int(i) + 1 for i in np.argsort(diffs)[-len(ms.CUTS) :])
    assert tuple(biggest) == ms.CUTS == (36, 72, 108)
    # Within a shot the camera moves slowly; across a cut everything changes.
    within = max(d for i, d in enumerate(diffs, start=1) if i not in ms.CUTS)
    assert min(diffs[c - 1] for c in ms.CUTS) > 3.0 * within


def test_audio_is_a_tone_not_silence() -> None:
    with av.open(str(CLIP)) as container:
        samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert samples.dtype == np.float32
    peak = float(np.abs(samples).max())
    assert 0.05 < peak < 0.9
    # The track fades in: the first 10 ms are much quieter than the middle.
    start = float(np.abs(samples[:, : ms.SAMPLE_RATE // 100]).max())
    middle = float(np.abs(samples[:, 2 * ms.SAMPLE_RATE : 2 * ms.SAMPLE_RATE + 4800]).max())
    assert start < 0.1 * middle


def test_synthesized_audio_matches_the_clip_layout() -> None:
    audio = ms.synth_audio()
    assert audio.dtype == np.int16
    assert audio.shape == (ms.AUDIO_CHANNELS, int(ms.DURATION * ms.SAMPLE_RATE))
    assert np.array_equal(audio, ms.synth_audio())


# ------------------------------------------------------------------------------------ regeneration


def _versions_match() -> bool:
    with av.open(str(CLIP)) as container:
        return container.metadata.get("comment", "") == ms.provenance()


@pytest.mark.slow
def test_script_reproduces_the_clip(tmp_path: Path, decoded: Decoded) -> None:
    pytest.importorskip("skimage")
    out = tmp_path / "sample.mp4"
    assert ms.main(["--out", str(out)]) == 0
    if _versions_match():
        # Same PyAV (hence libx264) and scikit-image as made the committed clip: same bytes.
        assert out.read_bytes() == CLIP.read_bytes()
    ys, uvs, _ = _decode_video(out)
    assert len(ys) == len(decoded[0])
    for i, (y, y_ref) in enumerate(zip(ys, decoded[0], strict=True)):
        # Another encoder build may place bits differently, but each frame is the same picture.
        assert _psnr(y, y_ref) > 40.0, f"frame {i} differs from the committed clip"
    assert max(int(np.abs(uv.astype(np.int16) - 128).max()) for uv in uvs) <= 2


@pytest.mark.slow
def test_clip_frames_are_the_rendered_luma(decoded: Decoded) -> None:
    pytest.importorskip("skimage")
    for i, rgb in enumerate(ms.render_rgb_frames()):
        y8 = ms.to_yuv420(rgb, colour=False)[: ms.HEIGHT]
        assert _psnr(decoded[0][i], y8) > 35.0, f"frame {i}: encoded luma is far from the rendered one"


@pytest.mark.slow
def test_colour_ground_truth_shares_the_luma(tmp_path: Path, decoded: Decoded) -> None:
    pytest.importorskip("skimage")
    colour = tmp_path / "colour.mp4"
    ms.write_clip(colour, colour=True)
    ys, uvs, pts = _decode_video(colour)
    assert pts == decoded[2]
    assert max(int(np.abs(uv.astype(np.int16) - 128).max()) for uv in uvs) > 20
    for i, (y, y_ref) in enumerate(zip(ys, decoded[0], strict=True)):
        assert _psnr(y, y_ref) > 35.0, f"frame {i}: colour version's luma differs from the grey clip"
