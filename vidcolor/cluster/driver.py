"""``vidcolor batch --ray``: the batch of vidcolor/batch.py with its films on a Ray cluster.

This process (the driver) does what local batch's parent process does: it collects the jobs,
settles what the manifest says is done, and is the manifest's one writer (batch.Ledger). It
also plans the long films into closed-GOP segments (pipeline/segments.py) and is the one writer
of each film's segment journal. The work goes to the cluster as tasks (tasks.py): a whole film
or still per task, or one task per segment of a long film (spread over the nodes) and then one
for the join. Inputs and outputs must be on storage every node sees at the same path.

Ray runs a task again on another node when its worker or node is lost (up to RETRIES times).
That is safe because every task writes exactly one file, atomically, at a path fixed by the job,
and records are written here only when a task's result arrives: a lost attempt leaves at most a
temporary file, which is removed once its film is settled (batch.Ledger.finish).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcolor.batch import FAILED, BatchReport, Job, JobResult, Ledger, failure, open_batch
from vidcolor.cluster.connect import check_address, connect, import_ray
from vidcolor.cluster.progress import BatchBar, FrameBoard
from vidcolor.cluster.tasks import Node, SegmentDone, film_task, join_task, replaceable, segment_task
from vidcolor.errors import UsageError
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.cuts import SEGMENT_SECONDS
from vidcolor.pipeline.segments import SegmentedRun, open_segmented, runs_in_segments
from vidcolor.stages.model_step import ModelStep

#: Times Ray runs a task again after losing the worker or node that ran it.
RETRIES = 3
#: Seconds between looks at the cluster's progress while waiting for results.
TICK = 0.5


@dataclass
class _Film:
    """A film (or still) of the batch while it is on the cluster."""

    index: int
    job: Job
    existed: bool  # whether its output was there when it was handed out
    run: SegmentedRun | None = None  # its segmented run, when it is cut
    started: float = field(default_factory=time.time)
    waiting: int = 0  # its segment tasks not back yet
    errors: list[SegmentDone] = field(default_factory=list)
    placed: list[dict[str, Any]] = field(default_factory=list)  # where each segment ran


def run_batch_on_ray(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: ColorizeOptions | None = None,
    *,
    address: str | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
    segment_seconds: float | None = None,
    manifest: str | os.PathLike[str] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    progress: bool = False,
) -> BatchReport:
    """Colorize every file of ``inputs`` into ``out_dir`` on the Ray cluster at ``address``
    (see connect.check_address), with local batch's manifest, skips and failures
    (:func:`vidcolor.batch.run_batch`). Each task asks for ``cpus_per_task`` CPUs and
    ``gpus_per_task`` GPUs; its torch threads are ``options.threads`` or the CPUs it asked for.
    ``progress``: a bar for the whole batch on stderr. A film cut in segments has in its result
    where each segment ran (``JobResult.segments``) and, as seconds, its time from hand-out to
    join. Raises UsageError for bad inputs or options (before anything is written), for a
    missing Ray and for an address where no cluster answers.
    """
    opts = options or ColorizeOptions()
    seg_s = SEGMENT_SECONDS if segment_seconds is None else segment_seconds
    if not cpus_per_task > 0:
        raise UsageError("--cpus-per-task above 0", str(cpus_per_task), "pass e.g. 1 or 4")
    if not gpus_per_task >= 0:
        raise UsageError("--gpus-per-task of 0 or more", str(gpus_per_task), "pass e.g. 1 or 0.5")
    check_address(address)
    import_ray()
    ledger, todo = open_batch(inputs, out_dir, opts, manifest, on_result)
    if not todo:
        return ledger.report()
    ray, owned = connect(address)
    try:
        _Driver(ray, ledger, Path(out_dir), opts, seg_s, cpus_per_task, gpus_per_task, progress).run(todo)
    finally:
        if owned:
            ray.shutdown()
    return ledger.report()


class _Driver:
    def __init__(
        self,
        ray: Any,
        ledger: Ledger,
        out_dir: Path,
        opts: ColorizeOptions,
        seg_s: float,
        cpus: float,
        gpus: float,
        progress: bool,
    ) -> None:
        self.ray, self.ledger, self.out_dir, self.opts, self.seg_s = ray, ledger, out_dir, opts, seg_s
        # As local batch's workers: the cores a task holds are its torch threads.
        self.task_opts = opts if opts.threads else dataclasses.replace(opts, threads=max(1, int(cpus)))
        res = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": RETRIES}
        self.film_fn = ray.remote(film_task).options(**res)
        self.segment_fn = ray.remote(segment_task).options(scheduling_strategy="SPREAD", **res)
        # A join copies packets and decodes once to verify: no model, one core.
        self.join_fn = ray.remote(join_task).options(num_cpus=1, max_retries=RETRIES)
        self.board = _board(ray)
        self.pending: dict[Any, tuple[str, _Film, int]] = {}  # task ref -> (kind, film, segment)
        self.reused = 0  # frames of segments finished by an earlier run
        self.finished = 0  # frames of films settled (what the bar shows if the board is lost)
        self.seen = 0  # the board's last count
        self.step: ModelStep | None = None
        self.progress = progress
        self.expected = 0

    # ------------------------------------------------------------------------------ handing out

    def run(self, todo: list[tuple[int, Job]]) -> None:
        self.bar = BatchBar(len(todo), None, self.progress)
        try:
            for i, job in todo:
                self._hand_out(i, job)
                self._collect(0.0)
            while self.pending:
                self._collect(TICK)
        except BaseException:
            self._stop()
            raise
        finally:
            self.bar.close()
            if self.board is not None:
                self.ray.kill(self.board)

    def _hand_out(self, i: int, job: Job) -> None:
        film = _Film(i, job, existed=job.output.exists())
        self.ledger.started(job)
        try:
            frames = self._plan(film)
        except Exception as exc:  # a broken file is recorded, as local batch does
            self._settle(film, failure(job, exc))
            return
        self._expect(frames)
        opts = replaceable(self.task_opts, film.existed)
        if film.run is None:
            ref = self.film_fn.remote(job, self.out_dir, opts, self.seg_s, self.board, (i, -1))
            self.pending[ref] = ("film", film, -1)
            return
        run = film.run
        for seg in run.segments:
            done = run.reuse(seg)
            if done is not None:
                self.reused += done
                continue
            ref = self.segment_fn.remote(run.src, seg, opts, run.path(seg), self.board, (i, seg.number))
            self.pending[ref] = ("segment", film, seg.number)
            film.waiting += 1
        if not film.waiting:
            self._join(film)

    def _plan(self, film: _Film) -> int | None:
        """Probe the film and, when it runs in segments, plan them (film.run); return the
        frames it is expected to have (None: unknown)."""
        from vidcolor.media.probe import probe

        job = film.job
        if job.still:
            return 1
        info = probe(job.source)
        if not runs_in_segments(info, job.output, self.opts, self.seg_s, resume=True):
            return info.frame_count()
        job.output.parent.mkdir(parents=True, exist_ok=True)
        seg_s = self.seg_s if self.seg_s > 0 else SEGMENT_SECONDS  # resuming a cut run: cut the same way
        film.run = open_segmented(job.source, job.output, info, self.opts, seg_s, True, self._step())
        return sum(s.frames for s in film.run.segments)

    def _step(self) -> ModelStep:
        """The model as the workers will run it, here on the CPU: its weights are part of what
        makes a film's finished segments reusable."""
        if self.step is None:
            import vidcolor.models as models

            opts = self.opts
            model = models.load(opts.model, device="cpu", half=False, weights=opts.weights)
            self.step = ModelStep.create(dataclasses.replace(opts, device="cpu"), model)
        return self.step

    def _join(self, film: _Film) -> None:
        assert film.run is not None
        run = dataclasses.replace(film.run, options=replaceable(film.run.options, film.existed))
        ref = self.join_fn.remote(run, film.job, film.started)
        self.pending[ref] = ("join", film, -1)

    # -------------------------------------------------------------------------------- results

    def _collect(self, timeout: float) -> None:
        ray = self.ray
        if self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
            for ref in ready:
                kind, film, number = self.pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    lost = _lost(exc)
                    if kind == "segment":
                        self._segment_back(film, SegmentDone(number, Node("", ""), error=lost, exit_code=1))
                    else:
                        job = film.job
                        failed = JobResult(str(job.source), job.rel, FAILED, error=lost, exit_code=1)
                        self._settle(film, failed)
                    continue
                if kind == "segment":
                    self._segment_back(film, value)
                else:
                    self._settle(film, value[0], timed=kind == "join")
        self.bar.frames(self.reused + self._frames_done())

    def _segment_back(self, film: _Film, done: SegmentDone) -> None:
        run = film.run
        assert run is not None
        film.waiting -= 1
        seg = run.segments[done.number]
        if done.result is not None:
            run.record(seg, done.result, node=done.node.id, host=done.node.host)
            film.placed.append(
                {
                    "number": seg.number,
                    "node": done.node.id,
                    "host": done.node.host,
                    "frames": done.result.frames,
                    "seconds": round(done.result.seconds, 3),
                }
            )
        else:
            film.errors.append(done)
        if film.waiting:
            return
        if not film.errors:
            self._join(film)
            return
        first = min(film.errors, key=lambda d: d.number)
        run.abandon()  # finished segments stay for the next run
        error = f"segment {first.number}: {first.error}"
        self._settle(
            film,
            JobResult(str(film.job.source), film.job.rel, FAILED, error=error, exit_code=first.exit_code),
        )

    def _settle(self, film: _Film, result: JobResult, timed: bool = False) -> None:
        """Record what became of a film (the ledger also removes what lost attempts of it left
        behind)."""
        if film.run is not None:
            for placed in film.placed:
                placed["attempts"] = len(self._started_on((film.index, placed["number"]))) or 1
            result.segments = sorted(film.placed, key=lambda p: p["number"])
        else:
            result.nodes = self._started_on((film.index, -1)) or None
        if timed and result.frames:
            seconds = time.time() - film.started
            result.seconds, result.fps = round(seconds, 3), round(result.frames / seconds, 2)
        self.finished += result.frames or 0
        self.bar.write(lambda: self.ledger.finish(film.index, result))
        self.bar.film_done()

    # --------------------------------------------------------------------------------- progress

    def _expect(self, frames: int | None) -> None:
        self.expected += frames or 0
        self.bar.bar.total = self.expected or None

    def _frames_done(self) -> int:
        """Frames done across the cluster by the tasks of this run (the board's count; if the
        board is lost, the frames of the films settled so far)."""
        if self.board is not None:
            try:
                self.seen = int(self.ray.get(self.board.total.remote(), timeout=TICK))
            except self.ray.exceptions.GetTimeoutError:
                pass  # a busy moment (a node being declared lost): the last count will do
            except Exception:  # progress only: go on without it
                self.board = None
        return self.seen if self.board is not None else self.finished

    def _started_on(self, key: tuple[int, int]) -> list[str]:
        """The nodes that started task ``key``, one per attempt (none known without the board)."""
        if self.board is None:
            return []
        try:
            return list(self.ray.get(self.board.started_on.remote(key), timeout=60))
        except Exception:  # bookkeeping for the record only
            return []

    def _stop(self) -> None:
        """Ctrl-C or an error here: stop the tasks (a stopped task removes its temporary file)
        and keep each cut film's finished segments for the next run."""
        for ref in self.pending:
            try:
                self.ray.cancel(ref)
            except Exception:  # a task that already ended cannot be cancelled
                pass
        for _kind, film, _n in self.pending.values():
            if film.run is not None:
                film.run.abandon()


def _board(ray: Any) -> Any:
    """The progress actor, pinned to this node when it is a Ray node: it goes with the driver,
    not with a worker node that may be lost (a Ray Client driver is no node: anywhere)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0}
    try:
        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(here, soft=False)
    except Exception:  # a Ray Client driver is no node: anywhere will do
        pass
    return ray.remote(FrameBoard).options(**options).remote()


def _lost(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return (
        f"the worker or node running it was lost {RETRIES + 1} times ({type(exc).__name__}: {first}); "
        "run again to retry"
    )
