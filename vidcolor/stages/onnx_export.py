"""A loaded colorizer as an ONNX file, for ONNX Runtime, OpenVINO, vs-mlrt or FFmpeg's DNN filters.

The file holds the model contract of DESIGN.md and nothing of the pipeline around it:

    input  "L"  (B, 1, h, w) float32, CIE L* in [0, 100]
    output "ab" (B, 2, h, w) float32, raw CIE a*b* (the same units as L*, roughly -110..110)

h and w are multiples of the model's stride. The batch axis is always free; with ``dynamic`` h and w
are too, otherwise they are fixed at the render shape of a 16:9 picture whose short side is
``render_size``. The weights' licence, their sha256 and this contract are written into the file's
metadata (``metadata_props``), so a file met on its own still says what it is and under which terms.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from vidcolor.errors import UsageError
from vidcolor.media.atomic import atomic_output
from vidcolor.models.info import ModelInfo
from vidcolor.stages.batch_l import render_shape
from vidcolor.version import __version__

OPSET = 17
INSTALL_HINT = "install it with pip install 'vidcolor[onnx]'"


def installed(module: str) -> bool:
    """Whether ``module`` (onnx, onnxruntime) can be imported here."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def require(module: str) -> None:
    """Import ``module`` (onnx, onnxruntime) or raise a one-line UsageError naming the extra."""
    if not installed(module):
        raise UsageError(f"the {module} package", "it is not installed", INSTALL_HINT)


def export_shape(info: ModelInfo, render_size: int | None) -> tuple[int, int]:
    """(h, w) in pixels of the fixed export: a 16:9 picture at short side ``render_size`` (default
    the model's own), padded to the stride as the pipeline pads it."""
    size = info.render_size if render_size is None else render_size
    if size < info.stride:
        raise UsageError(f"--render-size of at least {info.stride}", str(size), "pass e.g. 224")
    _, _, h, w = render_shape(size * 9, size * 16, size, info.stride)
    return h, w


def metadata(info: ModelInfo, shape: tuple[int, int], dynamic: bool) -> dict[str, str]:
    """The key/value pairs written into the file: who made the weights under which licence, and
    what goes in and comes out."""
    return {
        "model": info.name,
        "licence": info.licence,
        "weights_sha256": info.sha256 or "",
        "producer": f"vidcolor {__version__}",
        "input": "L: (B,1,h,w) float32, CIE L* in [0,100]",
        "output": "ab: (B,2,h,w) float32, raw CIE a*b* (D65, same units as L*, roughly -110..110)",
        "stride": str(info.stride),
        "render_size": str(info.render_size),
        "shape": "dynamic (B,h,w); h, w multiples of stride" if dynamic else f"(B,1,{shape[0]},{shape[1]})",
        "usage": "merge ab with the source's own L* at full size; the model sees L* at the render size",
    }


class _NoHints(nn.Module):
    """The colorizer with its optional hints input left out: ONNX graphs have no optional inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return self.model(L)


def export_onnx(
    model: nn.Module,
    dst: str | os.PathLike[str],
    *,
    render_size: int | None = None,
    dynamic: bool = False,
    overwrite: bool = False,
) -> dict[str, str]:
    """Write ``model`` (float32, any device; it is copied to the CPU) to ``dst`` as ONNX.

    Returns the metadata written. Nothing is left at ``dst`` if the export fails. Raises
    UsageError when the onnx package is missing or ``dst`` exists without ``overwrite``.
    """
    require("onnx")
    import onnx

    info = model.info
    assert isinstance(info, ModelInfo)
    shape = export_shape(info, render_size)
    meta = metadata(info, shape, dynamic)
    with atomic_output(Path(dst), overwrite) as tmp:
        proto = onnx.load_from_string(graph_bytes(model, shape, dynamic))
        onnx.helper.set_model_props(proto, meta)
        proto.doc_string = f"{info.name}: grey L* in, a*b* out; licence {info.licence}"
        onnx.save(proto, str(tmp))
    return meta


def graph_bytes(model: nn.Module, shape: tuple[int, int], dynamic: bool = False) -> bytes:
    """The serialised ONNX graph of ``model`` for input (B, 1, *shape); batch always free, h and w
    too with ``dynamic``. The model itself is left where it was (device, dtype, mode)."""
    net = _NoHints(copy.deepcopy(model)).to("cpu", torch.float32).eval()
    example = torch.full((1, 1, *shape), 50.0)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    buf = io.BytesIO()
    # The TorchScript exporter is deprecated in favour of torch.export's, which needs onnxscript and
    # traces this fixed, control-flow-free graph no better; its warning would reach every user.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # Tensors the forward makes from config constants (the rebalancing weights) are meant to
        # be constants of the graph, which is all this warning says.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            net,
            (example,),
            buf,  # type: ignore[arg-type]  # the exporter writes to any binary file object
            input_names=["L"],
            output_names=["ab"],
            dynamic_axes={"L": axes, "ab": axes},
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()
