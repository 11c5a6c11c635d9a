"""Each pipeline stage timed on its own, on one thread, exactly as the runner calls it.

Stages (DESIGN.md): [1] demux + decode, [2] grey to L + batching, [3] the model (at the run's
render size and batch, and over a grid of render sizes x batch sizes), [4] temporal smoothing,
[5] merge back to full resolution, [6] encode + mux, per codec. Each is a pass over the clip's
frames, repeated after a warm-up; inputs of a stage are made once, untimed, by the stage before.

Two shortcuts keep a run short without changing what is timed: the model is timed on the first
``model_frames`` frames (its cost per frame does not depend on the picture), and smoothing and
merge take those frames' ab over and over (frame ``i`` gets the ab of frame ``i % model_frames``)
with each frame's own L and luma; neither stage's cost depends on the values of ab.

(Over 400 lines: one timer per stage, each a few lines of set-up around the stage's own call, plus
the model variants; split, each file would repeat the clip, settings and timing plumbing.)
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor.formats import CODEC_SUFFIX
from vidcolor.frames import Frame, LBatch, SourceInfo
from vidcolor.media.decode import decode_frames
from vidcolor.media.encode import VideoWriter, plan_output
from vidcolor.media.probe import probe
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.chain import StageChain
from vidcolor.stages.batch_l import render_shape
from vidcolor.stages.merge import merge_frame, resolve_matrix
from vidcolor.stages.model_step import ModelStep
from vidcolor.stages.smooth import TemporalSmoother

from .timing import Measure, Timed, time_repeats

#: The runner's thread names (pipeline/run.py): each stage is timed on a thread of its own, as it runs there.
DECODE_THREAD, MODEL_THREAD, MERGE_THREAD = "vidcolor-decode", "vidcolor-model", "vidcolor-merge"
COLOUR_THREAD = "vidcolor-colour"
#: Output extension per codec (one whose container holds the codec and the clip's AAC track).


@dataclass(frozen=True)
class StageSettings:
    """How the stages are timed. ``opts`` are the run's options (render size, batch, codec, ...)."""

    opts: ColorizeOptions
    repeats: int = 3
    warmup: int = 1
    model_frames: int = 32  # frames per model pass
    encode_frames: int = 48  # frames per encoder pass
    codecs: tuple[str, ...] = ("libx264",)


def _chunks(frames: Sequence[Frame], size: int) -> list[list[Frame]]:
    return [list(frames[i : i + size]) for i in range(0, len(frames), size)]


def _chain(step: ModelStep, opts: ColorizeOptions, info: SourceInfo) -> StageChain:
    """The runner's own stages [2]-[4] for this clip, built as the runner builds them."""
    v = info.video
    return StageChain(step, opts, bit_depth=v.bit_depth, full_range=v.color_range == "pc")


def _batches(
    frames: Sequence[Frame], info: SourceInfo, step: ModelStep, opts: ColorizeOptions, render: int, batch: int
) -> list[LBatch]:
    chain = _chain(step, replace(opts, render_size=render, batch_size=batch), info)
    return [chain.to_l(c) for c in _chunks(frames, batch)]


def _ext(codec: str) -> str:
    return CODEC_SUFFIX.get(codec, ".mp4")


class ClipStages:
    """The stages of one clip. ``run()`` times them all in pipeline order and returns the measures."""

    def __init__(self, src: Path, step: ModelStep, settings: StageSettings, work_dir: Path) -> None:
        self.src, self.step, self.s, self.work = Path(src), step, settings, Path(work_dir)
        self.info = probe(self.src)
        v = self.info.video
        self.render = settings.opts.render_size or step.render_size
        self.full_range = v.color_range == "pc"
        self.matrix = resolve_matrix(v.color_space, v.height)
        self.device = step.device
        self.frames: list[Frame] = []
        self.ab: list[np.ndarray] = []  # model output of the first model_frames frames, (2, h, w) each
        self.content: tuple[int, int] = (0, 0)
        self.planes: list[tuple[np.ndarray, ...]] = []
        self.pix_fmt = ""

    def _time(self, fn: Any, thread: str | None, **kw: Any) -> Timed:
        """Time ``fn`` on a thread named like the runner's stage thread (None: this thread)."""
        return time_repeats(
            fn, repeats=self.s.repeats, warmup=self.s.warmup, device=self.device, thread=thread, **kw
        )

    def run(self) -> list[Measure]:
        return [
            self.decode(),
            self.to_l(),
            self.model(),
            self.smooth(),
            self.smooth(scene_cuts=True),
            self.merge(),
            *[self.encode(c) for c in self.s.codecs],
        ]

    # [1] --------------------------------------------------------------------------------------
    def decode(self) -> Measure:
        """Demux + decode + copy of each Y plane out of the decoder's buffer (threaded FFmpeg)."""
        out: list[Frame] = []

        def once() -> None:
            out.clear()
            out.extend(decode_frames(self.src, self.info))

        secs = self._time(once, DECODE_THREAD)
        self.frames = list(out)
        v = self.info.video
        return Measure.of(
            "decode",
            len(self.frames),
            secs,
            {"codec": v.codec, "pix_fmt": v.pix_fmt, "threads": "auto", "pipeline": True},
        )

    # [2] --------------------------------------------------------------------------------------
    def to_l(self, render: int | None = None, batch: int | None = None) -> Measure:
        render = render or self.render
        batch = batch or self.s.opts.batch_size
        secs = self._time(
            lambda: _batches(self.frames, self.info, self.step, self.s.opts, render, batch), DECODE_THREAD
        )
        v = self.info.video
        ch, cw, ph, pw = render_shape(v.height, v.width, render, self.step.stride)
        return Measure.of(
            "to_l",
            len(self.frames),
            secs,
            {
                "render_size": render,
                "batch_size": batch,
                "content": [ch, cw],
                "padded": [ph, pw],
                "pipeline": True,
            },
        )

    # [3] --------------------------------------------------------------------------------------
    def model(self, render: int | None = None, batch: int | None = None, pipeline: bool = True) -> Measure:
        """The model step on ``model_frames`` frames: host->device, forward, device->host."""
        render = render or self.render
        batch = batch or self.s.opts.batch_size
        n = min(len(self.frames), self.s.model_frames)
        batches = _batches(self.frames[:n], self.info, self.step, self.s.opts, render, batch)
        outs: list[np.ndarray] = []

        def once() -> None:
            outs.clear()
            outs.extend(self.step(lb) for lb in batches)

        secs = self._time(once, MODEL_THREAD)
        if pipeline:
            self.ab = [a for o in outs for a in o]
            self.content = batches[0].content
        L = batches[0].L
        return Measure.of(
            "model",
            n,
            secs,
            {
                "render_size": render,
                "batch_size": batch,
                "input": [batch, *L.shape[1:]],
                "dtype": str(self.step.dtype).replace("torch.", ""),
                "device": str(self.device),
                "runtime": "torch" if self.step.onnx is None else "onnx",
                "pipeline": pipeline,
            },
        )

    def model_sweep(self, renders: Sequence[int], batches: Sequence[int]) -> list[Measure]:
        """The model at every render size x batch size (on this clip's aspect)."""
        return [self.model(r, b, pipeline=False) for r in renders for b in batches]

    def model_variants(self) -> list[Measure]:
        """Ways to run the same network faster, timed like :meth:`model` at the run's render size
        and batch: what each would buy if the pipeline adopted it. ``max_ab_diff`` and ``mean_ab_diff``
        are the largest and the mean change of the output (raw a*b* units) against the pipeline's call."""
        net, dev = self.step.model, self.device
        n = min(len(self.frames), self.s.model_frames)
        batches = _batches(
            self.frames[:n], self.info, self.step, self.s.opts, self.render, self.s.opts.batch_size
        )
        ref = [self.step(lb) for lb in batches]
        variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
        if dev.type == "cpu":
            threads = torch.get_num_threads()
            if threads > 1:
                variants["1 torch thread"] = _with_threads(net, 1)
            cl = copy.deepcopy(net).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs leave memory_format out of Module.to
            variants["channels_last"] = lambda x: cl(x.contiguous(memory_format=torch.channels_last))
            variants["bfloat16 autocast"] = _autocast(net, "cpu", torch.bfloat16)
            cl_bf16 = _autocast(cl, "cpu", torch.bfloat16)
            variants["channels_last + bfloat16"] = lambda x: cl_bf16(
                x.contiguous(memory_format=torch.channels_last)
            )
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", DeprecationWarning
                )  # TorchScript is deprecated, still the simplest freeze
                frozen = torch.jit.freeze(torch.jit.trace(copy.deepcopy(net), torch.from_numpy(batches[0].L)))
            variants["TorchScript freeze (BN folded)"] = frozen
        else:
            full = copy.deepcopy(net).float()
            variants["float32"] = lambda x: full(x.float())
        out: list[Measure] = []
        for name, fn in variants.items():

            def run(fn: Callable[[torch.Tensor], torch.Tensor] = fn) -> list[np.ndarray]:
                with torch.inference_mode():
                    res = []
                    for lb in batches:
                        x = torch.from_numpy(lb.L).to(dev, non_blocking=True)
                        res.append(fn(x.to(self.step.dtype)).float().cpu().numpy())
                    return res

            secs = self._time(run, MODEL_THREAD)
            err = [np.abs(a - b) for a, b in zip(run(), ref, strict=True)]
            diff = max(float(e.max()) for e in err)
            mean_diff = float(np.mean([e.mean() for e in err]))
            L = batches[0].L
            out.append(
                Measure.of(
                    "model",
                    n,
                    secs,
                    {
                        "render_size": self.render,
                        "batch_size": self.s.opts.batch_size,
                        "input": [self.s.opts.batch_size, *L.shape[1:]],
                        "variant": name,
                        "max_ab_diff": round(diff, 4),
                        "mean_ab_diff": round(mean_diff, 5),
                        "device": str(dev),
                        "pipeline": False,
                    },
                )
            )
        return out

    def _ab(self, i: int) -> np.ndarray:
        return self.ab[i % len(self.ab)]

    # [4] --------------------------------------------------------------------------------------
    def smooth(self, scene_cuts: bool = False) -> Measure:
        """The temporal smoother over every frame. With ``scene_cuts`` it is the runner's own (the
        stage chain's smoother, reset at scene cuts); without, the same smoother with no detector,
        which shows what the detector costs."""
        strength = self.s.opts.smoothing
        opts = self.s.opts
        ls = _batches(self.frames, self.info, self.step, opts, self.render, opts.batch_size)
        pairs = [(i, lb.L[k, 0]) for lb in ls for k, i in enumerate(lb.indices)]

        def once() -> None:
            sm = (
                _chain(self.step, opts, self.info).smoother
                if scene_cuts
                else TemporalSmoother(strength, None)
            )
            n = 0
            for i, L in pairs:
                n += len(sm.push(i, self._ab(i), L))
            n += len(sm.flush())
            assert n == len(pairs), "smoother lost frames"

        secs = self._time(once, COLOUR_THREAD)
        name = "smooth+cuts" if scene_cuts else "smooth"
        return Measure.of(
            name,
            len(pairs),
            secs,
            {"strength": strength, "scene_cut_detector": scene_cuts, "pipeline": scene_cuts},
        )

    # [5] --------------------------------------------------------------------------------------
    def _merge_all(self, pix_fmt: str, bit_depth: int) -> list[tuple[np.ndarray, ...]]:
        return [
            merge_frame(
                f.y,
                self._ab(f.index),
                self.content,
                bit_depth=bit_depth,
                full_range=self.full_range,
                matrix=self.matrix,
                pix_fmt=pix_fmt,
                guide=self.s.opts.guide,
            )
            for f in self.frames
        ]

    def merge(self) -> Measure:
        o = self.s.opts
        plan = plan_output(
            self.info, self.work / f"plan{_ext(o.codec)}", o.codec, o.crf, o.lossless, o.ten_bit
        )
        out: list[tuple[np.ndarray, ...]] = []

        def once() -> None:
            out.clear()
            out.extend(self._merge_all(plan.pix_fmt, plan.bit_depth))

        secs = self._time(once, MERGE_THREAD)
        self.planes, self.pix_fmt = list(out), plan.pix_fmt
        return Measure.of(
            "merge",
            len(out),
            secs,
            {
                "pix_fmt": plan.pix_fmt,
                "guide": o.guide,
                "size": [self.info.video.width, self.info.video.height],
                "pipeline": True,
            },
        )

    # [6] --------------------------------------------------------------------------------------
    def encode(self, codec: str) -> Measure:
        """Encode + mux of ``encode_frames`` frames (the clip's audio is copied too), writer open
        and final flush included: that is what the output costs."""
        o = self.s.opts
        dst = self.work / f"encode-{codec}{_ext(codec)}"
        own = codec == o.codec
        plan = plan_output(
            self.info,
            dst,
            codec,
            o.crf if own else None,
            o.lossless,
            o.ten_bit,
            preset=o.preset if own else None,
        )
        planes = (
            self.planes if plan.pix_fmt == self.pix_fmt else self._merge_all(plan.pix_fmt, plan.bit_depth)
        )
        n = min(len(self.frames), self.s.encode_frames)

        def once() -> None:
            with VideoWriter(dst, self.info, plan) as w:
                for f, p in zip(self.frames[:n], planes[:n], strict=True):
                    w.write(f.index, f.pts, p)

        try:
            secs = self._time(
                once, None, setup=lambda: dst.unlink(missing_ok=True)
            )  # the runner encodes on its caller
        finally:
            dst.unlink(missing_ok=True)
        return Measure.of(
            "encode",
            n,
            secs,
            {
                "codec": plan.codec,
                "pix_fmt": plan.pix_fmt,
                "options": plan.options,
                "pipeline": codec == o.codec,
            },
        )


def _with_threads(net: torch.nn.Module, threads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(x: torch.Tensor) -> torch.Tensor:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            out: torch.Tensor = net(x)
            return out
        finally:
            torch.set_num_threads(before)

    return fn


def _autocast(
    net: torch.nn.Module, device: str, dtype: torch.dtype
) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device, dtype=dtype):
            out: torch.Tensor = net(x)
            return out

    return fn


def bench_stages(
    src: Path,
    step: ModelStep,
    settings: StageSettings,
    work_dir: Path,
    *,
    sweep: tuple[Sequence[int], Sequence[int]] | None = None,
    variants: bool = False,
) -> tuple[list[Measure], list[Measure]]:
    """Time every stage on ``src``; returns (stages, model grid): the grid holds the model over
    ``sweep = (renders, batches)`` and, with ``variants``, the faster ways to run it."""
    stages = ClipStages(src, step, settings, work_dir)
    measures = stages.run()
    grid = stages.model_sweep(*sweep) if sweep and sweep[0] and sweep[1] else []
    if variants:
        grid += stages.model_variants()
    return measures, grid


def with_options(settings: StageSettings, **changes: Any) -> StageSettings:
    """Settings with some run options changed (e.g. ``render_size=160``)."""
    return replace(settings, opts=replace(settings.opts, **changes))
