"""What runs on the cluster's workers: a whole film (or still), one segment of a long film, and
the join of a film's segments.

Plain functions of picklable values; the driver makes them Ray tasks. Each returns its own
failure (as local batch records it) rather than raising it, so the only failures Ray sees, and
retries on another node, are its own: a worker or a node lost. A task run again must give the
same result: each writes one file atomically (media/atomic.py) at a path fixed by the job.
A worker process loads the model once and keeps it for the tasks that follow.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcolor.batch import Job, JobResult, error_of, failure, run_job, succeeded
from vidcolor.cluster.progress import Key, post_final, post_start, poster
from vidcolor.errors import EncodingError, InputError, VidcolorError
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.cuts import Segment
from vidcolor.pipeline.segments import SegmentedRun, SegmentResult, encode_segment

_MODELS: dict[tuple[Any, ...], Any] = {}
_SHARED = "mount the shared storage at the same path on every node (see docs/cluster.md)"


@dataclass(frozen=True)
class Node:
    """Where a task ran: Ray's node id (hex) and the machine's host name."""

    id: str
    host: str

    @classmethod
    def here(cls) -> Node:
        import ray

        # Asked only inside Ray: elsewhere get_runtime_context() would start a Ray of its own.
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        return cls(node or "", socket.gethostname())


@dataclass(frozen=True)
class SegmentDone:
    """A segment task's outcome: the file, or the error that stopped it."""

    number: int
    node: Node
    result: SegmentResult | None = None
    error: str | None = None
    exit_code: int = 0


def model_for(options: ColorizeOptions) -> Any:
    """This worker's model for ``options``, loaded on first use."""
    import vidcolor.models as models

    key = (options.model, options.weights, options.device, options.half)
    if key not in _MODELS:
        _MODELS[key] = models.load(
            options.model, device=options.device, half=options.half, weights=options.weights
        )
    return _MODELS[key]


def unreachable(node: Node, source: Path, folder: Path) -> VidcolorError | None:
    """The error for a job whose input or output folder this node cannot see (storage not
    shared, or mounted elsewhere), or None. Asked first, so it fails at once, not in a codec."""
    if not source.is_file():
        where = f"no file {source} on {node.host}"
        return InputError("the input on storage this node sees at the same path", where, _SHARED)
    if not folder.is_dir():
        return EncodingError(
            "the output folder on storage this node sees at the same path",
            f"no folder {folder} on {node.host}",
            _SHARED,
        )
    return None


def film_task(
    job: Job, out_dir: Path, options: ColorizeOptions, segment_seconds: float, board: Any, key: Key
) -> tuple[JobResult, Node]:
    """Colorize one film or still whole, as local batch does (:func:`vidcolor.batch.run_job`)."""
    node = Node.here()
    post_start(board, key, node.id)
    missing = unreachable(node, job.source, out_dir)
    if missing is not None:
        return failure(job, missing), node
    try:
        model = model_for(options)
    except Exception as exc:  # recorded for the film, as any other failure
        return failure(job, exc), node
    result = run_job(job, options, model, segment_seconds, on_frame=poster(board, key))
    post_final(board, key, result.frames or 0)
    return result, node


def segment_task(
    src: Path, segment: Segment, options: ColorizeOptions, out: Path, board: Any, key: Key
) -> SegmentDone:
    """Colorize and encode one segment of a long film into ``out`` (the run's segment file)."""
    node = Node.here()
    post_start(board, key, node.id)
    try:
        missing = unreachable(node, src, out.parent)
        if missing is not None:
            raise missing
        result = encode_segment(
            src, segment, options, out, colorizer=model_for(options), on_frame=poster(board, key)
        )
    except Exception as exc:  # recorded for the film, as local batch does
        error, code = error_of(exc)
        return SegmentDone(segment.number, node, error=error, exit_code=code)
    post_final(board, key, result.frames)
    return SegmentDone(segment.number, node, result=result)


def join_task(run: SegmentedRun, job: Job, started: float) -> tuple[JobResult, Node]:
    """Join a film's segments into its output (verified, atomic) and remove their folder.
    ``started``: when the film's first segment was handed out (time.time()), for its seconds."""
    node = Node.here()
    try:
        missing = unreachable(node, run.src, run.folder)
        if missing is not None:
            raise missing
        summary = run.join()
    except Exception as exc:  # recorded for the film, as any other failure
        return failure(job, exc), node
    return succeeded(job, summary.frames, time.time() - started, summary.warnings, summary.notes), node


def replaceable(options: ColorizeOptions, existed: bool) -> ColorizeOptions:
    """The options a task runs with: when the output was not there as the job was handed out,
    whatever is there now is an earlier attempt of the same job (a node lost after the rename),
    which the retry may replace; an output that was there stays protected unless --overwrite."""
    return options if existed or options.overwrite else dataclasses.replace(options, overwrite=True)
