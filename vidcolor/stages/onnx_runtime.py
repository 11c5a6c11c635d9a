"""The colorizer run by ONNX Runtime on the CPU: the same graph as PyTorch's, with ORT's fused
float32 kernels (the encoder's depthwise convolutions are where eager PyTorch loses most).

The graph is exported from the loaded model once per render shape, in memory: nothing is written to
disk, and retrained weights of the same architecture are picked up by construction. PyTorch stays
the reference and the path for training, hints and CUDA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from vidcolor.stages.onnx_export import graph_bytes, require


class OnnxRunner:
    """``runner(L)``: L float32 (B,1,h,w) CIE L* in [0,100] -> ab float32 (B,2,h,w) raw a*b*."""

    def __init__(self, model: nn.Module, threads: int = 0) -> None:
        require("onnxruntime")
        self.model = model
        self.threads = threads
        self._sessions: dict[tuple[tuple[int, int], str], Any] = {}

    def _session(self, shape: tuple[int, int]) -> Any:
        # The readout settings (head, temperature, ...) are baked into the graph, and eval switches
        # them on the live model between runs: they are part of the key.
        key = (shape, repr(getattr(self.model, "config", None)))
        sess = self._sessions.get(key)
        if sess is None:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self.threads:
                so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            # ORT's workers spin between kernels by default; in the pipeline the decode, merge and
            # encode threads need those cores, and spinning takes them away.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sess = ort.InferenceSession(
                graph_bytes(self.model, shape), so, providers=["CPUExecutionProvider"]
            )
            self._sessions[key] = sess
        return sess

    def __call__(self, L: np.ndarray) -> np.ndarray:
        sess = self._session((int(L.shape[2]), int(L.shape[3])))
        out = sess.run(["ab"], {"L": np.ascontiguousarray(L, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)
