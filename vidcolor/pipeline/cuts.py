"""Where a long film is cut into segments: about ``segment_seconds`` apart, at a source keyframe where
one is near, planned from the packet index alone (nothing is decoded). See pipeline/segments.py
for what a segment is used for."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from vidcolor.errors import InputError, UsageError
from vidcolor.frames import SourceInfo
from vidcolor.media.window import section_length, section_pts, start_at_pts
from vidcolor.options import ColorizeOptions
from vidcolor.stages.keyframes import most_key_interval
from vidcolor.stages.smooth import DEFAULT_WINDOW

#: Default segment length, seconds: long enough that the per-segment costs (a seek, the warm-up
#: frames, an IDR picture) are small, short enough that a kill loses little.
SEGMENT_SECONDS = 60.0
#: Frames decoded and colorized before a segment but not encoded: the smoother's reach back
#: (at most DEFAULT_WINDOW // 2) plus the scene-cut detector's history of recent scores (12).
WARMUP_FRAMES = 16
#: Frames colorized after a segment's end but not encoded: the smoother's reach forward.
LOOKAHEAD_FRAMES = DEFAULT_WINDOW // 2
#: A film is cut only when it is longer than this many segment lengths (a short film gains
#: nothing from being cut, and the last segment should not be a sliver).
MIN_SEGMENTS_TO_CUT = 1.5
#: A cut moves to a source keyframe when one lies within this fraction of a segment length.
KEYFRAME_SNAP = 0.25


@dataclass(frozen=True)
class Segment:
    """One segment of a film, by pts in the video stream's time base.

    Frames with pts in [lo, hi) are encoded; ``first`` is the pts of the first warm-up frame
    (decoding starts there); ``stop`` is the pts where the section ends (nothing at or beyond it
    is read). ``lo``/``hi``/``first`` None: from the start of the section / to its end; a film
    that cannot be cut (pts missing in the source) is one segment with all three None.
    ``frames``: how many frames the plan expects it to encode (from the packet index).
    """

    number: int
    first: int | None
    lo: int | None
    hi: int | None
    stop: int | None
    frames: int
    start_s: float | None  # where decoding starts, seconds from the video stream's start
    first_index: int = 0  # index in the film (section) of the frame at ``first``

    @property
    def name(self) -> str:
        return f"seg-{self.number:05d}"


@dataclass(frozen=True)
class _Index:
    """The source's video frames from its packets (no decoding): pts sorted, keyframe flags."""

    pts: list[int]
    key: list[bool]
    origin: int  # the stream's start_time in pts units (decode_frames counts start from it)
    time_base: Fraction
    stop: int | None  # section end in pts


def _scan(info: SourceInfo, start: float | None, duration: float | None) -> _Index | None:
    """Demux the video packets (cheap: nothing is decoded) and list the pts in the section,
    computed as decode_frames computes it. None when the list cannot be trusted for cutting:
    packets without pts or with repeated pts, or a demuxer that fails part-way."""
    try:
        container = av.open(info.path)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(
            "a readable media file", f"{Path(info.path).name} ({exc})", "run probe on it"
        ) from None
    try:
        stream = container.streams[info.video.index]
        for s in container.streams:
            if s.index != stream.index:
                s.discard = av.stream.Discard.all
        tb = stream.time_base or info.video.time_base
        origin = stream.start_time or 0
        lo, hi = section_pts(origin, tb, start, duration)
        entries: list[tuple[int, bool]] = []
        try:
            for pkt in container.demux(stream):
                if not pkt.size:
                    continue
                if pkt.pts is None:
                    return None
                entries.append((pkt.pts, pkt.is_keyframe))
        except av.error.FFmpegError:
            return None
    finally:
        container.close()
    entries.sort()
    if any(a[0] == b[0] for a, b in zip(entries, entries[1:], strict=False)):
        return None
    kept = [(p, k) for p, k in entries if (lo is None or p >= lo) and (hi is None or p < hi)]
    return _Index([p for p, _ in kept], [k for _, k in kept], origin, tb, hi)


def _cut_points(index: _Index, segment_seconds: float) -> list[int]:
    """Positions (into index.pts) where segments 1.. start: about segment_seconds apart, moved
    to a keyframe when one is near, never leaving a last segment shorter than half a length."""
    pts, tb = index.pts, index.time_base
    if not pts:
        return []
    step = Fraction(segment_seconds) / tb  # pts units
    snap = step * Fraction(KEYFRAME_SNAP)
    keys = [i for i, k in enumerate(index.key) if k]
    cuts: list[int] = []
    target = pts[0] + step
    end = pts[-1]
    while end - target >= step / 2:
        i = _nearest(pts, target)
        near = [k for k in keys if abs(pts[k] - target) <= snap]
        if near:
            i = min(near, key=lambda k: abs(pts[k] - target))
        if i > (cuts[-1] if cuts else 0):
            cuts.append(i)
        target += step
    return cuts


def _nearest(pts: list[int], target: Fraction) -> int:
    i = bisect.bisect_left(pts, target)
    if i == len(pts):
        return len(pts) - 1
    if i > 0 and target - pts[i - 1] < pts[i] - target:
        return i - 1
    return i


def warmup_frames(model_every: int) -> int:
    """Frames to decode before a segment's start so that it colours them as one long run does.

    With key frames every ``model_every`` frames the segment's first decoded frame is a key frame
    of its own; from the first multiple of ``model_every`` on the key frames are the long run's, and
    the smoother's reach back must lie past that frame."""
    return max(WARMUP_FRAMES, DEFAULT_WINDOW // 2 + model_every - 1)


def plan_segments(
    info: SourceInfo, options: ColorizeOptions, segment_seconds: float = SEGMENT_SECONDS
) -> list[Segment]:
    """Cut the film (or its --start/--duration section) into segments; see :class:`Segment`."""
    if segment_seconds <= 0:
        raise UsageError("a positive --segment-seconds", str(segment_seconds), "pass e.g. 60")
    index = _scan(info, options.start, options.duration)
    if index is None or not index.pts:
        return [Segment(0, None, None, None, None, len(index.pts) if index else 0, None)]
    pts, n = index.pts, len(index.pts)
    starts = [0, *_cut_points(index, segment_seconds)]
    out = []
    for k, a in enumerate(starts):
        b = starts[k + 1] if k + 1 < len(starts) else n
        w = max(0, a - warmup_frames(most_key_interval(options.model_every)))
        first = pts[w]
        start_s = start_at_pts(first, index.origin, index.time_base) if w > 0 or k > 0 else None
        if start_s is None and options.start is not None:
            start_s = options.start
        out.append(
            Segment(
                number=k,
                first=first,
                lo=pts[a],
                hi=pts[b] if b < n else None,
                stop=index.stop,
                frames=b - a,
                start_s=None if start_s is not None and start_s <= 0 else start_s,
                first_index=w,
            )
        )
    return out


def should_segment(info: SourceInfo, options: ColorizeOptions, segment_seconds: float) -> bool:
    """Whether the film (section) is long enough to be cut into segments."""
    if segment_seconds <= 0 or info.is_still:
        return False
    length = info.duration or info.video.duration
    if length is None:
        return False
    return section_length(length, options.start, options.duration) > MIN_SEGMENTS_TO_CUT * segment_seconds
