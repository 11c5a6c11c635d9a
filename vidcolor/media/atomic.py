"""Atomic output: a film is written under a hidden temporary name beside its destination and
renamed onto it only when complete, so the destination never holds a partial file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

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


def _partial_suffix(dst: Path) -> str:
    return f".partial{dst.suffix}"


def stale_partials(dst: str | os.PathLike[str]) -> list[Path]:
    """Temporary files that :func:`atomic_output` left beside ``dst`` in a process that was
    killed (SIGKILL, a lost machine) before it could remove them. Only for a caller that knows
    no run for ``dst`` is still under way."""
    dst = Path(dst)
    # The random part is 8 characters: ``a.mp4`` must not claim ``a.b.mp4``'s files.
    pattern = f".{glob.escape(dst.stem)}.{'?' * 8}{glob.escape(_partial_suffix(dst))}"
    return sorted(dst.parent.glob(pattern))


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike[str], overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``dst`` (hidden, unique, same extension); rename it onto
    ``dst`` when the block ends normally; remove it on any exception, KeyboardInterrupt included.

    Raises UsageError if ``dst`` exists and not ``overwrite`` (the message says to pass
    --overwrite), EncodingError if its folder is missing or unwritable or the block wrote nothing.
    Whether ``dst`` is the input itself is the caller's check (``same_file``).
    """
    dst = Path(dst)
    check_destination(dst, overwrite)
    tmp: Path | None = None
    try:
        # The name is ours before the file exists: a Ctrl-C or SIGTERM landing between creating
        # the file and knowing its name (as with mkstemp) would leave it behind.
        while True:
            tmp = dst.parent / f".{dst.stem}.{secrets.token_hex(4)}{_partial_suffix(dst)}"
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:
                tmp = None  # another run's file: never ours to remove
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise EncodingError(
                "a written output",
                f"nothing was written for {dst.name}",
                "see the errors above; this is a bug if there are none",
            )
        # The temporary file is 0600; give the result the permissions a normal new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dst)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
