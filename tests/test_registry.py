"""The registry: names, shipped weights and their record, the download cache, devices, the table."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
import torch

import vidcolor.models as models
from vidcolor.errors import UsageError, WeightsError
from vidcolor.models import download as dl
from vidcolor.models import registry
from vidcolor.models.checkpoint import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.models.zhang import SIGGRAPHGenerator

TINY = ColorizerConfig(global_dim=8, widths=(16, 8, 8, 8, 8))


@pytest.fixture
def shipped_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty stand-in for vidcolor/models/weights/."""
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setattr(registry, "WEIGHTS_DIR", d)
    return d


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("VIDCOLOR_CACHE", str(d))
    return d


@pytest.fixture(scope="module")
def upstream_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A SIGGRAPH17-shaped raw state dict named the hub way: name-<sha256 prefix>.pth."""
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("upstream")
    tmp = d / "raw.pth"
    torch.save(SIGGRAPHGenerator().state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = d / f"siggraph17-{digest[:8]}.pth"
    tmp.rename(path)
    return path, digest


def _serve(monkeypatch: pytest.MonkeyPatch, path: Path) -> registry.WeightsEntry:
    """Point the siggraph17 entry at a file:// URL: the real download code runs, with no network."""
    entry = replace(registry.REGISTRY["siggraph17"], url=path.absolute().as_uri())
    monkeypatch.setitem(registry.REGISTRY, "siggraph17", entry)
    return entry


def test_available_lists_every_entry_default_first(shipped_dir: Path, cache: Path) -> None:
    infos = models.available()
    assert [i.name for i in infos] == ["vidcolor-lite", "eccv16", "siggraph17"]
    assert models.DEFAULT == "vidcolor-lite"
    assert not any(i.weights_present for i in infos)
    assert {i.licence for i in infos[1:]} == {"BSD-2-Clause"}
    assert [(i.stride, i.render_size) for i in infos[1:]] == [(8, 256), (8, 256)]
    cache.mkdir()
    (cache / "colorization_release_v2-9b330a0b.pth").write_bytes(b"x")
    assert [i.weights_present for i in models.available()] == [False, True, False]


def test_models_table(shipped_dir: Path, cache: Path) -> None:
    table = models.format_models_table(models.available())
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["name", "licence", "weights", "render"]
    assert lines[1].startswith("vidcolor-lite (default)") and "missing" in lines[1]
    assert "eccv16" in lines[2] and "not downloaded" in lines[2] and "256" in lines[2]
    assert len(lines) == 4


def test_shipped_model_loads_by_name_with_its_recorded_hash(shipped_dir: Path) -> None:
    torch.manual_seed(0)
    tiny = Colorizer(TINY).eval()
    path = save_checkpoint(
        shipped_dir / "vidcolor-lite.pt",
        tiny,
        data="d",
        recipe="r",
        metrics={},
        step=1,
        git_sha=None,
        half=True,
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (shipped_dir / "vidcolor-lite.json").write_text(json.dumps({"sha256": digest, "licence": "CC-BY-4.0"}))
    info = next(i for i in models.available() if i.name == "vidcolor-lite")
    assert info.weights_present and info.sha256 == digest and info.licence == "CC-BY-4.0"
    model = models.load(device="cpu")
    assert isinstance(model, Colorizer) and model.config == TINY
    assert (
        model.info.name == "vidcolor-lite"
        and model.info.sha256 == digest
        and model.info.licence == "CC-BY-4.0"
    )
    assert model.info.stride == 32 and model.info.render_size == TINY.render_size
    # A shipped file that does not match its record is refused, naming file and hash.
    (shipped_dir / "vidcolor-lite.json").write_text(json.dumps({"sha256": "ab" * 32}))
    with pytest.raises(WeightsError) as e:
        models.load("vidcolor-lite", device="cpu")
    assert str(path) in str(e.value) and "ab" * 32 in str(e.value) and "reinstall" in str(e.value)


def test_weights_record_is_what_load_checks(shipped_dir: Path) -> None:
    torch.manual_seed(0)
    path = save_checkpoint(
        shipped_dir / "vidcolor-lite.pt",
        Colorizer(TINY),
        data="d",
        recipe="r",
        metrics={},
        step=1,
        git_sha=None,
    )
    rec = registry.write_weights_record(path, licence="Apache-2.0", data="corpus/3")
    assert rec == shipped_dir / "vidcolor-lite.json"
    data = json.loads(rec.read_text())
    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and data["data"] == "corpus/3"
    assert cast(Colorizer, models.load(device="cpu")).info.sha256 == data["sha256"]
    assert sorted(p.name for p in shipped_dir.iterdir()) == ["vidcolor-lite.json", "vidcolor-lite.pt"]


def test_missing_shipped_weights(shipped_dir: Path) -> None:
    with pytest.raises(WeightsError, match=re.escape(str(shipped_dir / "vidcolor-lite.pt"))):
        models.load(device="cpu")


def test_unknown_name_lists_the_models(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        models.load("ecv16", device="cpu")
    assert all(n in str(e.value) for n in ("vidcolor-lite", "eccv16", "siggraph17"))
    with pytest.raises(UsageError, match="model name"):
        models.load(tmp_path / "missing.pt", device="cpu")


def test_weights_needs_a_name(tmp_path: Path) -> None:
    f = tmp_path / "x.pt"
    f.write_bytes(b"")
    with pytest.raises(UsageError, match="--weights"):
        models.load(f, device="cpu", weights=f)


def test_devices() -> None:
    assert registry.resolve_device("cpu") == torch.device("cpu")
    assert registry.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="device"):
        registry.resolve_device("gpu0")
    with pytest.raises(UsageError, match="cuda"):
        registry.resolve_device(f"cuda:{torch.cuda.device_count() + 3}")


def test_download_once_into_the_cache(
    upstream_file: tuple[Path, str], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, digest = upstream_file
    entry = _serve(monkeypatch, src)
    assert entry.expected_sha256() == digest[:8]
    model = cast(SIGGRAPHGenerator, models.load("siggraph17", device="cpu"))
    cached = cache / src.name
    assert cached.is_file() and [p.name for p in cache.iterdir()] == [src.name]
    assert model.info.sha256 == digest and model.info.name == "siggraph17"
    assert next(i for i in models.available() if i.name == "siggraph17").weights_present

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert cast(SIGGRAPHGenerator, models.load("siggraph17", device="cpu")).info.sha256 == digest


def test_download_with_the_wrong_hash_leaves_nothing(
    upstream_file: tuple[Path, str], cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = upstream_file
    impostor = tmp_path / "siggraph17-00000000.pth"
    impostor.symlink_to(src)
    _serve(monkeypatch, impostor)
    with pytest.raises(WeightsError) as e:
        models.load("siggraph17", device="cpu")
    assert "00000000" in str(e.value) and "--weights" in str(e.value)
    assert list(cache.iterdir()) == []


def test_offline_says_how_to_download_by_hand(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*a: object, **k: object) -> None:
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(WeightsError) as e:
        models.load("eccv16", device="cpu")
    msg = str(e.value)
    url = registry.REGISTRY["eccv16"].url
    assert url is not None
    assert url in msg and "--weights FILE" in msg
    assert list(cache.iterdir()) == []


def test_interrupted_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Dying:
        headers = {"Content-Length": "100"}
        sent = False

        def read(self, n: int) -> bytes:
            if self.sent:
                raise ConnectionResetError("reset by peer")
            self.sent = True
            return b"x" * 10

        def __enter__(self) -> Dying:
            return self

        def __exit__(self, *a: object) -> None:
            return None

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Dying())
    with pytest.raises(WeightsError, match="ConnectionResetError"):
        dl.download("https://example.invalid/w-12345678.pth", tmp_path / "w-12345678.pth", sha256="12345678")
    assert list(tmp_path.iterdir()) == []


def test_short_download_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Short:
        headers = {"Content-Length": "100"}
        chunks = [b"x" * 10, b""]

        def read(self, n: int) -> bytes:
            return self.chunks.pop(0)

        def __enter__(self) -> Short:
            return self

        def __exit__(self, *a: object) -> None:
            return None

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Short())
    with pytest.raises(WeightsError, match="100 bytes"):
        dl.download("https://example.invalid/w.pth", tmp_path / "w.pth", sha256=None)
    assert list(tmp_path.iterdir()) == []


def test_download_reports_progress(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"y" * 3000)
    seen: list[tuple[int, int | None]] = []
    out = dl.download(
        src.as_uri(),
        tmp_path / "dst" / "f.bin",
        sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert out.read_bytes() == src.read_bytes() and seen[-1] == (3000, 3000)


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIDCOLOR_CACHE", str(tmp_path / "c"))
    assert dl.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VIDCOLOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert dl.cache_dir() == tmp_path / "x" / "vidcolor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert dl.cache_dir() == Path.home() / ".cache" / "vidcolor"


def test_damaged_cached_file_says_to_delete_it(
    upstream_file: tuple[Path, str], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, digest = upstream_file
    _serve(monkeypatch, src)
    cache.mkdir()
    (cache / src.name).write_bytes(src.read_bytes()[:4096])
    with pytest.raises(WeightsError) as e:
        models.load("siggraph17", device="cpu")
    assert f"delete {cache / src.name}" in str(e.value) and digest[:8] in str(e.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_defaults_to_half_channels_last(upstream_file: tuple[Path, str]) -> None:
    src, _ = upstream_file
    model = cast(SIGGRAPHGenerator, models.load("siggraph17", device="cuda", weights=src))
    w = cast(torch.nn.Conv2d, model.model1[0]).weight
    assert w.dtype == torch.float16 and w.is_cuda and w.is_contiguous(memory_format=torch.channels_last)
    L = torch.rand(2, 1, 64, 48, device="cuda") * 100
    with torch.inference_mode():
        ab = model(L)
    assert ab.dtype == torch.float32 and ab.shape == (2, 2, 64, 48) and torch.isfinite(ab).all()
