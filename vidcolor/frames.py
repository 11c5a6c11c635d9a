"""Data that passes between the pipeline stages (see DESIGN.md, "Contracts between stages")."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

#: Frames/s assumed where a film states no frame rate at all.
FALLBACK_RATE = Fraction(25)


@dataclass(frozen=True)
class StreamInfo:
    """A non-video stream of the source (audio, subtitle, data, attachment)."""

    index: int  # stream index in the source container
    kind: str  # "audio" | "subtitle" | "data" | "attachment" | "unknown"
    codec: str  # codec name as FFmpeg calls it, e.g. "aac", "subrip", "none"
    language: str | None
    time_base: Fraction | None
    copyable: bool  # whether the chosen output container can hold it (set by the encoder)


@dataclass(frozen=True)
class VideoInfo:
    """The video stream that is colorized."""

    index: int
    codec: str
    width: int  # coded width in pixels
    height: int
    pix_fmt: str  # as decoded, e.g. "yuv420p", "gray10le"
    bit_depth: int  # 8, 10, 12 or 16
    time_base: Fraction
    average_rate: Fraction | None
    guessed_rate: Fraction | None  # FFmpeg's r_frame_rate guess
    frames: int | None  # frame count from the container, when it states one
    start_time: float | None  # seconds
    duration: float | None  # seconds
    sar: Fraction | None  # sample aspect ratio, None when unset/square-by-default
    rotation: float  # display rotation in degrees (display-matrix convention, e.g. -90)
    color_range: str  # "tv" (limited) | "pc" (full) | "unknown"
    color_primaries: str | None
    color_trc: str | None
    color_space: str | None  # matrix, e.g. "bt709", "smpte170m"
    field_order: str  # "progressive" | "tt" | "bb" | "tb" | "bt" | "unknown"

    @property
    def nominal_rate(self) -> Fraction:
        """Frames/s of one frame interval: FFmpeg's guess of the nominal rate, else the mean, else
        FALLBACK_RATE. What an encoder is told and a missing pts is rebuilt with."""
        return self.guessed_rate or self.average_rate or FALLBACK_RATE

    @property
    def mean_rate(self) -> Fraction | None:
        """Frames/s over the stream's length: the mean rate, else the nominal guess; None where the
        stream states neither. What frame counts and frame times are estimated with."""
        return self.average_rate or self.guessed_rate


@dataclass(frozen=True)
class SourceInfo:
    """What probe() learnt about an input, before any frame is decoded."""

    path: str
    container: str  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float | None  # seconds
    is_still: bool  # a single image (png, jpg, tiff, ...) rather than a film
    video: VideoInfo
    others: tuple[StreamInfo, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    def frame_count(self) -> int | None:
        """Frames of the video: the container's count, else its length times the mean rate (an
        estimate, for progress); None where neither is known."""
        v = self.video
        if v.frames:
            return v.frames
        length, rate = self.duration or v.duration, v.mean_rate
        return round(length * rate) if length and rate else None


@dataclass(frozen=True)
class Frame:
    """One decoded frame: stage [1] -> [2].

    ``y`` is the luma plane as decoded, full resolution, never rescaled: uint8 (H, W) for 8-bit
    sources, uint16 (H, W) holding the native bit depth (e.g. 0..1023) for deeper ones.
    ``pts`` is exactly the source stream's, in ``time_base`` units.
    """

    index: int
    pts: int
    time_base: Fraction
    y: np.ndarray
    corrupt: bool = False  # decoded with errors (kept only under --skip-corrupt)


@dataclass(frozen=True)
class LBatch:
    """Frames turned to CIE L at the render size: stage [2] -> [3].

    ``L`` float32 (N, 1, h, w) in [0, 100], h and w multiples of the model stride (padded by edge
    replication). ``content`` is the (h, w) of the unpadded picture inside it.
    """

    indices: tuple[int, ...]
    L: np.ndarray
    content: tuple[int, int]
