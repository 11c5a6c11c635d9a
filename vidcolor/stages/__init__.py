"""The stages a frame passes through, each a pure step on arrays: to L and back, the model step,
scene cuts, temporal smoothing, key frames and the merge. Stages import core and models, never
each other's callers (guidance, the pipeline, the apps)."""
