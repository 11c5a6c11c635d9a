"""What a figure was measured on: software versions, hardware, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: above the core count, something else was running."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git_sha(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str) -> dict[str, Any]:
    """Versions, hardware and load, as a JSON-ready dict."""
    import av
    import cv2
    import numpy as np
    import torch

    from vidcolor import version

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env: dict[str, Any] = {
        "vidcolor": version.__version__,
        "git": _git_sha(Path(version.__file__).resolve().parent.parent),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_parallel": "openmp" if "OpenMP" in torch.__config__.parallel_info() else "native",
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "pyav": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "libavcodec": ".".join(str(x) for x in av.library_versions["libavcodec"]),
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
        "cpu": _cpu_model(),
        "cpus_usable": cpus,
        "memory_gib": _mem_total_gib(),
        "device": device,
        # OpenMP's waiting policy changes torch's speed several-fold on a busy machine (README)
        "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))},
        # malloc's settings change the model's speed up to twofold (vidcolor/allocator.py)
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        "load_average_start": load_average(),
    }
    if torch.cuda.is_available():
        idx = torch.device(device).index or 0 if device.startswith("cuda") else 0
        props = torch.cuda.get_device_properties(idx)
        env["cuda"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 1024**3, 2),
            "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return env
