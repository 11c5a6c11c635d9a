"""Ray nodes on this machine (127.0.0.1): a real cluster of several nodes without other machines,
for the tests of ``vidcolor batch --ray`` and the benchmark of one node against two.

Each node is a ``ray start --block`` in a process group of its own, with the CPUs it is given, a
small object store, every port chosen free (so it meets no other Ray on the machine), a
temporary folder and an authentication token of its own; stopping kills the groups (never
``ray stop``, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from vidcolor.durable import write_atomic

#: Bytes of object store per node: tasks pass paths and small results only.
OBJECT_STORE = 80 * 2**20
#: Worker ports per node (one per worker process).
WORKER_PORTS = 40
#: The head finds a lost node in about period * threshold: short, so a test sees it quickly.
HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """``n`` ports free now, picked by the system."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def free_range(n: int) -> int:
    """The first of ``n`` consecutive free ports, below the system's ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 30000 - n)
        if all(_free(p) for p in range(base, base + n)):
            return base
    raise RuntimeError("no free port range")


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == pid:
                out.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, ValueError):
            continue
    return out


class Node:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def raylet(self) -> int | None:
        """The pid of this node's raylet (a child of its ``ray start``), once it runs."""
        for pid, cmd in _children(self.proc.pid):
            if "/raylet/raylet" in cmd.split(" ")[0]:
                return pid
        return None

    def busy(self) -> bool:
        """Whether a worker of this node is running one of vidcolor's tasks."""
        raylet = self.raylet()
        if raylet is None:
            return False
        return any(cmd.startswith("ray::") and "_task" in cmd for _, cmd in _children(raylet))

    def lose(self) -> None:
        """SIGKILL the raylet and its workers at once, as when the node's machine goes away: the
        task it was running can neither finish nor report (a worker left alive may finish its film
        before it notices its raylet gone)."""
        raylet = self.raylet()
        if raylet is None:
            raise RuntimeError("the node has no raylet to kill")
        for pid in [raylet, *(pid for pid, _ in _children(raylet))]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """End the node's whole process group (``ray start``, its raylet, workers and agents)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class LocalCluster:
    """``ray start --head`` and ``nodes - 1`` times ``ray start --address`` on 127.0.0.1, each
    node with ``cpus`` CPUs; ``address`` and ``env`` for the drivers that connect to it."""

    def __init__(self, root: Path, nodes: int = 2, cpus: int = 1) -> None:
        self.root = root
        self.count = nodes
        self.cpus = cpus
        self.temp = root / "ray"  # Ray's sockets live here: keep the path short
        self.temp.mkdir(parents=True, exist_ok=True)
        self.nodes: list[Node] = []
        self.gcs = free_ports(1)[0]
        self.address = f"127.0.0.1:{self.gcs}"
        # A token of its own: whatever ~/.ray holds, only this cluster's nodes and drivers talk.
        token = root / "token"
        write_atomic(token, secrets.token_hex(32), mode=0o600)  # never readable by others, even briefly
        #: The environment of the nodes, and of every driver that connects to them.
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}

    def _start(self, head: bool) -> Node:
        p = free_ports(8)
        workers = free_range(WORKER_PORTS)
        cmd = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            str(self.cpus),
            "--num-gpus",
            "0",
            "--object-store-memory",
            str(OBJECT_STORE),
            "--temp-dir",
            str(self.temp),
            "--disable-usage-stats",
            "--node-manager-port",
            str(p[0]),
            "--object-manager-port",
            str(p[1]),
            "--min-worker-port",
            str(workers),
            "--max-worker-port",
            str(workers + WORKER_PORTS - 1),
            "--dashboard-agent-listen-port",
            str(p[2]),
            "--dashboard-agent-grpc-port",
            str(p[3]),
            "--runtime-env-agent-port",
            str(p[4]),
            "--metrics-export-port",
            str(p[5]),
        ]
        if head:
            cmd += [
                "--head",
                "--port",
                str(self.gcs),
                "--include-dashboard",
                "false",
                "--dashboard-port",
                str(p[6]),
                "--ray-client-server-port",
                str(p[7]),
                "--system-config",
                json.dumps(HEALTH),
            ]
        else:
            cmd += ["--address", self.address]
        log = self.root / f"node{len(self.nodes)}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
            )
        node = Node(proc, log)
        self.nodes.append(node)
        return node

    def start(self, timeout: float = 120) -> LocalCluster:
        """Start the nodes and wait until the head counts them all alive; stop them on failure."""
        try:
            self._start(head=True)
            self._wait(1, timeout)
            for _ in range(self.count - 1):
                self._start(head=False)
            self._wait(self.count, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, count: int, timeout: float) -> None:
        """Until the head counts ``count`` live nodes (asked from a short-lived driver, so that
        the test's own process stays out of Ray)."""
        code = (
            "import sys, time, ray\n"
            f"ray.init(address='{self.address}', logging_level='ERROR', log_to_driver=False)\n"
            f"end = time.monotonic() + {timeout}\n"
            f"while sum(n['Alive'] for n in ray.nodes()) < {count}:\n"
            "    if time.monotonic() > end: sys.exit(1)\n"
            "    time.sleep(0.3)\n"
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:  # the head's GCS may not listen yet
            for node in self.nodes:
                if node.proc.poll() is not None:
                    raise RuntimeError(f"ray start ended: {node.log.read_text()[-2000:]}")
            try:
                done = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, timeout=timeout, env=self.env
                )
            except subprocess.TimeoutExpired:
                break
            if done.returncode == 0:
                return
            time.sleep(1)
        raise RuntimeError(f"{count} Ray nodes did not come up: {self.nodes[-1].log.read_text()[-2000:]}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
