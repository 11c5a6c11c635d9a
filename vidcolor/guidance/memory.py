"""A shot remembers its hinted frames: each frame hints were placed on, once coloured, becomes a
reference for the rest of the shot.

Hints are tracked as points (guidance/track.py), and points are lost: in a zoom or a pan the
hinted parts leave the picture or change too much to be followed, and new parts of the same
surfaces come into view. The frame the hints were placed on, as the guidance coloured it, shows
how the user wanted the whole picture to look; so it is matched against the later frames of its
shot exactly as a reference still is (guidance/reference.py: per 16-pixel cell, the encoder's
descriptors, the most similar cell's colour line ab = A * L + B applied to the frame's own L,
weighted by a confidence that grows with the similarity). The hints still live then pull and
spread on top, and the spread trusts the remembered colour as it trusts a reference's
(``MEMORY_PRIOR``), by the match's confidence. A scene cut forgets everything; a frame that a
user's reference still covers is left to that reference.

The remembered colours are cell lines interpolated between cell centres, which greys the edges
between surfaces, so they are taken with a chroma gain (``MEMORY_GAIN``). Measured on
../shared/data/eval/videos turned grey, 10 true-colour hints per shot, whole clips, shipped model
(``vidcolor eval --data ../shared/data/eval/videos --hints-from-truth 10``; CIEDE2000 as a
fraction of the grey baseline's, colourfulness as a fraction of the truth's): without the
memory 0.594x / 0.760x; with it, gain 1.0 0.569x / 0.725x, 1.2 0.584x / 0.811x, 1.4 0.603x /
0.892x. Raising the model's own colour instead, before the memory draws on it, did not restore
the colourfulness (gain 1.2: 0.575x / 0.733x; 1.3: 0.576x / 0.736x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vidcolor.guidance.reference import best_match, blend_matched, cell_models

MEMORY = True  # whether a shot remembers its hinted frames
MEMORY_LOW = 0.5  # cosine similarity to the remembered frame's best cell below which nothing is taken ...
MEMORY_HIGH = 0.7  # ... and from which its colour is taken fully
MEMORY_GAIN = 1.2  # chroma gain on the remembered colours
MEMORY_PRIOR = 5.0  # the model's weight in the hints' soft spread where the memory matched fully
MEMORY_FRAMES = 4  # hinted frames a shot remembers (the oldest is forgotten first)


@dataclass
class _Remembered:
    desc: torch.Tensor  # (M, D) unit descriptors of its cells
    lines: torch.Tensor  # (M, 4) per cell: ab = A * L + B as (A_a, A_b, B_a, B_b)


class ShotMemory:
    """The coloured frames of one shot that hints were placed on, to colour its later frames."""

    def __init__(self) -> None:
        self.frames: list[_Remembered] = []
        self._all: _Remembered | None = None  # the frames' cells together, as recall reads them

    def forget(self) -> None:
        """A new shot: nothing from the last one applies."""
        self.frames.clear()
        self._all = None

    def remember(self, desc: torch.Tensor, L: np.ndarray, ab: np.ndarray) -> None:
        """Keep a coloured frame: ``desc`` (hc*wc, D) its cell descriptors, ``L`` (h, w) its CIE L
        and ``ab`` (2, h, w) its guided a*b*, float32, over the picture area."""
        lab = np.concatenate([L[None], ab]).transpose(1, 2, 0)
        self.frames.append(_Remembered(desc, cell_models(lab).to(desc.device)))
        del self.frames[:-MEMORY_FRAMES]
        self._all = _Remembered(
            torch.cat([f.desc for f in self.frames]), torch.cat([f.lines for f in self.frames])
        )

    def recall(
        self, desc: torch.Tensor, L: np.ndarray, ab: np.ndarray, cells: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``ab`` (2, h, w) of a later frame of the shot, drawn toward the remembered colours where
        its cells (``desc`` (hc*wc, D) on the ``cells`` = (hc, wc) grid) look like theirs, and how
        confident that is per pixel (h, w) in [0, 1]. Returns (``ab``, None) when nothing is
        remembered, else (a new array, the confidence)."""
        if self._all is None:
            return ab, None
        matched, conf = best_match(desc, self._all.desc, self._all.lines, cells, MEMORY_LOW, MEMORY_HIGH)
        return blend_matched(ab, L, matched * MEMORY_GAIN, conf)
