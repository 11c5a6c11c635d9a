"""The command line starts itself again once with glibc's malloc tuned, and leaves a user's own
malloc settings and other C libraries alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from vidcolor.allocator import TUNABLES, tunables, tuned_environment

OURS = ":".join(TUNABLES)


def test_tunables_are_added_to_what_is_set_but_never_over_a_malloc_setting() -> None:
    assert tunables(None) == OURS
    assert tunables("") == OURS
    assert tunables("glibc.cpu.hwcaps=-AVX512F") == "glibc.cpu.hwcaps=-AVX512F:" + OURS
    assert tunables("glibc.malloc.hugetlb=0") is None  # the user's choice stands
    assert tunables(OURS) is None  # started again already: no second start


def test_only_glibc_is_tuned() -> None:
    env = {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}
    tuned = tuned_environment(env, "glibc")
    assert tuned is not None and tuned["PATH"] == "/bin"
    assert tuned["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX512F:" + OURS
    assert env["GLIBC_TUNABLES"] == "glibc.cpu.hwcaps=-AVX512F"  # the caller's mapping is not changed
    assert tuned_environment(env, "") is None  # musl, or a libc Python cannot name
    assert tuned_environment({"GLIBC_TUNABLES": OURS}, "glibc") is None


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's tunables only"
)
def test_the_process_starts_again_once_with_the_tunables_and_its_arguments() -> None:
    code = (
        "import os, sys; print('start', flush=True); from vidcolor.allocator import tune; tune(); "
        "print(os.environ['GLIBC_TUNABLES'], sys.argv[1:])"
    )
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", code, "a b", "c"], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["start", "start", f"{OURS} ['a b', 'c']"]
    env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=0"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["start", "glibc.malloc.hugetlb=0 []"]
