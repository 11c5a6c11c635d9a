"""Options of a colorization run, as one frozen value (the CLI, the API and batch mode share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "vidcolor-lite"
DEFAULT_CODEC = "libx264"
DEFAULT_SMOOTHING = 0.5
RUNTIMES = ("auto", "torch", "onnx")  # how the model step runs on the CPU (stages/model_step.py)


@dataclass(frozen=True)
class ColorizeOptions:
    model: str = DEFAULT_MODEL  # registry name or checkpoint path
    weights: str | None = None  # weights file for a registry architecture (upstream models)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    half: bool | None = None  # None: fp16 on CUDA, fp32 on CPU
    batch_size: int = 8  # frames per model call
    render_size: int | None = None  # short side seen by the model; None: the model's default
    smoothing: float = DEFAULT_SMOOTHING  # temporal smoothing strength, 0 = off
    codec: str = DEFAULT_CODEC
    crf: float | None = None  # None: the codec's default quality
    preset: str | None = None  # the encoder's speed preset (formats.ENCODER_PRESETS); None: its default
    lossless: bool = False
    ten_bit: bool | None = None  # None: keep the source's bit depth where the codec can
    start: float | None = None  # seconds from the start of the film
    duration: float | None = None  # seconds
    overwrite: bool = False
    skip_corrupt: bool = False
    deinterlace: bool = False
    verify: bool = True  # check the output as it is written: frame count, pts, Y PSNR (pipeline/verify.py)
    guide: bool = True  # edge-aware upsampling of colour with the full-resolution luma
    threads: int = 0  # CPU threads of the model step (torch or ONNX Runtime); 0: their default
    # model step on the CPU: auto (ONNX Runtime where installed, else PyTorch), torch (the
    # reference) or onnx (ONNX Runtime, required)
    runtime: str = "auto"
    # The model on one frame in N of a shot, colour carried along the motion to the others
    # (stages/keyframes.py); 1: the model on every frame; 0: by device (stages/keyframes.key_interval).
    model_every: int = 0
    # Guidance: colour hints (a hints-file path or a list of entries, read by vidcolor/hints.py)
    # and reference stills (paths, arrays or References); empty: the unguided pipeline, unchanged.
    hints: tuple[Any, ...] = ()
    reference: tuple[Any, ...] = ()
    # A folder of colour stills to choose references from, shot by shot; stills (IMG or
    # IMG@START-END) kept out of that choice.
    reference_dir: str | None = None
    reference_drop: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        from vidcolor.errors import UsageError

        guided = self.hints or self.reference or self.reference_drop
        lists = (self.hints, self.reference, self.reference_drop)
        if guided or not all(isinstance(x, tuple) for x in lists):
            from vidcolor.hints import as_hints
            from vidcolor.references import as_references

            object.__setattr__(self, "hints", as_hints(self.hints))
            object.__setattr__(self, "reference", as_references(self.reference))
            object.__setattr__(self, "reference_drop", as_references(self.reference_drop))
        if self.reference_dir is not None:
            object.__setattr__(self, "reference_dir", str(self.reference_dir))
        if self.runtime not in RUNTIMES:
            raise UsageError(f"--runtime {', '.join(RUNTIMES)}", repr(self.runtime), "pass one of them")
        if self.model_every < 0:
            raise UsageError(
                "--model-every of 0 (by device) or more",
                str(self.model_every),
                "pass e.g. 3, or 1 for every frame",
            )
        if self.batch_size < 1:
            raise UsageError("--batch-size of 1 or more", str(self.batch_size), "pass a positive number")
        if self.render_size is not None and self.render_size < 16:
            raise UsageError("--render-size of 16 pixels or more", str(self.render_size), "pass e.g. 224")
        if not 0.0 <= self.smoothing <= 1.0:
            raise UsageError(
                "a smoothing strength in 0..1", str(self.smoothing), "pass e.g. 0.5, or 0 for off"
            )
        if self.start is not None and self.start < 0:
            raise UsageError("--start of 0 seconds or more", str(self.start), "pass a time inside the film")
        if self.duration is not None and self.duration <= 0:
            raise UsageError("a positive --duration", str(self.duration), "pass a length in seconds")
        if self.crf is not None and self.lossless:
            raise UsageError("either --crf or --lossless", "both", "drop one of them")
