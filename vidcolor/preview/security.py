"""What keeps the preview server local and confined: its token, path confinement and size bounds.

- Every request carries the server's random token, as Jupyter does: in the ``token`` query
  parameter (the printed address), the ``X-Vidcolor-Token`` header (the page's own requests) or a
  cookie that the page's first load sets (so that ``<img>``, ``<video>`` and ``<script>`` need no
  token in their URLs). The cookie is HttpOnly and SameSite=Strict, so another site cannot make
  the browser send it, and its name depends on the token, so two servers on one host (cookies
  ignore ports) do not overwrite each other's.
- Only files under the folder the server was started in can be read or written:
  :func:`confine` takes a path relative to that folder and refuses absolute paths, ``..`` and
  anything whose real path (symlinks followed) lies outside it.
- Request bodies are bounded: :func:`read_body` stops reading at a limit and raises
  :class:`TooLarge`, whatever Content-Length says.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

TOKEN_HEADER = "X-Vidcolor-Token"
TOKEN_QUERY = "token"
TOKEN_BYTES = 24  # 192 bits, as url-safe base64 (32 characters)


class Forbidden(Exception):
    """A request that names a path outside the root, or carries no valid token (HTTP 403)."""


class TooLarge(Exception):
    """A request body over its bound (HTTP 413)."""


def new_token() -> str:
    """A fresh random token for the printed address (32 url-safe characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def cookie_name(token: str) -> str:
    """The cookie that carries ``token``: named after a hash of it, so servers on other ports of
    the same host keep their own cookie (browsers scope cookies by host, not port)."""
    return "vidcolor_preview_" + hashlib.sha256(token.encode()).hexdigest()[:12]


def token_ok(expected: str, offered: str | None) -> bool:
    """Whether ``offered`` is the token, compared in constant time."""
    return offered is not None and secrets.compare_digest(expected.encode(), offered.encode())


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def confine(root: Path, relative: str) -> Path:
    """The real path of ``relative`` inside ``root`` (which must be resolved already).

    ``relative`` is a '/'-separated path relative to ``root`` as the page sends it ("" or "." is
    the root itself). Raises :class:`Forbidden` for an absolute path, a drive, a ``..`` part, a
    NUL byte, or a path whose real location (every symlink followed) is outside ``root``. The
    path need not exist; its existing part is resolved.
    """
    if "\x00" in relative or "\\" in relative:
        raise Forbidden(f"a path inside the preview folder, not {relative!r}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("~") or (pure.parts and ":" in pure.parts[0]):
        raise Forbidden(f"a path relative to the preview folder, not the absolute path {relative!r}")
    if ".." in pure.parts:
        raise Forbidden(f"a path inside the preview folder, not one that climbs out of it ({relative!r})")
    real = (root / pure).resolve(strict=False)
    if real != root and not real.is_relative_to(root):
        raise Forbidden(f"a file inside the preview folder; {relative!r} leads outside it (a symlink)")
    return real


def relative_name(root: Path, path: Path) -> str:
    """``path`` (inside ``root``) as the '/'-separated relative name the page uses."""
    rel = path.relative_to(root)
    return "" if rel == Path(".") else rel.as_posix()


async def read_body(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """All of a request body, or :class:`TooLarge` as soon as it passes ``limit`` bytes."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"a request body of at most {limit} bytes")
    return bytes(data)
