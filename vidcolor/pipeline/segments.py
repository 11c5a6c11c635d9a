"""Long films in segments: each colorized and encoded on its own, kept beside the destination until
the end, then joined by packet copy. This is what lets a killed run resume where it stopped.

A film is cut at frames about ``segment_seconds`` apart (at a source keyframe where one is near).
Each segment is a plain function of (source, segment, options) -> file (:func:`encode_segment`):
it starts its own encoder, so every segment begins with an IDR picture and no picture refers
across a join (closed GOPs). Temporal smoothing carries across a join without shared state: a
segment also decodes and colorizes up to ``WARMUP_FRAMES`` frames before its start and
``LOOKAHEAD_FRAMES`` after its end, which go through the model and the smoother but are not
encoded, so the smoother (and its scene-cut history) sees the same neighbours as in one long run.

The segments live in a hidden folder beside the destination (``segment_dir``) with two small files:
``plan.json`` (what the run is: source, options, cut points) and ``done.jsonl`` (one line per
finished segment: file name, frames, size, sha256; appended and fsync'ed after the segment file
itself was written under a temporary name, fsync'ed and renamed). After a kill, ``resume=True``
keeps every segment whose record and file agree and redoes the others. :func:`join_segments` copies
the segments' video packets (no re-encode) into the final container with the source's audio and
subtitle packets copied as the normal path copies them (media/remux.py), the result is checked
like any output (pipeline/verify.py) and renamed onto the destination; then the folder goes.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import torch
from tqdm import tqdm

from vidcolor.durable import append_record, sha256_file
from vidcolor.errors import CorruptInputError, EncodingError, InputError, UsageError
from vidcolor.frames import SourceInfo
from vidcolor.media.atomic import atomic_output, check_destination, same_file
from vidcolor.media.decode import DecodeStats
from vidcolor.media.encode import OutputPlan, muxer_options, plan_output
from vidcolor.media.probe import probe
from vidcolor.media.remux import Remuxer, carried_metadata
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.run import FrameWindow, Summary, _no_frames, colorize_video, run_window
from vidcolor.pipeline.verify import verify_output
from vidcolor.stages.model_step import ModelStep
from vidcolor.stages.smooth import DEFAULT_WINDOW
from vidcolor.version import __version__

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
PLAN_FILE = "plan.json"
DONE_FILE = "done.jsonl"
PLAN_VERSION = 1


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
class SegmentResult:
    path: Path
    frames: int
    size: int
    sha256: str
    seconds: float
    corrupt_skipped: int = 0
    rebuilt_pts: int = 0
    corrupt_kept: int = 0
    truncated: bool = False


# ----------------------------------------------------------------------------------- planning


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
        lo = origin + round(Fraction(start) / tb) if start else None
        hi = (
            (lo if lo is not None else origin) + round(Fraction(duration) / tb)
            if duration is not None
            else None
        )
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
        w = max(0, a - WARMUP_FRAMES)
        first = pts[w]
        # decode_frames counts start from the stream's start_time and rounds it to a tick: a
        # quarter tick early lands on ``first`` itself whatever the float rounding.
        start_s = float((first - index.origin - Fraction(1, 4)) * index.time_base) if w > 0 or k > 0 else None
        if start_s is None and options.start is not None:
            start_s = options.start
        out.append(Segment(
            number=k, first=first, lo=pts[a], hi=pts[b] if b < n else None, stop=index.stop,
            frames=b - a, start_s=None if start_s is not None and start_s <= 0 else start_s, first_index=w,
        ))  # fmt: skip
    return out


def should_segment(info: SourceInfo, options: ColorizeOptions, segment_seconds: float) -> bool:
    """Whether the film (section) is long enough to be cut into segments."""
    if segment_seconds <= 0 or info.is_still:
        return False
    length = info.duration or info.video.duration
    if length is None:
        return False
    if options.start is not None:
        length = max(0.0, length - options.start)
    if options.duration is not None:
        length = min(length, options.duration)
    return length > MIN_SEGMENTS_TO_CUT * segment_seconds


# ------------------------------------------------------------------------------- one segment


def segment_plan(info: SourceInfo, out: Path, options: ColorizeOptions) -> OutputPlan:
    """The output plan of a segment file: the final plan for its extension, video only."""
    plan = plan_output(
        info,
        out,
        options.codec,
        options.crf,
        options.lossless,
        options.ten_bit,
        deinterlace=options.deinterlace,
    )
    return dataclasses.replace(plan, copied=(), stream_order=(info.video.index,), warnings=[], notes=[])


def encode_segment(
    src: str | os.PathLike[str],
    segment: Segment,
    options: ColorizeOptions,
    out: str | os.PathLike[str],
    *,
    colorizer: torch.nn.Module | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> SegmentResult:
    """Colorize and encode ``segment`` of the film at ``src`` into ``out`` (video only, the
    container of its extension), atomically and fsync'ed: ``out`` exists only when complete.

    A plain function of its arguments: it probes the source itself and loads the model unless
    ``colorizer`` is given, so it can run in any worker. Raises VidcolorError like colorize_video.
    """
    src, out = Path(src), Path(out)
    t0 = time.perf_counter()
    info = probe(src)
    plan = segment_plan(info, out, options)
    step = ModelStep.create(options, colorizer)
    window = FrameWindow(
        start_s=segment.start_s,
        first=segment.first,
        lo=segment.lo,
        hi=segment.hi,
        stop=segment.stop,
        after=LOOKAHEAD_FRAMES if segment.hi is not None else 0,
        whole=segment.first is None,
    )
    stats = DecodeStats()
    with atomic_output(out, overwrite=True) as tmp:
        try:
            frames = run_window(src, tmp, info, plan, options, step, window, stats=stats, on_frame=on_frame)
        except CorruptInputError as exc:
            raise _in_film(exc, segment.first_index) from None
        _fsync(tmp)
    _fsync_dir(out.parent)
    # The damage counts include the segment's warm-up frames (a frame near a join may be counted
    # by both neighbours): they are for the summary line, not for bookkeeping.
    return SegmentResult(
        out,
        frames,
        out.stat().st_size,
        sha256_file(out),
        time.perf_counter() - t0,
        stats.corrupt_skipped,
        stats.rebuilt_pts,
        stats.corrupt_kept,
        stats.truncated,
    )


def _in_film(exc: CorruptInputError, offset: int) -> CorruptInputError:
    """The error with its frame index counted from the start of the film, not of the segment."""
    if not offset:
        return exc
    index = exc.frame_index + offset
    found = exc.found.replace(f"at frame {exc.frame_index}", f"at frame {index}", 1)
    return CorruptInputError(exc.expected, found, exc.action, frame_index=index)


# ------------------------------------------------------------------------------------- joining


def _muxer_options(info: SourceInfo, plan: OutputPlan) -> dict[str, str]:
    return muxer_options(info, plan)  # as VideoWriter: the source's time scales, exact starts


def _source_video_tags(info: SourceInfo) -> tuple[dict[str, str], int | None]:
    try:
        with av.open(info.path) as c:
            s = c.streams[info.video.index]
            return dict(s.metadata), int(s.disposition)
    except (av.error.FFmpegError, OSError):
        return {}, None


def join_segments(
    info: SourceInfo, plan: OutputPlan, files: Sequence[Path], out: Path, options: ColorizeOptions
) -> int:
    """Copy the video packets of ``files`` (segment files, in order) into ``out`` with the
    source's other streams copied beside them, as VideoWriter would write them; return the number
    of video packets. The segments must share their codec parameters (same encoder settings)."""
    if not files:
        raise EncodingError("at least one segment", "none", "a bug in the segment plan")
    v = info.video
    origin = v.start_time or 0.0
    lo = origin + options.start if options.start else None
    hi = (lo if lo is not None else origin) + options.duration if options.duration is not None else None
    try:
        output = av.open(str(out), mode="w", format=plan.container_format, options=_muxer_options(info, plan))
    except (av.error.FFmpegError, OSError) as exc:
        raise EncodingError("a writable output", f"{out} ({exc})", "check the output folder") from None
    remux: Remuxer | None = None
    inputs: list[av.container.InputContainer] = []
    packets = 0
    try:
        output.metadata.update(carried_metadata(info.metadata))
        remux = Remuxer(info, output, (lo, hi))
        # The format is known: a short MPEG-TS segment can be too small for format probing.
        inputs = [av.open(str(f), format=plan.container_format) for f in files]
        templates = [c.streams.video[0] for c in inputs]
        extradata = {bytes(t.codec_context.extradata or b"") for t in templates}
        if len(extradata) > 1:
            raise EncodingError(
                "segments with the same codec headers",
                f"{len(extradata)} different ones",
                "delete the segment folder and run again without --resume",
            )
        video: av.VideoStream | None = None
        for index in plan.stream_order or (v.index, *plan.copied):
            if index == v.index:
                video = _add_video(output, templates[0], info)
            elif index in plan.copied:
                remux.add_stream(index)
        assert video is not None
        last_dts: Fraction | None = None  # seconds
        for container, template in zip(inputs, templates, strict=True):
            tb = template.time_base or v.time_base
            for pkt in container.demux(template):
                if not pkt.size:
                    continue
                last_dts = _mend_dts(pkt, tb, last_dts)
                pkt.stream = video
                pkt.time_base = tb  # the muxer rescales only where the output unit differs
                output.mux_one(pkt)
                packets += 1
                remux.pump(float(last_dts))
        remux.finish()
        output.close()
    except av.error.FFmpegError as exc:
        with contextlib.suppress(Exception):
            output.close()
        raise EncodingError(
            "segments that join into one stream", str(exc), "delete the segment folder and run again"
        ) from None
    except BaseException:
        with contextlib.suppress(Exception):
            output.close()
        raise
    finally:
        for c in inputs:
            c.close()
        if remux is not None:
            remux.close()
    return packets


def _mend_dts(pkt: av.Packet, tb: Fraction, last: Fraction | None) -> Fraction:
    """Give ``pkt`` a dts after ``last`` (seconds) and not after its pts; return its dts in seconds.

    Each segment's encoder makes up the dts of its first pictures from the pts of the first few
    (it has B-frames in flight): with a variable frame rate they can fall before the previous
    segment's last dts, and Matroska does not store dts at all, so its demuxer cannot give the
    first few. The muxer wants dts strictly increasing; decoders do not use them. So a missing or
    too early dts becomes one tick after the previous one; the pts, which are the frame times,
    never change.
    """
    pts = pkt.pts
    dts = pkt.dts
    if dts is not None and (last is None or dts * tb > last):
        return Fraction(dts) * tb
    if last is None:
        dts = pts
    else:
        dts = math.floor(last / tb) + 1
    if dts is None or (pts is not None and dts > pts):
        raise EncodingError(
            "segment packets whose decoding times can be chained",
            f"a packet at pts {pts} after dts {last} s",
            "delete the segment folder and run again with --segment-seconds 0",
        )
    pkt.dts = dts
    return Fraction(dts) * tb


def _add_video(
    output: av.container.OutputContainer, template: av.VideoStream, info: SourceInfo
) -> av.VideoStream:
    """The output video stream: the segments' codec parameters, the source's tags."""
    stream = output.add_stream_from_template(template)
    stream.time_base = template.time_base
    # The frame rate as VideoWriter states it: the MOV muxer builds a timecode track from it
    # (a template stream carries the demuxer's guess, which can be the time scale).
    v = info.video
    stream.codec_context.framerate = v.guessed_rate or v.average_rate or Fraction(25)
    if info.video.rotation:
        stream.set_display_rotation(info.video.rotation)
    tags, disposition = _source_video_tags(info)
    stream.metadata.update(carried_metadata(tags))
    if disposition is not None:
        stream.disposition = av.stream.Disposition(disposition)
    return stream


# ---------------------------------------------------------------------------- the whole run


def segment_dir(dst: str | os.PathLike[str]) -> Path:
    """The hidden folder beside ``dst`` that holds its segments while a run is unfinished."""
    dst = Path(dst)
    return dst.parent / f".{dst.name}.segments"


def _run_key(
    src: Path, info: SourceInfo, options: ColorizeOptions, segments: list[Segment], model: str
) -> str:
    """What makes finished segments reusable: the same source file, settings, model and cuts."""
    st = src.stat()
    opts = dataclasses.asdict(options)
    for k in ("overwrite", "verify", "threads", "device", "batch_size"):
        opts.pop(k, None)  # these do not change the pictures of a segment
    doc = {
        "version": __version__, "source": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "options": opts, "model": model, "segments": [dataclasses.asdict(s) for s in segments],
    }  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _read_done(folder: Path) -> dict[int, dict[str, object]]:
    """Finished segments from done.jsonl; a torn last line (a kill mid-write) is ignored."""
    done: dict[int, dict[str, object]] = {}
    path = folder / DONE_FILE
    if not path.exists():
        return done
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
            done[int(rec["number"])] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return done


def _segment_ok(folder: Path, rec: dict[str, object]) -> bool:
    path = folder / str(rec.get("file", ""))
    try:
        return (
            path.is_file()
            and path.stat().st_size == rec.get("size")
            and sha256_file(path) == rec.get("sha256")
        )
    except OSError:
        return False


def _write_plan(folder: Path, key: str, segments: list[Segment], src: Path, dst: Path) -> None:
    doc = {"version": PLAN_VERSION, "key": key, "source": str(src), "destination": str(dst),
           "segments": [dataclasses.asdict(s) for s in segments]}  # fmt: skip
    tmp = folder / f".{PLAN_FILE}.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    _fsync(tmp)
    os.replace(tmp, folder / PLAN_FILE)
    _fsync_dir(folder)


def _plan_key(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / PLAN_FILE).read_text())["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def colorize_film(
    src: str | Path,
    dst: str | Path,
    options: ColorizeOptions | None = None,
    *,
    segment_seconds: float = SEGMENT_SECONDS,
    resume: bool = False,
    colorizer: torch.nn.Module | None = None,
    progress: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> Summary:
    """Colorize ``src`` into ``dst``: in segments when the film is long (see
    :func:`should_segment`) or when ``resume`` finds an unfinished run's segments; otherwise
    exactly :func:`~vidcolor.pipeline.run.colorize_video`. ``segment_seconds`` 0 never cuts.

    Without ``resume``, segments left by an unfinished run raise UsageError (nothing is thrown
    away unasked). On Ctrl-C or an error the finished segments stay in :func:`segment_dir` for
    a later ``resume``.
    """
    opts = options or ColorizeOptions()
    src, dst = Path(src), Path(dst)
    info = probe(src)
    if not runs_in_segments(info, dst, opts, segment_seconds, resume):
        return colorize_video(src, dst, opts, colorizer=colorizer, progress=progress, on_frame=on_frame)
    if segment_seconds <= 0:
        segment_seconds = SEGMENT_SECONDS  # resuming a run that was cut: cut it the same way
    return _colorize_segmented(src, dst, info, opts, segment_seconds, resume, colorizer, progress, on_frame)


def runs_in_segments(
    info: SourceInfo, dst: str | Path, options: ColorizeOptions, segment_seconds: float, resume: bool
) -> bool:
    """Whether :func:`colorize_film` runs the film in segments: it is long enough to be cut, or
    ``resume`` finds an unfinished run's segments beside ``dst``."""
    # Colour hints are tracked through their shot, which a join would cut: such runs are not cut.
    # So is a reference folder's choice of stills, shot by shot.
    if options.hints or options.reference_dir:
        return False
    return should_segment(info, options, segment_seconds) or (resume and segment_dir(dst).is_dir())


@dataclass
class SegmentedRun:
    """A segmented run between its planning (:func:`open_segmented`) and its join
    (:meth:`join`). Its segments may be encoded anywhere that sees ``folder``, by
    :func:`encode_segment` into :meth:`path`; the process that holds this object is the one
    writer of the journal (:meth:`record`). Picklable, so the join can run elsewhere too."""

    src: Path
    dst: Path
    info: SourceInfo
    options: ColorizeOptions
    plan: OutputPlan
    segments: list[Segment]
    folder: Path
    summary: Summary
    done: dict[int, dict[str, object]]
    reused: int = 0

    def path(self, seg: Segment) -> Path:
        """Where segment ``seg`` is encoded (the destination's container)."""
        return self.folder / f"{seg.name}{self.dst.suffix}"

    def reuse(self, seg: Segment) -> int | None:
        """Count ``seg`` as done when the journal and its file agree; return its frames (None:
        it must be encoded)."""
        rec = self.done.get(seg.number)
        if rec is None or rec.get("file") != self.path(seg).name or not _segment_ok(self.folder, rec):
            return None
        n = int(rec.get("frames", 0))  # type: ignore[call-overload]
        self.reused += 1
        self.summary.frames += n
        return n

    def record(self, seg: Segment, result: SegmentResult, **extra: object) -> None:
        """Journal a finished segment (``extra``: more fields for its line, e.g. where it ran)."""
        append_record(self.folder / DONE_FILE, {
            "number": seg.number, "file": self.path(seg).name, "frames": result.frames, "size": result.size,
            "sha256": result.sha256, "seconds": round(result.seconds, 3), **extra,
        })  # fmt: skip
        self.done[seg.number] = {"file": self.path(seg).name, "frames": result.frames}
        summary = self.summary
        summary.frames += result.frames
        summary.corrupt_skipped += result.corrupt_skipped
        summary.rebuilt_pts += result.rebuilt_pts
        summary.corrupt_kept += result.corrupt_kept
        if result.truncated:
            summary.warnings.append(
                f"the input is truncated: its readable data ends in segment {seg.number}, "
                "the rest is not in the output"
            )

    def abandon(self) -> None:
        """After an interruption or a failed segment: keep the folder for a resume when any
        segment finished (asked of the journal, not of memory: an interruption can land between
        a segment's record and the bookkeeping after it), else remove it."""
        if not _read_done(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)

    def join(self) -> Summary:
        """Join every segment (all recorded or reused) into the destination, verified and
        atomically, then remove the folder. ``summary.seconds`` is the caller's to set."""
        summary, opts = self.summary, self.options
        if summary.frames == 0:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise _no_frames(self.info, opts)
        if self.reused:
            summary.notes.append(f"resumed: {self.reused} of {len(self.segments)} segments were already done")
        files = [self.path(seg) for seg in self.segments]
        with atomic_output(self.dst, opts.overwrite) as tmp:
            join_segments(self.info, self.plan, files, tmp, opts)
            if opts.verify:
                summary.verify = verify_output(
                    self.src, tmp, self.info, self.plan, start=opts.start, duration=opts.duration,
                    expected_frames=summary.frames,
                )  # fmt: skip
            _fsync(tmp)
        shutil.rmtree(self.folder, ignore_errors=True)
        return summary


def open_segmented(
    src: Path,
    dst: Path,
    info: SourceInfo,
    opts: ColorizeOptions,
    segment_seconds: float,
    resume: bool,
    step: ModelStep,
) -> SegmentedRun:
    """Plan the run of ``src`` into ``dst`` in segments and ready its folder: a resumable
    unfinished run is kept (with ``resume``), one of another source, options or model is
    removed, and temporary files of killed segments go. ``step``: the model the segments will
    run (its weights are part of what makes finished segments reusable). Raises UsageError for
    an output that must not be written, or unfinished segments without ``resume``."""
    if dst.exists() and same_file(src, dst):
        raise UsageError(
            "an output path different from the input", f"both are {src}", "choose another output name"
        )
    check_destination(dst, opts.overwrite)
    plan = plan_output(
        info, dst, opts.codec, opts.crf, opts.lossless, opts.ten_bit, deinterlace=opts.deinterlace
    )
    segments = plan_segments(info, opts, segment_seconds)
    key = _run_key(src, info, opts, segments, f"{step.name}:{_fingerprint(step.model)}")
    folder = segment_dir(dst)
    summary = Summary.begin(src, dst, step, plan)
    if folder.is_dir():
        old = _plan_key(folder)
        if not resume:
            raise UsageError(
                "no unfinished run for this output",
                f"its segments in {folder}",
                "pass --resume to continue it, or delete that folder to start afresh",
            )
        if old != key:
            summary.notes.append("the unfinished run used another source, options or model: started afresh")
            shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    for stray in folder.glob(".*.partial*"):  # temporary files of a segment that was killed
        stray.unlink(missing_ok=True)
    if _plan_key(folder) != key:
        (folder / DONE_FILE).unlink(missing_ok=True)
        _write_plan(folder, key, segments, src, dst)
    return SegmentedRun(src, dst, info, opts, plan, segments, folder, summary, _read_done(folder))


def _colorize_segmented(
    src: Path,
    dst: Path,
    info: SourceInfo,
    opts: ColorizeOptions,
    segment_seconds: float,
    resume: bool,
    colorizer: torch.nn.Module | None,
    progress: bool,
    on_frame: Callable[[int], None] | None,
) -> Summary:
    step = ModelStep.create(opts, colorizer)
    run = open_segmented(src, dst, info, opts, segment_seconds, resume, step)
    t0 = time.perf_counter()
    total = sum(s.frames for s in run.segments) or None
    bar = tqdm(
        total=total, unit="frame", disable=not progress, desc=src.name, dynamic_ncols=True, smoothing=0.1
    )
    count = 0

    def tick(_n: int) -> None:
        nonlocal count
        count += 1
        bar.update(1)
        if on_frame is not None:
            on_frame(count)

    try:
        for seg in run.segments:
            reused = run.reuse(seg)
            if reused is not None:
                count += reused
                bar.update(reused)
                if on_frame is not None:
                    on_frame(count)
                continue
            path = run.path(seg)
            path.unlink(missing_ok=True)
            run.record(seg, encode_segment(src, seg, opts, path, colorizer=step.model, on_frame=tick))
    except BaseException:
        run.abandon()
        raise
    finally:
        bar.close()
    summary = run.join()
    summary.seconds = time.perf_counter() - t0
    return summary


# ---------------------------------------------------------------------------------- helpers


def _fingerprint(model: torch.nn.Module) -> str:
    """A hash of the model's weights: two models of one name (say, before and after training)
    must not share segments."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a power cut after it keeps the new name)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
