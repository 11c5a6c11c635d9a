"""vidcolor: remaster black-and-white film into colour and change nothing else.

Public API::

    vidcolor.colorize_video(src, dst, **options) -> Summary
    vidcolor.colorize_image(src, dst=None, **options) -> np.ndarray (H, W, 3)
    vidcolor.models.load(name_or_path, device="auto", half=None) -> Colorizer
    vidcolor.ColorizeOptions, vidcolor.VidcolorError
"""

from __future__ import annotations

from typing import Any

from vidcolor.version import __version__

__all__ = ["ColorizeOptions", "VidcolorError", "__version__", "colorize_image", "colorize_video", "models"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import vidcolor` (and the CLI's --help) does not pay for torch and PyAV.
    if name == "colorize_video":
        from vidcolor.pipeline.run import colorize_video

        return colorize_video
    if name == "colorize_image":
        from vidcolor.pipeline.image import colorize_image

        return colorize_image
    if name == "ColorizeOptions":
        from vidcolor.options import ColorizeOptions

        return ColorizeOptions
    if name == "VidcolorError":
        from vidcolor.errors import VidcolorError

        return VidcolorError
    if name == "models":
        import importlib

        return importlib.import_module("vidcolor.models")
    raise AttributeError(f"module 'vidcolor' has no attribute {name!r}")
