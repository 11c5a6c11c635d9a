"""``vidcolor preview``: a local web page to scrub a film, tune the colorization and render sections.

    create_app(root, *, token, model=None, device="auto", ...) -> starlette.applications.Starlette

The page (``static/``) is plain HTML, CSS and JavaScript shipped in the package: nothing is built
or fetched at install or run time. The server (:mod:`.server`) calls the library's own stages:
probe and decode for frames, the in-memory pipeline for a frame's colour, and the film pipeline
for renders (:mod:`.jobs`); :mod:`.security` keeps it local, token-guarded and inside its folder.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazily: the CLI imports this package for its command, and should not pay for the web stack.
    if name == "create_app":
        from vidcolor.preview.server import create_app

        return create_app
    raise AttributeError(name)
