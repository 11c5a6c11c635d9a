"""The colorizer run by ONNX Runtime on the CPU: the same graph as PyTorch's, with ORT's fused
float32 kernels (the encoder's depthwise convolutions are where eager PyTorch loses most).

The graph is exported from the loaded model once per model and readout (its height and width are
free, so every render shape shares it), and the session is kept with the model: a batch run or a
bench that colours film after film with one loaded model exports once. The graph is also kept on
disk (stages/onnx_cache.py, named by a hash of the weights, readout and code), so the next process
skips the export (1 to 4 s on two cores); retrained weights get a graph of their own. PyTorch
stays the reference and the path for training, hints and CUDA.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
from torch import nn

from vidcolor.stages.onnx_cache import cached_graph
from vidcolor.stages.onnx_export import graph_bytes, installed, require

# model -> {(readout, threads): (weights version, session)}; weak, so a model's sessions go with it
_SESSIONS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[str, int], tuple[int, Any]]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def available() -> bool:
    """Whether onnxruntime can be imported here."""
    return installed("onnxruntime")


class OnnxRunner:
    """``runner(L)``: L float32 (B,1,h,w) CIE L* in [0,100] -> ab float32 (B,2,h,w) raw a*b*."""

    def __init__(self, model: nn.Module, threads: int = 0) -> None:
        require("onnxruntime")
        self.model = model
        self.threads = threads

    def session(self) -> Any:
        """The session for the model's current readout, made on first use and kept with the model."""
        # The readout settings (head, temperature, ...) are baked into the graph, and eval switches
        # them on the live model between runs: they are part of the key.
        key = (repr(getattr(self.model, "config", None)), self.threads)
        version = _weights_version(self.model)
        with _LOCK:  # two films of one batch starting together export once
            sessions = _SESSIONS.setdefault(self.model, {})
            kept = sessions.get(key)
            if kept is None or kept[0] != version:
                kept = sessions[key] = (version, self._make())
        return kept[1]

    def _make(self) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        # ORT's workers spin between kernels by default; in the pipeline the decode, merge and
        # encode threads need those cores, and spinning takes them away.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        stride = int(getattr(getattr(self.model, "info", None), "stride", 32))
        # Height and width stay free; the example only has to avoid 1x1 maps at the coarsest scale.
        example = (2 * stride, 3 * stride)
        graph = cached_graph(self.model, example, lambda: graph_bytes(self.model, example, dynamic=True))
        return ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])

    def __call__(self, L: np.ndarray) -> np.ndarray:
        out = self.session().run(["ab"], {"L": np.ascontiguousarray(L, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)


def _weights_version(model: nn.Module) -> int:
    """A number that grows whenever a weight or buffer of ``model`` is changed in place (an
    optimiser step, ``load_state_dict``): torch counts each tensor's in-place writes. A graph
    exported before such a change is stale."""
    return sum(t._version for t in (*model.parameters(), *model.buffers()))
