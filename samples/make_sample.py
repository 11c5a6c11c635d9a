"""Build the bundled sample clip: a short grey film with sound, made from public-domain photographs.

    python samples/make_sample.py [--out samples/sample.mp4] [--colour PATH]

The clip is 640x360 at 24 fps, 6 s (144 frames): four shots with hard cuts at frames 36, 72 and 108,
each a slow pan or zoom over one of scikit-image's bundled photographs (licences in LICENSES.md). The
picture is BT.601 luma of the sRGB photograph, limited range, written as yuv420p with neutral chroma
(Cb = Cr = 128) by libx264 at crf 20. The sound is a stereo AAC track at 48 kHz: a soft chord that
changes at each cut. ``--colour PATH`` also writes the colour version of the same frames (same luma,
real chroma, same sound), the ground truth a colorizer is judged against.

Determinism: the frames and the sound are computed with elementwise IEEE arithmetic only (no BLAS,
no threaded resampler), the sound is quantised to 16 bits before encoding, and libx264 runs on one
thread, so a rerun with the same PyAV and scikit-image versions gives the same bytes. Those versions
are written into the file's ``comment`` tag so that a check can tell when they differ.

This script is a data generator, not part of the vidcolor package: it needs only numpy, PyAV and
scikit-image (the "samples" extra), and importing it does not import scikit-image.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH = 640  # px
HEIGHT = 360  # px
FPS = 24  # frames per second, constant
SHOT_FRAMES = 36  # frames per shot (1.5 s)
SAMPLE_RATE = 48_000  # Hz
AUDIO_CHANNELS = 2
AAC_FRAME = 1024  # samples per AAC frame
CRF = 20
GOP = 48  # frames between forced keyframes (2 s); x264 also puts keyframes at the cuts
DEFAULT_OUT = Path(__file__).resolve().parent / "sample.mp4"

# BT.601 luma weights and the limited ("tv", MPEG) 8-bit range the clip is written in.
KR, KB = 0.299, 0.114
Y_BLACK, Y_SPAN = 16.0, 219.0  # Y8 = 16 + 219 Y'
C_ZERO, C_SPAN = 128.0, 224.0  # C8 = 128 + 224 C, C in [-0.5, 0.5]


@dataclass(frozen=True)
class Window:
    """A 16:9 view onto the photograph: centre (cx, cy) and width w, in source pixels."""

    cx: float
    cy: float
    w: float


@dataclass(frozen=True)
class Shot:
    """One shot: a scikit-image photograph and the view at its first and last frame (eased between)."""

    photo: str  # name of the skimage.data function
    start: Window
    end: Window
    chord: tuple[float, ...]  # Hz, the notes that sound during the shot


SHOTS: tuple[Shot, ...] = (
    # Zoom in on the espresso cup.
    Shot("coffee", Window(300.0, 200.0, 580.0), Window(292.0, 180.0, 470.0), (261.63, 329.63, 392.00)),
    # Pan across the cat's face, left to right.
    Shot("chelsea", Window(200.0, 140.0, 360.0), Window(250.0, 140.0, 360.0), (220.00, 261.63, 329.63)),
    # Pull back from the astronaut's face.
    Shot("astronaut", Window(230.0, 150.0, 300.0), Window(240.0, 175.0, 410.0), (174.61, 220.00, 261.63)),
    # Tilt up the launch tower to the rocket's nose.
    Shot("rocket", Window(320.0, 255.0, 520.0), Window(320.0, 180.0, 520.0), (196.00, 246.94, 293.66)),
)
FRAME_COUNT = SHOT_FRAMES * len(SHOTS)
CUTS = tuple(SHOT_FRAMES * k for k in range(1, len(SHOTS)))  # first frame of each later shot
DURATION = Fraction(FRAME_COUNT, FPS)  # seconds


# ------------------------------------------------------------------------------------ picture


def _cubic_taps(pos: np.ndarray, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Keys cubic (a = -0.5) taps for sample positions ``pos`` (float64, source pixel units).

    Returns four index arrays (clamped to [0, size-1]) and four weight arrays, both shaped like pos.
    """
    base = np.floor(pos)
    frac = pos - base
    idx, wts = [], []
    for k in (-1, 0, 1, 2):
        d = np.abs(frac - k)
        w = np.where(
            d <= 1.0,
            (1.5 * d - 2.5) * d * d + 1.0,
            np.where(d < 2.0, ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0, 0.0),
        )
        idx.append(np.clip(base.astype(np.int64) + k, 0, size - 1))
        wts.append(w)
    return idx, wts


def view(photo: np.ndarray, win: Window) -> np.ndarray:
    """Resample the 16:9 window of ``photo`` (H,W,3 float64 in [0,1]) to (HEIGHT, WIDTH, 3) float64.

    The window is axis-aligned, so the resampling is separable; the four taps of each axis are summed
    in a fixed order with plain elementwise arithmetic, which gives the same bits on every CPU.
    """
    scale = win.w / WIDTH  # source pixels per output pixel
    x0 = win.cx - win.w / 2.0
    y0 = win.cy - scale * HEIGHT / 2.0
    # Pixel centres map to pixel centres.
    xs = x0 + (np.arange(WIDTH, dtype=np.float64) + 0.5) * scale - 0.5
    ys = y0 + (np.arange(HEIGHT, dtype=np.float64) + 0.5) * scale - 0.5
    yi, yw = _cubic_taps(ys, photo.shape[0])
    xi, xw = _cubic_taps(xs, photo.shape[1])
    rows = yw[0][:, None, None] * photo[yi[0]]
    for i, w in zip(yi[1:], yw[1:], strict=True):
        rows = rows + w[:, None, None] * photo[i]
    out = xw[0][None, :, None] * rows[:, xi[0]]
    for i, w in zip(xi[1:], xw[1:], strict=True):
        out = out + w[None, :, None] * rows[:, i]
    return np.clip(out, 0.0, 1.0)


def _ease(t: float) -> float:
    """Smoothstep: starts and ends at rest, as a camera move would."""
    return t * t * (3.0 - 2.0 * t)


def _lerp_window(a: Window, b: Window, t: float) -> Window:
    return Window(a.cx + (b.cx - a.cx) * t, a.cy + (b.cy - a.cy) * t, a.w + (b.w - a.w) * t)


def _load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as (H,W,3) float64 sR'G'B' in [0,1]."""
    import skimage.data  # the "samples" extra; imported here so that tests can read the constants

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise SystemExit(f"expected skimage.data.{name}() to be (H,W,3) uint8, found {img.shape} {img.dtype}")
    return img.astype(np.float64) / 255.0


def render_rgb_frames() -> Iterator[np.ndarray]:
    """Yield the FRAME_COUNT colour frames in order, each (HEIGHT, WIDTH, 3) float64 sR'G'B' in [0,1]."""
    for shot in SHOTS:
        photo = _load_photo(shot.photo)
        for win in (shot.start, shot.end):
            h = win.w * HEIGHT / WIDTH
            inside = win.cx - win.w / 2 >= 0 and win.cx + win.w / 2 <= photo.shape[1]
            inside = inside and win.cy - h / 2 >= 0 and win.cy + h / 2 <= photo.shape[0]
            # Never shrink the photograph: an upscale needs no anti-aliasing filter.
            if not inside or win.w > WIDTH:
                raise SystemExit(f"window {win} of shot {shot.photo!r} leaves the photo or downscales it")
        for i in range(SHOT_FRAMES):
            yield view(photo, _lerp_window(shot.start, shot.end, _ease(i / (SHOT_FRAMES - 1))))


def to_yuv420(rgb: np.ndarray, colour: bool) -> np.ndarray:
    """sR'G'B' (HEIGHT, WIDTH, 3) float64 -> packed yuv420p uint8 (HEIGHT*3/2, WIDTH), limited range.

    Y is BT.601 luma of the gamma-encoded values. With ``colour`` False the chroma is neutral (128);
    otherwise it is BT.601 Cb/Cr averaged over each 2x2 block.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = KR * r + (1.0 - KR - KB) * g + KB * b
    y8 = np.rint(Y_BLACK + Y_SPAN * y).astype(np.uint8)
    ch, cw = HEIGHT // 2, WIDTH // 2
    if colour:
        chroma = []
        for c in ((b - y) / (2.0 * (1.0 - KB)), (r - y) / (2.0 * (1.0 - KR))):
            c2 = (c[0::2, 0::2] + c[0::2, 1::2] + c[1::2, 0::2] + c[1::2, 1::2]) * 0.25
            chroma.append(np.rint(C_ZERO + C_SPAN * c2).astype(np.uint8))
        u8, v8 = chroma
    else:
        u8 = v8 = np.full((ch, cw), int(C_ZERO), np.uint8)
    # yuv420p as one (H*3/2, W) array: Y rows, then U and V each folded into H/4 rows of width W.
    return np.concatenate([y8, u8.reshape(ch // 2, WIDTH), v8.reshape(ch // 2, WIDTH)], axis=0)


# -------------------------------------------------------------------------------------- sound


def synth_audio() -> np.ndarray:
    """The sound track: (AUDIO_CHANNELS, DURATION * SAMPLE_RATE) int16.

    Each shot has its own soft chord (C, Am, F, G), lower notes to the left, higher to the right.
    A 20 ms raised-cosine ramp at each cut avoids clicks while keeping the change audible; the whole
    track fades in over 0.3 s and out over 0.5 s. Quantising to 16 bits here, before the encoder,
    hides any last-bit difference between CPUs' sin().
    """
    n_shot = SHOT_FRAMES * SAMPLE_RATE // FPS
    t = np.arange(n_shot, dtype=np.float64) / SAMPLE_RATE
    ramp = int(0.020 * SAMPLE_RATE)
    shot_env = np.ones(n_shot)
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
    shot_env[:ramp] = edge
    shot_env[-ramp:] = edge[::-1]
    parts = []
    for shot in SHOTS:
        left = np.zeros(n_shot)
        right = np.zeros(n_shot)
        for k, f in enumerate(shot.chord):
            pan = (k + 0.5) / len(shot.chord)  # 0 = left, 1 = right
            # A little second harmonic makes the tone less glassy than a bare sine.
            tone = np.sin(2.0 * np.pi * f * t) + 0.25 * np.sin(4.0 * np.pi * f * t)
            left = left + np.sqrt(1.0 - pan) * tone
            right = right + np.sqrt(pan) * tone
        parts.append(np.stack([left, right]) * shot_env)
    sig = np.concatenate(parts, axis=1) * (0.3 / len(SHOTS[0].chord))
    n = sig.shape[1]
    fade_in, fade_out = int(0.3 * SAMPLE_RATE), int(0.5 * SAMPLE_RATE)
    sig[:, :fade_in] *= np.linspace(0.0, 1.0, fade_in)
    sig[:, n - fade_out :] *= np.linspace(1.0, 0.0, fade_out)
    return np.rint(sig * 32767.0).astype(np.int16)


# ------------------------------------------------------------------------------------ writing


def provenance() -> str:
    """The text of the file's comment tag: what made it, with the versions that fix its bytes."""
    from importlib.metadata import version

    return (
        f"vidcolor sample clip, made by samples/make_sample.py with PyAV {av.__version__} "
        f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), "
        f"scikit-image {version('scikit-image')}"
    )


def _send_audio(
    out: av.container.OutputContainer, stream: av.AudioStream, audio: np.ndarray, start: int, until: int
) -> int:
    """Encode and mux AAC_FRAME-sized chunks of ``audio`` (C, N) float32 from sample ``start`` while
    the chunk starts at or before sample ``until``; returns the first sample not yet sent."""
    while start < min(until + 1, audio.shape[1]):
        chunk = np.ascontiguousarray(audio[:, start : start + AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        out.mux(stream.encode(frame))
        start += AAC_FRAME
    return start


def write_clip(path: Path, colour: bool = False) -> None:
    """Encode the clip to ``path`` (.mp4): H.264 yuv420p video and stereo AAC audio."""
    audio = synth_audio().astype(np.float32) / 32768.0  # exact: every int16 is a float32
    # fflags=+bitexact keeps the muxer's own version string out of the file.
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as out:
        out.metadata["comment"] = provenance()
        vs = out.add_stream(
            "libx264", rate=FPS, options={"crf": str(CRF), "preset": "medium", "threads": "1"}
        )
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.codec_context.gop_size = GOP
        # One thread: x264's frame threads and lookahead are the only source of run-to-run variation.
        vs.codec_context.thread_count = 1
        vs.codec_context.thread_type = "NONE"
        vs.codec_context.color_range = 1  # MPEG (limited)
        vs.codec_context.colorspace = 6  # SMPTE 170M: the BT.601 matrix used above
        vs.codec_context.color_primaries = 1  # BT.709 = sRGB primaries, those of the photographs
        vs.codec_context.color_trc = 13  # IEC 61966-2-1: the sRGB transfer they are encoded with
        vs.time_base = Fraction(1, FPS * 512)

        aus = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        aus.codec_context.flags |= av.codec.context.Flags.bitexact
        aus.bit_rate = 96_000
        aus.time_base = Fraction(1, SAMPLE_RATE)

        a_next = 0  # first audio sample not yet sent
        for index, rgb in enumerate(render_rgb_frames()):
            # Audio up to this frame's time first, so that the muxer sees packets in time order.
            a_next = _send_audio(out, aus, audio, a_next, index * SAMPLE_RATE // FPS)
            vf = av.VideoFrame.from_ndarray(to_yuv420(rgb, colour), format="yuv420p")
            vf.pts, vf.time_base = index, Fraction(1, FPS)
            vf.color_range, vf.colorspace = 1, 6
            out.mux(vs.encode(vf))
        _send_audio(out, aus, audio, a_next, audio.shape[1])
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="grey clip to write (.mp4)")
    parser.add_argument("--colour", type=Path, default=None, help="also write the colour ground truth here")
    args = parser.parse_args(argv)
    write_clip(args.out, colour=False)
    if args.colour is not None:
        write_clip(args.colour, colour=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
