"""Film-like grey test clips for the benchmarks: texture, motion, grain, shot cuts and a sound track.

Codec speed depends on what is coded: a flat or static picture encodes many times faster than a
film, so a benchmark on a gradient would flatter the encoder and the decoder. The clips here have
what a scanned black-and-white film has: mid-frequency texture (walls, foliage), a slow camera
pan, objects moving across the frame at different speeds, fresh grain on every frame, a cut
every two seconds (so the temporal smoother restarts as it does on a real film) and an AAC
stereo track (so the end-to-end run copies packets as it would). Content is deterministic.
"""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidcolor.durable import replacing

#: Named clip sizes: label -> (width, height), 16:9 with square pixels.
SIZES: dict[str, tuple[int, int]] = {
    "360p": (640, 360),
    "480p": (854, 480),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}
SHOT_FRAMES = 48  # frames per shot: a cut every 2 s at 24 frames/s
GRAIN_SIGMA = 4.0  # code values (8-bit) of per-frame film grain
PAN_PX_PER_FRAME = 2  # camera pan, in pixels per frame at 480 lines (scaled with the height)
_GRAIN_BANK = 7  # distinct grain fields, cycled (prime, so grain never lines up with shots)
_AUDIO_RATE = 48000  # Hz


def size_of(label: str) -> tuple[int, int]:
    """'480p' -> (854, 480); 'WxH' -> (W, H)."""
    if label in SIZES:
        return SIZES[label]
    try:
        w, h = (int(x) for x in label.lower().split("x"))
    except ValueError:
        raise ValueError(f"a clip size among {', '.join(SIZES)} or WxH, got {label!r}") from None
    if w < 16 or h < 16:
        raise ValueError(f"clip size must be at least 16x16, got {label!r}")
    return w, h


def _texture(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """Mid-frequency texture, float32 (height, width), zero mean, unit-ish amplitude."""
    out = np.zeros((height, width), np.float32)
    for sigma, gain in ((24.0, 1.0), (6.0, 0.5), (1.5, 0.25)):
        noise = rng.standard_normal((height, width)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma * scale)
        out += gain * blurred / max(float(blurred.std()), 1e-6)
    return out


def _backdrop(seed: int, height: int, width: int) -> np.ndarray:
    """A shot's backdrop, wider than the frame for the pan: float32 (height, width) in code values."""
    rng = np.random.default_rng(seed)
    scale = height / 480.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 110.0 + 50.0 * np.sin(xx / width * np.pi * 2.0 + seed) * np.cos(yy / height * np.pi)
    # a few hard-edged "buildings": luma edges for the guided merge and the encoders' motion search
    for _ in range(6):
        x0 = int(rng.integers(0, width - 20))
        w = int(rng.integers(width // 20, width // 6))
        top = int(rng.integers(height // 4, height * 3 // 4))
        light[top:, x0 : x0 + w] = float(rng.uniform(40.0, 200.0))
    return light + 18.0 * _texture(rng, height, width, scale)


def _sprites(seed: int, height: int) -> list[tuple[float, float, float, float, int, float]]:
    """Moving discs: (x0, y, vx px/frame, vy, radius, luma)."""
    rng = np.random.default_rng(seed + 1000)
    scale = height / 480.0
    return [
        (
            float(rng.uniform(0, 1)),
            float(rng.uniform(0.2, 0.8)),
            float(rng.uniform(-6, 6)) * scale,
            float(rng.uniform(-1.5, 1.5)) * scale,
            int(rng.uniform(20, 60) * scale),
            float(rng.uniform(30, 230)),
        )
        for _ in range(4)
    ]


class FilmFrames:
    """The luma planes of a film-like clip, frame by frame: uint8 (height, width), limited range."""

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        self.width, self.height, self.seed = width, height, seed
        self.pan = max(1, round(PAN_PX_PER_FRAME * height / 480))
        self._shot_cache: dict[int, np.ndarray] = {}
        rng = np.random.default_rng(seed + 7)
        self._grain = [
            (rng.standard_normal((height, width)) * GRAIN_SIGMA).astype(np.float32)
            for _ in range(_GRAIN_BANK)
        ]

    def _shot(self, shot: int) -> np.ndarray:
        key = shot % 3  # three backdrops, cycled: memory stays bounded for long clips
        if key not in self._shot_cache:
            wide = self.width + self.pan * SHOT_FRAMES
            self._shot_cache[key] = _backdrop(self.seed * 31 + key, self.height, wide)
        return self._shot_cache[key]

    def __call__(self, index: int) -> np.ndarray:
        shot, k = divmod(index, SHOT_FRAMES)
        back = self._shot(shot)
        x = k * self.pan
        frame = back[:, x : x + self.width].copy()
        for x0, y0, vx, vy, r, luma in _sprites(self.seed * 31 + shot % 3, self.height):
            cx = int((x0 * self.width + vx * k) % (self.width + 2 * r)) - r
            cy = int(y0 * self.height + vy * k)
            cv2.circle(frame, (cx, cy), r, luma, -1, lineType=cv2.LINE_AA)
            cv2.circle(frame, (cx - r // 3, cy - r // 3), max(1, r // 4), min(luma + 40.0, 235.0), -1)
        frame += self._grain[index % _GRAIN_BANK]
        # to limited-range luma (16..235), as film transfers are stored
        np.clip(frame * (219.0 / 255.0) + 16.0, 16.0, 235.0, out=frame)
        return frame.astype(np.uint8)


def clip_name(width: int, height: int, frames: int, rate: int, seed: int) -> str:
    """A file name that changes whenever the content or the generator would."""
    key = f"{width}x{height}-{frames}-{rate}-{seed}-{SHOT_FRAMES}-{GRAIN_SIGMA}-v2"
    return f"film-{width}x{height}-{frames}f-{hashlib.sha1(key.encode()).hexdigest()[:8]}.mp4"


def make_film_clip(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    frames: int,
    *,
    rate: int = 24,
    seed: int = 0,
    audio: bool = True,
) -> Path:
    """Write a grey H.264 film-like clip (yuv420p, limited range, BT.601/709 tags by height,
    neutral chroma) with an AAC stereo tone, and return its path. ``width``/``height`` in pixels
    (even), ``frames`` at ``rate`` frames/s."""
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    path = Path(path)
    make = FilmFrames(width, height, seed)
    tb = Fraction(1, rate * 512)
    hd = height >= 720
    # Written under a temporary name: a clip cut short by a kill is never taken for a whole one.
    with replacing(path, keep_suffix=True) as tmp, av.open(str(tmp), mode="w") as out:
        vs = out.add_stream("libx264", rate=rate, options={"preset": "fast", "crf": "20", "g": str(rate * 2)})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.time_base = tb
        cc = vs.codec_context
        cc.time_base = tb
        cc.color_range = 1  # tv
        cc.color_primaries, cc.color_trc, cc.colorspace = (1, 1, 1) if hd else (6, 6, 6)
        a = out.add_stream("aac", rate=_AUDIO_RATE, layout="stereo") if audio else None
        chroma = np.full((height // 2, width // 2), 128, np.uint8)
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, data in zip(frame.planes, (make(i), chroma, chroma), strict=True):
                dst = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
                dst[: data.shape[0], : data.shape[1]] = data
            frame.pts = i * 512
            frame.time_base = tb
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if a is not None:
            _write_tone(out, a, frames / rate)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    frame_size = stream.codec_context.frame_size or 1024
    total = int(round(seconds * _AUDIO_RATE))
    for off in range(0, total, frame_size):
        n = min(frame_size, total - off)
        t = (np.arange(off, off + n) / _AUDIO_RATE).astype(np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = _AUDIO_RATE
        frame.pts = off
        frame.time_base = Fraction(1, _AUDIO_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def cached_film_clip(
    folder: str | os.PathLike[str], label: str, frames: int, *, rate: int = 24, seed: int = 0
) -> Path:
    """The clip for ``label`` ('480p', '1280x720', ...) in ``folder``, made once and reused."""
    width, height = size_of(label)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / clip_name(width, height, frames, rate, seed)
    if not path.is_file():
        make_film_clip(path, width, height, frames, rate=rate, seed=seed)
    return path
