"""The films and stills the page opens: what they are, the grey frames around a time, and their cuts.

Frames come from the pipeline's own stage [1] (:func:`vidcolor.media.decode.decode_frames`) for
films and from :func:`vidcolor.media.image_io.read_image` for stills, exactly as ``vidcolor
colorize`` reads them. Scene cuts are found by the smoother's own
:class:`~vidcolor.stages.scene_cut.SceneCutDetector`, in a background thread per film, so the
page can mark them on its timeline while the user works.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vidcolor.frames import FALLBACK_RATE, SourceInfo
from vidcolor.media.decode import decode_frames
from vidcolor.media.image_io import read_image
from vidcolor.media.probe import probe
from vidcolor.media.window import section_frames
from vidcolor.stages.batch_l import y_to_l
from vidcolor.stages.scene_cut import CUT_WIDTH, SceneCutDetector, small_luma

LOOK_BACK_S = 10.0  # seconds decoded before the end when a film's stated duration overshoots it
MAX_OPEN = 8  # sources kept probed (and cut-scanned) at once; the oldest are forgotten
SCAN_NICE = 10  # the scene-cut scan runs at this nice value: it must not slow the page's frames


@dataclass(frozen=True)
class Window:
    """Grey frames around the wanted one, ready for ``colorize_frames``.

    ``frames``: full-range luma planes (H, W), uint8 or uint16 holding ``bit_depth`` bits, in
    order; ``times``: their presentation times in seconds from the start of the film; ``target``:
    position of the wanted frame in ``frames``; ``number``: its frame number from the start
    (exact for constant-rate films, from the time otherwise).
    """

    frames: list[np.ndarray]
    times: list[float]
    target: int
    number: int
    bit_depth: int

    @property
    def time(self) -> float:
        """Seconds from the start of the film to the wanted frame."""
        return self.times[self.target]


@dataclass
class CutScan:
    """Progress of the scene-cut scan of one film; ``cuts`` are the times (s) where shots start."""

    cuts: list[float] = field(default_factory=list)
    seconds_done: float = 0.0
    done: bool = False
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)


def full_range(y: np.ndarray, bit_depth: int, is_full: bool) -> np.ndarray:
    """Limited-range ("tv") luma expanded to full range, same dtype; full range comes back as is.

    ``colorize_frames`` takes full-range luma, and a browser shows full-range RGB; a player shows
    a limited-range film's output expanded the same way, so the preview looks as the film will.
    """
    if is_full:
        return y
    top = (1 << bit_depth) - 1
    scale = float(1 << (bit_depth - 8))
    lut = np.clip(np.rint((np.arange(top + 1) - 16.0 * scale) * top / (219.0 * scale)), 0, top)
    return lut.astype(y.dtype)[np.minimum(y, top)]


class Source:
    """One opened file: a film or a still, with what the page needs to know about it."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name  # as the page names it: relative to the preview folder
        self.info: SourceInfo = probe(path)
        self.scan = CutScan()
        v = self.info.video
        self.rate = v.mean_rate or FALLBACK_RATE

    @property
    def is_still(self) -> bool:
        return self.info.is_still

    @property
    def full_range(self) -> bool:
        # The film pipeline takes everything but "pc" as limited range; so does the preview.
        return self.info.video.color_range == "pc"

    def frame_count(self) -> int:
        """Frames in the film (from the container, else duration x rate); 1 for a still."""
        if self.is_still:
            return 1
        v = self.info.video
        if v.frames:
            return v.frames
        return max(1, int(round((self.duration() or 0.0) * float(self.rate))))

    def duration(self) -> float | None:
        v = self.info.video
        return v.duration if v.duration else self.info.duration

    def describe(self) -> dict[str, object]:
        """The page's view of the source (JSON-ready)."""
        v = self.info.video
        rotation = int(round(v.rotation / 90.0)) % 4
        sar = float(v.sar) if v.sar else 1.0
        w, h = (v.width * sar, v.height) if rotation % 2 == 0 else (v.height, v.width * sar)
        return {
            "path": self.name,
            "kind": "still" if self.is_still else "film",
            "width": v.width,
            "height": v.height,
            "display_aspect": w / h,
            "rotation": rotation,  # quarter turns counter-clockwise from the stored picture to the shown one
            "bit_depth": v.bit_depth,
            "codec": v.codec,
            "duration": 0.0 if self.is_still else (self.duration() or 0.0),
            "rate": float(self.rate),
            "frames": self.frame_count(),
            "streams": [
                f"{s.kind} {s.codec}" + (f" ({s.language})" if s.language else "") for s in self.info.others
            ],
        }

    def window(self, t: float, context: int) -> Window:
        """The frame shown at time ``t`` (s), with up to ``context`` frames before and after it.

        The frame shown at ``t`` is the one nearest to ``t`` (for a constant-rate film, frame
        ``round(t * rate)``); past the end it is the last frame.
        """
        if self.is_still:
            y, bits = read_image(self.path)
            return Window([y], [0.0], 0, 0, bits)
        v = self.info.video
        rate = float(self.rate)
        origin = v.start_time or 0.0
        half = 0.5 / rate
        length = self.duration()
        if length:
            t = min(t, max(0.0, length - half))  # past the end: the last frame
        start = max(0.0, t - (context + 1) / rate)
        before, after = self._read_around(t, start, context, half, origin)
        if not before and start > 0:  # a duration that overstates the film: look further back
            before, after = self._read_around(t, max(0.0, start - LOOK_BACK_S), context, half, origin)
        if not before:
            raise EmptyFilm(self.name)
        both = before + after
        return Window(
            [y for _, y in both],
            [w for w, _ in both],
            len(before) - 1,
            int(round(before[-1][0] * rate)),
            v.bit_depth,
        )

    def _read_around(
        self, t: float, start: float, context: int, half: float, origin: float
    ) -> tuple[list[tuple[float, np.ndarray]], list[tuple[float, np.ndarray]]]:
        """(time, luma) of up to ``context`` + 1 frames up to ``t`` and ``context`` after it."""
        v = self.info.video
        before: list[tuple[float, np.ndarray]] = []
        after: list[tuple[float, np.ndarray]] = []
        for f in decode_frames(self.path, self.info, start=start or None):
            when = float(f.pts * f.time_base) - origin
            y = full_range(f.y, v.bit_depth, self.full_range)
            if when <= t + half or not before:
                before.append((when, y))
                del before[: -(context + 1)]
            elif len(after) < context:
                after.append((when, y))
            else:
                break
        return before, after

    def scan_cuts(self) -> None:
        """Find the scene cuts of the film (runs in a thread; fills ``self.scan`` as it goes)."""
        scan = self.scan
        if self.is_still:
            scan.done = True
            return
        v = self.info.video
        origin = v.start_time or 0.0
        detector = SceneCutDetector()
        _lower_priority()
        try:
            for f in decode_frames(self.path, self.info, skip_corrupt=True, threads=1):
                if scan.stop.is_set():
                    return
                when = float(f.pts * f.time_base) - origin
                y = f.y
                if y.shape[1] > CUT_WIDTH:  # shrink first: the detector looks at CUT_WIDTH pixels only
                    height = max(1, round(y.shape[0] * CUT_WIDTH / y.shape[1]))
                    y = cv2.resize(y, (CUT_WIDTH, height), interpolation=cv2.INTER_AREA)
                if detector.is_cut(small_luma(y_to_l(y, v.bit_depth, self.full_range))):
                    scan.cuts.append(round(when, 6))
                scan.seconds_done = when
        except Exception as exc:  # the page shows it; a scan that fails must not stop the server
            scan.error = str(exc)
        finally:
            scan.done = True


def _lower_priority() -> None:
    """Let the calling thread (and the decoder threads it starts) yield the CPU to the page's requests.

    On Linux a nice value belongs to a thread, so this leaves the server's other threads alone;
    elsewhere it is skipped.
    """
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SCAN_NICE)
        except OSError:
            pass


class EmptyFilm(Exception):
    """A film that decodes to no frame at all."""


class Sources:
    """The sources the page has opened, by resolved path; at most ``MAX_OPEN`` are kept."""

    def __init__(self) -> None:
        self._open: OrderedDict[tuple[str, int, int], Source] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, name: str) -> Source:
        """The source at ``path`` (probed once per version of the file; its cut scan is started)."""
        st = os.stat(path)
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            src = self._open.get(key)
            if src is not None:
                self._open.move_to_end(key)
                return src
        src = Source(path, name)  # probe outside the lock: a slow file must not block the others
        with self._lock:
            if key in self._open:
                return self._open[key]
            self._open[key] = src
            while len(self._open) > MAX_OPEN:
                _, old = self._open.popitem(last=False)
                old.scan.stop.set()
        threading.Thread(target=src.scan_cuts, name=f"cuts:{name}", daemon=True).start()
        return src

    def close(self) -> None:
        with self._lock:
            for src in self._open.values():
                src.scan.stop.set()
            self._open.clear()


def expected_frames(src: Source, start: float | None, duration: float | None) -> int:
    """Frames a render of [start, start + duration) will write (for progress and ETA)."""
    return max(1, section_frames(src.frame_count(), float(src.rate), start, duration) or 0)
