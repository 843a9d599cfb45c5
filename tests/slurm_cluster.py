"""A real single-node Slurm cluster for the tests, in a temporary folder.

``start_cluster(root)`` writes a slurm.conf for this host (its hostname, CPUs
and memory as ``slurmd -C`` sees them, ports of its own, every state, spool,
pid and log file under ``root``), creates a MUNGE key and starts munged on a
socket of its own, then ``slurmctld -D`` and ``slurmd -D``, and waits until
``sinfo`` shows the node idle. Nothing outside ``root`` is read or changed
(the system's munged and /etc/slurm are left alone); the client commands find
the cluster through ``SLURM_CONF``. ``stop()`` cancels what is left in the
queue and stops the daemons, waiting until every one of them, and every job
process, has exited.

The daemons are not children of the test process (tests assert that what
they start leaves no child behind): each runs in the foreground under a
small detached shell, ``LIFELINE``, which also stops it if the test process
dies without stopping the cluster (a ``kill -9`` or a timeout of the test run).

Needs Debian's ``slurm-wlm`` and ``munge`` packages and root (SlurmUser=root).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest

PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")


#: ``sh -c LIFELINE sh <daemon command>``: run the daemon, write its pid to $PIDFILE, stop it when $OWNER ends.
LIFELINE = """
"$@" &
daemon=$!
echo "$daemon" > "$PIDFILE"
(while kill -0 "$OWNER" 2>/dev/null; do sleep 1; done; kill "$daemon" 2>/dev/null) &
watcher=$!
wait "$daemon"
kill "$watcher" 2>/dev/null
"""


class ClusterError(RuntimeError):
    """The test cluster could not be started; the message says why and where the logs are."""


@dataclass
class SlurmCluster:
    root: Path
    partition: str = PARTITION
    pids: Dict[str, int] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> Dict[str, str]:
        """The environment for the daemons and the client commands (sbatch, squeue, ...)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 30) -> str:
        """A client command against this cluster; its stdout (raises on failure)."""
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def job_ids(self) -> List[str]:
        """Every job the controller still has in the queue (pending, running or completing)."""
        return self.run("squeue", "--noheader", "--array", "--format=%i").split()

    def stop(self) -> None:
        """Cancel what is queued, stop slurmd, slurmctld and munged, and wait until every job process is gone."""
        if self.alive("slurmctld"):
            self._cancel_everything()
        with contextlib.suppress(ClusterError):
            wait_until(lambda: not self.job_processes(), 30, "job processes outlived their jobs")
        for name in reversed(DAEMONS):
            self._stop_daemon(name)
        for pid in self.job_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _stop_daemon(self, name: str) -> None:
        """SIGTERM, and SIGKILL if it is still there 20 s later; returns once it has exited."""
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive(name):
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pids[name], signum)
            with contextlib.suppress(ClusterError):
                wait_until(lambda: not self.alive(name), 20, f"{name} did not exit", interval=0.05)

    def job_processes(self) -> List[int]:
        """This cluster's slurmstepd and job processes: their environment names this cluster's slurm.conf."""
        marker = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            in_job = any(variable.startswith(b"SLURM_JOB_ID=") for variable in environ)
            if marker in environ and (in_job or command.startswith(b"slurmstepd")):
                found.append(int(entry.name))
        return found

    def alive(self, name: str) -> bool:
        """Whether the daemon ``name`` runs (a zombie waiting for its shell to reap it does not)."""
        pid = self.pids.get(name)
        if pid is None:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def _cancel_everything(self) -> None:
        try:
            ids = self.job_ids()
            if ids:
                self.run("scancel", *ids)
            wait_until(lambda: not self.job_ids(), 30, "the queue never emptied")
        except (ClusterError, subprocess.TimeoutExpired):
            pass  # the daemons are stopped next in any case

    def log_tail(self, lines: int = 15) -> str:
        """The end of every daemon's log, for an error message."""
        parts = []
        for name in DAEMONS:
            path = self.root / f"{name}.log"
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["(no log)"]
            parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)


def wait_until(condition, timeout: float, message: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(message)
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_line() -> str:
    """This host as slurmd sees it: ``NodeName=<host> CPUs=.. RealMemory=..`` (UpTime dropped)."""
    done = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30)
    lines = [line for line in done.stdout.splitlines() if line.startswith("NodeName=")]
    if done.returncode != 0 or not lines:
        raise ClusterError(f"slurmd -C could not describe this host: {done.stderr.strip() or done.stdout}")
    return lines[0]


def node_name(node: str) -> str:
    """``vm`` of ``NodeName=vm CPUs=2 ...``."""
    return node.split()[0].partition("=")[2]


def slurm_conf(root: Path, node: str, munge_socket: Path) -> str:
    """A slurm.conf for one node that is also the controller; short intervals make it snappy."""
    hostname = node_name(node)
    return "\n".join([
        "ClusterName=experimentrunner",
        f"SlurmctldHost={hostname}(127.0.0.1)",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/builtin",
        "SchedulerParameters=sched_interval=1,sched_min_interval=0",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "KillWait=2",
        "MinJobAge=300",
        "MessageTimeout=20",
        "SlurmdTimeout=300",
        f"{node} NodeAddr=127.0.0.1 State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={hostname} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def start_cluster(root: Path) -> SlurmCluster:
    """Write the configuration, start munged, slurmctld and slurmd; return once the node is idle."""
    missing = [name for name in (*DAEMONS, "sbatch", "sinfo", "setsid") if shutil.which(name) is None]
    if missing:
        raise ClusterError(
            f"cannot start the test Slurm cluster: {', '.join(missing)} not found; install Debian's "
            "packages with: apt-get install -y slurm-wlm munge (.ci/run does)"
        )
    if os.geteuid() != 0:
        raise ClusterError("cannot start the test Slurm cluster: it runs its daemons as root (SlurmUser=root)")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    for folder in ("state", "spool", "munge"):
        (root / folder).mkdir(mode=0o700, exist_ok=True)
    munge_socket = root / "munge" / "munge.socket"
    cluster = SlurmCluster(root)
    node = node_line()
    cluster.conf.write_text(slurm_conf(root, node, munge_socket))
    try:
        _start_munged(cluster, munge_socket)
        _start(cluster, "slurmctld", ["slurmctld", "-D", "-i"])
        wait_until(lambda: _answers(cluster, "sinfo"), 30, "slurmctld never answered sinfo")
        _start(cluster, "slurmd", ["slurmd", "-D", "-N", node_name(node)])
        wait_until(lambda: _node_state(cluster) == "idle", 60, "the node never became idle in sinfo")
    except (ClusterError, OSError, subprocess.SubprocessError) as error:
        tail = cluster.log_tail()
        cluster.stop()
        raise ClusterError(f"cannot start the test Slurm cluster in {root}: {error}\n{tail}") from error
    return cluster


def _start_munged(cluster: SlurmCluster, munge_socket: Path) -> None:
    key = cluster.root / "munge" / "munge.key"
    if not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(1024))
    munge_dir = cluster.root / "munge"
    _start(cluster, "munged", [
        "munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
        f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={cluster.root / 'munged.log'}",
        f"--seed-file={munge_dir / 'munged.seed'}",
    ])
    wait_until(munge_socket.exists, 20, f"munged never created its socket {munge_socket}")


def _start(cluster: SlurmCluster, name: str, command: List[str]) -> None:
    """Start a daemon under LIFELINE, detached (setsid --fork); what it prints goes to <root>/<name>.out."""
    pid_file = cluster.root / f"{name}.daemon-pid"
    env = {**cluster.env, "OWNER": str(os.getpid()), "PIDFILE": str(pid_file)}
    with open(cluster.root / f"{name}.out", "ab") as out:
        subprocess.run(["setsid", "--fork", "sh", "-c", LIFELINE, "sh", *command], env=env,
                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=30)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(), 10,
               f"{name} was not started")
    cluster.pids[name] = int(pid_file.read_text())
    time.sleep(0.1)
    if not cluster.alive(name):
        raise ClusterError(f"{name} exited at once (see {cluster.root / f'{name}.out'})")


def _answers(cluster: SlurmCluster, *command: str) -> bool:
    _check_daemons(cluster)
    done = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=30)
    return done.returncode == 0


def _node_state(cluster: SlurmCluster) -> Optional[str]:
    _check_daemons(cluster)
    done = subprocess.run(["sinfo", "--noheader", "--format=%T"], env=cluster.env, capture_output=True,
                          text=True, timeout=30)
    return done.stdout.strip() or None


def _check_daemons(cluster: SlurmCluster) -> None:
    for name in cluster.pids:
        if not cluster.alive(name):
            raise ClusterError(f"{name} exited (see {cluster.root / f'{name}.out'})")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node Slurm cluster; SLURM_CONF points at it while the session runs.

    A cluster that cannot start fails the tests that need it (it does not skip them).
    """
    root = tmp_path_factory.mktemp("slurm")
    try:
        cluster: Optional[SlurmCluster] = start_cluster(root)
    except ClusterError as error:
        cluster, failure = None, str(error)
    if cluster is None:
        pytest.fail(failure, pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(cluster.conf))
        try:
            yield cluster
        finally:
            cluster.stop()
