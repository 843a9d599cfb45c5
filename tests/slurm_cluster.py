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

For the tests, the node offers ``SPARE_CPUS`` more CPUs than the machine
has (the tests' jobs mostly wait): every experiment of a test's run starts
at once instead of waiting for a CPU, and the run of :class:`TimeLimitedRun`,
which the fixture starts as soon as the cluster is up when a test of the
session asks for it, holds one for a minute or more without stalling the
others. The benchmarks start the node as the machine is.

Needs Debian's ``slurm-wlm`` and ``munge`` packages and root (SlurmUser=root).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")

#: CPUs the node offers beyond the machine's (SlurmdParameters=config_overrides lets slurmd accept that): as
#: many as a test runs experiments at once, with the time-limited run's (test_slurm's too-many-cpus case asks
#: for 64, which this node must still refuse).
SPARE_CPUS = 6


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
    time_limited_run: Optional["TimeLimitedRun"] = None

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
        return pid is not None and process_runs(pid)

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


def with_spare_cpus(node: str, spare: int) -> str:
    """``NodeName=vm CPUs=4 RealMemory=..`` of ``NodeName=vm CPUs=2 Boards=1 .. RealMemory=..`` with 2 spare.

    The sockets, cores and threads go: given CPUs alone, Slurm counts each CPU as a socket of its own.
    """
    if not spare:
        return node
    fields = dict(field.split("=", 1) for field in node.split())
    cpus = int(fields["CPUs"]) + spare
    return f"NodeName={fields['NodeName']} CPUs={cpus} RealMemory={fields['RealMemory']}"


def slurm_conf(root: Path, node: str, munge_socket: Path, spare_cpus: int = 0) -> str:
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
        "SlurmdParameters=config_overrides",
        f"{with_spare_cpus(node, spare_cpus)} NodeAddr=127.0.0.1 State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={hostname} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def start_cluster(root: Path, spare_cpus: int = 0) -> SlurmCluster:
    """Write the configuration, start munged, slurmctld and slurmd; return once the node is idle.

    The node offers ``spare_cpus`` more CPUs than the machine has (the benchmarks measure it as it is).
    """
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
    cluster.conf.write_text(slurm_conf(root, node, munge_socket, spare_cpus))
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
    with open(cluster.root / f"{name}.out", "ab") as out:
        cluster.pids[name] = start_detached(command, cluster.env, cluster.root / f"{name}.daemon-pid", out,
                                            subprocess.STDOUT)
    time.sleep(0.1)
    if not cluster.alive(name):
        raise ClusterError(f"{name} exited at once (see {cluster.root / f'{name}.out'})")


def start_detached(command: List[str], env: Dict[str, str], pid_file: Path, stdout: Any, stderr: Any) -> int:
    """Start ``command`` under LIFELINE in a session of its own, not a child of this process; its pid."""
    env = {**env, "OWNER": str(os.getpid()), "PIDFILE": str(pid_file)}
    subprocess.run(["setsid", "--fork", "sh", "-c", LIFELINE, "sh", *command], env=env,
                   stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, check=True, timeout=30)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(), 10,
               f"{command[0]} was not started")
    return int(pid_file.read_text())


def process_runs(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class TimeLimitedRun:
    """A run whose first experiment sleeps until Slurm's time limit of one minute stops it; the second finishes.

    Slurm checks time limits every 30 s, so the run ends 60 to 90 s after it
    started: the fixture starts it as soon as the cluster is up (in a process
    of its own, the contract suite's driver) and the test that asks for it
    reads the run once it ended, while the tests between them ran.
    """

    SETTINGS = {"backend": "slurm", "slurm_partition": PARTITION, "slurm_poll_interval": 0.5,
                "slurm_time_limit": 1, "slurm_job_name": "timelimit"}
    CFGS = [{"action": "sleep", "seconds": 300}, {"x": 2}]

    def __init__(self, cluster: SlurmCluster, folder: Path):
        self.folder = folder
        self.out_path = folder / "run"
        folder.mkdir()
        settings = json.dumps({**self.SETTINGS, "out_path": str(self.out_path)})
        command = [sys.executable, "-m", "experiment_runner.testing.driver", settings, json.dumps(self.CFGS)]
        env = {**cluster.env, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
            self.pid = start_detached(command, env, folder / "pid", out, err)

    def wait_until_settled(self, timeout: float = 60) -> None:
        """Until the sleeping experiment holds its CPU and the other one finished: from then on the cluster's idle
        CPUs stay as they are until the time limit, and a test that counts them (Session.slots) counts right."""
        results = self.out_path / "results.jsonl"
        wait_until(lambda: (self.out_path / "0" / "config.json").exists() and results.exists()
                   and results.read_text().count("\n") >= 1 or not process_runs(self.pid), timeout,
                   "the time-limited run's jobs did not start")

    def summary(self, timeout: float = 180) -> Dict[str, Any]:
        """The run's summary (``finished``, ``failed_ids``, ...) once it ended."""
        wait_until(lambda: not process_runs(self.pid), timeout, "the time-limited run did not end")
        printed = (self.folder / "stdout").read_text().splitlines()
        if not printed:
            raise ClusterError(f"the time-limited run printed no summary: {(self.folder / 'stderr').read_text()}")
        return json.loads(printed[-1])

    def stop(self) -> None:
        """End the run if it still runs (the session ends before its test, as with -x)."""
        if not process_runs(self.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        wait_until(lambda: not process_runs(self.pid), 60, "the time-limited run did not stop")


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
def slurm_cluster(request, tmp_path_factory):
    """A running single-node Slurm cluster; SLURM_CONF points at it while the session runs.

    A cluster that cannot start fails the tests that need it (it does not skip them). When a test of the
    session asks for ``slurm_time_limited_run``, that run starts now (see :class:`TimeLimitedRun`).
    """
    root = tmp_path_factory.mktemp("slurm")
    try:
        cluster: Optional[SlurmCluster] = start_cluster(root, SPARE_CPUS)
    except ClusterError as error:
        cluster, failure = None, str(error)
    if cluster is None:
        pytest.fail(failure, pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(cluster.conf))
        try:
            if any("slurm_time_limited_run" in item.fixturenames for item in request.session.items):
                cluster.time_limited_run = TimeLimitedRun(cluster, root / "time-limited")
                cluster.time_limited_run.wait_until_settled()
            yield cluster
        finally:
            if cluster.time_limited_run is not None:
                cluster.time_limited_run.stop()
            cluster.stop()


@pytest.fixture
def slurm_time_limited_run(slurm_cluster) -> TimeLimitedRun:
    """The run of :class:`TimeLimitedRun`, started with the cluster."""
    return slurm_cluster.time_limited_run
