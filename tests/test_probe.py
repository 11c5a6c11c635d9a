"""probe(): the fields of SourceInfo on synthetic clips, and one clear InputError per bad input."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vidcolor.errors import InputError
from vidcolor.media.probe import probe


def test_basic_fields(clip):
    path = clip("a.mp4", frames=12, size=(64, 48), rate=24)
    info = probe(path)
    v = info.video
    assert info.path == str(path)
    assert info.container.startswith("mov,mp4")
    assert not info.is_still
    assert (v.codec, v.width, v.height, v.pix_fmt, v.bit_depth) == ("h264", 64, 48, "yuv420p", 8)
    assert v.average_rate == 24 and v.guessed_rate == 24
    assert v.frames == 12
    assert v.start_time == 0.0
    assert v.duration == pytest.approx(0.5, abs=0.05)
    assert info.duration == pytest.approx(0.5, abs=0.05)
    assert v.rotation == 0.0 and v.field_order == "progressive"
    assert info.others == ()


def test_tags_rotation_sar_start(clip):
    path = clip(
        "t.mp4",
        pix_fmt="yuv420p10le",
        start_pts=2400,
        rotation=-90,
        sar=Fraction(4, 3),
        color_range=1,
        color_tags=(1, 1, 1),
        metadata={"title": "Reel 3"},
    )
    info = probe(path)
    v = info.video
    assert v.pix_fmt == "yuv420p10le" and v.bit_depth == 10
    assert v.start_time == pytest.approx(10.0)
    assert v.rotation == -90.0
    assert v.sar == Fraction(4, 3)
    assert (v.color_range, v.color_primaries, v.color_trc, v.color_space) == ("tv", "bt709", "bt709", "bt709")
    assert info.metadata["title"] == "Reel 3"


def test_other_streams_listed_in_order(clip):
    path = clip("s.mkv", audio=[("aac", "eng"), ("libopus", "spa")], subtitles=[("subrip", "fra")])
    info = probe(path)
    assert info.video.index == 0
    got = [(s.index, s.kind, s.codec, s.language) for s in info.others]
    assert got == [(1, "audio", "aac", "eng"), (2, "audio", "opus", "spa"), (3, "subtitle", "subrip", "fra")]
    assert all(s.copyable for s in info.others)


def test_gray_and_interlaced(clip):
    g = probe(clip("g.mkv", pix_fmt="gray10le", codec="ffv1", size=(63, 47)))
    assert (g.video.pix_fmt, g.video.bit_depth, g.video.width, g.video.height) == ("gray10le", 10, 63, 47)
    i = probe(clip("i.mp4", interlaced=True))
    assert i.video.field_order == "tt"


def test_still_image(tmp_path):
    import av
    import numpy as np

    path = tmp_path / "s.png"
    with av.open(str(path), "w", format="image2") as out:
        s = out.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 40, 30, "gray"
        out.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((30, 40), np.uint8), format="gray")))
        out.mux(s.encode(None))
    info = probe(path)
    assert info.is_still and info.duration is None
    assert (info.video.width, info.video.height, info.video.pix_fmt) == (40, 30, "gray")
    assert info.video.color_range == "pc"


def _one_line_input_error(path, *words: str) -> str:
    with pytest.raises(InputError) as exc:
        probe(path)
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg.lower()
    return msg


def test_missing_file(tmp_path):
    _one_line_input_error(tmp_path / "nope.mp4", "nothing at")


def test_folder(tmp_path):
    _one_line_input_error(tmp_path, "folder")


def test_empty_file(tmp_path):
    p = tmp_path / "e.mp4"
    p.write_bytes(b"")
    _one_line_input_error(p, "empty")


def test_not_media(tmp_path):
    p = tmp_path / "t.mp4"
    p.write_text("this is a text file, not a film\n" * 20)
    _one_line_input_error(p, "not readable media")


def test_moov_missing(clip, tmp_path):
    src = clip("m.mp4", frames=24)
    data = src.read_bytes()
    moov = data.find(b"moov") - 4  # without faststart the index is the last box
    assert moov > 0
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[:moov])
    _one_line_input_error(bad, "moov")


def test_audio_only(tmp_path):
    import av
    from clips import AUDIO_RATE, _write_tone

    p = tmp_path / "a.mp4"
    with av.open(str(p), "w") as out:
        a = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        _write_tone(out, a, 0.0, 0.2, 440.0)
    _one_line_input_error(p, "no", "video stream")


@pytest.mark.integration
@pytest.mark.parametrize(
    "name,word",
    [
        ("zero_bytes.mp4", "empty"),
        ("not_video.mp4", "not readable"),
        ("audio_only.mp4", "video stream"),
        ("truncated_60pct_moov_at_end.mp4", "moov"),
    ],
)
def test_edge_errors(edge, name, word):
    _one_line_input_error(edge(name), word)


@pytest.mark.integration
def test_edge_facts(edge):
    assert probe(edge("rotate90_phone.mp4")).video.rotation == -90.0
    assert probe(edge("pal_wide_sar64x45.mp4")).video.sar == Fraction(64, 45)
    assert probe(edge("interlaced_tff.mp4")).video.field_order == "tt"
    assert probe(edge("start_pts_10s.mkv")).video.start_time == pytest.approx(10.0)
    hevc = probe(edge("hevc_main10.mp4")).video
    assert (hevc.pix_fmt, hevc.bit_depth) == ("yuv420p10le", 10)
    ts = probe(edge("mpegts_aac_mp2_dvbsub.ts"))
    assert [(s.codec, s.language) for s in ts.others] == [
        ("aac", "eng"),
        ("mp2", "deu"),
        ("dvb_subtitle", "eng"),
    ]
    assert probe(edge("still_gray16.png")).is_still
