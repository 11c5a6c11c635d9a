"""The one error hierarchy of vidcolor.

Every message says what was expected, what was found and what to do next, on one line. A library
call raises these; the CLI prints them and exits non-zero without a traceback.
"""

from __future__ import annotations


class VidcolorError(Exception):
    """Base of every error vidcolor raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code: int = 1

    def __init__(self, expected: str, found: str, action: str) -> None:
        self.expected = expected
        self.found = found
        self.action = action
        super().__init__(f"expected {expected}, found {found}: {action}")

    def line(self) -> str:
        """The one line a user sees for this error, from the CLI and the ``python -m`` tools alike."""
        return f"vidcolor: error: {self}"


class InputError(VidcolorError):
    """The input cannot be read, is not media, has no video, or breaks while decoding."""

    exit_code = 2


class CorruptInputError(InputError):
    """A stream broke part-way; ``frame_index`` is the first frame that could not be decoded."""

    def __init__(self, expected: str, found: str, action: str, frame_index: int) -> None:
        self.frame_index = frame_index
        super().__init__(expected, found, action)


class WeightsError(VidcolorError):
    """Model weights are missing, truncated, of the wrong hash or of an unknown architecture."""

    exit_code = 3


class EncodingError(VidcolorError):
    """The output cannot be written: codec, container, pixel format or destination problems."""

    exit_code = 4


class UsageError(VidcolorError):
    """Options that contradict each other or the input (output == input, existing output, ...)."""

    exit_code = 5
