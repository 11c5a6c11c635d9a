"""Every file of the awkward-media set (../shared/data/edge, see its EXPECTED.md) and what vidcolor
must do with it: colorize it with the stated properties kept, or fail with a clear one-line error
and write nothing. The tiny untrained model is used: these tests are about the media, not colour.

(Over 400 lines: the table of what each of the set's files must give is most of it, and it is read
best whole, beside the tests that walk it.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from clips import pts_of, read_packets, read_video_pts, time_base_of

from vidcolor.batch import output_name
from vidcolor.cli import main
from vidcolor.errors import CorruptInputError, InputError, VidcolorError
from vidcolor.formats import STILL_SUFFIXES
from vidcolor.media.probe import probe
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.image import colorize_image
from vidcolor.pipeline.run import Summary, colorize_video
from vidcolor.pipeline.segments import colorize_film

EDGE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edge"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not EDGE.is_dir(), reason=f"edge media not available: {EDGE}"),
]
OPTS = ColorizeOptions(render_size=32, threads=1)


@dataclass(frozen=True)
class Film:
    """Colorizes. Always checked: frame count, every pts, size, SAR, rotation, start time, field
    order and every audio/subtitle stream (codec, language, order, packets) as in the source,
    the luma kept (verify), and colour in the output. The fields state what EXPECTED.md names."""

    size: tuple[int, int]
    pix_fmt: str = "yuv420p"  # of the output
    sar: Fraction | None = None
    rotation: float = 0.0
    field_order: str = "progressive"
    start: float = 0.0  # video start time in the output, seconds
    streams: tuple[tuple[str, str, str | None], ...] = ()  # (kind, codec, language) besides video
    frames: int | None = None
    timecode: str | None = None
    notes: tuple[str, ...] = ()  # words the summary's notes must contain


@dataclass(frozen=True)
class Fails:
    """Fails before writing anything, with this error class and words in its one-line message."""

    error: type[VidcolorError]
    words: str
    frame: int | None = None  # CorruptInputError.frame_index
    before_model: bool = False  # rejected before any model work


@dataclass(frozen=True)
class Still:
    size: tuple[int, int]
    pix_fmt: str  # of the written image, as FFmpeg decodes it


EXPECTED: dict[str, Film | Fails | Still] = {
    "rotate90_phone.mp4": Film((320, 180), rotation=-90.0, streams=(("audio", "aac", "und"),), frames=30),
    "vfr_irregular.mp4": Film((160, 120), frames=40),
    "pal_wide_sar64x45.mp4": Film((720, 576), sar=Fraction(64, 45), frames=15),
    "pal_43_sar16x15.mpg": Film(
        (720, 576),
        sar=Fraction(16, 15),
        start=0.54,  # written as .mkv
        streams=(("audio", "mp2", None),),
        frames=15,
        notes=("matroska stores time",),
    ),
    "tiny_1x1.mp4": Film((1, 1), pix_fmt="yuv444p", frames=15),
    "tiny_8x8.mp4": Film((8, 8), frames=15),
    "odd_321x241_vp9.webm": Film((321, 241), pix_fmt="yuv444p", frames=15, notes=("odd size 321x241",)),
    "odd_321x241_h264_yuv444p.mp4": Film((321, 241), pix_fmt="yuv444p", frames=15),
    "interlaced_tff.mp4": Film((352, 288), field_order="tt", frames=25),
    "hevc_main10.mp4": Film((160, 120), pix_fmt="yuv420p10le", frames=25),
    "h264_high10.mkv": Film((160, 120), pix_fmt="yuv420p10le", frames=25),
    "ffv1_gray8.mkv": Film((160, 120), pix_fmt="yuvj420p", frames=15, notes=("grey source",)),
    "ffv1_gray10.mkv": Film((160, 120), pix_fmt="yuv420p10le", frames=15, notes=("grey source",)),
    "h264_yuv422p.mp4": Film((160, 120), pix_fmt="yuv422p", frames=15),
    "h264_yuv444p.mp4": Film((160, 120), pix_fmt="yuv444p", frames=15),
    "prores_yuv422p10.mov": Film((160, 120), pix_fmt="yuv422p10le", frames=15),
    "start_pts_10s.mkv": Film((160, 120), start=10.0, streams=(("audio", "aac", None),), frames=25),
    "av_offset_video_1.5s.mp4": Film((160, 120), start=1.52, streams=(("audio", "aac", "und"),), frames=25),
    "bframes_aac.mp4": Film((160, 120), streams=(("audio", "aac", "und"),), frames=38),
    "mpegts_aac_mp2_dvbsub.ts": Film(
        (160, 120),
        start=1.421,
        frames=25,
        streams=(("audio", "aac", "eng"), ("audio", "mp2", "deu"), ("subtitle", "dvb_subtitle", "eng")),
    ),
    "mkv_subs_2audio.mkv": Film(
        (160, 120),
        start=0.021,
        frames=38,
        streams=(
            ("audio", "aac", "eng"),
            ("audio", "opus", "spa"),
            ("subtitle", "subrip", "eng"),
            ("subtitle", "ass", "fra"),
        ),
    ),
    "mov_timecode.mov": Film(
        (160, 120), streams=(("audio", "aac", None),), frames=25, timecode="01:00:00:00"
    ),
    "audio_only.mp4": Fails(InputError, "found none in audio_only.mp4 (audio)", before_model=True),
    "zero_bytes.mp4": Fails(InputError, "an empty file (0 bytes)", before_model=True),
    "not_video.mp4": Fails(InputError, "not_video.mp4 is not readable media", before_model=True),
    "truncated_60pct_faststart.mp4": Fails(CorruptInputError, "truncated at frame 25", frame=25),
    "truncated_60pct_moov_at_end.mp4": Fails(InputError, "no moov atom", before_model=True),
    "corrupt_flipped_bytes.mp4": Fails(CorruptInputError, "decoded with errors at frame 30", frame=30),
    "still_gray16.png": Still((128, 96), "rgb48be"),
    "still_gray8.jpg": Still((128, 96), "yuvj420p"),
    "still_rgb.png": Still((128, 96), "rgb24"),
    "still_rgb.tif": Still((120, 80), "rgb24"),
}
FILMS = sorted(k for k, v in EXPECTED.items() if isinstance(v, Film))
FAILS = sorted(k for k, v in EXPECTED.items() if isinstance(v, Fails))
STILLS = sorted(k for k, v in EXPECTED.items() if isinstance(v, Still))


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16)).eval()


class _NoModel(torch.nn.Module):
    """A colorizer that must not be called: proves an input is rejected before model work."""

    def __init__(self, info: object) -> None:
        super().__init__()
        self.info = info
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model ran on an input that should have been rejected")


@dataclass
class _Run:
    dst: Path
    summary: Summary


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory) -> Callable[[str], _Run]:
    """``run(name)``: the film colorized once (cached for the module), written where batch mode
    would write it (same extension where the container holds H.264, else .mkv)."""
    out = tmp_path_factory.mktemp("edge")
    cache: dict[str, _Run] = {}

    def run(name: str) -> _Run:
        if name not in cache:
            dst = out / output_name(Path(name), OPTS.codec)
            cache[name] = _Run(dst, colorize_video(EDGE / name, dst, OPTS, colorizer=tiny))
        return cache[name]

    return run


def test_every_file_has_an_expectation() -> None:
    files = {p.name for p in EDGE.iterdir() if p.suffix not in (".md", ".py")}
    assert files == set(EXPECTED), "a file was added to or removed from the edge set: state its outcome here"


def _seconds(pts: list[int], tb: Fraction) -> list[Fraction]:
    return [p * tb for p in pts]


def _same_instants(a: list[Fraction], b: list[Fraction], tick: Fraction) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tick / 2 for x, y in zip(a, b, strict=True))


def _video_tb(path: Path) -> Fraction:
    with av.open(str(path)) as c:
        return time_base_of(c.streams.video[0])


def _chroma_spread(path: Path) -> float:
    """How far the output's chroma goes from neutral (0 for a grey picture), over a few frames."""
    worst = 0.0
    with av.open(str(path)) as c:
        for n, f in enumerate(c.decode(video=0)):
            yuv = f.to_ndarray(format="yuv444p16le" if f.format.components[0].bits > 8 else "yuv444p")
            mid = 32768 if yuv.dtype == np.uint16 else 128
            scale = 256 if yuv.dtype == np.uint16 else 1
            worst = max(worst, float(np.abs(yuv[1:].astype(np.int64) - mid).max()) / scale)
            if n >= 4:
                break
    return worst


def _packets_match(src: Path, dst: Path, kind: str, codecs: list[str]) -> None:
    """Same packets per stream of ``kind``, in order: count, bytes and time (seconds)."""

    def timed(path: Path) -> list[list[tuple[Fraction | None, bytes]]]:
        with av.open(str(path)) as c:
            tbs = [time_base_of(s) for s in c.streams if s.type == kind]
        return [
            [(None if p is None else p * tb, data) for p, _d, _u, data in packets]
            for packets, tb in zip(read_packets(path, kind), tbs, strict=True)
        ]

    a, b = timed(src), timed(dst)
    assert len(a) == len(b)
    for sa, sb, codec in zip(a, b, codecs, strict=True):
        assert len(sa) == len(sb), f"{codec}: {len(sa)} packets in the source, {len(sb)} in the output"
        for (ta, da), (tb_, db) in zip(sa, sb, strict=True):
            assert ta is None or tb_ is None or abs(ta - tb_) <= Fraction(1, 1000)
            if codec == "dvb_subtitle" and da[:2] == b"\x20\x00":
                # A source packet that already holds the PES data_identifier: FFmpeg's MPEG-TS
                # muxer adds it (and the end marker) again. See test_ts_dvb_subtitle_bytes.
                continue
            assert da == db, f"{codec}: packet bytes changed"


@pytest.mark.parametrize("name", FILMS)
def test_film_colorizes_with_its_properties_kept(name: str, runs) -> None:
    exp = EXPECTED[name]
    assert isinstance(exp, Film)
    src = EDGE / name
    r = runs(name)
    s_info, o_info = probe(src), probe(r.dst)
    sv, ov = s_info.video, o_info.video
    # frames and their times
    src_pts, out_pts = read_video_pts(src), read_video_pts(r.dst)
    assert r.summary.frames == len(src_pts) == len(out_pts) == exp.frames
    tb_out = _video_tb(r.dst)
    assert _same_instants(_seconds(src_pts, sv.time_base), _seconds(out_pts, tb_out), tb_out)
    # picture geometry and tags
    assert (ov.width, ov.height) == (sv.width, sv.height) == exp.size
    square = Fraction(1)
    assert (ov.sar or square) == (sv.sar or square) == (exp.sar or square)
    assert ov.rotation == sv.rotation == exp.rotation
    assert ov.field_order == exp.field_order
    assert ov.pix_fmt == exp.pix_fmt
    assert abs((ov.start_time or 0.0) - exp.start) < 0.002
    # luma kept (verify decoded both) and colour added
    assert r.summary.verify is not None and r.summary.verify.frames == exp.frames
    assert r.summary.verify.y_psnr >= 35.0  # x264 at crf 18 (an 8x8 picture codes coarsest)
    assert _chroma_spread(r.dst) >= 2.0
    # every other stream, in order, with its language, packets copied
    kinds = tuple((o.kind, o.codec, o.language) for o in o_info.others if o.kind in ("audio", "subtitle"))
    assert kinds == exp.streams
    assert tuple((o.kind, o.codec) for o in s_info.others if o.kind in ("audio", "subtitle")) == tuple(
        (k, c) for k, c, _ in exp.streams
    )
    for kind in ("audio", "subtitle"):
        _packets_match(src, r.dst, kind, [c for k, c, _ in exp.streams if k == kind])
    for words in exp.notes:
        assert any(words in n for n in r.summary.notes), r.summary.notes
    if exp.timecode:
        with av.open(str(r.dst)) as c:
            assert c.streams.video[0].metadata.get("timecode") == exp.timecode


def test_interlaced_is_deinterlaced_only_on_request(tiny, tmp_path: Path) -> None:
    src = EDGE / "interlaced_tff.mp4"
    s = colorize_video(
        src, tmp_path / "p.mp4", ColorizeOptions(render_size=32, threads=1, deinterlace=True), colorizer=tiny
    )
    out = probe(tmp_path / "p.mp4").video
    assert out.field_order == "progressive"
    assert s.frames == 25 and read_video_pts(tmp_path / "p.mp4") == read_video_pts(src)
    # Without the request the fields stay apart (encoded interlaced, tt) and smoothing is
    # field-aware: checked by test_film_colorizes_with_its_properties_kept.


def test_ts_dvb_subtitle_bytes(runs, tiny, tmp_path: Path) -> None:
    """One of the clip's DVB packets still holds its PES framing (0x20 0x00 ... 0xff), which
    FFmpeg's MPEG-TS muxer writes again: the output must hold the source bytes, in TS and in
    Matroska (which writes no framing of its own)."""
    a = read_packets(EDGE / "mpegts_aac_mp2_dvbsub.ts", "subtitle")
    assert any(p[3].startswith(b"\x20\x00") for p in a[0])  # the case this test is about
    r = runs("mpegts_aac_mp2_dvbsub.ts")
    assert r.dst.suffix == ".ts"
    b = read_packets(r.dst, "subtitle")
    assert [p[3] for p in a[0]] == [p[3] for p in b[0]]
    mkv = tmp_path / "o.mkv"
    colorize_video(EDGE / "mpegts_aac_mp2_dvbsub.ts", mkv, OPTS, colorizer=tiny)
    assert [p[3] for p in a[0]] == [p[3] for p in read_packets(mkv, "subtitle")[0]]


@pytest.mark.parametrize("name", FAILS)
def test_bad_input_fails_cleanly(name: str, tiny, tmp_path: Path) -> None:
    exp = EXPECTED[name]
    assert isinstance(exp, Fails)
    model = _NoModel(tiny.info) if exp.before_model else tiny
    dst = tmp_path / "out.mp4"
    with pytest.raises(exp.error) as caught:
        colorize_video(EDGE / name, dst, OPTS, colorizer=model)
    msg = str(caught.value)
    assert exp.words in msg and "\n" not in msg
    assert msg.startswith("expected ")
    if exp.frame is not None:
        assert isinstance(caught.value, CorruptInputError) and caught.value.frame_index == exp.frame
    assert list(tmp_path.iterdir()) == []  # nothing at the destination, no temporary file either


# reason for the type: ignore below: every file in FAILS has an expectation
@pytest.mark.parametrize("name", [n for n in FAILS if EXPECTED[n].before_model])  # type: ignore[union-attr]
def test_cli_says_it_on_one_line(name: str, tmp_path: Path) -> None:
    exp = EXPECTED[name]
    assert isinstance(exp, Fails)
    result = CliRunner().invoke(main, ["colorize", str(EDGE / name), "-o", str(tmp_path / "o.mp4")])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == exp.error.exit_code
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: expected "), result.output
    assert exp.words in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_truncated_keeps_the_readable_part_with_skip_corrupt(tiny, tmp_path: Path) -> None:
    src = EDGE / "truncated_60pct_faststart.mp4"
    s = colorize_video(
        src, tmp_path / "o.mp4", ColorizeOptions(render_size=32, threads=1, skip_corrupt=True), colorizer=tiny
    )
    assert s.frames == 25
    with av.open(str(src)) as c:  # the clip has no B-frames: the first 25 packets are frames 0-24
        first = sorted(pts_of(p) for p in c.demux(video=0) if p.size)[:25]
    assert read_video_pts(tmp_path / "o.mp4") == first
    assert s.corrupt_skipped >= 1 and "corrupt frames skipped" in s.line()


def test_truncated_is_called_truncated(tiny, tmp_path: Path) -> None:
    """The index promises 50 frames and the data ends inside the packet of frame 25 (a short
    read): the 24 frames never read are said, not only the one corrupt frame skipped."""
    s = colorize_video(
        EDGE / "truncated_60pct_faststart.mp4",
        tmp_path / "o.mp4",
        ColorizeOptions(render_size=32, threads=1, skip_corrupt=True),
        colorizer=tiny,
    )
    assert any("the input is truncated" in w and "24 more frames" in w for w in s.warnings), s.warnings


def test_corrupt_frame_is_kept_and_said_with_skip_corrupt(tiny, tmp_path: Path) -> None:
    src = EDGE / "corrupt_flipped_bytes.mp4"
    s = colorize_video(
        src, tmp_path / "o.mp4", ColorizeOptions(render_size=32, threads=1, skip_corrupt=True), colorizer=tiny
    )
    assert s.frames == 50  # the frame count holds
    assert s.corrupt_kept >= 1 and "damaged frames kept" in s.line()
    assert read_video_pts(tmp_path / "o.mp4") == read_video_pts(src)


@pytest.mark.parametrize("name", STILLS)
def test_still_colorizes(name: str, tiny, tmp_path: Path) -> None:
    exp = EXPECTED[name]
    assert isinstance(exp, Still) and Path(name).suffix.lower() in STILL_SUFFIXES
    dst = tmp_path / name
    rgb = colorize_image(EDGE / name, dst, OPTS, colorizer=tiny)
    assert rgb.shape == (exp.size[1], exp.size[0], 3)
    assert rgb.dtype == (np.uint16 if exp.pix_fmt == "rgb48be" else np.uint8)
    spread = np.abs(rgb.astype(np.int64) - rgb.astype(np.int64).mean(axis=2, keepdims=True)).max()
    assert spread > (2 * 256 if rgb.dtype == np.uint16 else 2)  # colour, not grey
    with av.open(str(dst)) as c:
        f = next(c.decode(video=0))
        assert (f.width, f.height) == exp.size and f.format.name == exp.pix_fmt


def _segment_props(path: Path) -> tuple[object, ...]:
    i = probe(path)
    v = i.video
    return (
        v.width,
        v.height,
        v.sar,
        v.rotation,
        v.field_order,
        v.pix_fmt,
        round(v.start_time or 0.0, 3),
        tuple((o.kind, o.codec, o.language) for o in i.others),
    )


@pytest.mark.parametrize("name", FILMS)
def test_segments_join_on_awkward_media(name: str, tiny, runs, tmp_path: Path) -> None:
    """The same film cut into segments of 0.3 s (2 to 7 of them) and joined: the frames' times,
    the other streams' packets and the stream properties are those of the plain run."""
    r = runs(name)
    dst = tmp_path / r.dst.name
    s = colorize_film(EDGE / name, dst, OPTS, segment_seconds=0.3, colorizer=tiny)
    assert s.frames == r.summary.frames
    assert read_video_pts(dst) == read_video_pts(r.dst)
    for kind in ("audio", "subtitle"):
        assert read_packets(dst, kind) == read_packets(r.dst, kind)
    assert _segment_props(dst) == _segment_props(r.dst)
    with av.open(str(dst)) as c:
        keys = sum(1 for p in c.demux(video=0) if p.size and p.is_keyframe)
    assert keys >= 2  # it really was cut


def test_segments_report_the_corrupt_frame_by_its_index_in_the_film(tiny, tmp_path: Path) -> None:
    with pytest.raises(CorruptInputError) as caught:
        colorize_film(
            EDGE / "corrupt_flipped_bytes.mp4", tmp_path / "o.mp4", OPTS, segment_seconds=0.3, colorizer=tiny
        )
    assert caught.value.frame_index == 30 and "at frame 30 " in str(caught.value)
    assert not (tmp_path / "o.mp4").exists()
