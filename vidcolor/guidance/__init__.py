"""Colour you can direct: point hints carried through their shot, and reference stills.

- (:mod:`vidcolor.hints` and :mod:`vidcolor.references` read what the user asks for.)
- :mod:`~vidcolor.guidance.track`: carry a hint to the following frames (Lucas-Kanade, per shot).
- :mod:`~vidcolor.guidance.render`: a hint's colour for the network, and the pull over its region.
- :mod:`~vidcolor.guidance.reference`: take colours from reference stills where the film matches.
- :mod:`~vidcolor.guidance.library`: a folder of stills indexed by one compact descriptor each.
- :mod:`~vidcolor.guidance.choose`: per shot, the stills of that folder that match it best.
- :mod:`~vidcolor.guidance.memory`: a shot's hinted frames, once coloured, as its references.
- :mod:`~vidcolor.guidance.guide`: all of it around the model step, frame by frame.

With no hints, no reference and no reference folder the pipeline does not touch any of this.
"""

from __future__ import annotations

# What a user asks for is read below the options that hold it (vidcolor/hints.py,
# vidcolor/references.py); named here too, beside the parts that carry it out.
from vidcolor.hints import Hint, as_hints, load_hints, parse_hints
from vidcolor.references import Reference, as_references

__all__ = ["Hint", "Reference", "as_hints", "as_references", "load_hints", "parse_hints"]
