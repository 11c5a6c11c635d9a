"""The runner: probe -> [1] decode -> [2] to L -> [3] model -> [4] smooth -> [5] merge -> [6] encode.

Decode+batching, model+smoothing and merge run in their own threads; encoding runs on the calling
thread. Queues are a few batches deep, so memory holds a bounded number of frames whatever the
length of the film. The output is written under a temporary name, checked (frame count, pts, Y
PSNR) and renamed only when everything went well.

(Over 400 lines: the Summary, the frame window of a segment and the four stage threads all
serve one film run; the stage arithmetic itself is pipeline/chain.py.)
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vidcolor.errors import InputError, UsageError, VidcolorError
from vidcolor.frames import Frame, SourceInfo
from vidcolor.guidance.guide import Guide, frame_times, guide_for_film
from vidcolor.guidance.library import index_folder
from vidcolor.media.atomic import atomic_output, same_file
from vidcolor.media.decode import DecodeStats, decode_frames
from vidcolor.media.encode import OutputPlan, VideoWriter, plan_for
from vidcolor.media.probe import probe
from vidcolor.media.window import section_frames
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.chain import StageChain
from vidcolor.pipeline.threads import END, StageGroup
from vidcolor.pipeline.verify import LiveCheck, VerifyResult, verify_output
from vidcolor.stages.merge import merge_frame
from vidcolor.stages.model_step import ModelStep

QUEUE_BATCHES = 3  # depth of each queue, in batches: enough to keep every stage busy


@dataclass
class Summary:
    """What a run did, for the one-line summary, batch manifests and the API."""

    source: str
    output: str
    frames: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    model: str = ""
    rebuilt_pts: int = 0
    corrupt_skipped: int = 0
    corrupt_kept: int = 0  # frames the decoder flagged damaged, kept as decoded (--skip-corrupt)
    verify: VerifyResult | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    references: dict[str, Any] | None = None  # with a reference folder: its stills' use, shot by shot

    @classmethod
    def begin(cls, src: Path, dst: Path, step: ModelStep, plan: OutputPlan) -> Summary:
        """The summary of a run about to start: where, with what, and what planning said."""
        return cls(
            str(src),
            str(dst),
            device=str(step.device),
            model=step.name,
            warnings=list(plan.warnings),
            notes=list(plan.notes),
        )

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        parts = [
            f"{self.output}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} frames/s, "
            f"{self.device}, {self.model})"
        ]
        if self.verify is not None:
            psnr = "lossless" if math.isinf(self.verify.y_psnr) else f"{self.verify.y_psnr:.2f} dB"
            parts.append(f"Y PSNR {psnr}, pts identical")
            if self.verify.shift_s:
                parts.append(f"all streams shifted by {self.verify.shift_s * 1000:+.0f} ms by the container")
        if self.rebuilt_pts:
            parts.append(f"{self.rebuilt_pts} pts rebuilt")
        if self.corrupt_skipped:
            parts.append(f"{self.corrupt_skipped} corrupt frames skipped")
        if self.corrupt_kept:
            parts.append(f"{self.corrupt_kept} damaged frames kept as decoded")
        return "; ".join(parts)


def _matrix(plan: OutputPlan) -> str:
    """The Y'CbCr matrix the output is tagged with (the plan decides it for untagged sources too)."""
    space = (plan.color_space or "").lower()
    if "2020" in space:
        return "bt2020"
    return "bt709" if space == "bt709" else "bt601"


def _expected_frames(info: SourceInfo, opts: ColorizeOptions) -> int | None:
    rate = info.video.mean_rate
    return section_frames(info.frame_count(), float(rate) if rate else None, opts.start, opts.duration)


def _rescale(y: np.ndarray, shift: int, out_bits: int) -> np.ndarray:
    """Luma to another bit depth (shift = source bits - output bits), rounding to nearest."""
    dtype = np.uint8 if out_bits <= 8 else np.uint16
    if shift > 0:
        out = (y.astype(np.uint32) + (1 << (shift - 1))) >> shift
        return np.minimum(out, (1 << out_bits) - 1).astype(dtype)
    return (y.astype(np.uint32) << -shift).astype(dtype)


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    """Group frames into batches of one frame size (a size change starts a new batch)."""
    batch: list[Frame] = []
    for f in frames:
        if batch and (len(batch) == size or f.y.shape != batch[0].y.shape):
            yield batch
            batch = []
        batch.append(f)
    if batch:
        yield batch


def colorize_video(
    src: str | Path,
    dst: str | Path,
    options: ColorizeOptions | None = None,
    *,
    colorizer: torch.nn.Module | None = None,
    progress: bool = False,
    on_frame: Callable[[int], None] | None = None,
    **kw: Any,
) -> Summary:
    """Colorize the film at ``src`` into ``dst``; everything but the colour is kept.

    ``options`` (or keyword arguments of :class:`ColorizeOptions`) choose the model, device,
    codec and so on; ``colorizer`` passes an already loaded model (batch mode loads it once).
    Raises a :class:`~vidcolor.errors.VidcolorError` on bad input or output; nothing is left at
    ``dst`` then.
    """
    opts = options or ColorizeOptions(**kw)
    src, dst = Path(src), Path(dst)
    info = probe(src)
    if dst.exists() and same_file(src, dst):
        raise UsageError(
            "an output path different from the input", f"both are {src}", "choose another output name"
        )
    if info.is_still:
        raise UsageError("a film for colorize_video", f"a still image ({src})", "use colorize_image")
    plan = plan_for(info, dst, opts)
    guide = guide_for_film(info, opts)  # hints and references are checked before the model is loaded
    step = ModelStep.create(opts, colorizer)
    if opts.reference_dir:  # indexed here, with its own progress bar, before the frames start
        index_folder(opts.reference_dir, step, opts.render_size or step.render_size, progress=progress)
    summary = Summary.begin(src, dst, step, plan)
    stats = DecodeStats()
    t0 = time.perf_counter()
    with atomic_output(dst, opts.overwrite) as tmp:
        check = LiveCheck(info.video.bit_depth) if opts.verify else None
        try:
            run_stages(
                StageJob(src, tmp, info, plan, opts, step, guide=guide),
                stats,
                summary,
                progress=progress,
                on_frame=on_frame,
                check=check,
            )
        finally:
            if check is not None:
                check.close()
        if summary.frames == 0:
            raise _no_frames(info, opts)
        if check is not None:
            summary.verify = check.result(tmp, summary.frames) or verify_output(
                src, tmp, info, plan, start=opts.start, duration=opts.duration, expected_frames=summary.frames
            )
    summary.seconds = time.perf_counter() - t0
    summary.rebuilt_pts = stats.rebuilt_pts
    summary.corrupt_skipped = stats.corrupt_skipped
    # Under --skip-corrupt damage does not stop the run, so it must at least be said.
    summary.corrupt_kept = stats.corrupt_kept
    if stats.truncated:
        unread = f" ({stats.unread} more frames its index lists are lost)" if stats.unread else ""
        summary.warnings.append(
            f"the input is truncated: its readable data ends after {stats.frames} frames, "
            f"the rest is not in the output{unread}"
        )
    return summary


def _no_frames(info: SourceInfo, opts: ColorizeOptions) -> VidcolorError:
    """The error for a run that encoded nothing: a section outside the film, or nothing decodable
    (an empty output would otherwise fail later with a message about the temporary file)."""
    if opts.start is None and opts.duration is None:
        name = Path(info.path).name
        return InputError(
            "a film with frames", f"no decodable frame in {name}", "check the file is not damaged"
        )
    section = f"from {opts.start or 0:g} s"
    if opts.duration is not None:
        section += f" for {opts.duration:g} s"
    if info.duration:
        section += f" (the film is {info.duration:.3f} s long)"
    return UsageError(
        "a --start/--duration section that holds frames",
        f"none {section}",
        "choose a --start inside the film",
    )


@dataclass(frozen=True)
class FrameWindow:
    """A part of the film by pts, for segmented runs (pipeline/segments.py).

    Decoding starts at ``start_s`` (seconds from the video stream's start, as decode_frames takes
    it). Frames with pts in [first, stop) are colorized and smoothed; of these, the ones in
    [lo, hi) are merged and encoded, re-indexed from 0, and ``after`` frames from ``hi`` on are
    read for the smoother's look-ahead (warm-up frames, not encoded).
    """

    start_s: float | None
    first: int | None
    lo: int | None
    hi: int | None
    stop: int | None
    after: int = 0

    def select(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """The frames to colorize, in order (ends the decoding once the look-ahead is read)."""
        ahead = 0
        for f in frames:
            if self.first is not None and f.pts < self.first:
                continue
            if self.stop is not None and f.pts >= self.stop:
                return
            if self.hi is not None and f.pts >= self.hi:
                if ahead >= self.after:
                    return
                ahead += 1
            yield f

    def encodes(self, pts: int) -> bool:
        return (self.lo is None or pts >= self.lo) and (self.hi is None or pts < self.hi)


@dataclass(frozen=True)
class StageJob:
    """One pass of the stages over a film: what is read, how it is coloured, where it is written.

    src: the film. tmp: where the output is encoded (the caller renames it). plan: the output's
    codec and pixel format. step: the loaded model. window: a part of the film by pts for a
    segment (None: the options' own --start/--duration section, as colorize_video runs it).
    first_index: the index in the film (section) of the first frame decoded. guide: the guidance of
    this pass (``guide_for_film``; one per pass, as it holds the pass's state), None: unguided.
    """

    src: Path
    tmp: Path
    info: SourceInfo
    plan: OutputPlan
    opts: ColorizeOptions
    step: ModelStep
    window: FrameWindow | None = None
    first_index: int = 0
    guide: Guide | None = None


class _StageThreads:
    """The four stage threads of one job and the queues between them.

    Thread ownership: ``read`` (decode, to L, the guidance's planning and the key frames' choice
    and flow) runs on the decode thread, ``model`` on the model thread, ``colour`` (guidance
    finish, smoothing, the segment's re-numbering) on the colour thread, ``merge`` on the merge
    thread; the calling thread encodes (``encode``). Each method touches only the chain's part
    its thread owns (see StageChain).
    """

    def __init__(self, job: StageJob, stats: DecodeStats, check: LiveCheck | None = None) -> None:
        self.job = job
        self.stats = stats
        self.check = check
        v = job.info.video
        self.full_range = v.color_range == "pc"
        self.guide = job.guide
        self.chain = StageChain(
            job.step,
            job.opts,
            bit_depth=v.bit_depth,
            full_range=self.full_range,
            guide=self.guide,
            field_aware=v.field_order not in ("progressive", "unknown") and not job.opts.deinterlace,
            first_index=job.first_index,
        )
        self.group = StageGroup()
        batch = job.opts.batch_size
        self.to_model = self.group.pipe(QUEUE_BATCHES)
        self.to_colour = self.group.pipe(QUEUE_BATCHES)
        self.to_merge = self.group.pipe(QUEUE_BATCHES * batch)
        self.to_encode = self.group.pipe(QUEUE_BATCHES * batch)

    def start(self) -> None:
        self.group.start("decode", self.read)
        self.group.start("model", self.model)
        self.group.start("colour", self.colour)
        self.group.start("merge", self.merge)

    def read(self) -> None:
        job, opts, window = self.job, self.job.opts, self.job.window
        frames = decode_frames(
            job.src,
            job.info,
            start=opts.start if window is None else window.start_s,
            duration=opts.duration if window is None else None,
            skip_corrupt=opts.skip_corrupt,
            deinterlace=opts.deinterlace,
            stats=self.stats,
        )
        if window is not None:
            frames = window.select(frames)
        if self.check is not None:
            frames = self._noted(frames, self.check)
        for batch in _batches(frames, opts.batch_size):
            lb = self.chain.to_l(batch)
            # The guidance's tracking and the key frames' flow need nothing from the model: they
            # run here, ahead of it, off the model thread that sets the pace.
            guided = self.chain.plan(lb, frame_times(batch, job.info))
            self.to_model.put((batch, lb, guided, self.chain.plan_carry(lb, guided)))
        self.to_model.put(END)

    @staticmethod
    def _noted(frames: Iterator[Frame], check: LiveCheck) -> Iterator[Frame]:
        for f in frames:
            check.decoded(f.pts, f.time_base)
            yield f

    def model(self) -> None:
        for batch, lb, guided, carried in self.to_model:
            self.to_colour.put((batch, lb, guided, self.chain.model(lb, guided, carried)))
        self.to_colour.put(END)

    def colour(self) -> None:
        window = self.job.window
        pending: deque[tuple[Frame, tuple[int, int]]] = deque()
        encoded = 0

        def send(ready: list[tuple[int, np.ndarray]]) -> None:
            nonlocal encoded
            for index, ab in ready:
                frame, content = pending.popleft()
                assert frame.index == index, "smoother must keep frame order"
                if window is not None:  # warm-up frames stop here; the others are numbered from 0
                    if not window.encodes(frame.pts):
                        continue
                    frame = replace(frame, index=encoded)
                    encoded += 1
                self.to_merge.put((frame, ab, content))

        for batch, lb, guided, out in self.to_colour:
            ab = self.chain.finish(lb, guided, out)
            for i, frame in enumerate(batch):
                pending.append((frame, lb.content))
                send(self.chain.smooth(frame.index, ab[i], lb.L[i, 0], guided, i))
        send(self.chain.flush())
        self.to_merge.put(END)

    def merge(self) -> None:
        v, plan, opts = self.job.info.video, self.job.plan, self.job.opts
        matrix = _matrix(plan)
        shift = v.bit_depth - plan.bit_depth  # > 0 only where the plan states a downconversion
        for frame, ab, content in self.to_merge:
            y = frame.y if shift == 0 else _rescale(frame.y, shift, plan.bit_depth)
            planes = merge_frame(
                y,
                ab,
                content,
                bit_depth=plan.bit_depth,
                full_range=self.full_range,
                matrix=matrix,
                pix_fmt=plan.pix_fmt,
                guide=opts.guide,
            )
            self.to_encode.put((frame.index, frame.pts, planes, frame.y))
        self.to_encode.put(END)

    def encode(self, summary: Summary, bar: tqdm, on_frame: Callable[[int], None] | None) -> None:
        """On the calling thread: write what the merge thread sends, then wait for every stage."""
        job = self.job
        check = self.check
        with VideoWriter(
            job.tmp, job.info, job.plan, start=job.opts.start, duration=job.opts.duration, sink=check
        ) as writer:
            for index, pts, planes, y in self.to_encode:
                if check is not None:
                    check.expect(pts, y)
                writer.write(index, pts, planes)
                summary.frames += 1
                bar.update(1)
                if on_frame is not None:
                    on_frame(summary.frames)
            self.group.join()  # raise a stage's error before the writer is closed and flushed
        summary.notes.extend(self.chain.notes())
        if self.guide is not None and self.guide.chooser is not None:
            summary.references = self.guide.chooser.report()
            summary.notes.extend(self.guide.chooser.lines())


def run_stages(
    job: StageJob,
    stats: DecodeStats,
    summary: Summary,
    *,
    progress: bool = False,
    on_frame: Callable[[int], None] | None = None,
    check: LiveCheck | None = None,
) -> None:
    """Run ``job``'s stages to the end: decode counters go to ``stats``, frames and notes to
    ``summary``; ``on_frame`` is called with the count of frames encoded so far; ``check`` sees
    every frame decoded and every packet encoded (pipeline/verify.py)."""
    threads = _StageThreads(job, stats, check)
    bar = tqdm(
        total=_expected_frames(job.info, job.opts),
        unit="frame",
        disable=not progress,
        desc=job.src.name,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    try:
        # Started inside the try: a Ctrl-C that lands between two starts must still stop and join
        # the stages, or the interpreter exits with a model thread inside torch (abort at exit).
        threads.start()
        threads.encode(summary, bar, on_frame)
    except BaseException:
        threads.group.abort()
        threads.group.join()
        raise
    finally:
        bar.close()
