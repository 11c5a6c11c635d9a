"""Fetch upstream weights once into the cache, checked by sha256, never leaving a partial file.

The cache is ``$VIDCOLOR_CACHE`` when set, else ``$XDG_CACHE_HOME/vidcolor``, else
``~/.cache/vidcolor``. A download goes to a temporary name in the cache folder, is hashed while
it is written, and is renamed to its final name only when the hash matches: an interrupted or
corrupt download never looks like a cached file.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from vidcolor.durable import replacing
from vidcolor.errors import WeightsError

_CHUNK = 1 << 20  # bytes per read
TIMEOUT_S = 60.0  # per socket operation, not for the whole download

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def cache_dir() -> Path:
    """Where downloaded weights live (not created here)."""
    env = os.environ.get("VIDCOLOR_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "vidcolor"


def download(
    url: str,
    dest: os.PathLike[str] | str,
    *,
    sha256: str | None,
    timeout: float = TIMEOUT_S,
    progress: Progress | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    ``sha256`` is the expected hash, full (64 hex digits) or a prefix (the 8 digits in a PyTorch
    hub file name); the file is only renamed into place when its hash starts with it. Any failure
    (no network, HTTP error, short read, wrong hash) is a WeightsError that says how to fetch the
    file by hand; nothing is left at ``dest`` or beside it.
    """
    dest = Path(dest)
    by_hand = f"download {url} by hand and pass it with --weights FILE"
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Also on Ctrl-C: the cache must never hold a partial file (replacing removes it).
    with replacing(dest, durable=True) as tmp:
        h = hashlib.sha256()
        done = 0
        try:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                length = resp.headers.get("Content-Length") if resp.headers else None
                total = int(length) if length and length.isdigit() else None
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # URLError covers no network and HTTP errors; OSError a reset or timeout mid-way.
            reason = getattr(e, "reason", None) or e
            raise WeightsError(f"{url} to be reachable", f"{type(e).__name__}: {reason}", by_hand) from e
        if total is not None and done != total:
            raise WeightsError(f"{total} bytes from {url}", f"{done} bytes (the transfer stopped)", by_hand)
        digest = h.hexdigest()
        if sha256 and not digest.startswith(sha256.lower()):
            what = "sha256" if len(sha256) == 64 else "sha256 starting"
            raise WeightsError(
                f"{url} with {what} {sha256}", f"sha256 {digest[:16]}... ({done} bytes)", by_hand
            )
    return dest
