"""ECCV16 and SIGGRAPH17: state-dict layout of the released files, the model contract, hash checks."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import cast

import pytest
import torch
import torch.nn.functional as F

import vidcolor.models as models
from vidcolor.errors import WeightsError
from vidcolor.models.zhang import ECCVGenerator, SIGGRAPHGenerator

# The layer tables below are transcribed from richzhang/colorization, colorizers/eccv16.py and
# colorizers/siggraph17.py: (key prefix, kind, shape). "conv" has weight+bias, "convt" is a
# ConvTranspose2d (weight is (in, out, k, k)), "bn" a BatchNorm2d, "conv_nobias" weight only.


def _trunk(first_in: int) -> list[tuple[str, str, tuple[int, ...]]]:
    rows: list[tuple[str, str, tuple[int, ...]]] = []
    blocks = [
        ("model1", [first_in, 64, 64]),
        ("model2", [64, 128, 128]),
        ("model3", [128, 256, 256, 256]),
        ("model4", [256, 512, 512, 512]),
        ("model5", [512, 512, 512, 512]),
        ("model6", [512, 512, 512, 512]),
        ("model7", [512, 512, 512, 512]),
    ]
    for name, w in blocks:
        for i in range(len(w) - 1):
            rows.append((f"{name}.{2 * i}", "conv", (w[i + 1], w[i], 3, 3)))
        rows.append((f"{name}.{2 * (len(w) - 1)}", "bn", (w[-1],)))
    return rows


ECCV16_LAYERS = _trunk(1) + [
    ("model8.0", "convt", (512, 256, 4, 4)),
    ("model8.2", "conv", (256, 256, 3, 3)),
    ("model8.4", "conv", (256, 256, 3, 3)),
    ("model8.6", "conv", (313, 256, 1, 1)),
    ("model_out", "conv_nobias", (2, 313, 1, 1)),
]
SIGGRAPH17_LAYERS = _trunk(4) + [
    ("model8up.0", "convt", (512, 256, 4, 4)),
    ("model8.1", "conv", (256, 256, 3, 3)),
    ("model8.3", "conv", (256, 256, 3, 3)),
    ("model8.5", "bn", (256,)),
    ("model9up.0", "convt", (256, 128, 4, 4)),
    ("model9.1", "conv", (128, 128, 3, 3)),
    ("model9.3", "bn", (128,)),
    ("model10up.0", "convt", (128, 128, 4, 4)),
    ("model10.1", "conv", (128, 128, 3, 3)),
    ("model3short8.0", "conv", (256, 256, 3, 3)),
    ("model2short9.0", "conv", (128, 128, 3, 3)),
    ("model1short10.0", "conv", (128, 64, 3, 3)),
    ("model_class.0", "conv", (529, 256, 1, 1)),
    ("model_out.0", "conv", (2, 128, 1, 1)),
]


def _keys(layers: list[tuple[str, str, tuple[int, ...]]]) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for prefix, kind, shape in layers:
        if kind == "bn":
            for k in ("weight", "bias", "running_mean", "running_var"):
                out[f"{prefix}.{k}"] = shape
            out[f"{prefix}.num_batches_tracked"] = ()
        elif kind == "convt":
            out[f"{prefix}.weight"], out[f"{prefix}.bias"] = shape, (shape[1],)
        elif kind == "conv":
            out[f"{prefix}.weight"], out[f"{prefix}.bias"] = shape, (shape[0],)
        else:
            out[f"{prefix}.weight"] = shape
    return out


def _layout(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


@pytest.fixture(scope="module")
def eccv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("eccv") / "my-eccv16.pth"
    torch.save(ECCVGenerator().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def siggraph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sig") / "my-siggraph17.pth"
    torch.save(SIGGRAPHGenerator().state_dict(), path)
    return path


def test_eccv16_keys_and_shapes_match_the_release() -> None:
    layout = _layout(ECCVGenerator().state_dict())
    expected = _keys(ECCV16_LAYERS)
    assert layout == expected
    # Ends and counts, spelled out, as a check on the table itself: 24 convs, 8 norms, 1 deconv.
    assert list(layout)[:3] == ["model1.0.weight", "model1.0.bias", "model1.2.weight"]
    assert list(layout)[-3:] == ["model8.6.weight", "model8.6.bias", "model_out.weight"]
    assert len(layout) == 82 and sum(1 for k in layout if k.endswith("running_var")) == 7
    assert sum(torch.Size(s).numel() for s in layout.values()) == 32_241_003 + 7  # + num_batches_tracked


def test_siggraph17_keys_and_shapes_match_the_release() -> None:
    layout = _layout(SIGGRAPHGenerator().state_dict())
    assert layout == _keys(SIGGRAPH17_LAYERS)
    assert list(layout)[:3] == ["model1.0.weight", "model1.0.bias", "model1.2.weight"]
    assert list(layout)[-3:] == ["model_class.0.bias", "model_out.0.weight", "model_out.0.bias"]
    assert len(layout) == 107 and sum(1 for k in layout if k.endswith("running_var")) == 9


def _layers(model: torch.nn.Module, block: str) -> list[torch.nn.Module]:
    """The layers of the block ``block`` (an nn.Sequential: model1..model7), in order."""
    return list(cast(torch.nn.Sequential, model.get_submodule(block)))


def test_dilations_and_strides_follow_upstream() -> None:
    eccv, sig = ECCVGenerator(), SIGGRAPHGenerator()
    for m in (eccv, sig):
        for name in ("model5", "model6"):
            assert all(c.dilation == (2, 2) and c.padding == (2, 2) for c in _layers(m, name)[0:5:2])
    # ECCV16 downsamples with the last conv of blocks 1-3; SIGGRAPH17 by slicing, no strided conv.
    assert [_layers(eccv, f"model{i}")[-3].stride for i in (1, 2, 3, 4)] == [(2, 2)] * 3 + [(1, 1)]
    assert all(
        getattr(c, "stride", (1, 1)) != (2, 2) or isinstance(c, torch.nn.ConvTranspose2d)
        for c in sig.modules()
    )


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_load_with_weights_file_and_contract(name: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue("eccv_file" if name == "eccv16" else "siggraph_file")
    model = cast(ECCVGenerator | SIGGRAPHGenerator, models.load(name, device="cpu", weights=path))
    assert not model.training
    assert model.info.name == name and model.info.stride == 8 and model.info.render_size == 256
    assert model.info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.info.licence == "BSD-2-Clause" and model.info.weights_present
    raw = torch.load(path, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, raw[k]), k
    L = torch.rand(2, 1, 48, 64) * 100
    with torch.inference_mode():
        ab = model(L)
    assert ab.shape == (2, 2, 48, 64) and ab.dtype == torch.float32
    assert ab.abs().max() <= 110.0 + 1e-3  # both read ab out of a bounded head (bins / tanh) * 110


def test_eccv16_forward_is_the_upstream_computation(eccv_file: Path) -> None:
    model = cast(ECCVGenerator, models.load("eccv16", device="cpu", weights=eccv_file))
    L = torch.rand(1, 1, 32, 40) * 100
    with torch.inference_mode():
        # upstream: model_out(softmax(model8(...model1((L - 50) / 100)))), upsample x4, * 110
        h = (L - 50) / 100
        for i in range(1, 9):
            h = model.get_submodule(f"model{i}")(h)
        ref = F.interpolate(model.model_out(torch.softmax(h, 1)), scale_factor=4, mode="bilinear") * 110
        torch.testing.assert_close(model(L), ref, rtol=1e-4, atol=1e-3)


def test_eccv16_temperature_sharpens() -> None:
    torch.manual_seed(1)
    sd = ECCVGenerator().state_dict()
    cool = models.checkpoint.build_model("eccv16", {"temperature": 0.38})
    warm = models.checkpoint.build_model("eccv16", {})
    cool.load_state_dict(sd)
    warm.load_state_dict(sd)
    L = torch.rand(1, 1, 16, 16) * 100
    with torch.inference_mode():
        assert not torch.allclose(cool.eval()(L), warm.eval()(L))


def test_siggraph17_forward_is_the_upstream_computation(siggraph_file: Path) -> None:
    m = cast(SIGGRAPHGenerator, models.load("siggraph17", device="cpu", weights=siggraph_file))
    L = torch.rand(1, 1, 32, 24) * 100
    with torch.inference_mode():
        x = torch.cat([(L - 50) / 100, torch.zeros(1, 3, 32, 24)], 1)
        c1 = m.model1(x)
        c2 = m.model2(c1[:, :, ::2, ::2])
        c3 = m.model3(c2[:, :, ::2, ::2])
        c7 = m.model7(m.model6(m.model5(m.model4(c3[:, :, ::2, ::2]))))
        c8 = m.model8(m.model8up(c7) + m.model3short8(c3))
        c9 = m.model9(m.model9up(c8) + m.model2short9(c2))
        c10 = m.model10(m.model10up(c9) + m.model1short10(c1))
        torch.testing.assert_close(m(L), m.model_out(c10) * 110)
        hints = torch.zeros(1, 3, 32, 24)
        hints[:, 0, :8, :8], hints[:, 2, :8, :8] = 60.0, 1.0
        assert not torch.allclose(m(L, hints), m(L))


def test_state_dict_without_num_batches_tracked_loads(tmp_path: Path) -> None:
    # Files saved by PyTorch before 0.4.1 have no num_batches_tracked; upstream's strict load accepts them.
    sd = {k: v for k, v in SIGGRAPHGenerator().state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(sd, path)
    model = cast(SIGGRAPHGenerator, models.load("siggraph17", device="cpu", weights=path))
    assert torch.equal(cast(torch.nn.Conv2d, model.model_out[0]).weight, sd["model_out.0.weight"])


def test_weights_of_the_other_architecture_are_refused(eccv_file: Path) -> None:
    with pytest.raises(WeightsError, match=re.escape(str(eccv_file))) as e:
        models.load("siggraph17", device="cpu", weights=eccv_file)
    msg = str(e.value)
    assert (
        "missing" in msg and "unexpected" in msg and "model1.0.weight (64, 1, 3, 3) vs (64, 4, 3, 3)" in msg
    )


def test_truncated_upstream_file_names_file_and_hash_prefix(eccv_file: Path, tmp_path: Path) -> None:
    # A hand download cut short, under the upstream name: the hub prefix in the name is checked.
    bad = tmp_path / "colorization_release_v2-9b330a0b.pth"
    with open(eccv_file, "rb") as f:
        bad.write_bytes(f.read(1 << 20))
    with pytest.raises(WeightsError) as e:
        models.load("eccv16", device="cpu", weights=bad)
    assert str(bad) in str(e.value) and "9b330a0b" in str(e.value)


def test_truncated_file_of_another_name_is_a_clear_error(eccv_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.pth"
    with open(eccv_file, "rb") as f:
        bad.write_bytes(f.read(1 << 20))
    with pytest.raises(WeightsError, match=re.escape(str(bad))):
        models.load("eccv16", device="cpu", weights=bad)


def test_complete_file_with_the_wrong_hash_prefix_is_refused(siggraph_file: Path, tmp_path: Path) -> None:
    # A loadable siggraph17 state dict is still refused when its name promises another file's hash.
    bad = tmp_path / "siggraph17-df00044c.pth"
    bad.symlink_to(siggraph_file)
    with pytest.raises(WeightsError, match="df00044c") as e:
        models.load("siggraph17", device="cpu", weights=bad)
    assert str(bad) in str(e.value)


def test_file_with_matching_hub_prefix_loads(
    eccv_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same check that refuses a wrong file accepts the right one: give the entry this file's prefix.
    from dataclasses import replace

    from vidcolor.models import registry

    digest = hashlib.sha256(eccv_file.read_bytes()).hexdigest()
    good = tmp_path / f"eccv16-{digest[:8]}.pth"
    good.symlink_to(eccv_file)
    entry = replace(registry.REGISTRY["eccv16"], url=f"https://example.invalid/{good.name}")
    monkeypatch.setitem(registry.REGISTRY, "eccv16", entry)
    assert entry.expected_sha256() == digest[:8]
    model = cast(ECCVGenerator, models.load("eccv16", device="cpu", weights=good))
    assert model.info.sha256 == digest
    # And a full recorded hash takes precedence over the prefix.
    monkeypatch.setitem(registry.REGISTRY, "eccv16", replace(entry, sha256="0" * 64))
    with pytest.raises(WeightsError, match="0" * 64):
        models.load("eccv16", device="cpu", weights=good)


def test_registry_urls_carry_the_hub_hash_prefix() -> None:
    from vidcolor.models import registry

    assert registry.REGISTRY["eccv16"].expected_sha256() == "9b330a0b"
    assert registry.REGISTRY["siggraph17"].expected_sha256() == "df00044c"
