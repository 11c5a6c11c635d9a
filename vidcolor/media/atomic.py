"""Atomic output: a film is written under a hidden temporary name beside its destination and
renamed onto it only when complete, so the destination never holds a partial file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from vidcolor.durable import replacing, temporaries_of
from vidcolor.errors import EncodingError, UsageError


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file (hard links and symlinks included)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def check_destination(dst: Path, overwrite: bool) -> None:
    """Raise UsageError / EncodingError if ``dst`` cannot or must not be written (see atomic_output)."""
    folder = dst.parent
    if dst.is_dir():
        raise UsageError("an output file name", f"a folder at {dst}", "give a file name with an extension")
    if dst.exists() and not overwrite:
        raise UsageError(
            "an output path that does not exist yet",
            f"{dst} already exists",
            "pass --overwrite to replace it, or choose another name",
        )
    if not folder.is_dir():
        if folder.exists():  # e.g. out.mp4/x.mp4: "create it first" would be wrong advice
            raise EncodingError("an output folder", f"{folder} is a file", "choose a path inside a folder")
        raise EncodingError("an existing output folder", f"no folder {folder}", "create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EncodingError(
            "a writable output folder",
            f"{folder} is not writable",
            "choose another folder or fix its permissions",
        )


def stale_partials(dst: str | os.PathLike[str]) -> list[Path]:
    """Temporary files that :func:`atomic_output` left beside ``dst`` in a process that was
    killed (SIGKILL, a lost machine) before it could remove them. Only for a caller that knows
    no run for ``dst`` is still under way."""
    return temporaries_of(dst, keep_suffix=True)


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike[str], overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``dst`` (hidden, unique, same extension); rename it onto
    ``dst`` when the block ends normally; remove it on any exception, KeyboardInterrupt included
    (durable.replacing).

    Raises UsageError if ``dst`` exists and not ``overwrite`` (the message says to pass
    --overwrite), EncodingError if its folder is missing or unwritable or the block wrote nothing.
    Whether ``dst`` is the input itself is the caller's check (``same_file``).
    """
    dst = Path(dst)
    check_destination(dst, overwrite)
    with replacing(dst, keep_suffix=True) as tmp:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise EncodingError(
                "a written output",
                f"nothing was written for {dst.name}",
                "see the errors above; this is a bug if there are none",
            )
