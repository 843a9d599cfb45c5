"""A real two-node Ray cluster on this machine for the tests, shared by the whole session.

The head (2 CPUs) and a second node (1 CPU and the custom resource
``SECOND_NODE_RESOURCE``, which only it has) are started with ``ray start
--block`` as child processes of the test session, each in its own process
group, with token authentication on. Stopping sends SIGTERM to each
``ray start`` (which then stops the Ray processes it started), and finally
kills whatever is left in those two process groups: no other Ray process on
the machine is touched. Should the test process die without stopping them,
each ``ray start`` gets SIGTERM from the kernel.

Everything talks over loopback only. On Linux Ray replaces 127.0.0.1 by the
machine's network address; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (set for the
whole test session in conftest.py, before ray is imported) makes it keep
loopback, but it also makes ``ray start`` refuse to join a second node, so the
second node starts through ``_JOIN_ON_LOOPBACK``, which lifts only that refusal.
"""
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

SECOND_NODE_RESOURCE = "second_node"
#: Set in the environment of the second node's processes only: a stage reading it knows where it ran.
NODE_VARIABLE = "EXPERIMENT_RUNNER_TEST_NODE"
OBJECT_STORE_BYTES = 100 * 1000 * 1000

#: ``ray start`` for a node joining the cluster, on loopback (see the module docstring).
_JOIN_ON_LOOPBACK = """
import sys
import ray._private.ray_constants as constants
import ray._private.services as services
from ray.scripts.scripts import main

constants.ENABLE_RAY_CLUSTER = True
services.get_node_ip_address = lambda address=None: "127.0.0.1"
sys.exit(main())
"""

_WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="error", log_to_driver=False)
deadline = time.monotonic() + 120
while sum(1 for node in ray.nodes() if node["Alive"]) < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit("the Ray test cluster did not come up")
    time.sleep(0.2)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RayTestCluster:
    """Start, describe and stop the test cluster."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.token = secrets.token_hex(24)
        self.nodes: List[subprocess.Popen] = []

    def environment(self, **extra: str) -> Dict[str, str]:
        """The environment of the cluster's processes: token authentication, no usage reporting, quick stops."""
        return {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            **extra,
        }

    def settings(self) -> Dict[str, str]:
        """basecfg settings that run experiments on this cluster."""
        return {"backend": "ray", "address": self.address, "ray_auth_token": self.token}

    def start(self) -> None:
        self._start_node("head", [str(Path(sys.executable).parent / "ray")], [
            "--head", f"--port={self.port}", "--num-cpus=2", "--include-dashboard=false",
            f"--dashboard-port={free_port()}", f"--temp-dir={self.root}",
        ])
        self._wait_until(self._head_listens, "the head node's GCS to listen")
        join = self.root / "join_on_loopback.py"
        join.write_text(_JOIN_ON_LOOPBACK)
        self._start_node("second", [sys.executable, str(join)], [
            f"--address={self.address}", "--num-cpus=1", f"--resources={json.dumps({SECOND_NODE_RESOURCE: 1})}",
        ], **{NODE_VARIABLE: "second"})
        waiting = subprocess.Popen([sys.executable, "-c", _WAIT_FOR_NODES, self.address, "2"],
                                   env=self.environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_until(lambda: waiting.poll() == 0, "both nodes to join", failed=lambda: waiting.poll())
        finally:
            if waiting.poll() is None:
                waiting.kill()
            waiting.wait()

    def _head_listens(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def _wait_until(self, condition: Callable[[], bool], what: str, failed: Callable[[], Any] = lambda: None) -> None:
        """Poll ``condition`` for up to two minutes; stop early with the logs if a node or the check died."""
        deadline = time.monotonic() + 120
        while not condition():
            dead = [node.pid for node in self.nodes if node.poll() is not None]
            if dead or failed() or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray test cluster did not start (waiting for {what}):\n{self.logs()}")
            time.sleep(0.2)

    def _start_node(self, name: str, program: List[str], arguments: List[str], **extra: str) -> None:
        """Run ``<program> start --block ...``; ``program`` is the ray script or the loopback wrapper."""
        command = [
            *program, "start", "--block", "--node-ip-address=127.0.0.1",
            "--num-gpus=0", f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats", *arguments,
        ]
        log = open(self.root / f"{name}.log", "w")
        with log:
            self.nodes.append(subprocess.Popen(command, env=self.environment(**extra), stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True,
                                               preexec_fn=_stop_with_the_test_session))

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.root.glob("*.log")))

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        for node in reversed(self.nodes):
            _wait_or_kill(node)
            _kill_group(node.pid)


def _stop_with_the_test_session() -> None:
    """In the child: receive SIGTERM if the test process dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _wait_or_kill(node: subprocess.Popen, timeout: float = 60) -> None:
    try:
        node.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(node.pid)
        node.wait(timeout=timeout)


def _kill_group(group: int) -> None:
    """SIGKILL what is left of a process group this module started (ray start made it the group leader)."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayTestCluster]:
    """The session's Ray test cluster (started on first use)."""
    pytest.importorskip("ray")
    root = Path(tempfile.mkdtemp(prefix="er-ray-"))  # short: Ray's socket paths live below it
    cluster = RayTestCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

