"""Files a crash must not corrupt: small files replaced whole, JSON-line records appended whole,
and content hashes.

Every small file vidcolor writes (reports, plans, hint files, weight records, contact sheets) goes
through :func:`write_atomic`; the batch manifest and the segment journal of a long film are read
back after a kill to decide what is done and rest on :func:`append_record` and :func:`sha256_file`.
These guarantees are kept here once. (A film output, written by an encoder over minutes, has its
own temporary-name protocol in media/atomic.py.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
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


def write_atomic(path: os.PathLike[str] | str, data: bytes | str, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` (str: written as UTF-8) whole: it goes to a temporary name
    beside ``path`` and is renamed over it, so a reader never sees half a file and a failure (or
    Ctrl-C) leaves no temporary behind. ``durable``: also fsync the file and the folder, for the
    files a resumed run trusts. The parent folder is made if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # open(..., "xb") rather than mkstemp: the file then gets the usual umask permissions, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(raw)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
