"""Files a crash must not corrupt: files replaced whole, JSON-line records appended whole, and
content hashes.

Every file vidcolor writes for a user or reads back goes to a hidden temporary name beside its
destination and is renamed onto it only when complete (:func:`temporary_beside`,
:func:`replacing`): small files (reports, plans, hint files, weight records, contact sheets,
checkpoints, caches) through :func:`write_atomic` or :func:`replacing`, films and stills through
media/atomic.py's ``atomic_output``, which adds the checks of a user's destination. The batch
manifest and the segment journal of a long film are read back after a kill to decide what is done
and rest on :func:`append_record` and :func:`sha256_file`. These guarantees are kept here once.
(Logs are appended as they come: a training run's log.jsonl, a local Ray node's output.)
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HASH_CHUNK = 1 << 20  # bytes read at a time while hashing


def sha256_file(path: os.PathLike[str] | str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (about 0.5 s per 100 MB on one core)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line: one write() on an O_APPEND descriptor, then fsync.

    A kill can only leave the last line torn (readers skip it); if it did, the next record starts
    on a fresh line so that it stays whole.
    """
    data = json.dumps(record, sort_keys=True).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: os.PathLike[str] | str) -> None:
    """Flush a written file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: os.PathLike[str] | str) -> None:
    """Make a rename in ``folder`` durable (a power cut after it keeps the new name); where a
    folder cannot be opened for that (some file systems), the rename stands as it is."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: Suffix of the temporary name of a file whose own extension must stay last (an encoder or an image
#: writer picks its format by it): ``.NAME.RANDOM.partial.EXT``; other temporaries end ``.tmp``.
PARTIAL = ".partial"
_TOKEN_HEX = 4  # random bytes in a temporary name: 8 hex characters


def _temporary_name(path: Path, token: str, keep_suffix: bool) -> Path:
    if keep_suffix:
        return path.with_name(f".{path.stem}.{token}{PARTIAL}{path.suffix}")
    return path.with_name(f".{path.name}.{token}.tmp")


def temporaries_of(path: os.PathLike[str] | str, *, keep_suffix: bool = False) -> list[Path]:
    """The temporary files :func:`temporary_beside` made for ``path`` and a killed process (SIGKILL,
    a lost machine) left behind. Only for a caller that knows nothing is writing ``path`` now."""
    path = Path(path)
    # Same name with the random part as wildcards of its fixed length: ``a.mp4`` must not claim
    # ``a.b.mp4``'s files.
    escaped = path.with_name(glob.escape(path.name))
    pattern = _temporary_name(escaped, "?" * (2 * _TOKEN_HEX), keep_suffix).name
    return sorted(path.parent.glob(pattern))


@contextlib.contextmanager
def temporary_beside(path: os.PathLike[str] | str, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a new, empty file (mode 0600) with a hidden, unique name in ``path``'s folder; it is
    removed if it is still there when the block ends, by an error, Ctrl-C or because the block did
    not move it. ``keep_suffix``: the name ends with ``path``'s extension (see PARTIAL).

    The name is drawn before the file is made (O_EXCL), so a signal landing in between cannot
    leave behind a file whose name is unknown; a name another process holds is never touched.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        while tmp is None:
            tmp = _temporary_name(path, secrets.token_hex(_TOKEN_HEX), keep_suffix)
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                tmp = None
        yield tmp
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _new_file_mode() -> int:
    """The permissions the umask gives a new ordinary file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def replacing(
    path: os.PathLike[str] | str,
    *,
    durable: bool = False,
    mode: int | None = None,
    keep_suffix: bool = False,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (:func:`temporary_beside`) to write; when the block
    ends normally it is renamed over ``path`` with ``mode`` (default: a new file's usual
    permissions), else removed: ``path`` holds the old file or the new one, never half of one.
    ``durable``: fsync the file before and the folder after the rename, for the files a resumed
    run trusts. The parent folder must exist."""
    path = Path(path)
    with temporary_beside(path, keep_suffix=keep_suffix) as tmp:
        yield tmp
        if durable:
            fsync_file(tmp)
        put_in_place(tmp, path, mode)
    if durable:
        fsync_dir(path.parent)


def put_in_place(tmp: Path, path: Path, mode: int | None = None) -> None:
    """Rename the finished temporary file ``tmp`` over ``path``, with ``mode`` (default: a new
    file's usual permissions, not the temporary's 0600). For a caller of :func:`temporary_beside`
    that settles the destination's name only at the end; :func:`replacing` does it for the rest."""
    os.chmod(tmp, _new_file_mode() if mode is None else mode)
    os.replace(tmp, path)


def write_atomic(
    path: os.PathLike[str] | str, data: bytes | str, *, durable: bool = False, mode: int | None = None
) -> None:
    """Replace ``path`` with ``data`` (str: written as UTF-8) whole (:func:`replacing`), so a
    reader never sees half a file and a failure (or Ctrl-C) leaves no temporary behind.
    ``durable``: also fsync the file and the folder, for the files a resumed run trusts.
    ``mode``: the file's permissions (default: a new file's usual ones). The parent folder is made
    if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path, durable=durable, mode=mode) as tmp:
        tmp.write_bytes(raw)
