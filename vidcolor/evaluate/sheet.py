"""Contact sheets: a grid of thumbnails, one row per sample, one column per rendering (grey, each
colorizer, ground truth), written as a PNG to look at results side by side.

Layout (pixels): a header band of ``HEADER_H`` with the column labels, then per row a title band of
``TITLE_H`` and the thumbnails, ``thumb_height`` tall, followed by ``GAP``. Every cell is as wide as
the widest thumbnail of the sheet; narrower thumbnails are centred in their cell.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidcolor.durable import write_atomic

GAP = 8  # px between cells and around the grid
HEADER_H = 28  # px, band with the column labels
TITLE_H = 22  # px, band with each row's title above its thumbnails
BACKGROUND = (24, 24, 24)  # RGB
TEXT_COLOUR = (235, 235, 235)  # RGB
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.5
_FONT_THICKNESS = 1


def thumbnail(img: np.ndarray, height: int) -> np.ndarray:
    """Scale an image to ``height`` rows, keeping its aspect ratio.

    img: uint8 (H, W) grey or (H, W, 3) RGB. Returns uint8 (height, w, 3) RGB, w = round(W*height/H)
    (at least 1).
    """
    x = np.asarray(img)
    if x.dtype != np.uint8 or not (x.ndim == 2 or (x.ndim == 3 and x.shape[2] == 3)):
        raise ValueError(f"thumbnail needs uint8 (H, W) or (H, W, 3), got {x.dtype} {x.shape}")
    if x.ndim == 2:
        x = np.repeat(x[:, :, None], 3, axis=2)
    h, w = x.shape[:2]
    tw = max(1, round(w * height / h))
    # INTER_AREA averages when shrinking (no aliasing); it is also fine for the rare enlargement.
    return cv2.resize(x, (tw, height), interpolation=cv2.INTER_AREA)


def sheet_size(n_rows: int, n_cols: int, cell_width: int, thumb_height: int) -> tuple[int, int]:
    """(width, height) in pixels of a sheet with this grid (see the module docstring)."""
    width = GAP + n_cols * (cell_width + GAP)
    height = HEADER_H + n_rows * (TITLE_H + thumb_height + GAP)
    return width, height


def _put_text(canvas: np.ndarray, text: str, x: int, y_base: int, max_width: int) -> None:
    """Draw ``text`` with its baseline at y_base, cut with '...' to fit ``max_width`` pixels."""

    def width(s: str) -> int:
        return int(cv2.getTextSize(s, _FONT, _FONT_SCALE, _FONT_THICKNESS)[0][0])

    if width(text) > max_width:
        while text and width(text + "...") > max_width:
            text = text[:-1]
        text += "..."
    # cv2 draws only ASCII glyphs; anything else would come out as '?'.
    text = text.encode("ascii", "replace").decode("ascii")
    cv2.putText(canvas, text, (x, y_base), _FONT, _FONT_SCALE, TEXT_COLOUR, _FONT_THICKNESS, cv2.LINE_AA)


def render_sheet(
    rows: list[tuple[str, list[np.ndarray]]], columns: list[str], thumb_height: int = 160
) -> np.ndarray:
    """Compose the sheet in memory: uint8 (H, W, 3) RGB of size :func:`sheet_size`.

    rows: (title, images) per sample, images uint8 (H, W) or (H, W, 3) RGB, one per column in the
    order of ``columns``.
    """
    if thumb_height < 8:
        raise ValueError(f"thumb_height must be at least 8 px, got {thumb_height}")
    for title, images in rows:
        if len(images) != len(columns):
            raise ValueError(f"row {title!r} has {len(images)} images for {len(columns)} columns")
    thumbs = [[thumbnail(im, thumb_height) for im in images] for _, images in rows]
    cell_w = max((t.shape[1] for r in thumbs for t in r), default=thumb_height)
    width, height = sheet_size(len(rows), len(columns), cell_w, thumb_height)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND

    for c, label in enumerate(columns):
        _put_text(canvas, label, GAP + c * (cell_w + GAP), HEADER_H - 9, cell_w)
    for r, (title, _) in enumerate(rows):
        y0 = HEADER_H + r * (TITLE_H + thumb_height + GAP)
        _put_text(canvas, title, GAP, y0 + TITLE_H - 7, width - 2 * GAP)
        for c, t in enumerate(thumbs[r]):
            x0 = GAP + c * (cell_w + GAP) + (cell_w - t.shape[1]) // 2
            canvas[y0 + TITLE_H : y0 + TITLE_H + thumb_height, x0 : x0 + t.shape[1]] = t
    return canvas


def contact_sheet(
    rows: list[tuple[str, list[np.ndarray]]],
    columns: list[str],
    path: Path,
    thumb_height: int = 160,
) -> tuple[int, int]:
    """Write a contact sheet PNG to ``path`` (atomically) and return its (width, height) in pixels.

    rows: (title, images) per sample; images uint8 (H, W) grey or (H, W, 3) RGB, one per column, in
    the order of ``columns`` (e.g. ["grey", "ours", "truth"]). Thumbnails are ``thumb_height`` px tall.
    """
    canvas = render_sheet(rows, columns, thumb_height)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cv2 could not encode the contact sheet as PNG")
    write_atomic(Path(path), buf.tobytes())
    return canvas.shape[1], canvas.shape[0]
