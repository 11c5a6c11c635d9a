"""Films per hour of ``vidcolor batch --ray``: on one node and on two started on this machine, or
on a running cluster.

``python -m vidcolor.benchmark.cluster`` makes ``--films`` film-like clips (clip.py), starts a
Ray cluster of one node on this machine (cluster/local.py, ``--cpus-per-node`` CPUs), runs the
batch on it, stops it, then does the same with two nodes, and writes the figures to ``--out``.
Each batch runs in a fresh driver process and is timed around ``run_batch_on_ray``: connecting,
planning, the workers' start (their model load included) and every film are inside the clock.
Two nodes on one machine share its cores: what this measures there is the cost of the cluster
path, and whether the work spreads; on a real cluster, ``--address auto --work /shared/folder``
times one batch on the cluster as it is (the clips must be on storage every node sees).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vidcolor.durable import write_atomic

from .clip import cached_film_clip
from .env import environment, load_average


def _drive(args: argparse.Namespace) -> None:
    """In the driver process: one timed batch, its figures as JSON on stdout."""
    from vidcolor.cluster.connect import connect
    from vidcolor.cluster.driver import run_batch_on_ray
    from vidcolor.options import ColorizeOptions

    opts = ColorizeOptions(model=args.model, render_size=args.render_size, device=args.device)
    t0 = time.perf_counter()
    ray, _ = connect(args.drive)  # connected here, so that the cluster can be described after
    report = run_batch_on_ray(
        [args.inputs],
        args.output,
        opts,
        address=args.drive,
        cpus_per_task=args.cpus_per_task,
        gpus_per_task=args.gpus_per_task,
        segment_seconds=0,
    )
    seconds = time.perf_counter() - t0
    nodes = [n for n in ray.nodes() if n["Alive"]]
    ray.shutdown()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "done": report.count("done"),
                "failed": report.count("failed"),
                "frames": sum(r.frames or 0 for r in report.results),
                "nodes": len(nodes),
                "cpus": sum(n["Resources"].get("CPU", 0) for n in nodes),
                "gpus": sum(n["Resources"].get("GPU", 0) for n in nodes),
            }
        )
    )


def _batch(
    address: str, inputs: Path, output: Path, args: argparse.Namespace, env: dict[str, str] | None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "vidcolor.benchmark.cluster",
        "--drive",
        address,
        "--inputs",
        str(inputs),
        "--output",
        str(output),
        "--model",
        args.model,
        "--device",
        args.device,
        "--cpus-per-task",
        str(args.cpus_per_task),
        "--gpus-per-task",
        str(args.gpus_per_task),
    ]
    if args.render_size:
        cmd += ["--render-size", str(args.render_size)]
    load = load_average()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the batch failed: {done.stderr.strip()[-2000:]}")
    run: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    run["films_per_hour"] = round(run["done"] * 3600 / run["seconds"], 1)
    run["frames_per_second"] = round(run["frames"] / run["seconds"], 2)
    run["load_average_start"], run["load_average_end"] = load, load_average()
    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m vidcolor.benchmark.cluster", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--address", help="a running cluster (auto, HOST:PORT, ray://HOST:PORT); default: nodes here"
    )
    p.add_argument("--work", type=Path, help="folder for clips and outputs (on a cluster: shared storage)")
    p.add_argument("--nodes", default="1,2", help="node counts to start here, in turn (default 1,2)")
    p.add_argument("--cpus-per-node", type=int, default=1)
    p.add_argument("--films", type=int, default=6)
    p.add_argument("--frames", type=int, default=72, help="frames per film (24 frames/s)")
    p.add_argument("--size", default="360p")
    p.add_argument("--model", default="vidcolor-lite")
    p.add_argument("--render-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--cpus-per-task", type=float, default=1.0)
    p.add_argument("--gpus-per-task", type=float, default=0.0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/cluster.json"))
    p.add_argument("--drive", help=argparse.SUPPRESS)
    p.add_argument("--inputs", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.drive:
        _drive(args)
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="vc-bench-", dir="/tmp"))
    films = work / "films"
    for k in range(args.films):  # one seed each: films of the same length, not the same pictures
        cached_film_clip(films, args.size, args.frames, seed=k)
    runs = []
    if args.address:
        runs.append(_batch(args.address, films, work / f"out-{int(time.time())}", args, None))
    else:
        from vidcolor.cluster.local import LocalCluster

        for count in (int(n) for n in args.nodes.split(",")):
            cluster = LocalCluster(
                Path(tempfile.mkdtemp(prefix="vc-ray-", dir="/tmp")), count, args.cpus_per_node
            )
            try:
                cluster.start()
                runs.append(_batch(cluster.address, films, work / f"out-{count}", args, cluster.env))
            finally:
                cluster.stop()
            print(json.dumps(runs[-1]), file=sys.stderr)
    given = argv if argv is not None else sys.argv[1:]
    doc = {
        "command": " ".join(["python -m vidcolor.benchmark.cluster", *given]),
        "films": args.films,
        "frames_per_film": args.frames,
        "size": args.size,
        "model": args.model,
        "render_size": args.render_size,
        "cpus_per_task": args.cpus_per_task,
        "gpus_per_task": args.gpus_per_task,
        "cluster": args.address or f"nodes started on this machine, {args.cpus_per_node} CPU each",
        "runs": runs,
        "environment": environment(args.device),
    }
    if len(runs) > 1:
        doc["speedup"] = round(runs[-1]["films_per_hour"] / runs[0]["films_per_hour"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("runs", "speedup") if k in doc}, indent=1))


if __name__ == "__main__":
    main()
