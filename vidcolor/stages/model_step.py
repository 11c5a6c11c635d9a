"""Stage [3]: an LBatch through the colorizer on the chosen device, ab back on the host.

On CUDA the batch goes through pinned host memory with a non-blocking copy, the model runs in half
precision and channels_last. On the CPU it runs in float32: by default (``runtime="auto"``) in ONNX
Runtime where onnxruntime is installed, about twice as fast as eager PyTorch for vidcolor-lite and
equal to it within 2e-4 a*b*; with ``runtime="torch"`` (or without onnxruntime) in PyTorch with
its batch norms folded. Batches with hints always go through PyTorch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from vidcolor.errors import UsageError
from vidcolor.frames import LBatch
from vidcolor.models.fold import folded_copy
from vidcolor.models.info import ModelInfo
from vidcolor.options import ColorizeOptions
from vidcolor.stages.onnx_runtime import OnnxRunner
from vidcolor.stages.onnx_runtime import available as onnx_available

log = logging.getLogger(__name__)


@dataclass
class ModelStep:
    """``model`` is the model as loaded (what fingerprints read, and checkpoints would save).
    ``onnx`` runs the unhinted batches where set; :attr:`runs` is the PyTorch module that runs the
    others: with ``fold``, a copy of ``model`` with its batch norms folded (made on first use, so a
    run that never needs PyTorch never copies the model), else ``model`` itself."""

    model: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    name: str
    render_size: int
    stride: int
    onnx: OnnxRunner | None = field(default=None)  # ONNX Runtime for unhinted CPU batches
    fold: bool = False
    _folded: torch.nn.Module | None = field(default=None, repr=False, compare=False)

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
        cpu32 = p.device.type == "cpu" and p.dtype == torch.float32
        if opts.runtime == "onnx":
            if not cpu32:
                raise UsageError(
                    "--runtime onnx with a float32 CPU model",
                    f"{p.device} {p.dtype}",
                    "pass --device cpu, or --runtime torch",
                )
            runner = OnnxRunner(model, opts.threads)
        elif opts.runtime == "auto" and cpu32 and onnx_available():
            runner = OnnxRunner(model, opts.threads)
            try:
                runner.session()  # exported now, so a model ONNX cannot express runs in PyTorch
            except Exception as e:  # any export failure means: not this runtime
                log.debug("model step in PyTorch: the model does not export to ONNX (%s)", e)
                runner = None
        # Folding in half precision would round the folded weights a second time; CUDA's float16
        # path keeps the batch norms.
        fold = p.dtype == torch.float32
        return cls(model, p.device, p.dtype, info.name, info.render_size, info.stride, runner, fold)

    @property
    def runs(self) -> torch.nn.Module:
        """The PyTorch module that runs a batch (see the class docstring), with ``model``'s readout."""
        if not self.fold:
            return self.model
        if self._folded is None:
            self._folded = folded_copy(self.model)
        if hasattr(self.model, "config"):
            # The readout settings live in the config, and eval switches them on the loaded model
            # between runs; the folded copy reads them from there.
            self._folded.config = self.model.config
        return self._folded

    @torch.inference_mode()
    def __call__(self, batch: LBatch, hints: np.ndarray | None = None) -> np.ndarray:
        """LBatch -> ab float32 (N, 2, h, w) in raw a*b* units, on the host."""
        if self.onnx is not None and hints is None:
            return self.onnx(batch.L)
        L = torch.from_numpy(batch.L)
        if self.device.type == "cuda":
            L = L.pin_memory().to(self.device, non_blocking=True).to(memory_format=torch.channels_last)
        L = L.to(self.dtype)
        net = self.runs
        if hints is None:
            ab = net(L)
        else:
            ab = net(L, hints=torch.from_numpy(hints).to(self.device, self.dtype))
        return ab.float().cpu().numpy()
