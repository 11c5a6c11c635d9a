"""What vidcolor reads and writes, named once: still and film suffixes, output codecs and their containers.

The command line's help, the preview page's codec list, the encoder's name lookup and the
benchmark's output names all read these tables.
"""

from __future__ import annotations

#: Still images read and written at 16 bits per channel (others at 8).
SIXTEEN_BIT_STILLS = frozenset({".png", ".tif", ".tiff"})
#: Every still-image suffix vidcolor reads and writes (lower case, with the dot).
STILL_SUFFIXES = frozenset(SIXTEEN_BIT_STILLS | {".jpg", ".jpeg", ".bmp", ".webp"})
#: Suffixes taken as films where files are found by name (a batch's folders and globs, training and
#: evaluation folders); a file named explicitly is probed whatever its name.
FILM_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".nut", ".mpg", ".mpeg"}
    | {".m2v", ".vob", ".mxf", ".dv", ".flv", ".wmv", ".ogv", ".3gp", ".y4m"}
)

#: The codecs offered to users (``--codec``, the preview page), in the order they are listed.
CODECS = ("libx264", "libx265", "ffv1", "prores", "lossless", "h264_nvenc", "hevc_nvenc")
#: Codec names a user may give -> the FFmpeg encoder ("lossless" is resolved by the encoder).
#: Not reformatted: one line per encoder reads as a table.
CODEC_ALIASES: dict[str, str] = {
    "libx264": "libx264", "h264": "libx264", "x264": "libx264",
    "libx265": "libx265", "hevc": "libx265", "h265": "libx265", "x265": "libx265",
    "ffv1": "ffv1", "prores": "prores_ks", "prores_ks": "prores_ks",
    "h264_nvenc": "h264_nvenc", "hevc_nvenc": "hevc_nvenc", "nvenc": "h264_nvenc",
    "vp9": "libvpx-vp9", "libvpx-vp9": "libvpx-vp9", "av1": "libsvtav1", "libsvtav1": "libsvtav1",
}  # fmt: skip
#: Speed presets of the encoders that have them (``--preset``), fastest first, and the default of
#: each. A faster preset costs less CPU per frame and, at the same --crf, keeps a little less of the
#: luma or writes a larger file (benchmarks/README.md measures it).
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
ENCODER_PRESETS: dict[str, tuple[str, ...]] = {
    "libx264": X264_PRESETS,
    "libx265": X264_PRESETS,
    "h264_nvenc": ("p1", "p2", "p3", "p4", "p5", "p6", "p7"),
    "hevc_nvenc": ("p1", "p2", "p3", "p4", "p5", "p6", "p7"),
    "libsvtav1": tuple(str(k) for k in range(13, -1, -1)),
}
DEFAULT_PRESET = {
    "libx264": "medium",
    "libx265": "medium",
    "h264_nvenc": "p5",
    "hevc_nvenc": "p5",
    "libsvtav1": "8",
}


def presets_for(codec: str) -> tuple[str, ...]:
    """The speed presets of ``codec`` (a name or alias of CODEC_ALIASES), fastest first; () for an
    encoder without presets."""
    return ENCODER_PRESETS.get(CODEC_ALIASES.get(codec, codec), ())


#: Default quality of the encoders that take one (``--crf``: x264/x265 CRF, NVENC CQ, VP9 and
#: SVT-AV1 CRF; lower is better): visually transparent for restored film. FFV1 is lossless and
#: ProRes uses its profile (HQ).
DEFAULT_CRF: dict[str, float] = {
    "libx264": 18,
    "libx265": 20,
    "h264_nvenc": 19,
    "hevc_nvenc": 21,
    "libvpx-vp9": 24,
    "libsvtav1": 24,
}
#: Encoders that need even width and height for subsampled chroma.
EVEN_SIZE_ENCODERS = frozenset({"libx264", "libx265", "h264_nvenc", "hevc_nvenc", "libsvtav1", "prores_ks"})
#: Encoders with an interlaced mode (others encode an interlaced source as progressive, noted).
INTERLACED_ENCODERS = frozenset({"libx264", "ffv1", "prores_ks", "h264_nvenc"})


def _short_names(encoders: list[str]) -> str:
    return "/".join(e.removeprefix("lib").removesuffix("_ks") for e in encoders)


def crf_help() -> str:
    """``--crf``'s help, from DEFAULT_CRF."""
    defaults = ", ".join(f"{_short_names([e])} {q:g}" for e, q in DEFAULT_CRF.items())
    return f"Quality, lower is better: CRF (CQ for NVENC). Default per encoder: {defaults}."


def preset_help() -> str:
    """``--preset``'s help, from ENCODER_PRESETS and DEFAULT_PRESET (encoders sharing a list share
    a line)."""
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for enc, names in ENCODER_PRESETS.items():
        groups.setdefault((names, DEFAULT_PRESET[enc]), []).append(enc)
    parts = [
        f"{_short_names(encs)} {names[0]}..{names[-1]} (default {d})" for (names, d), encs in groups.items()
    ]
    return (
        "Encoder speed preset, fastest first: " + ", ".join(parts) + ". Faster presets cost less CPU "
        "and, at the same --crf, keep a little less of the luma."
    )


#: The container a codec's output gets where the source's own (or MP4) cannot hold it.
CODEC_SUFFIX: dict[str, str] = {
    "ffv1": ".mkv",
    "lossless": ".mkv",
    "prores": ".mov",
    "prores_ks": ".mov",
    "vp9": ".webm",
    "libvpx-vp9": ".webm",
}
