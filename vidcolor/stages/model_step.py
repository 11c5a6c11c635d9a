"""Stage [3]: an LBatch through the colorizer on the chosen device, ab back on the host.

On CUDA the batch goes through pinned host memory with a non-blocking copy, the model runs in half
precision and channels_last; on the CPU it runs in float32 with torch's thread pool, or, with
``runtime="onnx"``, in ONNX Runtime (batches with hints still go through PyTorch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vidcolor.errors import UsageError
from vidcolor.frames import LBatch
from vidcolor.models.info import ModelInfo
from vidcolor.options import ColorizeOptions
from vidcolor.stages.onnx_runtime import OnnxRunner


@dataclass
class ModelStep:
    model: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    name: str
    render_size: int
    stride: int
    onnx: OnnxRunner | None = field(default=None)  # ONNX Runtime for unhinted CPU batches

    @classmethod
    def create(cls, opts: ColorizeOptions, model: torch.nn.Module | None = None) -> ModelStep:
        import vidcolor.models as models

        if opts.threads:
            torch.set_num_threads(opts.threads)
        if model is None:
            model = models.load(opts.model, device=opts.device, half=opts.half, weights=opts.weights)
        p = next(model.parameters())
        info = model.info  # every model of the registry carries one
        assert isinstance(info, ModelInfo)
        runner = None
        if opts.runtime == "onnx":
            if p.device.type != "cpu" or p.dtype != torch.float32:
                raise UsageError(
                    "--runtime onnx with a float32 CPU model",
                    f"{p.device} {p.dtype}",
                    "pass --device cpu, or --runtime torch",
                )
            runner = OnnxRunner(model, opts.threads)
        return cls(model, p.device, p.dtype, info.name, info.render_size, info.stride, runner)

    @torch.inference_mode()
    def __call__(self, batch: LBatch, hints: np.ndarray | None = None) -> np.ndarray:
        """LBatch -> ab float32 (N, 2, h, w) in raw a*b* units, on the host."""
        if self.onnx is not None and hints is None:
            return self.onnx(batch.L)
        L = torch.from_numpy(batch.L)
        if self.device.type == "cuda":
            L = L.pin_memory().to(self.device, non_blocking=True).to(memory_format=torch.channels_last)
        L = L.to(self.dtype)
        if hints is None:
            ab = self.model(L)
        else:
            ab = self.model(L, hints=torch.from_numpy(hints).to(self.device, self.dtype))
        return ab.float().cpu().numpy()
