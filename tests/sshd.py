"""Real OpenSSH servers on loopback addresses: the "machines" of the backend=malocher tests.

Each :class:`Machine` is one ``sshd -D`` listening on its own loopback address
(127.0.0.1, 127.0.0.2, ...), with its own generated host key, accepting the
generated user keys of :class:`Keys` for the current user. Killing a machine
kills its listener and every process below it (sessions, workers,
experiments), the way a host that dies takes its processes with it.

Used by conftest.py (the session fixture ``ssh_cluster``: the machines of the
contract suite), by test_ssh.py and by benchmarks/bench_ssh.py.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import pytest

SSHD_PATHS = "/usr/sbin:/usr/local/sbin:/sbin:/usr/bin:/usr/local/bin"
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")
PASSPHRASE = "correct horse battery staple"


def find_sshd() -> Optional[str]:
    """The absolute path of sshd (it re-executes itself, so it must be absolute), or None."""
    return shutil.which("sshd", path=SSHD_PATHS)


def ssh_keygen(path: Path, passphrase: str = "") -> Path:
    """A new ed25519 key pair at ``path`` and ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", path.name, "-f", str(path)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True,
    )
    return path


@dataclass(frozen=True)
class Keys:
    """The user's keys: a plain one, one protected by PASSPHRASE, and the authorized_keys of both."""

    plain: Path
    encrypted: Path
    authorized_keys: Path

    @classmethod
    def generate(cls, folder: Path) -> "Keys":
        folder.mkdir(parents=True, exist_ok=True)
        plain = ssh_keygen(folder / "id_plain")
        encrypted = ssh_keygen(folder / "id_encrypted", PASSPHRASE)
        authorized = folder / "authorized_keys"
        authorized.write_text(
            "".join(Path(f"{key}.pub").read_text() for key in (plain, encrypted)))
        return cls(plain, encrypted, authorized)


def free_port(addresses: Sequence[str]) -> int:
    """A TCP port that is free on every one of ``addresses`` right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        if all(_port_is_free(address, port) for address in addresses):
            return port
    raise RuntimeError(f"no port free on all of {addresses}")


def _port_is_free(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


class Machine:
    """One sshd on ``address:port``; ``kill()`` takes it down with all its processes."""

    def __init__(self, folder: Path, address: str, port: int, keys: Keys):
        self.folder = folder
        self.address = address
        self.port = port
        self.keys = keys
        self.host_key = ssh_keygen(folder / "host_key")
        self.pid_file = folder / "sshd.pid"
        self.config = folder / "sshd_config"
        self.config.write_text(self._config_text())
        self.log = folder / "sshd.log"
        self.pid: Optional[int] = None

    def _config_text(self) -> str:
        return "\n".join([
            f"ListenAddress {self.address}",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.keys.authorized_keys}",
            f"AllowUsers {getpass.getuser()}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 100",
            "LogLevel ERROR",
            "",
        ])

    def known_hosts_line(self) -> str:
        kind, key = Path(f"{self.host_key}.pub").read_text().split()[:2]
        return f"[{self.address}]:{self.port} {kind} {key}\n"

    def start(self, sshd: str) -> "Machine":
        """Start sshd as a daemon: not a child of the test process, like the system's sshd."""
        if os.geteuid() == 0:
            PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
        started = subprocess.run([sshd, "-f", str(self.config), "-E", str(self.log)],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if started.returncode != 0:
            raise RuntimeError(f"sshd on {self.address}:{self.port} did not start: {started.stderr}{self._log()}")
        self._wait_until_listening()
        _kill_when_owner_dies(self.pid, str(self.config))
        return self

    def _log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def _wait_until_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pid = self.pid or _read_pid(self.pid_file)
            if self.pid is not None:
                try:
                    with socket.create_connection((self.address, self.port), timeout=1):
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError(f"sshd on {self.address}:{self.port} did not listen within {timeout} s: {self._log()}")

    def kill(self) -> None:
        """SIGKILL the listener and every process below it (frozen first, so none escapes by forking)."""
        if self.pid is None:
            return
        kill_tree(self.pid)
        deadline = time.monotonic() + 10
        while is_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.pid = None


_WATCHER = """
import os, sys, time
owner, pid, marker = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
def runs(p):
    try:
        with open(f"/proc/{p}/cmdline", "rb") as f:
            return p == owner or marker in f.read()
    except OSError:
        return False
while runs(owner) and runs(pid):
    time.sleep(1)
if runs(pid):
    os.kill(pid, 9)
"""


def _kill_when_owner_dies(pid: int, marker: str) -> None:
    """A detached watcher that kills sshd ``pid`` if this process dies without stopping it (kill -9)."""
    subprocess.run(["setsid", "-f", sys.executable, "-c", _WATCHER, str(os.getpid()), str(pid), marker],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def _read_pid(path: Path) -> Optional[int]:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _parent_ids() -> Dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses; what follows the last ")" does not.
        fields = stat[stat.rfind(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> List[int]:
    """Every process below ``pid``."""
    parents = _parent_ids()
    found: List[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def kill_tree(pid: int) -> None:
    """Stop ``pid`` and all its descendants, then SIGKILL them all."""
    stopped = {pid}
    _signal_all([pid], signal.SIGSTOP)
    while True:
        new = set(descendants(pid)) - stopped
        if not new:
            break
        _signal_all(new, signal.SIGSTOP)
        stopped |= new
    _signal_all(stopped, signal.SIGKILL)


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def processes_mentioning(text: str) -> List[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class Cluster:
    """Several machines on 127.0.0.1, 127.0.0.2, ... sharing one port, user keys and a known_hosts file."""

    def __init__(self, folder: Path, n_machines: int = 2, keys: Optional[Keys] = None):
        sshd = find_sshd()
        if sshd is None:
            raise RuntimeError("sshd not found: install openssh-server (apt-get install -y openssh-server)")
        self.folder = folder
        self.keys = keys or Keys.generate(folder / "keys")
        addresses = [f"127.0.0.{i + 1}" for i in range(n_machines)]
        self.port = free_port(addresses)
        self.machines: List[Machine] = []
        for i, address in enumerate(addresses):
            machine_folder = folder / f"machine{i}"
            machine_folder.mkdir(parents=True)
            self.machines.append(Machine(machine_folder, address, self.port, self.keys))
        self.known_hosts = folder / "known_hosts"
        self.known_hosts.write_text("".join(m.known_hosts_line() for m in self.machines))
        try:
            for machine in self.machines:
                machine.start(sshd)
        except BaseException:
            self.stop()
            raise

    @property
    def addresses(self) -> List[str]:
        return [machine.address for machine in self.machines]

    def settings(self, jobs: Path, **extra: object) -> Dict[str, object]:
        """basecfg settings selecting backend=malocher on these machines."""
        return {
            "backend": "malocher",
            "malocher_machines": self.addresses,
            "malocher_port": self.port,
            "malocher_key": str(self.keys.plain),
            "malocher_known_hosts": str(self.known_hosts),
            "malocher_dir": str(jobs),
            **extra,
        }

    def stop(self) -> None:
        for machine in self.machines:
            machine.kill()


def fit_drop_connection(cfg: dict, returned_by_pre: object) -> None:
    """A stage that kills the sshd session serving it, as if its machine dropped off the network."""
    parents = _parent_ids()
    pid = os.getpid()
    while pid in parents:
        pid = parents[pid]
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
        if title.startswith(b"sshd:") and b"[listener]" not in title:
            os.kill(pid, signal.SIGKILL)
            time.sleep(60)
    raise RuntimeError("this stage runs only under sshd")


def fit_note_worker(cfg: dict, returned_by_pre: object) -> int:
    """A stage that appends the pid of the worker running it to ``workers`` in its folder.

    With ``crash_once`` it then crashes (os._exit(3)) on its first attempt;
    with ``flag`` it waits while that file exists (at most 60 s).
    """
    workers = Path(cfg["out_path"]) / "workers"
    with open(workers, "a") as file:
        file.write(f"{os.getppid()}\n")
    if cfg.get("crash_once") and len(workers.read_text().split()) == 1:
        os._exit(3)
    deadline = time.monotonic() + 60
    while "flag" in cfg and Path(cfg["flag"]).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return 1


def fit_tell_driver(cfg: dict, returned_by_pre: object) -> int:
    """A stage that tells the driver two intermediate values: one JSON can carry, one it cannot."""
    from fractions import Fraction

    from experiment_runner.channel import tell_driver

    tell_driver("loss", {"step": 1, "loss": 0.5})
    tell_driver("ratio", Fraction(1, 3))
    return 1


def require_ssh() -> None:
    """Skip a test that needs sshd and asyncssh where they are missing; in CI, fail instead."""
    missing = []
    if find_sshd() is None:
        missing.append("sshd (apt-get install -y openssh-server)")
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        missing.append("asyncssh (pip install -e '.[test]')")
    if not missing:
        return
    message = f"backend=malocher tests need {' and '.join(missing)}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ssh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two SSH machines on 127.0.0.1 and 127.0.0.2, shared by the tests of a session."""
    require_ssh()
    cluster = Cluster(tmp_path_factory.mktemp("ssh"))
    yield cluster
    cluster.stop()
