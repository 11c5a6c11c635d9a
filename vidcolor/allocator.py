"""The C allocator's settings for a vidcolor process: big buffers on huge pages, kept for reuse.

Every batch allocates and frees tens of megabytes (the model's feature maps, the softmax over
the ab bins, frames at film size). glibc's malloc hands a block above its mmap threshold back
to the kernel when it is freed, so the next batch faults every 4 KiB page of it in again; on a
virtual machine a page fault is dear, and the model spends more time in the kernel than in its
arithmetic. Three glibc tunables fix that: malloc's big blocks are backed by transparent huge
pages (``hugetlb=1``, one fault per 2 MiB), blocks up to 32 MiB come from the heap, and the heap
keeps up to 256 MiB of freed memory for reuse instead of trimming it at once.

Measured on a 2-core AMD EPYC VM (glibc 2.36, torch 2.13 CPU, 2 threads), system settings
against these: the shipped model on a batch of 8 at render 224, 712-735 ms against 300-426 ms;
``vidcolor bench --sizes 360p --render-sizes "" --codecs libx264 --no-variants --no-stages
--repeats 5`` end to end 9.45 against 12.7 frames/s; the peak RSS of its memory runs (480p, 96
and 960 frames, each in a fresh process) 1020 / 1098 against 945 / 956 MiB: big blocks reused
rather than returned and fetched again also fragment less.

glibc reads its tunables when the process starts, so the command line starts itself again, once,
with them set (:func:`tune`); a library user who wants the same sets ``GLIBC_TUNABLES`` to
:func:`tunables` before starting Python. A ``glibc.malloc`` setting the user made already is
left alone (``GLIBC_TUNABLES=glibc.malloc.hugetlb=0`` keeps the system's behaviour), as are
other C libraries, where these names mean nothing.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

TUNABLES = (
    "glibc.malloc.hugetlb=1",  # malloc's own blocks on transparent huge pages (glibc >= 2.35)
    "glibc.malloc.mmap_threshold=33554432",  # blocks up to 32 MiB (glibc's ceiling) from the heap
    "glibc.malloc.trim_threshold=268435456",  # freed heap memory kept up to 256 MiB before it is returned
)


def tunables(current: str | None) -> str | None:
    """The ``GLIBC_TUNABLES`` value to run with, given the current one; None when it should stay
    as it is (the user set a ``glibc.malloc`` tunable of their own, or ours are there already)."""
    parts = [p for p in (current or "").split(":") if p]
    if any(p.startswith("glibc.malloc.") for p in parts):
        return None
    return ":".join([*parts, *TUNABLES])


def tuned_environment(environ: Mapping[str, str], libc: str) -> dict[str, str] | None:
    """The environment to start again with, or None when there is nothing to change: not glibc
    (``libc`` as :func:`platform.libc_ver` names it), or the malloc tunables already set."""
    if libc != "glibc":
        return None
    value = tunables(environ.get("GLIBC_TUNABLES"))
    if value is None:
        return None
    return {**environ, "GLIBC_TUNABLES": value}


def tune() -> None:
    """Start this process again with the allocator tuned, once; returns only when it is tuned
    already, cannot be, or the new start failed (the run then goes on with the system's malloc)."""
    if sys.platform != "linux" or not getattr(sys, "orig_argv", None):
        return
    env = tuned_environment(os.environ, platform.libc_ver()[0])
    if env is None:
        return
    argv = [sys.executable, *sys.orig_argv[1:]]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    except OSError:
        return
