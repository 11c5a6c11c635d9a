"""Check an output against its source before it is renamed into place: the output must have
exactly the source's frames and pts, and its Y plane is compared with the source's (PSNR;
infinite when bit-identical).

Two ways, the same checks:

- :class:`LiveCheck`, while a film is written (pipeline/run.py): the encoder's packets are decoded
  back on a thread of their own as they come out and compared with the luma the decode stage read
  (the Y the merge stage wrote, before any bit-depth change; with --deinterlace, the deinterlaced
  luma, so the PSNR is that of the encoding alone); the finished file's packets are then
  read without decoding for the count and the times. Nothing is decoded a second time after the
  run, so the check costs the run no time of its own where a core is free.
- :func:`verify_output`, on two finished files: both are decoded once more, side by side. For the
  join of a segmented run (no single encoder to listen to), and where the live check cannot
  decode the codec's packets.
"""

from __future__ import annotations

import math
import queue
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from itertools import zip_longest
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidcolor.errors import EncodingError
from vidcolor.frames import SourceInfo
from vidcolor.media.decode import decode_frames
from vidcolor.media.encode import OutputPlan
from vidcolor.media.probe import probe
from vidcolor.media.redecode import DecoderSetup, NoDecoder, PacketCopy, PacketDecoder, video_packet_times

#: Items (frames and packet batches) queued for the live check's thread before the encoder waits.
LIVE_QUEUE = 64


@dataclass(frozen=True)
class VerifyResult:
    frames: int
    y_psnr: float  # dB over the source's bit depth; inf when the Y planes are identical
    y_identical: bool
    shift_s: float = 0.0  # uniform shift of all streams imposed by the output container, seconds


def _same_time(pa: int, ta: Fraction, pb: int, tb: Fraction, shift: Fraction) -> bool:
    """Same pts, or, where the output container imposes its own time base (Matroska counts in
    milliseconds, MPEG-TS in 1/90000 s) or a uniform shift, the same instant to within half a tick."""
    if ta == tb and shift == 0:
        return pa == pb
    return abs(pa * ta + shift - pb * tb) <= tb / 2


def _bug(expected: str, found: str) -> EncodingError:
    return EncodingError(expected, found, "report this as a bug; the output was not kept")


def _squared_error(ya: np.ndarray, yb: np.ndarray, depth_shift: int) -> float:
    """Sum of squared differences of two luma planes, ``yb`` brought to ``ya``'s bit depth
    (``depth_shift`` = ya's bits - yb's bits)."""
    if depth_shift or ya.dtype != yb.dtype:
        a = ya.astype(np.int64)
        b = yb.astype(np.int64)
        b = b << depth_shift if depth_shift > 0 else b >> -depth_shift
        return float(((a - b) ** 2).sum())
    return float(cv2.norm(ya, yb, cv2.NORM_L2SQR))  # exact for 8- and 16-bit planes, and fast


def _psnr(se: float, pixels: int, bit_depth: int) -> float:
    peak = float((1 << bit_depth) - 1)
    mse = se / max(pixels, 1)
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _first_shift(pa: int, ta: Fraction, pb: int, tb: Fraction) -> Fraction:
    """The uniform shift the output container imposed, from the first frames' times: a container
    that cannot store negative times (Matroska, with an AAC priming packet before 0) shifts every
    stream by the same amount; sync holds, and the shift is reported."""
    shift = pb * tb - pa * ta
    return Fraction(0) if abs(shift) <= tb / 2 else shift


class LiveCheck:
    """The output checked while it is written; see the module docstring.

    The decode stage calls :meth:`decoded` with each frame's pts as read from the source; the
    encoding thread calls :meth:`expect` with each frame's source luma just before VideoWriter
    encodes it, and VideoWriter (this object is its ``sink``) sends :meth:`start` and
    :meth:`packets`; :meth:`result` is called once the file is finished, :meth:`close` in any
    case. Memory: the luma of the frames inside the encoder (its look-ahead) and a bounded queue.
    """

    def __init__(self, bit_depth: int) -> None:
        self.bit_depth = bit_depth
        self.source_pts = array("q")
        self.source_tb: Fraction | None = None
        self.unavailable: str | None = None  # why the packets could not be decoded (file check then)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(LIVE_QUEUE)
        self._error: BaseException | None = None
        self._ended = False
        self._se = 0.0
        self._pixels = 0
        self._frames = 0
        # Started now, not at the first packet: the encoder takes tens of frames before it gives
        # one, and their luma must leave the queue meanwhile.
        self._thread = threading.Thread(target=self._run, name="vidcolor-verify", daemon=True)
        self._thread.start()

    # -- the run's threads -------------------------------------------------------------------

    def decoded(self, pts: int, time_base: Fraction) -> None:
        """A frame the decode stage read (decode thread)."""
        self.source_pts.append(pts)
        self.source_tb = time_base

    def expect(self, pts: int, y: np.ndarray) -> None:
        """The source luma of the frame about to be encoded at ``pts`` (encoding thread)."""
        self._put(("frame", (pts, y)))

    def start(self, setup: DecoderSetup) -> None:
        self._put(("start", setup))

    def packets(self, packets: list[PacketCopy]) -> None:
        self._put(("packets", packets))

    def _put(self, item: tuple[str, Any]) -> None:
        while self._thread.is_alive():  # a check that stopped on an error must not block the encoder
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- the check's own thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._check()
        except NoDecoder as exc:
            self.unavailable = str(exc)
        except BaseException as exc:
            self._error = exc
        if not self._ended:  # drain, so that the encoder never waits on a check that has stopped
            while self._queue.get()[0] != "end":
                pass

    def _check(self) -> None:
        """Decode and compare until the end is read."""
        pending: dict[int, np.ndarray] = {}
        decoder: PacketDecoder | None = None
        while True:
            kind, item = self._queue.get()
            if kind == "end":
                self._ended = True
                if decoder is not None:
                    self._compare(decoder.flush(), pending, decoder)
                if pending:
                    raise _bug(f"every frame written in the output (pts {min(pending)})", "it is missing")
                return
            if kind == "frame":
                pending[item[0]] = item[1]
            elif kind == "start":
                decoder = PacketDecoder(item)
            else:
                assert decoder is not None, "packets before start"
                self._compare(decoder.decode(item), pending, decoder)

    def _compare(
        self, frames: Iterable[tuple[int, np.ndarray]], pending: dict[int, np.ndarray], decoder: PacketDecoder
    ) -> None:
        for pts, yb in frames:
            ya = pending.pop(pts, None)
            if ya is None:
                raise _bug("each output frame at a pts that was written", f"a frame at pts {pts}")
            self._se += _squared_error(ya, yb, self.bit_depth - decoder.bit_depth)
            self._pixels += ya.size
            self._frames += 1

    # -- after the run ----------------------------------------------------------------------

    def close(self) -> None:
        """End the check's thread (after the encoder is flushed, or when the run failed)."""
        if self._thread.is_alive():
            self._queue.put(("end", None))
            self._thread.join()

    def result(self, out: Path, expected_frames: int) -> VerifyResult | None:
        """The check of the finished file at ``out``; None where it must be decoded instead
        (:func:`verify_output`): its codec had no decoder here, or its packets carry no times."""
        self.close()
        if self._error is not None:
            raise self._error
        if self.unavailable is not None:
            return None
        times = video_packet_times(out)
        if times is None:
            return None
        out_pts, out_tb = times
        src_tb = self.source_tb
        if len(out_pts) != len(self.source_pts) or self._frames != len(out_pts):
            raise _bug(f"{len(self.source_pts)} frames in the output, as in the source", str(len(out_pts)))
        shift = Fraction(0)
        for n, (pa, pb) in enumerate(zip(self.source_pts, out_pts, strict=True)):
            assert src_tb is not None
            if n == 0:
                shift = _first_shift(pa, src_tb, pb, out_tb)
            if not _same_time(pa, src_tb, pb, out_tb, shift):
                raise _bug(
                    f"frame {n} of the output at {float(pa * src_tb):.6f} s (pts {pa})",
                    f"{float(pb * out_tb):.6f} s (pts {pb})",
                )
        if len(out_pts) != expected_frames:
            raise _bug(f"{expected_frames} frames in the output", str(len(out_pts)))
        psnr = _psnr(self._se, self._pixels, self.bit_depth)
        return VerifyResult(len(out_pts), psnr, self._se == 0, float(shift))


def verify_output(
    src: Path,
    out: Path,
    info: SourceInfo,
    plan: OutputPlan,
    *,
    start: float | None,
    duration: float | None,
    expected_frames: int,
) -> VerifyResult:
    out_info = probe(out)
    a = decode_frames(src, info, start=start, duration=duration, skip_corrupt=True)
    b = decode_frames(out, out_info)
    depth_shift = info.video.bit_depth - out_info.video.bit_depth
    se, n_px, n = 0.0, 0, 0
    shift_s = Fraction(0)
    for fa, fb in zip_longest(a, b):
        if fa is None or fb is None:
            rest = 1 + sum(1 for _ in (b if fa is None else a))
            src_n, out_n = (n, n + rest) if fa is None else (n + rest, n)
            raise _bug(f"{src_n} frames in the output, as in the source", str(out_n))
        if n == 0:
            shift_s = _first_shift(fa.pts, fa.time_base, fb.pts, fb.time_base)
        if not _same_time(fa.pts, fa.time_base, fb.pts, fb.time_base, shift_s):
            raise _bug(
                f"frame {n} of the output at {float(fa.pts * fa.time_base):.6f} s (pts {fa.pts})",
                f"{float(fb.pts * fb.time_base):.6f} s (pts {fb.pts})",
            )
        se += _squared_error(fa.y, fb.y, depth_shift)
        n_px += fa.y.size
        n += 1
    if n != expected_frames:
        raise _bug(f"{expected_frames} frames in the output", str(n))
    psnr = _psnr(se, n_px, info.video.bit_depth)
    return VerifyResult(n, psnr, psnr == math.inf, float(shift_s))
