"""The preview's web application (Starlette): the page, its static files and a small JSON API.

    GET  /                         the page (a valid ?token= sets the cookie the page then uses)
    GET  /static/...               app.js, style.css
    GET  /api/info                 version, models, codecs and their presets, defaults, limits, hint support
    GET  /api/files?dir=REL        the folder's sub-folders and files
    POST /api/open {path}          probe a film or still; starts its scene-cut scan
    GET  /api/cuts?path=REL        scene cuts found so far
    POST /api/frame {path, t, view: grey|colour, settings, hints, format: jpeg|png, quick} -> picture
    POST /api/command {path, settings, hints}        the CLI line for these settings
    POST /api/hints {path, hints}                     save NAME.hints.json beside the film
    POST /api/render {path, settings, hints}          start a render job
    GET  /api/jobs, /api/jobs/ID, POST /api/jobs/ID/cancel, GET /api/jobs/ID/file[?download=1]
    POST /api/upload?name=NAME&dir=REL (raw body)     put a file into the folder

Every request needs the token (see :mod:`vidcolor.preview.security`); paths are relative to the
folder the server was started in and cannot leave it; bodies are bounded. Errors come back as
``{"error": one line}`` with a 4xx status and the server carries on.

(Over 400 lines: the routes of one small web app; the logic behind them lives in the other
preview modules.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import vidcolor.models as models
from vidcolor.durable import put_in_place, temporary_beside
from vidcolor.errors import UsageError, VidcolorError
from vidcolor.formats import CODEC_ALIASES, CODEC_SUFFIX, CODECS, DEFAULT_PRESET, presets_for
from vidcolor.options import DEFAULT_CODEC, DEFAULT_MODEL, DEFAULT_SMOOTHING, ColorizeOptions
from vidcolor.preview import colour, hints, page_options, references
from vidcolor.preview.jobs import Job, Jobs, Render
from vidcolor.preview.page_options import ModelChoice
from vidcolor.preview.security import (
    TOKEN_HEADER,
    TOKEN_QUERY,
    Forbidden,
    TooLarge,
    confine,
    cookie_name,
    read_body,
    relative_name,
    token_ok,
)
from vidcolor.preview.sources import EmptyFilm, Source, Sources, expected_frames
from vidcolor.version import __version__

STATIC = Path(__file__).with_name("static")
MAX_REQUEST_BYTES = 1 << 20  # JSON bodies: settings and hints are a few kB
MAX_UPLOAD_BYTES = 2 << 30  # one uploaded film
SECURITY_HEADERS = [
    # The page is self-contained: no script, style or picture from anywhere else, no framing.
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        b"style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the token in the address must not leak to a link's target
    (b"cache-control", b"no-store"),
]


@dataclass
class Config:
    """What ``vidcolor preview`` was started with."""

    root: Path  # the folder whose files may be opened (resolved)
    token: str
    model: str | None = None  # --model as typed: a registry name or a checkpoint path
    device: str = "auto"
    render_size: int | None = None
    threads: int = 0
    initial: str | None = None  # a file to open first, relative to root
    max_request: int = MAX_REQUEST_BYTES
    max_upload: int = MAX_UPLOAD_BYTES
    model_choices: dict[str, ModelChoice] = field(default_factory=dict)


def model_choices(root: Path, model: str | None) -> dict[str, ModelChoice]:
    """The models the page may pick: the one given with --model first, then the registry's."""
    out: dict[str, ModelChoice] = {}
    if model is not None and model not in models.REGISTRY:
        path = Path(model)
        ref = str(path if path.is_absolute() else (root / path))
        out[path.name] = ModelChoice(path.name, ref, model, path.name, Path(ref).is_file())
    for info in models.available():
        present = bool(info.weights_present)
        label = info.name + ("" if present else " (weights not here)")
        out[info.name] = ModelChoice(info.name, info.name, info.name, label, present, info.render_size)
    if model is not None and model in models.REGISTRY:  # the chosen one first: the page selects it
        out = {model: out[model], **{k: v for k, v in out.items() if k != model}}
    return out


class Guard:
    """ASGI middleware: the token on every request, bounded bodies, security headers on every answer."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.config = config
        self.cookie = cookie_name(config.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        from_query = (query.get(TOKEN_QUERY) or [None])[0]
        offered = [
            from_query,
            headers.get(TOKEN_HEADER.lower()),
            _cookie(headers.get("cookie", ""), self.cookie),
        ]
        if not any(token_ok(self.config.token, t) for t in offered):
            await _plain(
                send,
                403,
                "This vidcolor preview needs its token: open the address that "
                "`vidcolor preview` printed (it ends in ?token=...).",
                scope["path"],
            )
            return
        limit = self.config.max_upload if scope["path"] == "/api/upload" else self.config.max_request
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _plain(send, 413, f"The request is too large: at most {limit} bytes.", scope["path"])
            return
        set_cookie = token_ok(self.config.token, from_query)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
                if set_cookie:
                    cookie = f"{self.cookie}={self.config.token}; HttpOnly; SameSite=Strict; Path=/"
                    message["headers"].append((b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _plain(send: Send, status: int, text: str, path: str) -> None:
    """A JSON error for the API, a short text page elsewhere."""
    if path.startswith("/api/"):
        body, kind = json.dumps({"error": text}).encode(), b"application/json"
    else:
        body, kind = text.encode(), b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


Endpoint = Callable[[Request], Awaitable[Response]]


def api(fn: Endpoint) -> Endpoint:
    """Turn the errors an endpoint can meet into JSON answers; the server itself never stops."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except Forbidden as exc:
            return _error(403, f"not allowed: {exc}")
        except TooLarge as exc:
            return _error(413, f"too large: expected {exc}")
        except (UsageError, ValueError) as exc:
            return _error(400, str(exc))
        except EmptyFilm as exc:
            return _error(422, f"{exc}: expected a film with frames, found none; open another file")
        except VidcolorError as exc:
            return _error(422, str(exc))
        except FileNotFoundError as exc:
            return _error(404, f"no such file: {Path(exc.filename or '').name or exc}")
        except Exception as exc:  # a bug shows as a message in the page, not a dead server
            return _error(500, f"internal error ({type(exc).__name__}: {exc}); the server is still running")

    return wrapped


class Preview:
    """The application's state: sources, models and jobs, and the endpoints that use them."""

    def __init__(self, config: Config, render: Render | None = None) -> None:
        self.config = config
        self.root = config.root
        if not config.model_choices:
            config.model_choices = model_choices(config.root, config.model)
        self.choices = config.model_choices
        self.sources = Sources()
        self.models = colour.Models()
        self.jobs = Jobs(render or self._render)

    # --------------------------------------------------------------------------------- helpers

    async def _json(self, request: Request) -> dict[str, Any]:
        body = await read_body(request.stream(), self.config.max_request)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise UsageError("a JSON request body", "text that is not JSON", "send JSON") from None
        if not isinstance(data, dict):
            raise UsageError("a JSON object", type(data).__name__, "send {...}")
        return data

    def _file(self, rel: Any) -> Path:
        if not isinstance(rel, str) or not rel:
            raise UsageError("a file path relative to the preview folder", repr(rel), "pick a file")
        path = confine(self.root, rel)
        if not path.is_file():
            if path.exists():
                raise UsageError("a file", f"{rel} is a folder", "pick a file in it")
            raise FileNotFoundError(2, "no such file", rel)
        return path

    def _source(self, rel: Any) -> Source:
        path = self._file(rel)
        return self.sources.get(path, relative_name(self.root, path))

    def _options(self, settings: Any) -> ColorizeOptions:
        opts = page_options.parse_settings(
            settings if settings is not None else {},
            self.choices,
            self.config.device,
            threads=self.config.threads,
        )
        return references.with_references(opts, settings, self.root)

    def _model_arg(self, opts: ColorizeOptions) -> str:
        for c in self.choices.values():
            if c.ref == opts.model:
                return c.arg
        return opts.model

    def _output_for(self, src: Source, opts: ColorizeOptions) -> Path:
        """A new file beside the source: NAME_colour.EXT, NAME_colour-2.EXT, ... (never overwrites)."""
        suffix = src.path.suffix if src.is_still else CODEC_SUFFIX.get(opts.codec, src.path.suffix)
        for n in range(1, 1000):
            dst = src.path.with_name(f"{src.path.stem}_colour{'' if n == 1 else f'-{n}'}{suffix}")
            if not dst.exists() and not self.jobs.busy_with(dst):
                return dst
        raise UsageError("a free output name", f"{src.path.stem}_colour-999{suffix} taken", "tidy the folder")

    def _command(self, src: Source, dst: str | None, opts: ColorizeOptions, hints_file: str | None) -> str:
        from vidcolor.pipeline.cuts import SEGMENT_SECONDS, should_segment

        # The page renders in one piece; say so where the CLI would cut the film into segments.
        seg = 0.0 if should_segment(src.info, opts, SEGMENT_SECONDS) else None
        return page_options.command_line(
            src.name,
            dst,
            opts,
            model_arg=self._model_arg(opts),
            hints=hints_file,
            segment_seconds=seg,
            root=self.root,
        )

    def _render(self, src: Path, dst: Path, opts: ColorizeOptions, on_frame: Callable[[int], None]) -> str:
        """The job body: the CLI's pipeline, with the preview's loaded model."""
        from vidcolor.media.probe import probe
        from vidcolor.pipeline.image import colorize_image
        from vidcolor.pipeline.run import colorize_video

        step = self.models.step(opts)
        if probe(src).is_still:
            colorize_image(src, dst, opts, colorizer=step.model)
            return f"{dst.name}: still colorized"
        summary = colorize_video(src, dst, opts, colorizer=step.model, on_frame=on_frame)
        return "; ".join([summary.line(), *(f"warning: {w}" for w in summary.warnings)])

    # ------------------------------------------------------------------------------- endpoints

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "version": __version__,
                "folder": self.root.name or str(self.root),
                "initial": self.config.initial,
                "device": self.config.device,
                "models": [asdict(c) | {"ref": None} for c in self.choices.values()],
                "default_model": next(iter(self.choices), DEFAULT_MODEL),
                "codecs": list(CODECS),
                # each codec's speed presets, fastest first, and the one it runs at by default
                "presets": {
                    c: {"names": list(presets_for(c)), "default": DEFAULT_PRESET.get(CODEC_ALIASES.get(c, c))}
                    for c in CODECS
                },
                "defaults": {
                    "render_size": self.config.render_size,
                    "smoothing": DEFAULT_SMOOTHING,
                    "codec": DEFAULT_CODEC,
                    "crf": None,
                    "preset": None,
                },
                "hints": {"note": hints.HINTS_NOTE},
                "limits": {"request_bytes": self.config.max_request, "upload_bytes": self.config.max_upload},
            }
        )

    async def files(self, request: Request) -> Response:
        rel = request.query_params.get("dir", "")
        folder = confine(self.root, rel) if rel else self.root
        if not folder.is_dir():
            raise UsageError("a folder", f"{rel!r}, which is not one", "pick a folder from the list")

        def listing() -> list[dict[str, Any]]:
            out = []
            for entry in sorted(os.scandir(folder), key=lambda e: (not e.is_dir(), e.name.lower())):
                if entry.name.startswith("."):
                    continue
                real = Path(entry.path).resolve()
                if real != self.root and not real.is_relative_to(self.root):
                    continue  # a symlink out of the folder: it could not be opened anyway
                is_dir = real.is_dir()
                out.append(
                    {
                        "name": entry.name,
                        "path": relative_name(self.root, folder / entry.name),
                        "dir": is_dir,
                        "size": None if is_dir else real.stat().st_size,
                    }
                )
            return out

        parent = None if folder == self.root else relative_name(self.root, folder.parent)
        return JSONResponse(
            {
                "dir": relative_name(self.root, folder),
                "parent": parent,
                "entries": await run_in_threadpool(listing),
            }
        )

    async def open(self, request: Request) -> Response:
        data = await self._json(request)
        src = await run_in_threadpool(self._source, data.get("path"))
        return JSONResponse(src.describe())

    async def cuts(self, request: Request) -> Response:
        src = await run_in_threadpool(self._source, request.query_params.get("path"))
        s = src.scan
        return JSONResponse(
            {"cuts": list(s.cuts), "done": s.done, "seconds_done": s.seconds_done, "error": s.error}
        )

    async def frame(self, request: Request) -> Response:
        data = await self._json(request)
        view = data.get("view", "colour")
        fmt = data.get("format", "jpeg")
        t = data.get("t", 0.0)
        if view not in ("grey", "colour") or fmt not in ("jpeg", "png"):
            raise UsageError("view grey|colour and format jpeg|png", f"{view!r}, {fmt!r}", "fix the request")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < 1e7:
            raise UsageError("a time t in seconds", repr(t), "send t >= 0")
        quick = data.get("quick", False) is True  # the frame alone: smoothing needs its neighbours
        opts = self._options(data.get("settings"))
        placed = hints.check_hints(data.get("hints"))
        src = await run_in_threadpool(self._source, data.get("path"))

        def work() -> tuple[bytes, dict[str, str]]:
            t0 = time.perf_counter()
            meta: dict[str, str] = {}
            if view == "grey":
                win = src.window(float(t), 0)
                picture = win.frames[win.target]
            else:
                step = self.models.step(opts)
                context = colour.context_frames(opts)
                frame_opts = references.for_frame(opts, float(t))
                chosen: dict[str, Any] | None = {} if frame_opts.reference_dir else None
                with self.models.run_lock:
                    win = src.window(float(t), 0 if quick else context)
                    if placed:
                        rate = float(src.rate)
                        picture = colour.colour_frame(
                            win, step, hints.for_window(frame_opts, placed, win.times, rate), rate, chosen
                        )
                    else:
                        picture = colour.colour_frame(win, step, frame_opts, None, chosen)
                if chosen is not None:
                    meta["x-vidcolor-references"] = references.shot_header(
                        chosen, win.target, frame_opts.reference
                    )
                exact = not quick or context == 0 or src.is_still  # what a render gives for this frame
                meta["x-vidcolor-exact"] = "1" if exact else "0"
                meta["x-vidcolor-render-size"] = str(opts.render_size or step.render_size)
                meta["x-vidcolor-model"] = step.name
            shown = colour.to_display(picture, win.bit_depth, src.info.video.rotation)
            body = colour.encode_picture(shown, fmt)
            meta |= {
                "x-vidcolor-time": f"{win.time:.6f}",
                "x-vidcolor-frame": str(win.number),
                "x-vidcolor-ms": f"{(time.perf_counter() - t0) * 1000:.0f}",
                "x-vidcolor-digest": hashlib.sha256(body).hexdigest()[:16],
            }
            return body, meta

        body, meta = await run_in_threadpool(work)
        return Response(body, media_type="image/png" if fmt == "png" else "image/jpeg", headers=meta)

    def _hints_arg(self, src: Source, placed: list[dict[str, Any]]) -> str | None:
        """The --hints value for ``src`` when hints are placed."""
        if not placed:
            return None
        return relative_name(self.root, hints.hints_path(src.path))

    async def command(self, request: Request) -> Response:
        data = await self._json(request)
        opts = self._options(data.get("settings"))
        placed = hints.check_hints(data.get("hints"))
        src = await run_in_threadpool(self._source, data.get("path"))
        dst = relative_name(self.root, self._output_for(src, opts))
        return JSONResponse({"command": self._command(src, dst, opts, self._hints_arg(src, placed))})

    async def save_hints(self, request: Request) -> Response:
        """Write the page's hints beside the source as NAME.hints.json, the file --hints reads."""
        data = await self._json(request)
        placed = hints.check_hints(data.get("hints"))
        src = await run_in_threadpool(self._source, data.get("path"))
        path = hints.hints_path(src.path)
        await run_in_threadpool(hints.save_hints, path, placed)
        return JSONResponse({"path": relative_name(self.root, path), "hints": len(placed)})

    async def render(self, request: Request) -> Response:
        data = await self._json(request)
        opts = self._options(data.get("settings"))
        placed = hints.check_hints(data.get("hints"))
        src = await run_in_threadpool(self._source, data.get("path"))
        hints_arg = self._hints_arg(src, placed)
        if hints_arg is not None:  # the command line names the file: write it, and render with what it holds
            await run_in_threadpool(hints.save_hints, hints.hints_path(src.path), placed)
            opts = hints.with_hints(opts, placed)
        dst = self._output_for(src, opts)
        out = relative_name(self.root, dst)
        total = 1 if src.is_still else expected_frames(src, opts.start, opts.duration)
        job = self.jobs.submit(
            source=src.name,
            output=out,
            src=src.path,
            dst=dst,
            opts=opts,
            total=total,
            command=self._command(src, out, opts, hints_arg),
        )
        return JSONResponse(job.snapshot(), status_code=202)

    def _job(self, request: Request) -> Job:
        job = self.jobs.get(request.path_params["job"])
        if job is None:
            raise UsageError("a render job id", repr(request.path_params["job"]), "start a render first")
        return job

    async def jobs_list(self, request: Request) -> Response:
        return JSONResponse([j.snapshot() for j in self.jobs.all()])

    async def job(self, request: Request) -> Response:
        return JSONResponse(self._job(request).snapshot())

    async def job_cancel(self, request: Request) -> Response:
        job = self.jobs.cancel(self._job(request).id)
        return JSONResponse(job.snapshot() if job else {})

    async def job_file(self, request: Request) -> Response:
        job = self._job(request)
        if job.state != "done" or not job.dst.is_file():
            raise UsageError("a finished render", f"job {job.id} is {job.state}", "wait until it is done")
        download = request.query_params.get("download") == "1"
        return FileResponse(
            job.dst,
            filename=job.dst.name if download else None,
            content_disposition_type="attachment" if download else "inline",
        )

    async def still(self, request: Request) -> Response:
        """A small JPEG of a still of the reference folder (``?path=`` relative to the folder shown)."""
        rel = request.query_params.get("path", "")
        body = await run_in_threadpool(references.thumbnail, self.root, rel)
        return Response(body, media_type="image/jpeg")

    async def upload(self, request: Request) -> Response:
        name = request.query_params.get("name", "")
        if not name or name.startswith(".") or any(c in name for c in "\x00/\\:") or len(name) > 200:
            raise UsageError("a plain file name", repr(name), "rename the file")
        folder = (
            confine(self.root, request.query_params.get("dir", ""))
            if request.query_params.get("dir")
            else self.root
        )
        if not folder.is_dir():
            raise UsageError(
                "a folder inside the preview folder", relative_name(self.root, folder), "pick one"
            )
        dst = confine(self.root, relative_name(self.root, folder / name))
        size = 0
        # Each upload streams into a temporary name of its own; the free name is chosen only at
        # the end, with no await between choosing and renaming, so two uploads of one name running
        # together keep both files (name-2.ext) and neither can remove the other's data.
        with temporary_beside(dst, keep_suffix=True) as tmp:
            with open(tmp, "wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.config.max_upload:
                        raise TooLarge(f"an upload of at most {self.config.max_upload} bytes")
                    fh.write(chunk)
            stem, ext = os.path.splitext(name)
            n = 2
            while dst.exists():
                dst, n = folder / f"{stem}-{n}{ext}", n + 1
            put_in_place(tmp, dst)
        return JSONResponse({"path": relative_name(self.root, dst), "size": size}, status_code=201)

    # ------------------------------------------------------------------------------------ app

    def routes(self) -> list[Route | Mount]:
        get, post = ["GET"], ["POST"]
        return [
            Route("/", self.index, methods=get),
            Route("/api/info", api(self.info), methods=get),
            Route("/api/files", api(self.files), methods=get),
            Route("/api/open", api(self.open), methods=post),
            Route("/api/cuts", api(self.cuts), methods=get),
            Route("/api/frame", api(self.frame), methods=post),
            Route("/api/command", api(self.command), methods=post),
            Route("/api/render", api(self.render), methods=post),
            Route("/api/hints", api(self.save_hints), methods=post),
            Route("/api/jobs", api(self.jobs_list), methods=get),
            Route("/api/jobs/{job}", api(self.job), methods=get),
            Route("/api/jobs/{job}/cancel", api(self.job_cancel), methods=post),
            Route("/api/jobs/{job}/file", api(self.job_file), methods=get),
            Route("/api/upload", api(self.upload), methods=post),
            Route("/api/still", api(self.still), methods=get),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    def close(self) -> None:
        self.jobs.close()
        self.sources.close()


def create_app(
    root: str | os.PathLike[str],
    *,
    token: str,
    model: str | None = None,
    device: str = "auto",
    render_size: int | None = None,
    threads: int = 0,
    initial: str | None = None,
    max_request: int = MAX_REQUEST_BYTES,
    max_upload: int = MAX_UPLOAD_BYTES,
    render: Render | None = None,
) -> Starlette:
    """The preview application for the folder ``root``. ``app.state.preview`` holds its state.

    ``model``: --model as typed (a registry name, or a checkpoint path relative to ``root`` or
    absolute); ``initial``: a file to open first, relative to ``root``; ``render``: the job body
    (tests pass their own; default: the CLI's pipeline).
    """
    config = Config(
        Path(root).resolve(), token, model, device, render_size, threads, initial, max_request, max_upload
    )
    preview = Preview(config, render)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        preview.close()

    app = Starlette(routes=preview.routes(), lifespan=lifespan)
    app.state.preview = preview
    app.add_middleware(Guard, config=config)
    return app
