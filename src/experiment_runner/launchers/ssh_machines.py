"""The asyncio side of backend=malocher: one machine's SSH connection and worker, host keys, outcomes.

Imported only when the backend runs (it imports asyncssh). Everything here
runs on the session's event loop thread; :mod:`.ssh_scheduler` decides what
runs where.
"""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import asyncssh

from ..experiment import Experiment, Outcome
from .isolation import died_outcome, timeout_outcome
from .ssh_jobs import Jobs
from .ssh_options import MachineAddress, SSHOptions
from .ssh_worker import INTERNAL_ERROR, PROTOCOL

#: A connection that stays silent for KEEPALIVE_COUNT_MAX keepalives, KEEPALIVE_INTERVAL s apart, is lost.
KEEPALIVE_INTERVAL = 15.0
KEEPALIVE_COUNT_MAX = 4
#: How long a stopping worker may take to kill its experiments before its connection is closed anyway.
STOP_TIMEOUT = 10.0


class MachineError(Exception):
    """Why a machine cannot run experiments, in words for the user."""


class HostKeys:
    """Host keys checked against a known_hosts file; unknown hosts trusted on first use only when asked.

    Trust on first use is OpenSSH's ``StrictHostKeyChecking=accept-new``: the
    key of a host that has no entry yet is accepted and appended to the
    file, a key that differs from a recorded one is always refused.
    """

    def __init__(self, path: Path, trust_on_first_use: bool):
        self.path = path
        self.trust_on_first_use = trust_on_first_use

    def load(self) -> asyncssh.SSHKnownHosts:
        return asyncssh.import_known_hosts(self.path.read_text() if self.path.is_file() else "")

    def remember(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        pattern = host if port == 22 else f"[{host}]:{port}"
        kind, data = key.export_public_key("openssh").decode().split()[:2]
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        starts_clean = not self.path.exists() or self.path.read_bytes().endswith(b"\n") or not self.path.stat().st_size
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(("" if starts_clean else "\n") + f"{pattern} {kind} {data}\n")

    def rejection_message(self, rejection: Optional[str], machine: MachineAddress) -> str:
        pattern = machine.host if machine.port == 22 else f"[{machine.host}]:{machine.port}"
        if rejection == "changed":
            return (
                f"its host key differs from the one recorded in {self.path}: refusing to connect (the host may "
                "have been reinstalled, or someone intercepts the connection); if the new key is right, remove "
                f"the old one with: ssh-keygen -f {self.path} -R '{pattern}'"
            )
        port = "" if machine.port == 22 else f" -p {machine.port}"
        return (
            f"its host key is unknown (not in {self.path}): check it and add it, e.g. by connecting once with "
            f"ssh{port} {machine.user}@{machine.host}, or set malocher_trust_on_first_use=true to accept the "
            "key of a host seen for the first time"
        )


class _Client(asyncssh.SSHClient):
    """Judges a host key that known_hosts does not trust: an unknown host, or a changed key."""

    def __init__(self, host_keys: HostKeys, known: asyncssh.SSHKnownHosts):
        self.host_keys = host_keys
        self.known = known
        self.rejection: Optional[str] = None
        self.new_key: Optional[Tuple[str, int, asyncssh.SSHKey]] = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        trusted, ca_keys = self.known.match(host, addr, None if port == 22 else port)[:2]
        if trusted or ca_keys:
            self.rejection = "changed"
            return False
        if not self.host_keys.trust_on_first_use:
            self.rejection = "unknown"
            return False
        self.new_key = (host, port, key)  # remembered once the server proved it holds the key
        return True


def worker_command(python: str, jobs: Jobs) -> str:
    return f"exec {shlex.quote(python)} -m experiment_runner.launchers.ssh_worker {shlex.quote(str(jobs.root))}"


class Machine:
    """One SSH machine: its connection, its worker, and the experiments running there."""

    def __init__(self, address: MachineAddress):
        self.address = address
        self.host = address.host
        self.slots = 0
        self.running: Dict[int, Experiment] = {}
        self.lost = False
        self.connection: Optional[asyncssh.SSHClientConnection] = None
        self.worker: Optional[asyncssh.SSHClientProcess] = None
        self._stderr: Optional["asyncio.Task[str]"] = None

    @property
    def name(self) -> str:
        return self.address.name

    @property
    def free(self) -> int:
        return 0 if self.lost or self.worker is None else self.slots - len(self.running)

    async def connect(self, options: SSHOptions, client_keys: Sequence[Any], host_keys: HostKeys, command: str,
                      num_cpus: float) -> None:
        """Connect, start the worker and read its hello; a MachineError says why that failed."""
        client = _Client(host_keys, host_keys.load())
        try:
            self.connection = await asyncio.wait_for(self._open(options, client_keys, client),
                                                     options.connect_timeout)
        except asyncio.TimeoutError:
            raise MachineError(f"no SSH connection within {options.connect_timeout:g} s") from None
        except asyncssh.HostKeyNotVerifiable:
            raise MachineError(host_keys.rejection_message(client.rejection, self.address)) from None
        except asyncssh.PermissionDenied:
            raise MachineError(f"permission denied for user {self.address.user}: is the key in its "
                               "authorized_keys?") from None
        except (socket.gaierror, UnicodeError) as error:
            raise MachineError(_unresolvable(self.address.host, error)) from None
        except (OSError, asyncssh.Error) as error:
            raise MachineError(f"cannot connect: {reason_of(error)}") from None
        if client.new_key is not None:
            host_keys.remember(*client.new_key)
        hello = await self._start_worker(command, options.connect_timeout)
        self.host = hello.get("host", self.host)
        self.slots = options.slots or max(1, int(hello.get("cpus", 1) / num_cpus))

    async def _open(self, options: SSHOptions, client_keys: Sequence[Any], client: _Client
                    ) -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            self.address.host,
            self.address.port,
            username=self.address.user,
            client_factory=lambda: client,
            known_hosts=client.known,
            client_keys=client_keys or (),
            passphrase=options.passphrase,
            password=options.password,
            keepalive_interval=KEEPALIVE_INTERVAL,
            keepalive_count_max=KEEPALIVE_COUNT_MAX,
        )

    async def _start_worker(self, command: str, timeout: float) -> Dict[str, Any]:
        assert self.connection is not None
        try:
            self.worker = await self.connection.create_process(command, encoding="utf-8")
            self._stderr = asyncio.ensure_future(self._read_stderr())
            hello = await asyncio.wait_for(self._read_hello(), timeout)
        except asyncio.TimeoutError:
            raise MachineError(f"its worker did not answer within {timeout:g} s") from None
        except (OSError, asyncssh.Error) as error:
            raise MachineError(f"cannot start its worker: {reason_of(error)}") from None
        if hello is None:
            raise MachineError(f"its worker did not start: {await self.ended()}")
        if hello.get("hello") != PROTOCOL:
            raise MachineError(
                f"its worker speaks protocol {hello.get('hello')}, this driver {PROTOCOL}: install the same "
                "version of experiment-runner for malocher_python there")
        return hello

    async def _read_stderr(self) -> str:
        """What the worker prints to stderr: nothing, unless it fails (the experiments log elsewhere)."""
        assert self.worker is not None
        try:
            return await self.worker.stderr.read()
        except (OSError, asyncssh.Error):
            return ""

    async def _read_hello(self) -> Optional[Dict[str, Any]]:
        """The worker's first message; lines a login script printed before it are skipped."""
        assert self.worker is not None
        while True:
            line = await self.worker.stdout.readline()
            if not line:
                return None
            if line.startswith('{"hello"'):
                return json.loads(line)

    def start(self, experiment: Experiment, max_memory: Optional[int]) -> None:
        """Ask the worker to run ``experiment``; its secrets travel with this message, never in a file."""
        assert self.worker is not None
        command = {"run": experiment.experiment_id, "timeout": experiment.timeout, "max_memory": max_memory,
                   "secrets": experiment.secret_values()}
        self.worker.stdin.write(json.dumps(command) + "\n")
        self.running[experiment.experiment_id] = experiment

    def prune(self, experiment_id: int) -> None:
        """Ask the worker to stop ``experiment_id`` early, if it runs here."""
        if self.worker is not None and not self.lost and experiment_id in self.running:
            self.worker.stdin.write(json.dumps({"prune": experiment_id}) + "\n")

    async def ended(self) -> str:
        """How the worker ended: its exit status and the end of what it printed to stderr."""
        assert self.worker is not None
        try:
            await asyncio.wait_for(self.worker.wait_closed(), 2)
            stderr = await asyncio.wait_for(self._stderr, 2) if self._stderr is not None else ""
        except (asyncio.TimeoutError, OSError, asyncssh.Error):
            stderr = ""
        status = self.worker.exit_status
        text = f"exit status {status}" if status is not None and status >= 0 else "the connection closed"
        tail = " ".join(stderr.strip().splitlines()[-3:])
        return f"{text}: {tail}" if tail else text

    async def stop(self) -> None:
        """Close the worker's standard input (it kills its experiments and exits), then the connection."""
        if self.worker is not None:
            try:
                self.worker.stdin.write_eof()
                await asyncio.wait_for(self.worker.wait_closed(), STOP_TIMEOUT)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                pass
        if self._stderr is not None:
            self._stderr.cancel()
        await self.disconnect()

    async def disconnect(self) -> None:
        if self.connection is not None:
            self.connection.close()
            try:
                await asyncio.wait_for(self.connection.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass


def _unresolvable(host: str, error: Exception) -> str:
    """Why a host name gives no address: a UnicodeError (from IDNA encoding) or a failed name lookup."""
    if isinstance(error, UnicodeError):
        return (f"its host name {host} is not a valid host name (a part between dots is empty or longer than 63 "
                "characters): check it in malocher_machines")
    return (f"its host name {host} does not resolve ({error.strerror}): check it in malocher_machines, or make it "
            "known here (DNS, /etc/hosts, or a Host entry in ~/.ssh/config)")


def reason_of(error: BaseException) -> str:
    """A short reason: 'Connection refused' rather than asyncio's "Connect call failed ('10.0.0.1', 22)"."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__


def outcome_from_report(experiment: Experiment, report: Dict[str, Any], host: str) -> Outcome:
    """The Outcome of a worker's ``done`` message: the experiment's own, or a timeout or crash seen from outside."""
    if report["outcome"] is not None:
        return Outcome(**report["outcome"])
    if report["timed_out"]:
        outcome = timeout_outcome(experiment, report["duration"], killed=f"its process group on {host}")
    else:
        outcome = died_outcome(experiment, report["exit_code"], report["duration"],
                               process=f"the process running the experiment on {host}")
        outcome.message += _EXIT_CODE_MEANINGS.get(report["exit_code"], "")
    outcome.host = host
    return outcome


#: What the worker's own exit codes mean, after describe_exit's words.
_EXIT_CODE_MEANINGS = {
    INTERNAL_ERROR: " (an error outside the experiment: see worker.log in its job folder)",
    0: " without reporting an outcome",
}
