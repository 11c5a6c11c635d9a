"""`vidcolor export --format onnx`: the file runs in ONNX Runtime and gives PyTorch's ab, and says
in its metadata what it is (licence, contract, render shape)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner, Result

from vidcolor.cli import main
from vidcolor.stages.onnx_export import export_onnx, export_shape

# ab is in raw a*b* units (about -110..110); float32 graph rewrites (fused BN, reordered sums)
# move it by far less than a hundredth of a unit, which no 8- or 10-bit output can show.
AB_TOLERANCE = 1e-3


def _run(path, L: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["ab"], {"L": L})[0]


def _torch_ab(model: torch.nn.Module, L: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(L)).numpy()


def test_fixed_export_matches_pytorch_and_carries_the_contract(tiny_model, tmp_path):
    dst = tmp_path / "m.onnx"
    export_onnx(tiny_model, dst)
    h, w = export_shape(tiny_model.info, None)
    assert (h % 32, w % 32) == (0, 0) and h == 32 and w > h
    L = np.random.default_rng(0).uniform(0, 100, (3, 1, h, w)).astype(np.float32)  # batch is free
    ab = _run(dst, L)
    assert ab.shape == (3, 2, h, w) and ab.dtype == np.float32
    np.testing.assert_allclose(ab, _torch_ab(tiny_model, L), atol=AB_TOLERANCE, rtol=0)
    meta = {p.key: p.value for p in onnx.load(str(dst)).metadata_props}
    assert meta["licence"] == tiny_model.info.licence
    assert "[0,100]" in meta["input"] and "a*b*" in meta["output"]
    assert meta["stride"] == "32" and meta["shape"] == f"(B,1,{h},{w})"


def test_dynamic_export_takes_other_shapes(tiny_model, tmp_path):
    dst = tmp_path / "d.onnx"
    export_onnx(tiny_model, dst, dynamic=True)
    L = np.random.default_rng(1).uniform(0, 100, (2, 1, 64, 96)).astype(np.float32)
    np.testing.assert_allclose(_run(dst, L), _torch_ab(tiny_model, L), atol=AB_TOLERANCE, rtol=0)


def test_cli_export_from_a_checkpoint(tiny_model_path, tmp_path):
    dst = tmp_path / "cli.onnx"
    res = CliRunner().invoke(
        main, ["export", "--format", "onnx", str(dst), "--model", str(tiny_model_path), "--render-size", "64"]
    )
    assert res.exit_code == 0, res.output
    meta = {p.key: p.value for p in onnx.load(str(dst)).metadata_props}
    assert meta["shape"] == "(B,1,64,128)" and meta["model"] == "tiny" and len(meta["weights_sha256"]) == 64
    again = CliRunner().invoke(main, ["export", str(dst), "--model", str(tiny_model_path)])
    assert again.exit_code == 5 and "--overwrite" in again.output


@pytest.mark.parametrize("size", ["8", "0"])
def test_render_size_below_the_stride_is_refused_and_nothing_written(tiny_model_path, tmp_path, size):
    dst = tmp_path / "x.onnx"
    args = ["export", str(dst), "--model", str(tiny_model_path), "--render-size", size]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 5 and "render-size" in res.output and "Traceback" not in res.output
    assert not dst.exists() and list(tmp_path.iterdir()) == []


def test_onnx_model_step_gives_the_torch_steps_ab(tiny_model):
    from vidcolor.frames import LBatch
    from vidcolor.options import ColorizeOptions
    from vidcolor.stages.model_step import ModelStep

    L = np.random.default_rng(2).uniform(0, 100, (4, 1, 32, 64)).astype(np.float32)
    batch = LBatch(indices=(0, 1, 2, 3), L=L, content=(32, 57))
    eager = ModelStep.create(ColorizeOptions(device="cpu", runtime="torch"), tiny_model)
    fast = ModelStep.create(ColorizeOptions(device="cpu", runtime="onnx"), tiny_model)
    assert eager.onnx is None and fast.onnx is not None
    ab = fast(batch)
    assert ab.shape == (4, 2, 32, 64) and ab.dtype == np.float32
    np.testing.assert_allclose(ab, eager(batch), atol=AB_TOLERANCE, rtol=0)
    assert fast.onnx.session() is fast.onnx.session()  # one session, kept


def test_onnx_step_follows_a_readout_change_on_the_live_model(tiny_model):
    from dataclasses import replace

    from vidcolor.frames import LBatch
    from vidcolor.options import ColorizeOptions
    from vidcolor.stages.model_step import ModelStep

    L = np.random.default_rng(3).uniform(0, 100, (2, 1, 32, 32)).astype(np.float32)
    batch = LBatch(indices=(0, 1), L=L, content=(32, 32))
    fast = ModelStep.create(ColorizeOptions(device="cpu", runtime="onnx"), tiny_model)
    before = fast(batch)
    config = tiny_model.config
    try:
        tiny_model.config = replace(config, head="regression")
        after = fast(batch)
        np.testing.assert_allclose(after, _torch_ab(tiny_model, L), atol=AB_TOLERANCE, rtol=0)
    finally:
        tiny_model.config = config
    assert np.abs(after - before).max() > 1e-3


def _colorize_in_onnx_runtime(src: Path, dst: Path, model: Path) -> Result:
    """``vidcolor colorize SRC -o DST --model MODEL --device cpu --runtime onnx``."""
    args = ["colorize", str(src), "-o", str(dst), "--model", str(model), "--device", "cpu"]
    return CliRunner().invoke(main, [*args, "--runtime", "onnx"])


def test_missing_onnxruntime_is_one_line_naming_the_extra(tiny_model_path, clip, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    src = clip(frames=4)
    dst = tmp_path / "out.mp4"
    res = _colorize_in_onnx_runtime(src, dst, tiny_model_path)
    assert res.exit_code == 5 and "pip install 'vidcolor[onnx]'" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not dst.exists()


def test_colorize_with_the_onnx_runtime_end_to_end(tiny_model_path, clip, tmp_path):
    src = clip(frames=6)
    dst = tmp_path / "out.mp4"
    res = _colorize_in_onnx_runtime(src, dst, tiny_model_path)
    assert res.exit_code == 0, res.output
    assert dst.stat().st_size > 0


def test_without_onnxruntime_the_default_step_runs_in_pytorch(tiny_model, monkeypatch):
    import sys

    from vidcolor.options import ColorizeOptions
    from vidcolor.stages.model_step import ModelStep

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    step = ModelStep.create(ColorizeOptions(device="cpu"), tiny_model)
    assert step.onnx is None


class _NotExportable(torch.nn.Module):
    """Obeys the model contract, but with an operator the ONNX exporter does not know."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        from vidcolor.models.info import ModelInfo

        self.info = ModelInfo("odd", "none", None, 32, 32)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        eye = L[0, 0, :2, :2] * 0 + torch.eye(2)  # from the input, so the tracer cannot fold it
        e = torch.linalg.eigvals(eye).real.sum() / 2  # 1, through an operator ONNX lacks
        return (L.expand(-1, 2, -1, -1) - 50.0) * self.scale * e


def test_a_model_onnx_cannot_express_runs_in_pytorch_by_default():
    from vidcolor.frames import LBatch
    from vidcolor.options import ColorizeOptions
    from vidcolor.stages.model_step import ModelStep

    model = _NotExportable().eval()
    step = ModelStep.create(ColorizeOptions(device="cpu"), model)
    assert step.onnx is None
    L = np.full((1, 1, 32, 32), 60.0, np.float32)
    assert np.allclose(step(LBatch((0,), L, (32, 32))), 10.0)


def test_weights_changed_in_place_are_exported_again(tiny_model):
    import copy

    from vidcolor.frames import LBatch
    from vidcolor.options import ColorizeOptions
    from vidcolor.stages.model_step import ModelStep

    model = copy.deepcopy(tiny_model)
    L = np.random.default_rng(4).uniform(0, 100, (1, 1, 32, 32)).astype(np.float32)
    batch = LBatch(indices=(0,), L=L, content=(32, 32))
    step = ModelStep.create(ColorizeOptions(device="cpu", runtime="onnx"), model)
    before = step(batch)
    with torch.no_grad():
        model.reg_head.bias.add_(0.3)  # as an optimiser step would
    after = step(batch)
    np.testing.assert_allclose(after, _torch_ab(model, L), atol=AB_TOLERANCE, rtol=0)
    assert np.abs(after - before).max() > 1e-2
