"""The package's version: one place, below everything that records it (checkpoints, reports, journals)."""

__version__ = "0.1.0"
