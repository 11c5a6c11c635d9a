"""``vidcolor preview`` in a real browser: headless Chromium (Debian's package) driven by Playwright.

Open a clip, scrub, change an option and see the frame change, place a hint and export it, start a
short render, watch its progress reach 100 %, play the result and download it. Skips, saying why,
where Playwright or a Chromium cannot be had (``.ci/install-browser`` installs them).

``VIDCOLOR_SCREENSHOTS=DIR`` also takes the screenshots of the docs (docs/preview.md) into DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
import uvicorn
from clips import make_clip

from vidcolor.preview import create_app

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
)

TOKEN = "browser-test-token"
RENDER = 64  # px
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_MS = 120_000  # the longest any one step may take on a loaded 2-core machine (a bound, not a measure)
REPO = Path(__file__).resolve().parents[1]


def chromium_path() -> tuple[str | None, str]:
    """(Debian's Chromium, or VIDCOLOR_CHROMIUM's; never a browser Playwright downloads) or (None, why)."""
    chosen = os.environ.get("VIDCOLOR_CHROMIUM")
    if chosen:
        ok = Path(chosen).is_file()
        return (chosen, "") if ok else (None, f"VIDCOLOR_CHROMIUM={chosen} is not a file")
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate, ""
    return None, "no Chromium at /usr/bin/chromium (run .ci/install-browser, or set VIDCOLOR_CHROMIUM)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe, why = chromium_path()
    if exe is None:
        pytest.skip(why)
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        except Exception as exc:  # whatever stops the browser, the tests cannot run here
            pytest.skip(f"Chromium at {exe} does not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from vidcolor.models import save_checkpoint
    from vidcolor.models.colorizer import Colorizer, ColorizerConfig

    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=RENDER)).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model, data="t", recipe="t", metrics={}, step=0, git_sha=None)
    return path


class Served:
    """The preview app on a free loopback port, in a thread; ``url`` is the printed address."""

    def __init__(self, root: Path, model: Path | str, device: str = "cpu", **kw: Any) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/?token={TOKEN}"
        app = create_app(root, token=TOKEN, model=str(model), device=device, **kw)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "the preview server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


@pytest.fixture()
def served(tmp_path: Path, tiny_checkpoint: Path) -> Iterator[Served]:
    root = tmp_path / "films"
    root.mkdir()
    make_clip(root / "clip.mp4", frames=24, size=(96, 64), rate=24, audio=[("aac", "eng")])
    (root / "notes.mp4").write_text("not a film\n")
    s = Served(root, tiny_checkpoint)
    yield s
    s.stop()


def digest(page: Any, selector: str) -> str:
    return str(page.get_attribute(selector, "data-digest"))


def wait_picture(page: Any, selector: str, *, not_digest: str | None = None, t: float | None = None) -> str:
    """Wait until the picture at ``selector`` is loaded (for time ``t``, and different from
    ``not_digest``); return its digest."""
    cond = f"{selector}[data-state=ready]" + (f'[data-t="{t:g}"]' if t is not None else "")
    page.wait_for_selector(cond, state="attached")
    if not_digest is not None:
        page.wait_for_function(
            "([sel, old]) => { const e = document.querySelector(sel);"
            " return e.dataset.state === 'ready' && e.dataset.digest !== old; }",
            arg=[selector, not_digest],
        )
    return digest(page, selector)


def set_value(page: Any, selector: str, value: str, event: str) -> None:
    page.eval_on_selector(
        selector,
        "(el, [v, ev]) => { el.value = v; el.dispatchEvent(new Event(ev, {bubbles: true})); }",
        [value, event],
    )


def test_open_scrub_tune_render_download(browser: Any, served: Served, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page.set_default_timeout(STEP_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.url)
    page.wait_for_selector("body[data-ready='1']", state="attached")
    assert "token=" not in page.url  # taken out of the address bar once read

    # A file that is not media: a clear message, and the page goes on working.
    page.click("#file-list button[data-path='notes.mp4']")
    page.wait_for_selector("#message:not([hidden])")
    assert "not readable media" in page.inner_text("#message-text")

    # Open the clip: the grey source and the colour frame side by side.
    page.click("#file-list button[data-path='clip.mp4']")
    page.wait_for_selector("#message", state="hidden")
    grey0 = wait_picture(page, "#grey", t=0)
    colour0 = wait_picture(page, "#colour", t=0)
    assert page.inner_text("#source-name") == "clip.mp4"
    assert "audio aac (eng)" in page.inner_text("#source-info")

    # Scrub to 0.5 s: both pictures follow, and the label names the frame.
    set_value(page, "#time", "0.5", "input")
    grey1 = wait_picture(page, "#grey", t=0.5, not_digest=grey0)
    colour1 = wait_picture(page, "#colour", t=0.5, not_digest=colour0)
    page.wait_for_function("() => document.getElementById('time-label').textContent.includes('frame 12')")
    assert grey1 != grey0 and colour1 != colour0

    # The split slider shows grey left of its line, over the colour picture.
    set_value(page, "#split", "30", "input")
    assert "70%" in page.eval_on_selector("#colour-grey", "e => e.style.clipPath")

    # Change an option: the colour frame is rendered again, and differs; the grey one stays.
    page.fill("#render-size", "32")
    page.press("#render-size", "Tab")
    colour2 = wait_picture(page, "#colour", not_digest=colour1)
    assert colour2 != colour1 and digest(page, "#grey") == grey1
    page.wait_for_function(
        "() => document.getElementById('command').textContent.includes('--render-size 32')"
    )

    # The speed presets follow the codec: x264's listed, none for FFV1; a chosen one is in the command.
    options = page.eval_on_selector_all("#preset option", "os => os.map(o => o.value)")
    assert options[0] == "" and "veryfast" in options and "medium" in options
    page.select_option("#codec", "ffv1")
    assert page.eval_on_selector("#preset", "e => e.disabled")
    page.select_option("#codec", "libx264")
    page.select_option("#preset", "faster")
    page.wait_for_function("() => document.getElementById('command').textContent.includes('--preset faster')")
    page.select_option("#preset", "")
    page.wait_for_function("() => !document.getElementById('command').textContent.includes('--preset')")

    # Place a colour hint on the picture, and export the hints file.
    page.click("#hint-tool")
    box = page.locator("#colour-frame").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
    page.wait_for_selector("#hint-list li")
    wait_picture(page, "#colour", not_digest=colour2)  # the frame changes with the hint
    with page.expect_download() as dl:
        page.click("#hint-export")
    hints = json.loads(Path(dl.value.path()).read_text())
    assert dl.value.suggested_filename == "clip.hints.json"
    assert len(hints) == 1 and hints[0]["units"] == "fraction" and hints[0]["time"] == pytest.approx(0.5)
    assert hints[0]["point"] == [pytest.approx(0.25, abs=0.02), pytest.approx(0.5, abs=0.02)]
    page.click("#hint-clear")
    page.click("#hint-tool")

    # Render half a second: progress to 100 %, a playable result, a download.
    page.fill("#start", "0.25")
    page.fill("#duration", "0.5")
    page.click("#render")
    page.wait_for_selector("#progress-text[data-state=done]")
    assert page.get_attribute("#progress-text", "data-percent") == "100"
    assert page.eval_on_selector("#progress", "e => e.value") == 100
    assert "12/12 frames" in page.inner_text("#progress-text")
    page.wait_for_function(
        "() => document.getElementById('result-video').readyState >= 1"
    )  # the browser plays it
    assert page.eval_on_selector("#result-video", "v => v.duration") > 0.4
    assert "--start 0.25 --duration 0.5" in page.inner_text("#command")
    with page.expect_download() as dl:
        page.click("#download")
    assert dl.value.suggested_filename == "clip_colour.mp4"
    got = tmp_path / "got.mp4"
    dl.value.save_as(got)
    with av.open(str(got)) as f:
        assert sum(1 for _ in f.decode(video=0)) == 12
    with av.open(str(got)) as f:
        assert [s.type for s in f.streams] == ["video", "audio"]  # the sound came along
    assert not errors, errors
    page.close()


def test_the_page_refuses_a_visit_without_the_token(browser: Any, served: Served) -> None:
    page = browser.new_page()
    response = page.goto(served.url.split("?")[0])
    assert response.status == 403 and "token" in page.inner_text("body")
    page.close()


def _shrink_png(path: Path) -> None:
    """A screenshot as a 256-colour PNG (a fifth of the size), where Pillow is at hand."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
        )
    small.save(path, optimize=True)


@pytest.mark.skipif(
    not os.environ.get("VIDCOLOR_SCREENSHOTS"), reason="set VIDCOLOR_SCREENSHOTS=DIR to take them"
)
def test_screenshots_for_the_docs(browser: Any, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """The screenshots of docs/preview.md, on the bundled sample (VIDCOLOR_MODEL: a model name or
    checkpoint file to show; default the tiny untrained one)."""
    out = Path(os.environ["VIDCOLOR_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "films"
    root.mkdir()
    shutil.copy(REPO / "samples" / "sample.mp4", root / "sample.mp4")
    model = os.environ.get("VIDCOLOR_MODEL", str(tiny_checkpoint))
    if Path(
        model
    ).is_file():  # a checkpoint sits in the folder, as a user's would: the page names it as typed
        shutil.copy(model, root / "colorizer.pt")
        model = "colorizer.pt"
    s = Served(root, model, device="auto", initial="sample.mp4")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(STEP_MS)
        page.goto(s.url)
        page.wait_for_selector("body[data-ready='1']", state="attached")
        wait_picture(page, "#colour", t=0)
        set_value(page, "#time", "2.5", "input")
        wait_picture(page, "#grey", t=2.5)
        before = wait_picture(page, "#colour", t=2.5)
        page.wait_for_function(
            "() => document.getElementById('cuts-label').textContent.includes('scene cut')"
        )
        set_value(page, "#split", "25", "input")
        page.click("#hint-tool")
        set_value(page, "#hint-colour", "#c98a86", "input")  # a pink nose
        page.fill("#hint-radius", "25")
        box = page.locator("#colour-frame").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.84)
        page.wait_for_selector("#hint-list li")
        wait_picture(page, "#colour", not_digest=before)
        page.screenshot(path=str(out / "preview-page.png"))
        page.click("#hint-clear")
        page.fill("#start", "2")
        page.fill("#duration", "1")
        page.click("#render")
        page.wait_for_selector("#progress-text[data-state=done]")
        page.wait_for_function("() => document.getElementById('result-video').readyState >= 2")
        page.locator("#controls").screenshot(path=str(out / "preview-render.png"))
        page.close()
    finally:
        s.stop()
    for name in ("preview-page.png", "preview-render.png"):
        _shrink_png(out / name)
