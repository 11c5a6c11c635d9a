"""Shot by shot, the stills of a reference folder that match the shot best (``--reference-dir``).

When a shot starts (a scene cut, or the first frame), its first ``SHOT_FRAMES`` frames (as many
as the batch holds before the next cut) are described as the stills of the folder are
(guidance/library.py: the encoder's pooled embedding and the coarse layout of L, from the
features the model computes anyway), their mean is compared with every still's descriptor by
cosine similarity (the match score), and the shot takes up to ``CHOSEN_MAX`` stills: the best,
and those within ``MATCH_MARGIN`` of it, all at ``MATCH_MIN`` or above. A shot whose best
score is below ``MATCH_MIN`` keeps its automatic colour. The chosen stills then colour the
shot's frames exactly as ``--reference`` stills do (guidance/reference.py, cell by cell, where
the frame's content matches theirs); an explicit ``--reference`` takes precedence over the
choice in its time range, and ``--drop-reference`` keeps a still out of the choice (in a range).

``MATCH_MIN`` was chosen on the training corpus, never on the evaluation data: 300 corpus
photographs, each described as it is and as a variant (a 75-92% crop at a random place, gamma
0.8-1.25, gain 0.85-1.1, standing in for another frame of the same shot). At 0.80 the variant
chose its own original for 94% of the queries, while the best of the 299 unrelated photographs
passed 0.80 for 6% of them (0.75: 97% / 10%; 0.85: 87% / 3%). The margin keeps an unrelated still
from joining a right one (the right one scored 0.31 above the best unrelated one, in the median).

A chosen still is read and prepared (its cells' descriptors and colour lines) once and kept for
the next shots while it is among the ``PREPARED_KEEP`` used last; the index holds descriptors only.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from vidcolor.durable import write_atomic
from vidcolor.errors import UsageError
from vidcolor.guidance.library import StillIndex, check_folder, global_descriptors, index_folder
from vidcolor.guidance.reference import PreparedStill, SeenBatch, load_rgb, prepare_still
from vidcolor.media.atomic import check_destination
from vidcolor.references import Reference

if TYPE_CHECKING:
    from vidcolor.stages.model_step import ModelStep

MATCH_MIN = 0.80  # match score (cosine) below which a shot keeps its automatic colour
MATCH_MARGIN = 0.05  # stills within this of the shot's best match are chosen with it ...
CHOSEN_MAX = 3  # ... up to this many
SHOT_FRAMES = 4  # frames from a shot's start that describe it
PREPARED_KEEP = 8  # prepared stills kept for the next shots


@dataclass
class ShotChoice:
    """What one shot was given: its first frame (0-based, of the frames colorized) and time (s)."""

    shot: int
    first_frame: int
    start: float
    last: float
    frames: int = 0
    stills: list[tuple[str, float]] = field(default_factory=list)  # (name in the folder, score)
    best: tuple[str, float] | None = None  # the best match, chosen or not

    def record(self, folder: Path) -> dict[str, Any]:
        return {
            "shot": self.shot,
            "first_frame": self.first_frame,
            "frames": self.frames,
            "start_s": round(self.start, 4),
            "last_s": round(self.last, 4),
            "automatic": not self.stills,
            "stills": [{"name": n, "path": str(folder / n), "score": round(s, 4)} for n, s in self.stills],
            "best": None if self.best is None else {"name": self.best[0], "score": round(self.best[1], 4)},
        }

    def line(self) -> str:
        where = f"shot {self.shot} ({self.start:.2f}-{self.last:.2f} s)"
        if self.stills:
            return f"{where}: " + ", ".join(f"{n} ({s:.2f})" for n, s in self.stills)
        best = f", best {self.best[0]} ({self.best[1]:.2f})" if self.best else ""
        return f"{where}: automatic colour (no still scored {MATCH_MIN:.2f}{best})"


class ShotChooser:
    """The reference folder of a run and the choices made for its shots, in order."""

    def __init__(self, folder: str | os.PathLike[str], drop: Sequence[Reference] = ()) -> None:
        self.folder = check_folder(folder)
        self.drop = tuple(drop)
        self.index: StillIndex | None = None
        self.shots: list[ShotChoice] = []
        self.current: list[PreparedStill] = []  # the stills of the shot being coloured
        self._prepared: OrderedDict[str, PreparedStill] = OrderedDict()
        self._render = 0
        self._frames = 0  # frames seen so far

    def open(self, step: ModelStep, render: int, *, progress: bool = False) -> StillIndex:
        """The folder's index (built or brought up to date the first time)."""
        if self.index is None or self._render != render:
            self.index = index_folder(self.folder, step, render, progress=progress)
            self._render = render
            self._prepared.clear()
        return self.index

    def _dropped(self, t: float) -> set[str]:
        assert self.index is not None
        out = set()
        for r in self.drop:
            if not r.covers(t) or not isinstance(r.image, (str, Path)):
                continue
            p = Path(r.image)
            for name in self.index.names:
                if name == p.as_posix() or (self.folder / name).resolve() == p.resolve():
                    out.add(name)
        return out

    def choose(
        self, desc: torch.Tensor, t: float
    ) -> tuple[list[tuple[str, float]], tuple[str, float] | None]:
        """The stills chosen for a shot at ``t`` s described by ``desc`` (D,): (name, score) best
        first, and the best match whether chosen or not (None: nothing left to choose from)."""
        assert self.index is not None
        scores = self.index.desc @ desc.float().cpu()
        for name in self._dropped(t):
            scores[self.index.names.index(name)] = -2.0
        k = min(CHOSEN_MAX, len(scores))
        top, rows = scores.topk(k)
        if float(top[0]) <= -2.0:
            return [], None
        best = (self.index.names[int(rows[0])], float(top[0]))
        floor = max(MATCH_MIN, best[1] - MATCH_MARGIN)
        chosen = [(self.index.names[int(r)], float(s)) for s, r in zip(top, rows, strict=True) if s >= floor]
        return chosen, best

    def start_shot(self, step: ModelStep, render: int, desc: torch.Tensor, t: float, frame: int) -> None:
        """A shot starts on ``frame`` at ``t`` s, described by ``desc`` (D,): choose its stills and
        prepare them for matching."""
        self.open(step, render)
        chosen, best = self.choose(desc, t)
        self.shots.append(ShotChoice(len(self.shots) + 1, frame, t, t, stills=chosen, best=best))
        self.current = [self._prepare(step, render, name) for name, _ in chosen]

    def _prepare(self, step: ModelStep, render: int, name: str) -> PreparedStill:
        if name in self._prepared:
            self._prepared.move_to_end(name)
            return self._prepared[name]
        ref = Reference(str(self.folder / name), name=name)
        p = prepare_still(step, load_rgb(ref), render, ref)
        self._prepared[name] = p
        while len(self._prepared) > PREPARED_KEEP:
            self._prepared.popitem(last=False)
        return p

    def for_batch(self, seen: SeenBatch) -> list[list[PreparedStill]]:
        """Per frame of the batch ``seen``, the chosen stills of its shot; a shot starting in the
        batch (or the first frame of all) is described from the encoder's features and chosen
        for here."""
        batch, times, cuts = seen.batch, seen.times, seen.cuts
        gd = global_descriptors(seen.feats, torch.from_numpy(batch.L), batch.content)
        n = len(times)
        out = []
        for i, t in enumerate(times):
            if not self.shots or (cuts is not None and cuts[i]):
                j = i + 1
                while j < min(n, i + SHOT_FRAMES) and not (cuts is not None and cuts[j]):
                    j += 1
                shot = F.normalize(gd[i:j].mean(dim=0), dim=0)
                self.start_shot(seen.step, seen.render, shot, t, self._frames + i)
            self.shots[-1].frames += 1
            self.shots[-1].last = t
            out.append(list(self.current))
        self._frames += n
        return out

    def report(self) -> dict[str, Any]:
        """The choices as the ``--references-report`` JSON holds them."""
        idx = self.index
        return {
            "folder": str(self.folder),
            "stills": len(idx.names) if idx else 0,
            "cache": str(idx.cache) if idx and idx.cache else None,
            "skipped": [{"name": n, "why": w} for n, w in idx.skipped] if idx else [],
            "match_min": MATCH_MIN,
            "match_margin": MATCH_MARGIN,
            "shots": [s.record(self.folder) for s in self.shots],
        }

    def lines(self) -> list[str]:
        """The run summary's lines: the index, then which stills coloured which shot."""
        return [*(self.index.notes() if self.index else []), *(s.line() for s in self.shots)]


def check_report_path(path: Path, opts: object) -> None:
    """Refuse, before anything runs, a ``--references-report`` without a reference folder or
    where it cannot be written."""
    if not getattr(opts, "reference_dir", None):
        raise UsageError(
            "--references-report together with --reference-dir", f"only {path}", "add --reference-dir DIR"
        )
    check_destination(Path(path), overwrite=True)


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the choices (:meth:`ShotChooser.report`) as JSON, atomically."""
    write_atomic(path, json.dumps(report, indent=2) + "\n")
