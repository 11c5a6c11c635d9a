"""The evaluation driver on tiny synthetic media: two images and a ten-frame clip."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidcolor.errors import InputError, UsageError
from vidcolor.evaluate import run, sheet

CLIP_FRAMES = 10
THUMB = 40


def _colour_image(w: int, h: int, seed: int) -> np.ndarray:
    """Smooth colour gradients plus a coloured square: RGB uint8 (h, w, 3)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin((x + y + seed * 7) / 9)], axis=-1)
    img[h // 4 : h // 2, w // 4 : w // 2] = (220, 40 + seed * 30, 60)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_clip(path: Path, w: int = 96, h: int = 48, n: int = CLIP_FRAMES) -> None:
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        for t in range(n):
            img = np.roll(_colour_image(w, h, 0), 3 * t, axis=1)  # a pan
            img[..., 2] = np.uint8(40 + 15 * t)  # and a blue that drifts: CDC of the truth > 0
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    d = tmp_path / "truth"
    d.mkdir()
    for name, (w, h, seed) in {"a.png": (64, 48, 1), "b.png": (80, 60, 2)}.items():
        cv2.imwrite(str(d / name), cv2.cvtColor(_colour_image(w, h, seed), cv2.COLOR_RGB2BGR))
    _write_clip(d / "clip.mp4")
    (d / "notes.txt").write_text("not media: ignored in a folder")
    return d


def _key(grey: np.ndarray) -> str:
    return hashlib.sha1(grey.tobytes() + str(grey.shape).encode()).hexdigest()


def _oracle(folder: Path) -> run.ColorizeFn:
    """A colorizer that knows the answer: it returns the truth frame of each grey frame."""
    table = {_key(run.to_grey(rgb)): rgb for item in run.discover([folder]) for rgb in run.iter_truth(item)}

    def colorize(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for y in frames:
            yield table[_key(y)]

    return colorize


def _batched(batch: int) -> run.ColorizeFn:
    """A colorizer that reads ``batch`` frames ahead before answering (a stand-in for the pipeline)."""

    def colorize(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        buf: list[np.ndarray] = []
        for y in frames:
            buf.append(y)
            if len(buf) == batch:
                yield from (cv2.applyColorMap(g, cv2.COLORMAP_JET) for g in buf)
                buf.clear()
        yield from (cv2.applyColorMap(g, cv2.COLORMAP_JET) for g in buf)

    return colorize


# ------------------------------------------------------------------------------------ driver


def test_evaluate_scores_truth_and_grey(media: Path, tmp_path: Path) -> None:
    out_json, sheet_png = tmp_path / "out" / "eval.json", tmp_path / "out" / "sheet.png"
    rep = run.evaluate(
        [media], {"oracle": _oracle(media)}, out_json=out_json, sheet=sheet_png, thumb_height=THUMB
    )
    assert json.loads(out_json.read_text()) == rep
    for key in ("timestamp", "vidcolor_version", "machine", "settings", "data", "items", "aggregate"):
        assert key in rep
    assert rep["machine"]["cpu_count"] and rep["machine"]["torch"]
    assert rep["data"] == [str(media)]
    assert rep["colorizers"] == ["grey", "oracle"]

    items = {it["name"]: it for it in rep["items"]}
    assert sorted(items) == ["a.png", "b.png", "clip.mp4"]  # the .txt is not media
    assert [items[n]["frames"] for n in ("a.png", "b.png", "clip.mp4")] == [1, 1, CLIP_FRAMES]
    assert (items["b.png"]["width"], items["b.png"]["height"]) == (80, 60)

    for it in rep["items"]:
        oracle, grey, truth = it["colorizers"]["oracle"], it["colorizers"]["grey"], it["truth"]
        assert oracle["ciede2000"] == 0.0 and oracle["ciede2000_vs_grey"] == 0.0
        assert oracle["psnr_rgb"] == run.PSNR_CAP_DB and oracle["psnr_ab"] == run.PSNR_CAP_DB
        assert oracle["colourfulness"] == pytest.approx(truth["colourfulness"])
        assert oracle["colourfulness_vs_truth"] == pytest.approx(1.0)
        assert grey["ciede2000"] > 1.0 and grey["ciede2000_vs_grey"] == 1.0
        assert grey["colourfulness"] == 0.0 and grey["colourfulness_vs_truth"] == 0.0
        assert grey["psnr_ab"] < oracle["psnr_ab"]
        if it["kind"] == "video":
            assert truth["cdc"] > 0.0 and oracle["cdc_vs_truth"] == pytest.approx(1.0)
        else:
            assert truth["cdc"] is None and oracle["cdc"] is None and oracle["cdc_vs_truth"] is None

    videos, images = rep["aggregate"]["videos"], rep["aggregate"]["images"]
    assert (videos["items"], videos["frames"], images["items"], images["frames"]) == (1, CLIP_FRAMES, 2, 2)
    mean_grey = np.mean([items[n]["colorizers"]["grey"]["ciede2000"] for n in ("a.png", "b.png")])
    assert images["colorizers"]["grey"]["ciede2000"] == pytest.approx(mean_grey)
    assert images["colorizers"]["oracle"]["ciede2000_vs_grey"] == 0.0
    assert videos["colorizers"]["oracle"]["cdc_vs_truth"] == pytest.approx(1.0)
    assert videos["colorizers"]["grey"]["ciede2000_vs_grey"] == 1.0

    # One row per item, columns grey | oracle | truth; cells as wide as the widest thumbnail (the clip).
    png = cv2.imread(str(sheet_png))
    assert png is not None
    cell_w = round(96 * THUMB / 48)
    assert (png.shape[1], png.shape[0]) == sheet.sheet_size(3, 3, cell_w, THUMB)
    assert not list(sheet_png.parent.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_evaluate_max_frames_render_size_and_lookahead(media: Path) -> None:
    clip = media / "clip.mp4"
    rep = run.evaluate(
        [clip], {"b3": _batched(3), "b1": _batched(1)}, out_json=None, max_frames=4, render_size=24
    )
    (it,) = rep["items"]
    assert it["frames"] == 4 and rep["aggregate"]["images"] is None
    assert (it["width"], it["height"]) == (48, 24)  # short side shrunk to 24, aspect kept
    b3, b1 = it["colorizers"]["b3"], it["colorizers"]["b1"]
    # Reading ahead changes nothing: frames are matched to their own truth.
    for k in ("psnr_rgb", "psnr_ab", "ciede2000", "colourfulness", "cdc"):
        assert b3[k] == pytest.approx(b1[k])
    assert b3["ciede2000"] > 0 and b3["seconds"] >= 0


def test_colorizer_that_drops_a_frame_is_an_error(media: Path) -> None:
    def drops(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for i, y in enumerate(frames):
            if i != 3:
                yield np.repeat(y[:, :, None], 3, axis=2)

    with pytest.raises(ValueError, match="returned 9 frames .* but read 10"):
        run.evaluate([media / "clip.mp4"], {"drops": drops}, out_json=None)


def test_colorizer_that_stops_reading_is_an_error(media: Path) -> None:
    def stops(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        y = next(frames)
        yield np.repeat(y[:, :, None], 3, axis=2)

    with pytest.raises(ValueError, match="stopped reading"):
        run.evaluate([media / "clip.mp4"], {"stops": stops}, out_json=None)


def test_colorizer_of_wrong_shape_is_an_error(media: Path) -> None:
    with pytest.raises(ValueError, match="expected uint8"):
        run.evaluate([media / "a.png"], {"bad": run.per_frame(lambda y: y)}, out_json=None)


def test_bad_arguments(media: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        run.evaluate([media], {"grey": run.grey_colorizer}, out_json=None)
    with pytest.raises(UsageError):
        run.evaluate([media], {}, out_json=None, max_frames=0)
    with pytest.raises(InputError, match="no such path"):
        run.evaluate([tmp_path / "missing"], {}, out_json=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="none in"):
        run.evaluate([tmp_path / "empty"], {}, out_json=None)
    with pytest.raises(InputError):
        run.evaluate([media / "notes.txt"], {}, out_json=None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(InputError):
        run.evaluate([broken], {}, out_json=None)


# ------------------------------------------------------------------------------------ sheet


def test_contact_sheet_size_and_content(tmp_path: Path) -> None:
    wide = _colour_image(100, 50, 0)
    tall = _colour_image(30, 60, 1)
    rows = [("wide", [wide[..., 0], wide]), ("a tall one with a long title", [tall[..., 0], tall])]
    path = tmp_path / "s.png"
    size = sheet.contact_sheet(rows, ["grey", "truth"], path, thumb_height=40)
    assert size == sheet.sheet_size(2, 2, 80, 40)  # the wide image is 80 px at 40 px tall
    bgr = cv2.imread(str(path))
    assert bgr is not None
    png = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert (png.shape[1], png.shape[0]) == size
    # The truth thumbnail of the first row sits in its cell, below the header and the title band.
    y0, x0 = sheet.HEADER_H + sheet.TITLE_H, sheet.GAP + 80 + sheet.GAP
    np.testing.assert_allclose(png[y0 : y0 + 40, x0 : x0 + 80].astype(int), sheet.thumbnail(wide, 40), atol=1)
    assert (png[: sheet.HEADER_H] != sheet.BACKGROUND).any()  # the labels are drawn
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temporary
    with pytest.raises(ValueError, match="images for 2 columns"):
        sheet.contact_sheet([("x", [wide])], ["grey", "truth"], path)


# ------------------------------------------------------------------------------------ real data

EVAL_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eval"


@pytest.mark.integration
@pytest.mark.skipif(not EVAL_DATA.is_dir(), reason="../shared/data/eval is absent")
def test_evaluate_on_shared_eval_data(tmp_path: Path) -> None:
    clip = EVAL_DATA / "videos" / "bikes_scenecut.mp4"
    image = EVAL_DATA / "images" / "04_animal_cat_chelsea.jpg"
    rep = run.evaluate([clip, image], {}, out_json=tmp_path / "e.json", max_frames=6, render_size=128)
    video, still = rep["items"]
    assert (video["frames"], video["height"], still["frames"]) == (6, 128, 1)
    for it in rep["items"]:
        # Real colour photos: leaving them grey is clearly visible, and the truth has colour.
        assert it["colorizers"]["grey"]["ciede2000"] > 2.3
        assert it["truth"]["colourfulness"] > 10.0
    assert video["truth"]["cdc"] > 0.0


def test_eval_command_scores_a_compared_model_beside_the_first(
    media: Path, tmp_path: Path, tiny_model_path: Path
) -> None:
    from click.testing import CliRunner

    from vidcolor.cli import main

    other = tmp_path / "before" / tiny_model_path.name
    other.parent.mkdir()
    other.write_bytes(tiny_model_path.read_bytes())
    out = tmp_path / "eval.json"
    argv = [
        "eval",
        "--data",
        str(media),
        "--model",
        str(tiny_model_path),
        "--compare-model",
        str(other),
        "--out",
        str(out),
        "--max-frames",
        "2",
        "--threads",
        "1",
        "-q",
    ]
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 0, r.output
    names = set(json.loads(out.read_text())["aggregate"]["videos"]["colorizers"])
    # The same weights under two files of one name: both scored, the second told apart by its folder.
    assert names - {"grey", "truth"} == {"tiny/smooth0.5", "before/tiny:tiny/smooth0.5"}
