"""vidcolor: remaster black-and-white film into colour and change nothing else."""

from __future__ import annotations

__version__ = "0.1.0"
