"""Long films in segments: each colorized and encoded on its own, kept beside the destination until
the end, then joined by packet copy. This is what lets a killed run resume where it stopped.

A film is cut at frames about ``segment_seconds`` apart (at a source keyframe where one is near).
Each segment is a plain function of (source, segment, options) -> file (:func:`encode_segment`):
it starts its own encoder, so every segment begins with an IDR picture and no picture refers
across a join (closed GOPs). Temporal smoothing carries across a join without shared state: a
segment also decodes and colorizes up to ``WARMUP_FRAMES`` frames before its start and
``LOOKAHEAD_FRAMES`` after its end, which go through the model and the smoother but are not
encoded, so the smoother (and its scene-cut history) sees the same neighbours as in one long run.

Where the cuts go is pipeline/cuts.py, the record of a run pipeline/journal.py, the join
pipeline/join.py; this module runs one segment and the whole film.

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

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from vidcolor.durable import append_record, fsync_dir, fsync_file, sha256_file
from vidcolor.errors import CorruptInputError, UsageError
from vidcolor.frames import SourceInfo
from vidcolor.guidance.guide import guide_for_film
from vidcolor.media.atomic import atomic_output, check_destination, same_file
from vidcolor.media.decode import DecodeStats
from vidcolor.media.encode import OutputPlan, plan_for
from vidcolor.media.probe import probe
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.cuts import (
    LOOKAHEAD_FRAMES,
    SEGMENT_SECONDS,
    Segment,
    plan_segments,
    should_segment,
)
from vidcolor.pipeline.join import join_segments
from vidcolor.pipeline.journal import (
    DONE_FILE,
    fingerprint,
    plan_key,
    read_done,
    run_key,
    segment_dir,
    segment_ok,
    write_plan,
)
from vidcolor.pipeline.run import FrameWindow, StageJob, Summary, _no_frames, colorize_video, run_stages
from vidcolor.pipeline.verify import verify_output
from vidcolor.stages.model_step import ModelStep


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


# ------------------------------------------------------------------------------- one segment


def segment_plan(info: SourceInfo, out: Path, options: ColorizeOptions) -> OutputPlan:
    """The output plan of a segment file: the final plan for its extension, video only."""
    plan = plan_for(info, out, options)
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
    # A film in one segment decodes and encodes the options' own section, as colorize_video does.
    window = None
    if segment.first is not None:
        window = FrameWindow(
            start_s=segment.start_s,
            first=segment.first,
            lo=segment.lo,
            hi=segment.hi,
            stop=segment.stop,
            after=LOOKAHEAD_FRAMES if segment.hi is not None else 0,
        )
    stats = DecodeStats()
    ran = Summary(str(src), str(out))
    with atomic_output(out, overwrite=True) as tmp:
        try:
            first = segment.first_index if window else 0
            job = StageJob(src, tmp, info, plan, options, step, window, first, guide_for_film(info, options))
            run_stages(job, stats, ran, on_frame=on_frame)
        except CorruptInputError as exc:
            raise _in_film(exc, segment.first_index) from None
        fsync_file(tmp)
    fsync_dir(out.parent)
    # The damage counts include the segment's warm-up frames (a frame near a join may be counted
    # by both neighbours): they are for the summary line, not for bookkeeping.
    return SegmentResult(
        out,
        ran.frames,
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
        if rec is None or rec.get("file") != self.path(seg).name or not segment_ok(self.folder, rec):
            return None
        n = int(rec.get("frames", 0))  # type: ignore[call-overload]  # a journal record: JSON, checked by int()
        self.reused += 1
        self.summary.frames += n
        return n

    def record(self, seg: Segment, result: SegmentResult, **extra: object) -> None:
        """Journal a finished segment (``extra``: more fields for its line, e.g. where it ran)."""
        append_record(
            self.folder / DONE_FILE,
            {
                "number": seg.number,
                "file": self.path(seg).name,
                "frames": result.frames,
                "size": result.size,
                "sha256": result.sha256,
                "seconds": round(result.seconds, 3),
                **extra,
            },
        )
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
        if not read_done(self.folder):
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
                    self.src,
                    tmp,
                    self.info,
                    self.plan,
                    start=opts.start,
                    duration=opts.duration,
                    expected_frames=summary.frames,
                )
            fsync_file(tmp)
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
    plan = plan_for(info, dst, opts)
    segments = plan_segments(info, opts, segment_seconds)
    key = run_key(src, info, opts, segments, f"{step.name}:{fingerprint(step.model)}")
    folder = segment_dir(dst)
    summary = Summary.begin(src, dst, step, plan)
    if folder.is_dir():
        old = plan_key(folder)
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
    if plan_key(folder) != key:
        (folder / DONE_FILE).unlink(missing_ok=True)
        write_plan(folder, key, segments, src, dst)
    return SegmentedRun(src, dst, info, opts, plan, segments, folder, summary, read_done(folder))


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
