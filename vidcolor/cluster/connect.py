"""Reaching Ray: the optional import and the connection to a cluster, each with a one-line error."""

from __future__ import annotations

import logging
import re
from types import ModuleType

from vidcolor.errors import UsageError

INSTALL = "pip install 'vidcolor[ray]'"
#: ``--ray`` with no address: a Ray started in this process, on this machine only.
LOCAL = "local"
#: Object store of that local Ray, bytes. Tasks pass paths and small results, never frames, so a
#: small store is plenty and leaves the memory to the model and the codecs.
LOCAL_OBJECT_STORE = 256 * 2**20
_HOST_PORT = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def import_ray() -> ModuleType:
    """The ``ray`` module, or UsageError naming the install command."""
    try:
        import ray
    except ImportError:
        raise UsageError("Ray for --ray", "it is not installed", f"install it with {INSTALL}") from None
    return ray


def check_address(address: str | None) -> str:
    """``--ray``'s value: '' or 'local' (a Ray on this machine), 'auto' (the cluster this machine
    belongs to), 'ray://HOST:PORT' (Ray Client) or 'HOST:PORT' (a head's GCS). UsageError else:
    a bare ``--ray`` before the inputs takes the first input as its address."""
    text = (address or "").strip()
    if text in ("", LOCAL):
        return LOCAL
    if text == "auto" or _HOST_PORT.match(text):
        return text
    raise UsageError(
        "--ray ADDRESS as auto, ray://HOST:PORT or HOST:PORT (or --ray alone for a local Ray)",
        repr(text),
        "put a bare --ray after the inputs, or write --ray=auto",
    )


def connect(address: str | None) -> tuple[ModuleType, bool]:
    """Ray, connected to the cluster at ``address`` (see :func:`check_address`); the second value
    says whether this call connected it (and so should disconnect it). A process already
    connected is left as it is. UsageError when nothing answers at the address."""
    ray = import_ray()
    addr = check_address(address)
    if ray.is_initialized():
        return ray, False
    # Workers' output would be printed over the progress bar; tasks return their errors instead.
    common = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if addr == LOCAL:
            ray.init(object_store_memory=LOCAL_OBJECT_STORE, include_dashboard=False, **common)
        else:
            ray.init(address=addr, **common)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"a Ray cluster at {addr}",
            f"none that answers ({first})",
            "start one with `ray start --head` (see docs/cluster.md) or check the address",
        ) from None
    return ray, True
