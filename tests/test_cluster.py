"""``vidcolor batch --ray`` on a real two-node Ray cluster on 127.0.0.1 (vidcolor/cluster/local.py):
the same outputs and manifest as local batch, a long film's segments on both nodes, a node lost
mid-batch; and the errors that need no cluster (no Ray, a path a worker cannot see)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from clips import make_clip, read_packets, read_video_pts

from vidcolor.batch import DONE, FAILED, MANIFEST_NAME, Job, read_manifest, run_batch, sha256_file
from vidcolor.cli import main
from vidcolor.cluster.connect import check_address
from vidcolor.cluster.local import LocalCluster
from vidcolor.cluster.tasks import film_task, segment_task
from vidcolor.media.probe import probe
from vidcolor.models import save_checkpoint
from vidcolor.models.colorizer import Colorizer, ColorizerConfig
from vidcolor.options import ColorizeOptions
from vidcolor.pipeline.cuts import plan_segments
from vidcolor.pipeline.run import colorize_video

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
_ENV_PATH = {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
_CLUSTERS: dict[str, LocalCluster] = {}


def _env(address: str) -> dict[str, str]:
    """A driver's environment: the cluster's (its token) and this checkout on the path."""
    return _CLUSTERS[address].env | _ENV_PATH


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = Colorizer(ColorizerConfig(widths=(32, 16, 16, 16, 8), global_dim=16, render_size=32)).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(
        path, model, data="test", recipe="untrained test model", metrics={}, step=0, git_sha=None
    )


def _cluster() -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="vc-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    cluster = LocalCluster(root)
    _CLUSTERS[cluster.address] = cluster
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    yield from _cluster()


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster of its own, for a test that kills one of its nodes."""
    yield from _cluster()


def _opts(ckpt: Path) -> ColorizeOptions:
    return ColorizeOptions(model=str(ckpt), render_size=32, threads=1, lossless=True)


def _ray_batch(
    src: Path, out: Path, ckpt: Path, address: str, *extra: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "vidcolor",
        "batch",
        str(src),
        "-o",
        str(out),
        "--model",
        str(ckpt),
        "--render-size",
        "32",
        "--threads",
        "1",
        "--lossless",
        *extra,
        "--ray",
        address,
    ]
    return subprocess.run(args, env=_env(address), capture_output=True, text=True, timeout=timeout)


def _records(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv444p") for f in c.decode(video=0)]


def test_batch_on_two_nodes_matches_local_batch(cluster: LocalCluster, ckpt: Path, tmp_path: Path) -> None:
    src = tmp_path / "reels"
    (src / "day2").mkdir(parents=True)
    make_clip(src / "a.mp4", frames=12, size=(64, 48), audio=[("aac", "eng")])
    make_clip(src / "day2" / "b.mkv", frames=10, size=(48, 32), audio=[("libopus", None)])
    make_clip(src / "day2" / "c.mov", frames=9, size=(48, 32), bframes=2)
    (src / "bad.mp4").write_text("not a film\n")
    local = run_batch([src], tmp_path / "local", _opts(ckpt))

    out = tmp_path / "ray"
    done = _ray_batch(src, out, ckpt, cluster.address)
    assert done.returncode == local.exit_code == 1, done.stderr
    assert "4 files: 3 succeeded, 1 failed, 0 skipped" in done.stdout
    assert "films 4/4" in done.stderr  # the whole batch's bar
    for rel in ("a.mp4", "day2/b.mkv", "day2/c.mov"):
        # Lossless: the same video packets as local batch, so the same frames at the same pts;
        # the same file byte for byte where the container has no random id (Matroska's segment UID).
        local_file = tmp_path / "local" / rel
        assert read_packets(out / rel, "video") == read_packets(local_file, "video"), rel
        if not rel.endswith(".mkv"):
            assert (out / rel).read_bytes() == local_file.read_bytes(), rel
        assert read_video_pts(out / rel) == read_video_pts(src / rel)
        assert read_packets(out / rel, "audio") == read_packets(src / rel, "audio")
    ours, theirs = read_manifest(out / MANIFEST_NAME), read_manifest(tmp_path / "local" / MANIFEST_NAME)
    bad = str(src / "bad.mp4")
    assert ours[bad]["status"] == theirs[bad]["status"] == FAILED
    assert (
        ours[bad]["error"] == theirs[bad]["error"] and ours[bad]["exit_code"] == theirs[bad]["exit_code"] == 2
    )
    for rec in ours.values():
        if rec["status"] == DONE:
            assert rec["sha256"] == sha256_file(out / rec["output"]) and rec["frames"] in (12, 10, 9)
            assert len(rec["nodes"]) == 1  # started once: no node was lost
    assert not list(out.rglob(".*"))  # no temporary file, no segment folder

    again = _ray_batch(src, out, ckpt, cluster.address, "-q")
    assert again.returncode == 1 and "4 files: 0 succeeded, 1 failed, 3 skipped" in again.stdout, again.stderr


def test_long_film_runs_its_segments_on_both_nodes(cluster: LocalCluster, ckpt: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    film = make_clip(src / "long.mkv", frames=96, rate=24, size=(64, 48), audio=[("aac", "eng")], bframes=2)
    assert len(plan_segments(probe(film), _opts(ckpt), 1.0)) == 4
    out = tmp_path / "out"
    done = _ray_batch(src, out, ckpt, cluster.address, "--segment-seconds", "1", "-q")
    assert done.returncode == 0, done.stderr

    rec = read_manifest(out / MANIFEST_NAME)[str(film)]
    assert rec["status"] == DONE and rec["frames"] == 96
    assert [s["number"] for s in rec["segments"]] == [0, 1, 2, 3]
    assert sum(s["frames"] for s in rec["segments"]) == 96
    assert len({s["node"] for s in rec["segments"]}) == 2  # both nodes ran segments
    assert [s["attempts"] for s in rec["segments"]] == [1, 1, 1, 1]

    whole = tmp_path / "whole.mkv"
    opts = _opts(ckpt)
    from vidcolor import models

    colorize_video(film, whole, opts, colorizer=models.load(str(ckpt), device="cpu"))
    assert all(np.array_equal(a, b) for a, b in zip(planes(out / "long.mkv"), planes(whole), strict=True))
    assert read_video_pts(out / "long.mkv") == read_video_pts(whole) == read_video_pts(film)
    assert read_packets(out / "long.mkv", "audio") == read_packets(film, "audio")
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, "long.mkv"])  # segments gone


def test_a_node_lost_mid_batch(own_cluster: LocalCluster, ckpt: Path, tmp_path: Path) -> None:
    """SIGKILL the second node's raylet and workers while it runs a film: Ray runs that film
    again on the head, and the batch ends with every film done once, whole, and recorded as it is."""
    src = tmp_path / "in"
    src.mkdir()
    # Long enough that the second node is still inside its film half a second after it started.
    counts = {f"f{k}.mp4": 300 + k for k in range(4)}
    for name, n in counts.items():
        make_clip(src / name, frames=n, size=(96, 64))
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "vidcolor",
        "batch",
        str(src),
        "-o",
        str(out),
        "--model",
        str(ckpt),
        "--render-size",
        "32",
        "--threads",
        "1",
        "--segment-seconds",
        "0",
        "-q",
        "--model-every",
        "1",
        "--ray",
        own_cluster.address,
    ]
    proc = subprocess.Popen(
        args, env=own_cluster.env | _ENV_PATH, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    second = own_cluster.nodes[1]
    end = time.monotonic() + 240
    while time.monotonic() < end and proc.poll() is None and not second.busy():
        time.sleep(0.05)
    assert second.busy(), "the second node never ran a film"
    time.sleep(0.5)  # well into the film: its worker has said it started
    assert second.busy(), "the film on the second node ended before it could be cut short"
    second.lose()
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "4 files: 4 succeeded, 0 failed, 0 skipped" in stdout

    records = _records(out / MANIFEST_NAME)
    for name, n in counts.items():
        mine = [r for r in records if r["source"] == str(src / name)]
        assert [r["status"] for r in mine] == ["started", DONE], mine  # handed out once, recorded once
        assert mine[-1]["sha256"] == sha256_file(out / name) and mine[-1]["frames"] == n
        assert read_video_pts(out / name) == read_video_pts(src / name)  # nothing lost or doubled
    # The film the lost node was running was started once more, on the other node.
    starts = [r["nodes"] for r in records if r["status"] == DONE]
    assert sorted(len(n) for n in starts) == [1, 1, 1, 2], starts
    assert next(n for n in starts if len(n) == 2)[0] != next(n for n in starts if len(n) == 2)[1]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, *counts])  # no temporary file


def test_ray_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=4)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    result = CliRunner().invoke(main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--ray"])
    assert result.exit_code == 5
    assert result.output.strip() == (
        "vidcolor: error: expected Ray for --ray, found it is not installed: "
        "install it with pip install 'vidcolor[ray]'"
    )
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_address_and_jobs_with_ray_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=4)
    # A bare --ray before the inputs takes the first input as its address: say so.
    result = CliRunner().invoke(
        main, ["batch", "-o", str(tmp_path / "out"), "--ray", "reels/", str(tmp_path / "in")]
    )
    assert result.exit_code == 5 and "put a bare --ray after the inputs" in result.output
    result = CliRunner().invoke(
        main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--jobs", "2", "--ray"]
    )
    assert result.exit_code == 5 and "either --jobs or --ray" in result.output
    assert not (tmp_path / "out").exists()
    assert [check_address(a) for a in (None, "", "local", "auto", "ray://head:10001", "head.lan:6379")] == [
        "local",
        "local",
        "local",
        "auto",
        "ray://head:10001",
        "head.lan:6379",
    ]


def test_a_path_a_worker_cannot_see_is_a_clear_error_for_that_film(tmp_path: Path, ckpt: Path) -> None:
    """What a worker says when the shared storage is not mounted where the driver has it."""
    out = tmp_path / "out"
    out.mkdir()
    gone = Job(tmp_path / "nowhere" / "a.mp4", out / "a.mp4", "a.mp4", still=False)
    result, node = film_task(gone, out, _opts(ckpt), 0.0, None, (0, -1))
    assert result.status == FAILED and result.exit_code == 2
    assert result.error == (
        f"expected the input on storage this node sees at the same path, found no file {gone.source} on "
        f"{node.host}: mount the shared storage at the same path on every node (see docs/cluster.md)"
    )
    film = make_clip(tmp_path / "a.mp4", frames=4)
    elsewhere = Job(film, tmp_path / "unmounted" / "a.mp4", "a.mp4", still=False)
    result, _ = film_task(elsewhere, tmp_path / "unmounted", _opts(ckpt), 0.0, None, (0, -1))
    assert result.status == FAILED and result.exit_code == 4 and "no folder" in (result.error or "")
    seg = plan_segments(probe(film), _opts(ckpt), 60.0)[0]
    done = segment_task(tmp_path / "nowhere.mp4", seg, _opts(ckpt), out / "seg.mp4", None, (0, 0))
    assert done.result is None and done.exit_code == 2 and "no file" in (done.error or "")
    assert not list(out.iterdir())
