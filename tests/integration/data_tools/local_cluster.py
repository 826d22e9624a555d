"""A Ray cluster of real node processes on 127.0.0.1, for tests and the corpus benchmark.

:class:`LocalCluster` starts a head node (``ray start --head --block``) and
worker nodes (``ray start --address ... --block``), each in a process group
of its own, with a temporary folder of its own and free ports, so that other
Ray runtimes on the machine are never touched. ``stop`` ends only the
processes it started: the node groups, then any process that still names the
cluster's temporary folder (workers detach into groups of their own).
Drivers join it with ``env`` (which turns token authentication off: loopback only).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now (all held open while they are chosen)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


PORT_OPTIONS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except OSError:
            pass
    return out


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class LocalCluster:
    """Ray nodes on this machine; ``address`` is the head's ``HOST:PORT``."""

    def __init__(self, env: dict | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="rayc", dir="/tmp"))  # short: Ray's socket paths must fit
        # loopback only: no token authentication (a driver given an explicit address would need the token)
        self.env = {**os.environ, **(env or {}), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
        self.ports = iter(free_ports(64))
        self.port = next(self.ports)
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"node{len(self.nodes)}.log", "wb")
        ports = [str(x) for option in PORT_OPTIONS for x in (option, next(self.ports))]
        proc = subprocess.Popen(
            [RAY, "start", "--block", "--node-ip-address", "127.0.0.1", *ports, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.nodes.append(proc)
        return proc

    def start(self, nodes: int = 2, cpus: int = 1, timeout: float = 120.0) -> LocalCluster:
        """Start the head and ``nodes - 1`` workers, ``cpus`` each; return when all are alive."""
        self._start(
            [
                "--head",
                "--port",
                str(self.port),
                "--num-cpus",
                str(cpus),
                "--temp-dir",
                str(self.tmp),
                "--include-dashboard",
                "false",
                "--dashboard-port",
                str(next(self.ports)),
                "--ray-client-server-port",
                str(next(self.ports)),
            ]
        )
        self.wait_for(1, timeout)
        for _ in range(nodes - 1):
            self._start(["--address", self.address, "--num-cpus", str(cpus)])
        self.wait_for(nodes, timeout)
        return self

    def add_node(self, cpus: int = 1, timeout: float = 120.0) -> int:
        """Start one more worker node; return its index once the cluster counts it."""
        alive = self.alive()
        self._start(["--address", self.address, "--num-cpus", str(cpus)])
        self.wait_for(alive + 1, timeout)
        return len(self.nodes) - 1

    def alive(self) -> int:
        """Nodes alive, as the cluster reports it (asked from a separate process)."""
        code = (
            "import ray, logging; ray.init(address=%r, logging_level=logging.ERROR, log_to_driver=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))" % self.address
        )
        try:
            r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return 0
        return int(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else 0

    def wait_for(self, nodes: int, timeout: float, *, exactly: bool = False) -> None:
        """Wait until the cluster counts ``nodes`` alive (at least; with ``exactly``, no more either)."""
        deadline = time.monotonic() + timeout
        while (alive := self.alive()) < nodes or (exactly and alive > nodes):
            if time.monotonic() > deadline or (not exactly and any(p.poll() is not None for p in self.nodes)):
                raise RuntimeError(f"the Ray cluster did not come to {nodes} nodes: see {self.tmp}/node*.log")
            time.sleep(1)

    def raylet(self, index: int) -> int:
        """Process id of node ``index``'s raylet."""
        for pid in _children(self.nodes[index].pid):
            if _name(pid) == "raylet":
                return pid
        raise LookupError(f"node {index} has no raylet")

    def _ours(self) -> list[int]:
        mark = str(self.tmp).encode()
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if mark in (proc / "cmdline").read_bytes() and int(proc.name) != os.getpid():
                    pids.append(int(proc.name))
            except (OSError, ValueError):
                pass
        return pids

    def stop(self) -> None:
        """End every process this cluster started, and remove its folder."""
        for proc in self.nodes:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(30)
        deadline = time.monotonic() + 10
        while (left := self._ours()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
