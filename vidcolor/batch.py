"""Batch mode: many films and stills, a mirrored output tree, a manifest, and jobs side by side.

``collect_jobs`` turns folders, globs and files into jobs whose outputs mirror the input tree
under ``out_dir``. ``run_batch`` runs them (in this process, or in ``jobs`` worker processes that
each load the model once and share the CPU cores between them), goes on past a file that fails,
and keeps a JSON-lines manifest in ``out_dir``: one record per file and attempt (the last record
of a file wins), written by the parent process alone, each with a single append and an fsync, so a
kill mid-write can at worst tear the last line, which readers skip. A file is skipped only when
its last record says it finished and its output still has the recorded sha256. Long films go
through :func:`vidcolor.pipeline.segments.colorize_film`, so a killed batch also resumes inside
the film it was working on.

(Over 400 lines: the manifest, the mirrored output layout and the per-file runner are one
resumable job; the CLI is cli/batch.py and the cluster version cluster/.)
"""

from __future__ import annotations

import concurrent.futures as cf
import glob
import json
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidcolor.durable import append_record, sha256_file
from vidcolor.errors import UsageError, VidcolorError
from vidcolor.formats import FILM_SUFFIXES, STILL_SUFFIXES
from vidcolor.guidance.choose import write_report
from vidcolor.guidance.library import check_folder, index_folder
from vidcolor.media.atomic import stale_partials
from vidcolor.options import ColorizeOptions
from vidcolor.version import __version__

MANIFEST_NAME = "vidcolor-manifest.jsonl"
#: Container for outputs whose source container cannot hold the chosen codec (or is not
#: writable at all, like .mpg): Matroska holds every codec and stream kind vidcolor writes.
FALLBACK_EXT = ".mkv"
#: Exit status of a batch in which at least one file failed.
EXIT_FAILED = 1

DONE, FAILED, SKIPPED, STARTED = "done", "failed", "skipped", "started"


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes. ``rel``: the output path relative to out_dir."""

    source: Path
    output: Path
    rel: str
    still: bool


@dataclass
class JobResult:
    """What became of one job (also the body of its manifest record)."""

    source: str
    output: str
    status: str  # done | failed | skipped
    frames: int | None = None
    seconds: float | None = None
    fps: float | None = None
    sha256: str | None = None
    error: str | None = None
    exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Where each segment of a film ran, when a cluster ran them: [{"number", "node", "host",
    #: "frames", "seconds"}]; None otherwise (and then left out of the manifest record).
    segments: list[dict[str, Any]] | None = None
    #: The cluster nodes (Ray node ids) that started the file's task, one per attempt: more than
    #: one when a node was lost and the task ran again elsewhere; None off a cluster (left out).
    nodes: list[str] | None = None
    references: str | None = None  # with --reference-dir: the report of the stills chosen, beside the output


@dataclass
class BatchReport:
    results: list[JobResult]
    manifest: Path

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, EXIT_FAILED otherwise."""
        return EXIT_FAILED if self.count(FAILED) else 0

    def table(self) -> str:
        """One line per file and a line of totals, for the end of a batch."""
        lines = [f"{'status':8} {'frames':>7} {'frames/s':>9} {'seconds':>8}  file"]
        for r in self.results:

            def num(x: float | None, fmt: str) -> str:
                return "-" if x is None else format(x, fmt)

            tail = f"{r.output}: {r.error}" if r.error else r.output
            lines.append(
                f"{r.status:8} {num(r.frames, '7d')} {num(r.fps, '9.1f')} {num(r.seconds, '8.1f')}  {tail}"
            )
        n = len(self.results)
        lines.append(
            f"{n} file{'s' if n != 1 else ''}: {self.count(DONE)} succeeded, {self.count(FAILED)} failed, "
            f"{self.count(SKIPPED)} skipped"
        )
        return "\n".join(lines)


# ------------------------------------------------------------------------------ collecting


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard (``reels/**/*.mp4`` -> ``reels``)."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def output_name(rel: Path, codec: str) -> Path:
    """The output path (relative) for a source path ``rel``: the same name, and the same
    extension where that container can hold ``codec``, else FALLBACK_EXT. Stills keep theirs."""
    ext = rel.suffix.lower()
    if ext in STILL_SUFFIXES:
        return rel
    from vidcolor.formats import CODEC_ALIASES
    from vidcolor.media.encode import CONTAINERS, container_codecs

    fmt = CONTAINERS.get(ext)
    enc = CODEC_ALIASES.get(codec.lower(), "libx264" if codec.lower() == "lossless" else codec.lower())
    if fmt is not None:
        try:
            import av

            if av.Codec(enc, "w").canonical_name in container_codecs(fmt):
                return rel
        except Exception:  # an unknown codec fails later with its own clear message
            return rel
    return rel.with_suffix(FALLBACK_EXT)


def collect_jobs(
    inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], codec: str = "libx264"
) -> list[Job]:
    """Jobs for ``inputs`` (folders, walked recursively; globs, ``**`` allowed; files), in a
    stable order. Outputs mirror the tree below the inputs' common folder inside ``out_dir``.

    Folders and globs contribute media files by extension (FILM_SUFFIXES, STILL_SUFFIXES) and skip
    hidden files and folders and anything inside ``out_dir``; an explicit file is always taken.
    Raises UsageError for an input that matches nothing, when no file is found at all, and when
    two inputs would be written to the same output.
    """
    out = Path(out_dir)
    found: list[tuple[Path, Path]] = []  # (file, root it was found under)
    media = FILM_SUFFIXES | STILL_SUFFIXES
    for item in inputs:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in media and not _is_hidden(f, p) and not _inside(f, out):
                    found.append((f, p))
        elif p.is_file():
            found.append((p, p.parent))
        elif glob.has_magic(text):
            root = _glob_root(text)
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files = [
                m
                for m in matches
                if m.is_file()
                and m.suffix.lower() in media
                and not _is_hidden(m, root)
                and not _inside(m, out)
            ]
            if not files:
                raise UsageError(
                    "a glob that matches media files", f"nothing for {text!r}", "check the pattern"
                )
            found.extend((f, root) for f in files)
        else:
            raise UsageError("an existing file, folder or glob", f"nothing at {text}", "check the path")
    if not found:
        raise UsageError("media files in the inputs", "none", "pass folders or files with video or stills")
    roots = {str(r.resolve()) for _, r in found}
    base = Path(os.path.commonpath(sorted(roots)))
    jobs: list[Job] = []
    seen_src: set[Path] = set()
    by_out: dict[str, Path] = {}
    for f, _root in found:
        real = f.resolve()
        if real in seen_src:
            continue
        seen_src.add(real)
        rel = output_name(real.relative_to(base), codec)
        key = rel.as_posix()
        if key in by_out:
            raise UsageError(
                "one output per input",
                f"{by_out[key]} and {f} would both write {out / rel}",
                "colorize them in separate batches or rename one",
            )
        by_out[key] = f
        jobs.append(Job(source=real, output=out / rel, rel=key, still=real.suffix.lower() in STILL_SUFFIXES))
    return jobs


# -------------------------------------------------------------------------------- manifest


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The last record of each source in the manifest at ``path`` (missing file: none); lines
    that are not whole JSON objects (a torn last line) are skipped."""
    last: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return last
    with path.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("source"), str):
                last[rec["source"]] = rec
    return last


def _finished(job: Job, rec: dict[str, Any] | None) -> bool:
    """Whether ``job`` can be skipped: its last record finished and its output is unchanged."""
    if rec is None or rec.get("status") != DONE or rec.get("output") != job.rel or not rec.get("sha256"):
        return False
    try:
        return job.output.is_file() and sha256_file(job.output) == rec["sha256"]
    except OSError:
        return False


def _adopted(job: Job, rec: dict[str, Any] | None) -> JobResult | None:
    """A job whose run was killed after its output was renamed into place but before its record
    was written: its last record is ``started`` with no output before, and the output is there
    now. Outputs only ever appear whole and verified (atomic rename), so it is the run's own."""
    if (
        rec is None
        or rec.get("status") != STARTED
        or rec.get("output") != job.rel
        or rec.get("output_existed")
    ):
        return None
    if not job.output.is_file():
        return None
    return JobResult(
        str(job.source),
        job.rel,
        DONE,
        sha256=sha256_file(job.output),
        notes=["finished by an earlier run that stopped before recording it"],
    )


def _record(result: JobResult) -> dict[str, Any]:
    rec = asdict(result)
    for key in ("segments", "nodes"):  # cluster-only fields
        if rec[key] is None:
            del rec[key]
    rec["time"] = datetime.now(UTC).isoformat(timespec="seconds")
    rec["vidcolor"] = __version__
    return rec


# ----------------------------------------------------------------------------------- running


def error_of(exc: BaseException) -> tuple[str, int]:
    """The recorded message and exit status of a failure: a VidcolorError's own, anything else
    an internal error with the place it came from."""
    if isinstance(exc, VidcolorError):
        return str(exc), exc.exit_code
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" ({Path(where.filename).name}:{where.lineno})" if where else ""
    return f"internal error {type(exc).__name__}: {exc}{place}; please report it", 1


def failure(job: Job, exc: BaseException) -> JobResult:
    """The failed result of ``job`` for ``exc`` (see :func:`error_of`)."""
    error, code = error_of(exc)
    return JobResult(str(job.source), job.rel, FAILED, error=error, exit_code=code)


def run_job(
    job: Job,
    options: ColorizeOptions,
    colorizer: Any,
    segment_seconds: float,
    on_frame: Callable[[int], None] | None = None,
) -> JobResult:
    """Colorize one file; a VidcolorError (or any other failure) becomes a failed result.
    ``on_frame(n)`` is called with the number of frames done so far as the film goes."""
    from vidcolor.pipeline.image import colorize_image
    from vidcolor.pipeline.segments import colorize_film

    t0 = time.perf_counter()
    report: Path | None = None
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        if job.still:
            colorize_image(job.source, job.output, options, colorizer=colorizer)
            frames, warnings, notes = 1, [], []
            if on_frame is not None:
                on_frame(1)
        else:
            summary = colorize_film(
                job.source,
                job.output,
                options,
                segment_seconds=segment_seconds,
                resume=True,
                colorizer=colorizer,
                on_frame=on_frame,
            )
            frames, warnings, notes = summary.frames, summary.warnings, summary.notes
            if summary.references is not None:
                report = references_report_path(job.output)
                write_report(report, summary.references)
    except Exception as exc:  # one file's failure must not stop the batch; it is recorded
        return failure(job, exc)
    return succeeded(job, frames, time.perf_counter() - t0, warnings, notes, report)


def succeeded(
    job: Job,
    frames: int,
    seconds: float,
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
    references: Path | None = None,
) -> JobResult:
    """The result of ``job`` finished in ``seconds``: its output's hash read back from the file;
    ``references`` is the report of the stills a reference folder gave it, when it wrote one."""
    return JobResult(
        str(job.source),
        job.rel,
        DONE,
        frames=frames,
        seconds=round(seconds, 3),
        fps=round(frames / seconds, 2) if seconds > 0 else None,
        sha256=sha256_file(job.output),
        warnings=list(warnings),
        notes=list(notes),
        references=str(references) if references is not None else None,
    )


def references_report_path(output: Path) -> Path:
    """Where batch mode writes a film's ``--references-report``: beside its output, named after it."""
    return output.with_name(output.name + ".references.json")


# A worker process's model and settings, set once by _init_worker.
_WORKER: dict[str, Any] = {}


def _init_worker(options: ColorizeOptions, colorizer: Any, segment_seconds: float) -> None:
    import signal

    import torch

    import vidcolor.models as models

    # The parent handles Ctrl-C and stops the pool; a worker that got SIGINT as well would die
    # mid-file with a traceback. The parent ends workers with SIGTERM, raised here as
    # KeyboardInterrupt so the file in hand is cleaned up as on Ctrl-C (temporary output removed,
    # finished segments kept for the next run).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGALRM, _terminated)  # the retry of a stop that landed in a finaliser
    sys.unraisablehook = _unraisable
    torch.set_num_threads(max(1, options.threads))
    if colorizer is None:
        colorizer = models.load(
            options.model, device=options.device, half=options.half, weights=options.weights
        )
    _WORKER.update(options=options, colorizer=colorizer, segment_seconds=segment_seconds)


def _terminated(_signum: int, _frame: object) -> None:
    if _WORKER.get("busy"):
        raise KeyboardInterrupt  # unwinds through atomic_output, which removes the temporary file
    os._exit(0)  # idle or still loading the model: nothing to clean up, nothing to say


STOP_RETRY = 0.05  # seconds: when a stop that landed in a finaliser is raised again


def _unraisable(args: Any) -> None:
    """A worker's ``sys.unraisablehook``. The stop raised by :func:`_terminated` can land while
    the interpreter runs a finaliser (a weak reference's callback, a ``__del__``), which cannot
    pass an exception on: Python would print it as "Exception ignored" with a traceback and carry
    on with the file. Raise it again a moment later, from ordinary code, instead; anything else
    is reported as Python would."""
    if isinstance(args.exc_value, KeyboardInterrupt):
        import signal

        signal.setitimer(signal.ITIMER_REAL, STOP_RETRY)
        return
    sys.__unraisablehook__(args)


def _worker_job(job: Job) -> JobResult:
    try:
        _WORKER["busy"] = True
        result = run_job(job, _WORKER["options"], _WORKER["colorizer"], _WORKER["segment_seconds"])
        _WORKER["busy"] = False
        return result
    except KeyboardInterrupt:
        # Stopped by the parent (Ctrl-C): the file in hand was cleaned up on the way here. Leave at
        # once rather than hand the interruption back to a pool that is shutting down.
        os._exit(1)


@dataclass
class Ledger:
    """A batch's bookkeeping in the one process that writes its manifest: the jobs, what became
    of each (by index into ``jobs``), and the records that say so."""

    jobs: list[Job]
    manifest: Path
    on_result: Callable[[JobResult], None] | None = None
    results: dict[int, JobResult] = field(default_factory=dict)

    def started(self, job: Job) -> None:
        """Record that ``job`` is handed to a worker, and whether its output was there before:
        see :func:`_adopted`. Written before any worker can write the output."""
        append_record(
            self.manifest,
            {
                "source": str(job.source),
                "output": job.rel,
                "status": STARTED,
                "output_existed": job.output.exists(),
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    def finish(self, i: int, result: JobResult, write: bool = True) -> None:
        """Record what became of job ``i``; for a file this batch ran or adopted, also remove the
        temporary files that earlier attempts at its output left behind (a worker killed mid-file:
        a lost machine, a stop it ignored). A skipped file had no attempt here: resuming a batch of
        many files does not list the output folder once per file."""
        if result.status != SKIPPED:
            for stale in stale_partials(self.jobs[i].output):
                stale.unlink(missing_ok=True)
        self.results[i] = result
        if write:
            append_record(self.manifest, _record(result))
        if self.on_result is not None:
            self.on_result(result)

    def report(self) -> BatchReport:
        """The files in input order."""
        return BatchReport([self.results[i] for i in sorted(self.results)], self.manifest)


def open_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: ColorizeOptions,
    manifest: str | os.PathLike[str] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> tuple[Ledger, list[tuple[int, Job]]]:
    """Collect the jobs, create ``out_dir``, settle what the manifest says is done (skipped, or
    adopted: see :func:`_adopted`), and return the ledger with the jobs still to run (index, job).
    Raises UsageError for bad inputs before anything is written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError("an output folder", f"a file at {out}", "choose a folder name")
    job_list = collect_jobs(inputs, out, options.codec)
    if options.reference_dir:
        check_folder(options.reference_dir)
    out.mkdir(parents=True, exist_ok=True)
    man = Path(manifest) if manifest is not None else out / MANIFEST_NAME
    records = read_manifest(man)
    ledger = Ledger(job_list, man, on_result)
    todo: list[tuple[int, Job]] = []
    for i, job in enumerate(job_list):
        rec = records.get(str(job.source))
        if _finished(job, rec):
            assert rec is not None
            skipped = JobResult(
                str(job.source), job.rel, SKIPPED, frames=rec.get("frames"), sha256=rec.get("sha256")
            )
            ledger.finish(i, skipped, write=False)
            continue
        adopted = _adopted(job, rec)
        if adopted is not None:
            ledger.finish(i, adopted)
            continue
        todo.append((i, job))
    return ledger, todo


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    options: ColorizeOptions | None = None,
    *,
    jobs: int = 1,
    colorizer: Any = None,
    segment_seconds: float | None = None,
    manifest: str | os.PathLike[str] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    progress: bool = False,
) -> BatchReport:
    """Colorize every file of ``inputs`` into ``out_dir`` (see the module docstring).

    ``jobs`` > 1 runs that many worker processes side by side; each loads the model once (or
    receives ``colorizer``) and gets cores // jobs torch threads unless ``options.threads`` says.
    ``on_result`` is called in this process as each file ends (skips included), in completion
    order. Raises UsageError for bad inputs before any work; a file that fails is recorded and the
    batch goes on. The report lists the files in input order. With ``options.reference_dir`` the
    folder is indexed once here (a progress bar when ``progress``), and each film's choice of
    stills is written beside its output (:func:`references_report_path`).
    """
    from vidcolor.pipeline.cuts import SEGMENT_SECONDS

    opts = options or ColorizeOptions()
    seg_s = SEGMENT_SECONDS if segment_seconds is None else segment_seconds
    if jobs < 1:
        raise UsageError("--jobs of 1 or more", str(jobs), "pass e.g. --jobs 2")
    ledger, todo = open_batch(inputs, out_dir, opts, manifest, on_result)

    def index_once(model: Any) -> None:
        # Once, before the films: workers side by side would each describe the new stills.
        if opts.reference_dir and todo:
            from vidcolor.stages.model_step import ModelStep

            step = ModelStep.create(opts, model)
            index_folder(opts.reference_dir, step, opts.render_size or step.render_size, progress=progress)

    if jobs == 1 or len(todo) <= 1:
        if colorizer is None and todo:
            import vidcolor.models as models

            if opts.threads:
                import torch

                torch.set_num_threads(opts.threads)
            colorizer = models.load(opts.model, device=opts.device, half=opts.half, weights=opts.weights)
        index_once(colorizer)
        for i, job in todo:
            ledger.started(job)
            ledger.finish(i, run_job(job, opts, colorizer, seg_s))
    else:
        index_once(colorizer)
        _run_pool(todo, opts, jobs, colorizer, seg_s, ledger.started, ledger.finish)
    return ledger.report()


def _run_pool(
    todo: list[tuple[int, Job]],
    opts: ColorizeOptions,
    jobs: int,
    colorizer: Any,
    seg_s: float,
    started: Callable[[Job], None],
    finish: Callable[[int, JobResult], None],
) -> None:
    workers = min(jobs, len(todo))
    if not opts.threads:
        opts = replace(opts, threads=max(1, (os.cpu_count() or 1) // workers))
    # spawn, not fork: a forked child of a process that has used torch's thread pools can hang.
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(opts, colorizer, seg_s)
    )
    pending: dict[cf.Future[JobResult], int] = {}
    queue = iter(todo)
    by_index = dict(todo)

    def submit_next() -> bool:
        for i, job in queue:
            started(job)
            pending[pool.submit(_worker_job, job)] = i
            return True
        return False

    try:
        for _ in range(workers):  # keep exactly one file per worker in flight, so "started" is true
            submit_next()
        while pending:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                try:
                    result = fut.result()
                except cf.process.BrokenProcessPool as exc:
                    job = by_index[i]
                    result = JobResult(
                        str(job.source),
                        job.rel,
                        FAILED,
                        exit_code=1,
                        error=f"the worker process died ({exc}); run again to retry",
                    )
                finish(i, result)
                submit_next()
    except BaseException:
        # The pool forgets its processes and its manager thread on shutdown: take them first.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        _terminate(procs)
        # Let the manager thread finish closing its wake-up pipe: left running, it can close it just
        # as the interpreter's exit hook writes to it, which prints a traceback after the one-line
        # message of a Ctrl-C.
        if manager is not None:
            manager.join(timeout=30)
        raise
    pool.shutdown(wait=True)


#: Seconds a worker has, after SIGTERM, to clean up its file in hand before it is killed.
STOP_GRACE_S = 30.0


def _terminate(procs: Iterable[Any]) -> None:
    """End worker processes after Ctrl-C: SIGTERM, which a worker turns into KeyboardInterrupt,
    so the file in hand is cleaned up (temporary output removed, finished segments kept). One
    still alive after STOP_GRACE_S is killed: the pool's manager thread, and with it the
    interpreter's exit, waits for every worker, and a stop must never hang. (What a killed worker
    was writing stays under its hidden temporary name, never at the destination.)"""
    procs = list(procs)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
