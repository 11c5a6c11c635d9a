"""HTTP-level tests of ``vidcolor preview``: token, confinement, size bounds, errors, frames, renders.

Everything runs through Starlette's test client on tiny clips and a tiny untrained model rendering
at 64 pixels, so the whole file takes seconds on a loaded 2-core machine.

(Over 400 lines: one test per endpoint behaviour, grouped by the banners below; they share the
app, folder and client fixtures at the top, which splitting the file would repeat.)
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import httpx2
import numpy as np
import numpy.typing as npt
import pytest
from click.testing import CliRunner
from clips import make_clip
from starlette.applications import Starlette
from starlette.testclient import TestClient

from vidcolor.formats import X264_PRESETS
from vidcolor.hints import load_hints
from vidcolor.options import ColorizeOptions
from vidcolor.preview import create_app
from vidcolor.preview.jobs import Job
from vidcolor.preview.page_options import ModelChoice
from vidcolor.preview.security import Forbidden, confine, cookie_name, is_loopback

TOKEN = "test-token-123"
AUTH = {"X-Vidcolor-Token": TOKEN}
RENDER = 64  # px: the tiny model's render size, small enough for a loaded CPU
CLIP_FRAMES, CLIP_RATE, CLIP_SIZE = 24, 24, (96, 64)
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
WAIT_S = 120.0  # a bound on waiting for a job, not a timing assertion: a hung job fails the test


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny colorizer saved as a checkpoint, outside the served folder."""
    import torch

    from vidcolor.models import save_checkpoint
    from vidcolor.models.colorizer import Colorizer, ColorizerConfig

    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=RENDER)).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model, data="t", recipe="t", metrics={}, step=0, git_sha=None)
    return path


def cut_clip(path: Path) -> Path:
    """A clip whose first 12 frames are one picture and last 12 an unrelated one: a cut at 0.5 s."""
    a, b = (
        # uint8 in, uint8 out: OpenCV's stubs type what GaussianBlur returns by any dtype
        cast(
            npt.NDArray[np.uint8],
            cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 255, (64, 96), np.uint8), (0, 0), 3),
        )
        for seed in (0, 1)
    )
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=CLIP_RATE)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.time_base = Fraction(1, CLIP_RATE)
        for i in range(24):
            y = np.roll(a if i < 12 else b, i % 3, axis=1)
            rgb = np.stack([y, y, y], -1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """The served folder: a clip, a still, a file that is not media, a sub-folder, and symlinks in
    and out of it; ``outside/`` beside it holds what must never be reachable."""
    outside = tmp_path / "outside"
    outside.mkdir()
    make_clip(outside / "secret.mp4", frames=4, size=(64, 48))
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    make_clip(root / "clip.mp4", frames=CLIP_FRAMES, size=CLIP_SIZE, rate=CLIP_RATE)
    cv2.imwrite(str(root / "still.png"), np.tile(np.arange(80, dtype=np.uint8) * 3, (48, 1)))
    (root / "notes.mp4").write_text("this is not a film\n")
    (root / "empty.mov").write_bytes(b"")
    make_clip(root / "sub" / "inner.mp4", frames=6, size=(64, 48))
    os.symlink(outside / "secret.mp4", root / "link_out.mp4")
    os.symlink(outside, root / "link_dir")
    os.symlink(root / "clip.mp4", root / "link_in.mp4")
    return root


Client = Callable[..., TestClient]


@pytest.fixture()
def client(root: Path, tiny_checkpoint: Path) -> Iterator[Client]:
    """A factory of test clients of the app for ``root`` (keyword arguments go to create_app)."""
    opened: list[TestClient] = []

    def make(**kw: object) -> TestClient:
        app = create_app(root, token=TOKEN, model=str(tiny_checkpoint), device="cpu", **kw)
        c = TestClient(app)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def settings(**kw: object) -> dict[str, object]:
    return {"model": "tiny.pt", "render_size": RENDER, **kw}


def frame(c: TestClient, path: str = "clip.mp4", **kw: object) -> httpx2.Response:
    body = {"path": path, "t": 0.5, "view": "colour", "settings": settings()}
    body.update(kw)
    return c.post("/api/frame", json=body, headers=AUTH)


def wait_job(c: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        snap = c.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if snap["state"] in ("done", "failed", "cancelled"):
            return snap
        time.sleep(0.05)
    pytest.fail(f"render job {job_id} did not end within {WAIT_S} s: {snap}")


def decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as f:
        return [fr.to_ndarray(format="yuv420p") for fr in f.decode(video=0)]


# ------------------------------------------------------------------------------------- token


def test_every_request_needs_the_token(client: Client) -> None:
    c = client()
    for url in ("/", "/api/info", "/static/app.js", "/api/files", "/api/jobs"):
        r = c.get(url)
        assert r.status_code == 403, url
        assert "token" in r.text
    assert c.get("/api/info", headers={"X-Vidcolor-Token": "wrong"}).status_code == 403
    assert c.get("/api/info?token=wrong").status_code == 403
    assert c.post("/api/open", json={"path": "clip.mp4"}).status_code == 403
    assert c.get("/api/info", headers=AUTH).status_code == 200
    assert c.get(f"/api/info?token={TOKEN}").status_code == 200


def test_the_address_sets_a_cookie_the_page_then_uses(client: Client) -> None:
    c = client()
    r = c.get(f"/?token={TOKEN}")
    assert r.status_code == 200 and "<title>vidcolor preview</title>" in r.text
    cookie = r.headers["set-cookie"]
    assert (
        cookie.startswith(cookie_name(TOKEN) + "=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    )
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    # The client keeps the cookie: static files and the API now answer without the token in the URL.
    assert c.get("/static/app.js").status_code == 200
    assert c.get("/api/info").status_code == 200


# ------------------------------------------------------------------------------- confinement


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.mp4",  # climbing out
        "sub/../../outside/secret.mp4",
        "link_out.mp4",  # a symlink to a file outside
        "link_dir/secret.mp4",  # through a symlinked folder outside
        "ABSOLUTE",  # an absolute path to a file outside (filled in below)
        "ABSOLUTE_INSIDE",  # even an absolute path to a file inside: paths are relative
        "~/secret.mp4",
        "C:/Windows/win.ini",
        "sub\\..\\..\\outside\\secret.mp4",
    ],
)
def test_no_file_outside_the_folder_can_be_opened(client: Client, root: Path, path: str) -> None:
    c = client()
    path = {
        "ABSOLUTE": str(root.parent / "outside" / "secret.mp4"),
        "ABSOLUTE_INSIDE": str(root / "clip.mp4"),
    }.get(path, path)
    for r in (
        c.post("/api/open", json={"path": path}, headers=AUTH),
        frame(c, path=path),
        frame(c, path=path, view="grey"),
        c.post("/api/render", json={"path": path, "settings": settings()}, headers=AUTH),
        c.get("/api/cuts", params={"path": path}, headers=AUTH),
    ):
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "preview folder" in r.json()["error"]


def test_listing_stays_inside_and_hides_symlinks_out(client: Client) -> None:
    c = client()
    names = {e["name"] for e in c.get("/api/files", headers=AUTH).json()["entries"]}
    assert {"clip.mp4", "still.png", "sub", "link_in.mp4"} <= names
    assert "link_out.mp4" not in names and "link_dir" not in names
    for folder in ("..", "link_dir", "/tmp", "sub/../.."):
        assert c.get("/api/files", params={"dir": folder}, headers=AUTH).status_code == 403, folder
    sub = c.get("/api/files", params={"dir": "sub"}, headers=AUTH).json()
    assert sub["parent"] == "" and [e["path"] for e in sub["entries"]] == ["sub/inner.mp4"]


def test_a_symlink_inside_the_folder_opens(client: Client) -> None:
    r = client().post("/api/open", json={"path": "link_in.mp4"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["frames"] == CLIP_FRAMES


def test_confine_unit(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "a").mkdir()
    assert confine(root, "a/b.mp4") == root / "a" / "b.mp4"
    assert confine(root, "") == root
    for bad in ("../x", "/etc/passwd", "a/../../x", "a\x00b", "~root/x"):
        with pytest.raises(Forbidden):
            confine(root, bad)


# ------------------------------------------------------------------------------ size bounds


def test_request_bodies_are_bounded(client: Client) -> None:
    c = client(max_request=4096)
    big = {"path": "clip.mp4", "t": 0, "settings": settings(), "hints": [], "pad": "x" * 5000}
    r = c.post("/api/frame", json=big, headers=AUTH)
    assert r.status_code == 413 and "at most 4096 bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound holds while reading
        yield b'{"path": "clip.mp4", "pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    r = c.post("/api/open", content=chunks(), headers=AUTH | {"Content-Type": "application/json"})
    assert r.status_code == 413
    assert c.get("/api/info", headers=AUTH).status_code == 200  # and the server carries on


def test_uploads_are_bounded_and_leave_nothing_behind(client: Client, root: Path) -> None:
    c = client(max_upload=10_000)
    data = (root / "sub" / "inner.mp4").read_bytes()
    assert len(data) < 10_000
    r = c.post("/api/upload", params={"name": "up.mp4", "dir": "sub"}, content=data, headers=AUTH)
    assert r.status_code == 201 and r.json()["path"] == "sub/up.mp4"
    assert (root / "sub" / "up.mp4").read_bytes() == data
    again = c.post("/api/upload", params={"name": "up.mp4", "dir": "sub"}, content=data, headers=AUTH)
    assert again.json()["path"] == "sub/up-2.mp4"  # never replaces a file
    before = sorted(p.name for p in root.rglob("*"))
    r = c.post("/api/upload", params={"name": "big.mp4"}, content=b"\0" * 20_000, headers=AUTH)
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"\0" * 1000

    r = c.post("/api/upload", params={"name": "big.mp4"}, content=chunks(), headers=AUTH)
    assert r.status_code == 413
    assert sorted(p.name for p in root.rglob("*")) == before  # no partial or temporary file
    for name, folder in (("../evil.mp4", ""), (".hidden", ""), ("a/b.mp4", ""), ("ok.mp4", "../outside")):
        r = c.post("/api/upload", params={"name": name, "dir": folder}, content=b"x", headers=AUTH)
        assert r.status_code in (400, 403), name
    assert not (root.parent / "evil.mp4").exists() and not (root.parent / "outside" / "ok.mp4").exists()


def test_two_uploads_of_one_name_at_once_keep_both(root: Path, tiny_checkpoint: Path) -> None:
    """The first upload is still streaming when the second, of the same name, completes: each
    writes its own temporary file and the name is settled when it ends, so both files are kept."""
    import anyio
    import httpx2 as httpx

    app = create_app(root, token=TOKEN, model=str(tiny_checkpoint), device="cpu")
    inside, gate = anyio.Event(), anyio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"first-"
        inside.set()  # the server has asked for more: it is streaming this upload
        await gate.wait()
        yield b"upload"

    async def main() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            params = {"name": "same.mp4"}
            answers: dict[str, httpx.Response] = {}

            async def first() -> None:
                answers["first"] = await c.post(
                    "/api/upload", params=params, content=slow_body(), headers=AUTH
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await inside.wait()
                answers["second"] = await c.post(
                    "/api/upload", params=params, content=b"second", headers=AUTH
                )
                gate.set()
            return answers["first"], answers["second"]

    first, second = anyio.run(main)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["path"] == "same.mp4" and first.json()["path"] == "same-2.mp4"
    assert (root / "same.mp4").read_bytes() == b"second"
    assert (root / "same-2.mp4").read_bytes() == b"first-upload"
    assert not list(root.glob(".same*")), "a temporary file was left behind"


# --------------------------------------------------------------------------- bad files, errors


@pytest.mark.parametrize(
    "path,status,words",
    [
        ("notes.mp4", 422, "not readable media"),
        ("empty.mov", 422, "empty"),
        ("sub", 400, "folder"),
        ("missing.mp4", 404, "no such file"),
    ],
)
def test_a_bad_file_is_a_clear_error_and_the_server_carries_on(
    client: Client, path: str, status: int, words: str
) -> None:
    c = client()
    for r in (c.post("/api/open", json={"path": path}, headers=AUTH), frame(c, path=path)):
        assert r.status_code == status, r.text
        message = r.json()["error"]
        assert words in message.lower() and "\n" not in message
    good = frame(c)
    assert good.status_code == 200 and good.content.startswith(JPEG)


@pytest.mark.parametrize(
    "bad",
    [
        {"render_size": 5},
        {"render_size": "big"},
        {"smoothing": 2},
        {"codec": "rm -rf /"},
        {"crf": -1},
        {"preset": "warp"},
        {"codec": "libx265", "preset": 7},
        {"model": "../../model.pt"},
        {"model": "nonexistent"},
    ],
)
def test_bad_settings_are_refused(client: Client, bad: dict[str, object]) -> None:
    r = frame(client(), settings=settings(**bad))
    assert r.status_code == 400 and r.json()["error"]


def test_the_page_offers_each_codecs_presets_and_a_codec_without_them_sets_none(client: Client) -> None:
    c = client()
    presets = c.get("/api/info", headers=AUTH).json()["presets"]
    assert presets["libx264"] == {"names": list(X264_PRESETS), "default": "medium"}
    assert presets["ffv1"] == {"names": [], "default": None}
    for codec, preset, flag in (("libx264", "faster", True), ("ffv1", "faster", False)):
        s = settings(codec=codec, preset=preset)
        r = c.post("/api/command", json={"path": "clip.mp4", "settings": s}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert ("--preset faster" in r.json()["command"]) is flag


def test_a_model_that_fails_to_load_is_a_message(root: Path, tiny_checkpoint: Path) -> None:
    broken = root.parent / "broken.pt"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:1000])  # a checkpoint cut short
    with TestClient(create_app(root, token=TOKEN, model=str(broken), device="cpu")) as c:
        r = frame(c, settings={"model": "broken.pt", "render_size": RENDER})
        assert r.status_code == 422 and "broken.pt" in r.json()["error"] and "\n" not in r.json()["error"]
        assert (
            frame(c, view="grey", settings={"model": "broken.pt"}).status_code == 200
        )  # the server carries on


# -------------------------------------------------------------------------------- pictures


def test_frames_come_back_as_jpeg_and_png(client: Client) -> None:
    c = client()
    grey = frame(c, view="grey")
    assert (
        grey.status_code == 200
        and grey.headers["content-type"] == "image/jpeg"
        and grey.content.startswith(JPEG)
    )
    assert grey.headers["x-vidcolor-frame"] == "12" and float(
        grey.headers["x-vidcolor-time"]
    ) == pytest.approx(0.5)
    colour = frame(c, format="png")
    assert colour.headers["content-type"] == "image/png" and colour.content.startswith(PNG)
    assert colour.headers["x-vidcolor-render-size"] == str(RENDER)
    rgb = cv2.imdecode(np.frombuffer(colour.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert rgb is not None
    assert rgb.shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3)
    assert np.abs(rgb.astype(int) - rgb[..., :1].astype(int)).max() > 0  # not grey: it was colorized
    last = frame(c, t=1e5, view="grey")  # past the end: the last frame
    assert last.headers["x-vidcolor-frame"] == str(CLIP_FRAMES - 1)


def test_the_colour_frame_is_the_films_frame(client: Client, root: Path, tiny_checkpoint: Path) -> None:
    """The preview's frame equals that frame of a render with the same settings (same pipeline)."""
    from vidcolor.pipeline.run import colorize_video

    c = client()
    png = frame(c, t=10 / CLIP_RATE, format="png", settings=settings(smoothing=0.5)).content
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    shown = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out = root / "ref.mkv"
    colorize_video(
        root / "clip.mp4",
        out,
        ColorizeOptions(
            model=str(tiny_checkpoint),
            device="cpu",
            render_size=RENDER,
            smoothing=0.5,
            codec="ffv1",
            ten_bit=False,
        ),
    )
    with av.open(str(out)) as f:
        film = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)][10]
    # Same ab, same luma; the film's output went through 4:2:0 chroma and limited range, so compare
    # the mean colour (chroma) rather than pixels.
    diff = np.abs(shown.astype(float).mean((0, 1)) - film.astype(float).mean((0, 1)))
    assert diff.max() < 4.0, diff


def test_changing_an_option_changes_the_frame(client: Client) -> None:
    c = client()
    base = frame(c)
    assert base.status_code == 200
    digests = {base.headers["x-vidcolor-digest"]}
    for s in (settings(render_size=32), settings(smoothing=0.0)):
        r = frame(c, settings=s)
        assert r.status_code == 200
        digests.add(r.headers["x-vidcolor-digest"])
    assert len(digests) == 3
    assert frame(c).headers["x-vidcolor-digest"] == base.headers["x-vidcolor-digest"]  # and back again


def test_a_still_opens_and_renders(client: Client, root: Path) -> None:
    c = client()
    info = c.post("/api/open", json={"path": "still.png"}, headers=AUTH).json()
    assert info["kind"] == "still" and info["frames"] == 1
    r = frame(c, path="still.png", t=0)
    assert r.status_code == 200 and r.content.startswith(JPEG)
    job = c.post("/api/render", json={"path": "still.png", "settings": settings()}, headers=AUTH).json()
    snap = wait_job(c, job["id"])
    assert snap["state"] == "done" and snap["percent"] == 100 and snap["output"] == "still_colour.png"
    still = cv2.imread(str(root / "still_colour.png"))
    assert still is not None and still.shape == (48, 80, 3)


def test_scene_cuts_are_found(client: Client, root: Path) -> None:
    cut_clip(root / "cut.mp4")
    c = client()
    c.post("/api/open", json={"path": "cut.mp4"}, headers=AUTH)
    deadline = time.monotonic() + WAIT_S
    while not (cuts := c.get("/api/cuts", params={"path": "cut.mp4"}, headers=AUTH).json())["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert cuts["error"] is None and cuts["cuts"] == [pytest.approx(0.5)]
    plain = c.get("/api/cuts", params={"path": "clip.mp4"}, headers=AUTH).json()
    assert plain["cuts"] == [] or plain["done"] is False


# --------------------------------------------------------------------------------- renders


def test_a_render_reaches_100_and_downloads_a_playable_file(client: Client, root: Path) -> None:
    c = client()
    body = {"path": "clip.mp4", "settings": settings(start=0.25, duration=0.5, crf=30)}
    r = c.post("/api/render", json=body, headers=AUTH)
    assert r.status_code == 202
    job = r.json()
    assert job["total"] == 12 and job["output"] == "clip_colour.mp4"
    assert job["command"].startswith("vidcolor colorize clip.mp4 -o clip_colour.mp4 --model ")
    snap = wait_job(c, job["id"])
    assert snap["state"] == "done", snap["message"]
    assert snap["percent"] == 100 and snap["frames"] == 12 and "Y PSNR" in snap["message"]
    d = c.get(f"/api/jobs/{job['id']}/file?download=1", headers=AUTH)
    assert (
        d.status_code == 200 and 'attachment; filename="clip_colour.mp4"' in d.headers["content-disposition"]
    )
    got = root / "downloaded.mp4"
    got.write_bytes(d.content)
    frames = decode_all(got)
    assert len(frames) == 12
    with av.open(str(got)) as f:
        assert f.streams.video[0].codec_context.name == "h264"
    inline = c.get(f"/api/jobs/{job['id']}/file", headers=AUTH | {"Range": "bytes=0-99"})
    assert inline.status_code == 206 and len(inline.content) == 100  # seekable in a <video>


def test_the_command_line_reproduces_the_render(
    client: Client, root: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    from vidcolor.cli import main

    c = client()
    s = settings(start=0.25, duration=0.25, smoothing=0.3, crf=28, preset="veryfast")
    snap = wait_job(
        c, c.post("/api/render", json={"path": "clip.mp4", "settings": s}, headers=AUTH).json()["id"]
    )
    assert snap["state"] == "done", snap["message"]
    command = c.post("/api/command", json={"path": "clip.mp4", "settings": s}, headers=AUTH).json()["command"]
    args = shlex.split(command)
    assert args[:5] == ["vidcolor", "colorize", "clip.mp4", "-o", "clip_colour-2.mp4"]
    assert args[args.index("--model") + 1] == str(tiny_checkpoint)
    assert "--smoothing" in args and "--crf" in args and "--render-size" in args
    assert args[args.index("--preset") + 1] == "veryfast"
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, [*args[1:], "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    page, cli = decode_all(root / "clip_colour.mp4"), decode_all(root / "clip_colour-2.mp4")
    assert len(page) == len(cli) == 6
    assert all(np.array_equal(a, b) for a, b in zip(page, cli, strict=True))


def test_a_render_can_be_cancelled_and_leaves_no_file(
    client: Client, root: Path, tiny_checkpoint: Path
) -> None:
    from vidcolor.pipeline.run import colorize_video

    first_frame = threading.Event()
    jobs_seen: list[Job] = []

    def render(src: Path, dst: Path, opts: ColorizeOptions, on_frame: Callable[[int], None]) -> str:
        def hold(done: int) -> None:  # wait, after the first frame, until the page has cancelled
            first_frame.set()
            job = jobs_seen[0]
            job.cancel.wait(WAIT_S)
            on_frame(done)

        colorize_video(src, dst, opts, on_frame=hold)
        return "finished"

    c = client(render=render)
    job = c.post("/api/render", json={"path": "clip.mp4", "settings": settings()}, headers=AUTH).json()
    # The client's app is the one create_app made (TestClient types it as any ASGI app).
    jobs_seen.append(cast(Starlette, c.app).state.preview.jobs.get(job["id"]))
    assert first_frame.wait(WAIT_S)
    assert c.get(f"/api/jobs/{job['id']}", headers=AUTH).json()["state"] == "running"
    assert c.post(f"/api/jobs/{job['id']}/cancel", headers=AUTH).status_code == 200
    snap = wait_job(c, job["id"])
    assert snap["state"] == "cancelled" and "no output" in snap["message"]
    assert not (root / "clip_colour.mp4").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary file either
    assert c.get(f"/api/jobs/{job['id']}/file", headers=AUTH).status_code == 400


def test_a_failed_render_is_reported_and_the_next_one_runs(client: Client) -> None:
    calls: list[Path] = []

    def render(src: Path, dst: Path, opts: ColorizeOptions, on_frame: Callable[[int], None]) -> str:
        calls.append(dst)
        if len(calls) == 1:
            raise RuntimeError("boom")
        on_frame(1)
        return "ok"

    c = client(render=render)
    a = c.post("/api/render", json={"path": "clip.mp4", "settings": settings()}, headers=AUTH).json()
    assert wait_job(c, a["id"])["state"] == "failed"
    assert "boom" in c.get(f"/api/jobs/{a['id']}", headers=AUTH).json()["message"]
    b = c.post("/api/render", json={"path": "clip.mp4", "settings": settings()}, headers=AUTH).json()
    assert wait_job(c, b["id"])["state"] == "done"


# ----------------------------------------------------------------------------------- hints


def test_hints_are_checked_and_saved_beside_the_film(client: Client, root: Path) -> None:
    c = client()
    hint = {"time": 0.5, "point": [0.25, 0.5], "units": "fraction", "colour": "#B03A2E", "radius": 0.1}
    r = c.post("/api/hints", json={"path": "clip.mp4", "hints": [hint]}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"path": "clip.hints.json", "hints": 1}
    saved = json.loads((root / "clip.hints.json").read_text())
    assert saved == [hint | {"colour": "#b03a2e"}]
    for bad in ({"time": -1}, {"point": [2, 0]}, {"colour": "red"}, {"radius": 5}, {"units": "px"}):
        r = c.post("/api/hints", json={"path": "clip.mp4", "hints": [hint | bad]}, headers=AUTH)
        assert r.status_code == 400 and "hint 1" in r.json()["error"], bad
    assert len(load_hints(root / "clip.hints.json")) == 1  # the file `vidcolor colorize --hints` reads


def test_hints_change_the_frame_and_the_command(client: Client) -> None:
    c = client()
    hint = {"time": 0.5, "point": [0.5, 0.5], "units": "fraction", "colour": "#1060ff", "radius": 0.3}
    plain = frame(c, format="png")
    hinted = frame(c, format="png", hints=[hint])
    assert hinted.status_code == 200
    assert hinted.headers["x-vidcolor-digest"] != plain.headers["x-vidcolor-digest"]
    command = c.post(
        "/api/command", json={"path": "clip.mp4", "settings": settings(), "hints": [hint]}, headers=AUTH
    ).json()["command"]
    assert "--hints clip.hints.json" in command


# ------------------------------------------------------------------------------------- CLI


def test_the_cli_binds_loopback_and_warns_for_another_host(
    root: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from vidcolor.cli import main

    served: list[tuple[str, int]] = []

    def fake_run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        served.append(sockets[0].getsockname()[:2])
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.chdir(root)
    r = CliRunner().invoke(main, ["preview", "clip.mp4", "--no-browser", "--model", str(tiny_checkpoint)])
    assert r.exit_code == 0, r.output
    assert served[-1][0] == "127.0.0.1" and "warning" not in r.output
    assert f"http://127.0.0.1:{served[-1][1]}/?token=" in r.output
    r = CliRunner().invoke(main, ["preview", "--no-browser", "--host", "0.0.0.0", "--port", "0"])
    assert r.exit_code == 0 and "warning: listening on 0.0.0.0" in r.output and served[-1][0] == "0.0.0.0"
    r = CliRunner().invoke(main, ["preview", "../outside/secret.mp4", "--no-browser"])
    assert r.exit_code != 0 and "inside the folder the preview is started in" in r.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_model_choices_put_the_given_checkpoint_first(client: Client, tiny_checkpoint: Path) -> None:
    info = client().get("/api/info", headers=AUTH).json()
    assert info["default_model"] == "tiny.pt" and info["models"][0]["key"] == "tiny.pt"
    assert all(m["ref"] is None for m in info["models"])  # no server paths handed to the page
    assert ModelChoice("k", "r", "a", "l", True).render_size is None


def test_the_cached_step_answers_as_the_model_does(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames seen before come from the cache, bit for bit what the model gave; hints bypass it."""
    from vidcolor.frames import LBatch
    from vidcolor.preview.colour import CachedStep
    from vidcolor.stages.model_step import ModelStep

    opts = ColorizeOptions(model=str(tiny_checkpoint), device="cpu")
    plain = ModelStep.create(opts)
    cached = CachedStep.wrap(ModelStep.create(opts))
    L = np.random.default_rng(0).uniform(0, 100, (3, 1, 64, 96)).astype(np.float32)
    want = plain(LBatch((0, 1, 2), L, (64, 96)))
    calls: list[int] = []  # frames the model step itself was asked for, whatever runtime runs it
    inner = ModelStep.__call__

    def counted(self: ModelStep, batch: LBatch, hints: np.ndarray | None = None) -> np.ndarray:
        calls.append(len(batch.L))
        return inner(self, batch, hints)

    monkeypatch.setattr(ModelStep, "__call__", counted)
    first = cached(LBatch((0, 1, 2), L, (64, 96)))
    assert np.allclose(first, want, atol=1e-5)
    again = cached(LBatch((5, 6), L[1:].copy(), (64, 96)))  # the same pictures, other indices
    assert np.array_equal(again, first[1:]) and calls == [3]
    mixed = cached(LBatch((0, 1), np.concatenate([L[:1], L[:1] + 1]), (64, 96)))
    assert np.array_equal(mixed[0], first[0]) and calls == [3, 1]  # only the new picture went to the model
    cached(LBatch((0,), L[:1], (64, 96)), hints=np.zeros((1, 3, 64, 96), np.float32))
    assert calls == [3, 1, 1]


def test_a_quick_frame_is_the_frame_alone_and_says_so(client: Client) -> None:
    c = client()
    quick = frame(c, quick=True, settings=settings(smoothing=0.5))
    assert quick.status_code == 200 and quick.headers["x-vidcolor-exact"] == "0"
    unsmoothed = frame(c, settings=settings(smoothing=0.0))
    assert unsmoothed.headers["x-vidcolor-exact"] == "1"
    assert quick.headers["x-vidcolor-digest"] == unsmoothed.headers["x-vidcolor-digest"]
    full = frame(c, settings=settings(smoothing=0.5))
    assert (
        full.headers["x-vidcolor-exact"] == "1"
        and full.headers["x-vidcolor-digest"] != quick.headers["x-vidcolor-digest"]
    )
    still = frame(c, path="still.png", t=0, quick=True)
    assert still.headers["x-vidcolor-exact"] == "1"  # a still has no neighbours: the quick frame is the frame


def test_a_render_with_hints_saves_them_and_names_them_in_the_command(client: Client, root: Path) -> None:
    c = client()
    hint = {"time": 0.25, "point": [0.5, 0.5], "units": "fraction", "colour": "#1060ff", "radius": 0.4}
    s = settings(
        start=0.25, duration=0.25, smoothing=0.0, codec="ffv1"
    )  # lossless: the luma compares exactly
    plain = wait_job(
        c, c.post("/api/render", json={"path": "clip.mp4", "settings": s}, headers=AUTH).json()["id"]
    )
    job = c.post(
        "/api/render", json={"path": "clip.mp4", "settings": s, "hints": [hint]}, headers=AUTH
    ).json()
    assert "--hints clip.hints.json" in job["command"]
    hinted = wait_job(c, job["id"])
    assert plain["state"] == hinted["state"] == "done", hinted["message"]
    from vidcolor.guidance import load_hints

    assert len(load_hints(root / "clip.hints.json")) == 1
    a, b = decode_all(root / plain["output"]), decode_all(root / hinted["output"])
    h = CLIP_SIZE[1]  # yuv420p as one array: Y rows, then the U and V planes below
    assert not np.array_equal(a[0][h:], b[0][h:])  # the hint changed the colour
    assert np.array_equal(a[0][:h], b[0][:h])  # and never the luma


def test_reference_folder_shows_the_stills_chosen_and_takes_pins_and_drops(
    client: Client, root: Path
) -> None:
    import json
    from urllib.parse import unquote

    photos = root / "photos"
    photos.mkdir()
    for k in range(3):
        rgb = np.random.default_rng(10 + k).integers(0, 255, (48, 64, 3), np.uint8)
        cv2.imwrite(str(photos / f"p{k}.png"), cv2.GaussianBlur(rgb, (0, 0), 2))
    c = client()
    r = frame(c, settings=settings(reference_dir="photos"))
    assert r.status_code == 200, r.text
    shown = json.loads(unquote(r.headers["x-vidcolor-references"]))
    assert shown["folder"] == str(photos) and shown["pinned"] == []
    assert shown["best"]["name"] in {"p0.png", "p1.png", "p2.png"}
    assert all(
        s["name"] == shown["best"]["name"] or s["score"] <= shown["best"]["score"] for s in shown["chosen"]
    )

    pin = [{"name": "p1.png", "start": 0, "end": 1}]
    r = frame(c, settings=settings(reference_dir="photos", reference_pin=pin))
    assert json.loads(unquote(r.headers["x-vidcolor-references"]))["pinned"] == ["p1.png"]
    later = [{"name": "p1.png", "start": 0.75, "end": None}]  # a pin for another shot does not apply here
    r = frame(c, settings=settings(reference_dir="photos", reference_pin=later))
    assert json.loads(unquote(r.headers["x-vidcolor-references"]))["pinned"] == []

    thumb = c.get("/api/still?path=photos/p0.png", headers=AUTH)
    assert thumb.status_code == 200 and thumb.content.startswith(JPEG)
    assert c.get("/api/still?path=link_dir/secret.txt", headers=AUTH).status_code == 403
    assert frame(c, settings=settings(reference_dir="link_dir")).status_code == 403

    drop = [{"name": "p2.png", "start": 0.5, "end": None}]
    body = {
        "path": "clip.mp4",
        "settings": settings(reference_dir="photos", reference_pin=pin, reference_drop=drop),
    }
    line = c.post("/api/command", json=body, headers=AUTH).json()["command"]
    assert "--reference-dir photos --reference photos/p1.png@0-1 --drop-reference p2.png@0.5-" in line
