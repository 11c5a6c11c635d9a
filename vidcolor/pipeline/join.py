"""The segments of a long film joined into one file: their video packets copied (no re-encode) beside the
source's other streams, copied as the normal path copies them (media/remux.py), with the stream
set-up of media/encode.py's VideoWriter."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.error

from vidcolor.errors import EncodingError
from vidcolor.frames import SourceInfo
from vidcolor.media.encode import OutputPlan, add_streams, carry_video_tags, open_muxer
from vidcolor.media.remux import Remuxer
from vidcolor.media.window import section_seconds
from vidcolor.options import ColorizeOptions


def join_segments(
    info: SourceInfo, plan: OutputPlan, files: Sequence[Path], out: Path, options: ColorizeOptions
) -> int:
    """Copy the video packets of ``files`` (segment files, in order) into ``out`` with the
    source's other streams copied beside them, as VideoWriter would write them; return the number
    of video packets. The segments must share their codec parameters (same encoder settings)."""
    if not files:
        raise EncodingError("at least one segment", "none", "a bug in the segment plan")
    v = info.video
    output = open_muxer(info, plan, out)
    remux: Remuxer | None = None
    inputs: list[av.container.InputContainer] = []
    packets = 0
    try:
        remux = Remuxer(info, output, section_seconds(v.start_time, options.start, options.duration))
        # The format is known: a short MPEG-TS segment can be too small for format probing.
        inputs = [av.open(str(f), format=plan.container_format) for f in files]
        templates = [c.streams.video[0] for c in inputs]
        extradata = {bytes(t.codec_context.extradata or b"") for t in templates}
        if len(extradata) > 1:
            raise EncodingError(
                "segments with the same codec headers",
                f"{len(extradata)} different ones",
                "delete the segment folder and run again without --resume",
            )
        video = add_streams(info, plan, remux, lambda: _add_video(output, templates[0], info))
        last_dts: Fraction | None = None  # seconds
        for container, template in zip(inputs, templates, strict=True):
            tb = template.time_base or v.time_base
            for pkt in container.demux(template):
                if not pkt.size:
                    continue
                last_dts = _mend_dts(pkt, tb, last_dts)
                pkt.stream = video
                pkt.time_base = tb  # the muxer rescales only where the output unit differs
                output.mux_one(pkt)
                packets += 1
                remux.pump(float(last_dts))
        remux.finish()
        output.close()
    except av.error.FFmpegError as exc:
        with contextlib.suppress(Exception):
            output.close()
        raise EncodingError(
            "segments that join into one stream", str(exc), "delete the segment folder and run again"
        ) from None
    except BaseException:
        with contextlib.suppress(Exception):
            output.close()
        raise
    finally:
        for c in inputs:
            c.close()
        if remux is not None:
            remux.close()
    return packets


def _mend_dts(pkt: av.Packet, tb: Fraction, last: Fraction | None) -> Fraction:
    """Give ``pkt`` a dts after ``last`` (seconds) and not after its pts; return its dts in seconds.

    Each segment's encoder makes up the dts of its first pictures from the pts of the first few
    (it has B-frames in flight): with a variable frame rate they can fall before the previous
    segment's last dts, and Matroska does not store dts at all, so its demuxer cannot give the
    first few. The muxer wants dts strictly increasing; decoders do not use them. So a missing or
    too early dts becomes one tick after the previous one; the pts, which are the frame times,
    never change.
    """
    pts = pkt.pts
    dts = pkt.dts
    if dts is not None and (last is None or dts * tb > last):
        return Fraction(dts) * tb
    if last is None:
        dts = pts
    else:
        dts = math.floor(last / tb) + 1
    if dts is None or (pts is not None and dts > pts):
        raise EncodingError(
            "segment packets whose decoding times can be chained",
            f"a packet at pts {pts} after dts {last} s",
            "delete the segment folder and run again with --segment-seconds 0",
        )
    pkt.dts = dts
    return Fraction(dts) * tb


def _add_video(
    output: av.container.OutputContainer, template: av.VideoStream, info: SourceInfo
) -> av.VideoStream:
    """The output video stream: the segments' codec parameters, the source's tags."""
    stream = output.add_stream_from_template(template)
    stream.time_base = template.time_base
    # The frame rate as VideoWriter states it: the MOV muxer builds a timecode track from it
    # (a template stream carries the demuxer's guess, which can be the time scale).
    v = info.video
    stream.codec_context.framerate = v.nominal_rate
    carry_video_tags(stream, info)
    return stream
