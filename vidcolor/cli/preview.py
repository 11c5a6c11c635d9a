"""``vidcolor preview [INPUT]``: serve the preview page for the current folder and open it."""

from __future__ import annotations

import socket
import sys
import webbrowser
from pathlib import Path

import click

from vidcolor.cli.common import LazyDefault, options_default, run_command

DEFAULT_PORT = 8765
PORTS_TRIED = 20  # without --port, the first free port from DEFAULT_PORT on is taken


def _max_upload_mb() -> int:
    """The server's upload limit in MiB (read when needed: the server module loads starlette)."""
    from vidcolor.preview.server import MAX_UPLOAD_BYTES

    return MAX_UPLOAD_BYTES >> 20


def _listen(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``host``: ``port``, or the first free one from DEFAULT_PORT on."""
    from vidcolor.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates = [port] if port is not None else list(range(DEFAULT_PORT, DEFAULT_PORT + PORTS_TRIED)) + [0]
    last: OSError | None = None
    for p in candidates:
        try:
            return socket.create_server((host, p), family=family, backlog=128)
        except OSError as exc:
            last = exc
    raise UsageError(f"a free port on {host}", f"{port or DEFAULT_PORT}: {last}", "pass another --port")


def _address(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/?token={token}"


@click.command("preview")
@click.argument("input", required=False, type=click.Path(path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but this machine's loopback lets others on the network in.",
)
@click.option(
    "--port", type=int, default=None, help=f"Port (default: the first free one from {DEFAULT_PORT})."
)
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser.")
@click.option(
    "--model",
    default=None,
    help="Registry name or checkpoint file to preview with (default: the default model).",
)
@click.option(
    "--device", default=options_default("device"), show_default=True, help="auto, cpu, cuda or cuda:N."
)
@click.option(
    "--render-size", type=int, default=None, help="Short side the model sees (default: the model's own)."
)
@click.option(
    "--threads",
    type=int,
    default=options_default("threads"),
    help="CPU threads of the model step (0: the runtime's default).",
)
@click.option(
    "--max-upload-mb",
    type=int,
    cls=LazyDefault,
    default=_max_upload_mb,
    show_default=True,
    help="Largest file the page may upload.",
)
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
def preview_command(
    input: Path | None,
    host: str,
    port: int | None,
    no_browser: bool,
    model: str | None,
    device: str,
    render_size: int | None,
    threads: int,
    max_upload_mb: int,
    debug: bool,
) -> None:
    """Preview colorization in a web page: scrub a film, tune the options, render a section.

    Serves the folder it is started in (only files under it can be opened), on this machine only
    unless --host says otherwise, behind a random token that the printed address carries.
    """

    def body() -> None:
        import uvicorn

        from vidcolor.errors import UsageError
        from vidcolor.preview.security import is_loopback, new_token, relative_name
        from vidcolor.preview.server import create_app

        root = Path.cwd().resolve()
        initial = None
        if input is not None:
            path = (root / input).resolve()  # an absolute INPUT stays itself; symlinks are followed
            if not path.is_relative_to(root):
                raise UsageError(
                    "a file inside the folder the preview is started in",
                    str(input),
                    f"cd to its folder first, or copy it under {root}",
                )
            if not path.is_file():
                raise UsageError("a film or still to open", f"{input}, which is not a file", "check the path")
            initial = relative_name(root, path)
        if render_size is not None and render_size < 16:
            raise UsageError("--render-size of 16 pixels or more", str(render_size), "pass e.g. 224")
        if not is_loopback(host):
            click.echo(
                f"vidcolor preview: warning: listening on {host}: anyone who can reach this machine and "
                "has the token can open the files under this folder",
                err=True,
            )
        token = new_token()
        sock = _listen(host, port)
        app = create_app(
            root,
            token=token,
            model=model,
            device=device,
            render_size=render_size,
            threads=threads,
            initial=initial,
            max_upload=max_upload_mb << 20,
        )
        url = _address(host, sock.getsockname()[1], token)
        click.echo(f"vidcolor preview: serving {root}\n    {url}\nPress Ctrl-C to stop.")
        if not no_browser:
            try:
                webbrowser.open(url)
            except webbrowser.Error:
                pass  # no browser here: the printed address is the way in
        sys.stdout.flush()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # uvicorn hands Ctrl-C on after its shutdown; a stopped preview is no error
        click.echo("vidcolor preview: stopped")

    run_command(body, debug)
