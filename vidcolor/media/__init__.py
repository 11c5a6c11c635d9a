"""Media in and out: probe, [1] decode, [6] encode with packet remux, atomic output (PyAV only)."""

from vidcolor.media.atomic import atomic_output, same_file
from vidcolor.media.decode import DecodeStats, decode_frames
from vidcolor.media.encode import OutputPlan, VideoWriter, plan_output
from vidcolor.media.probe import probe

__all__ = [
    "DecodeStats",
    "OutputPlan",
    "VideoWriter",
    "atomic_output",
    "decode_frames",
    "plan_output",
    "probe",
    "same_file",
]
