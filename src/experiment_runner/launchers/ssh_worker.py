"""The remote side of backend=malocher: the worker that runs experiments on an SSH machine.

For each run (one session, retries included) the driver starts one worker per machine, over SSH::

    <python> -m experiment_runner.launchers.ssh_worker <launch-folder>

and talks to it in JSON lines. The worker says hello (with the machine's
CPU count), then for each ``{"run": <id>, "timeout": <seconds>,
"max_memory": <bytes>, "secrets": {...}}`` it forks a child that loads the
job from the shared launch folder (whose experiment.json holds the secrets as
``***``), puts the secrets of the message back into its config, runs it with
:func:`~experiment_runner.experiment.run_experiment` (stdout and stderr into
the experiment's log files, under max_memory as backend=multiprocessing limits
it) and writes ``<id>/outcome.json`` atomically.
When the child exits the worker answers ``{"done": <id>, ...}`` with the
outcome, or with how the child died. What the experiment tells the driver
meanwhile (:func:`experiment_runner.channel.tell_driver`) goes up a pipe
to the worker, which passes each line on as ``{"message": <id>, "kind":
..., "data": ...}`` (``"pickled"``, base64, for data that is not JSON),
always before its ``done``. It sleeps in ``select()`` until a command, a
message, a child's exit or the next deadline: nothing polls. ``{"prune":
<id>}`` asks a running experiment to stop early: the worker writes a byte
down a second pipe to its child, where a thread waiting on it sets what the
experiment's ``should_prune()`` reads (:func:`experiment_runner.metrics.ask_to_prune`).

Why one forking worker per machine rather than one SSH command per
experiment: no interpreter start-up and no SSH channel per experiment
(sshd allows 10 channels per connection by default), and one process that
owns every experiment on its machine. When the worker's standard input
closes (the driver finished, was interrupted or died, or the connection
dropped) it kills every experiment and exits.

Each experiment's process is isolated as every process backend isolates
one (:mod:`.isolation`): a process group of its own, death with the worker,
faulthandler, its output in its log files, max_memory.

Nothing an experiment started outlives it (:mod:`.reaper`). On Linux the
experiment's process, the worker and a guard above the worker are child
subreapers: a process orphaned below one of them is
adopted by it rather than by init, even one that left the group or started a
session of its own. When an experiment ends (finished, failed, timed out or
killed), the worker kills whatever it left behind; when the worker ends,
however it ends (the driver gone, kill -9, the OOM killer), the guard kills
whatever is left below it. The guard and the worker import what every child
needs (cloudpickle, this package), never the user's code: only the
experiments' processes do.

A job kept after a failure can be rerun in the foreground::

    python -m experiment_runner.launchers.ssh_worker --run <launch-folder>/<id>

which asks for the job's secrets (they are not in its folder).
"""
from __future__ import annotations

import base64
import dataclasses
import getpass
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence

import cloudpickle

from ..channel import Sink, set_driver_channel
from ..experiment import ERROR, Experiment, Outcome
from ..metrics import ask_to_prune
from ..serialization import write_atomic
from .isolation import adopt_orphans, isolate_process, kill_group, run_isolated, usable_cpus
from .reaper import end_descendants, exit_with, guard, kill_strays

#: Bumped whenever the messages between driver and worker change.
PROTOCOL = 5
#: The exit code of a child that failed outside the experiment (a bug, not the user's).
INTERNAL_ERROR = 70


@dataclass(frozen=True)
class LaunchFolder:
    """Owns every path of one launch's folder in the shared job directory.

    ``context.json`` (working directory and import paths of the driver),
    ``stages.pkl`` (the cloudpickled stages) and a folder per experiment
    with ``experiment.json``, ``outcome.json`` and ``worker.log``.
    """

    root: Path

    @property
    def context(self) -> Path:
        return self.root / "context.json"

    @property
    def stages(self) -> Path:
        return self.root / "stages.pkl"

    def job(self, experiment_id: int) -> Path:
        return self.root / str(experiment_id)

    def experiment_file(self, experiment_id: int) -> Path:
        return self.job(experiment_id) / "experiment.json"

    def outcome_file(self, experiment_id: int) -> Path:
        return self.job(experiment_id) / "outcome.json"

    def log_file(self, experiment_id: int) -> Path:
        return self.job(experiment_id) / "worker.log"


def enter_context(folder: LaunchFolder) -> None:
    """Work where the driver works, with its import paths, so the stages import here as there."""
    context = json.loads(folder.context.read_text(encoding="utf-8"))
    try:
        os.chdir(context["cwd"])
    except OSError as error:
        raise RuntimeError(
            f"the driver's working directory {context['cwd']} is not usable on {socket.gethostname()}: {error}; "
            "backend=malocher needs it on the shared filesystem"
        ) from error
    sys.path[:0] = [path for path in context["sys_path"] if path not in sys.path]


def load_job(folder: LaunchFolder, experiment_id: int) -> Experiment:
    """The experiment as its job file holds it: its secrets as ``***``."""
    return Experiment(**json.loads(folder.experiment_file(experiment_id).read_text(encoding="utf-8")))


def run_job(folder: LaunchFolder, experiment_id: int, pickled_stages: Optional[bytes] = None,
            secrets: Optional[Mapping[str, Any]] = None, max_memory: Optional[int] = None) -> Outcome:
    """Load and run one experiment of the launch with its ``secrets`` put back; the outcome goes to outcome.json too."""
    experiment = load_job(folder, experiment_id).with_secret_values(secrets or {})
    try:
        stages = cloudpickle.loads(pickled_stages if pickled_stages is not None else folder.stages.read_bytes())
    except Exception as error:
        outcome = _unloadable(experiment, error)
    else:
        outcome = run_isolated(experiment, stages, max_memory)
    write_atomic(folder.outcome_file(experiment_id), json.dumps(dataclasses.asdict(outcome)))
    return outcome


def _unloadable(experiment: Experiment, error: Exception) -> Outcome:
    return Outcome(
        experiment.experiment_id,
        ERROR,
        error_type=type(error).__name__,
        message=(
            f"cannot load the stages on {socket.gethostname()}: {error} (the worker runs in the driver's "
            "working directory with its import paths: the code must be on the shared filesystem or "
            "installed in the remote Python)"
        ),
        traceback=traceback.format_exc(),
    )


@dataclass
class _Child:
    experiment_id: int
    started: float
    deadline: Optional[float]
    #: The read end of the pipe that carries the experiment's messages to the driver (-1 once closed).
    messages: int
    #: The write end of the pipe that asks the experiment to stop early (-1 once closed).
    prune: int = -1
    timed_out: bool = False
    unsent: bytes = b""


class Worker:
    """Runs the experiments the driver sends, each in a forked child, until its standard input closes."""

    def __init__(self, folder: LaunchFolder):
        self.folder = folder
        self.children: Dict[int, _Child] = {}
        self.selector = selectors.DefaultSelector()
        self.wakeup_read, self.wakeup_write = os.pipe()
        self.pending_input = b""
        self.pickled_stages: Optional[bytes] = None
        self.closing = False

    def serve(self) -> int:
        adopt_orphans()
        self.pid = os.getpid()
        enter_context(self.folder)
        self.pickled_stages = self.folder.stages.read_bytes()  # read once; every child unpickles its copy
        self._install_signal_handlers()
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ)
        self.selector.register(self.wakeup_read, selectors.EVENT_READ)
        send({"hello": PROTOCOL, "host": socket.gethostname(), "pid": os.getpid(), "cpus": usable_cpus(),
              "python": sys.version.split()[0]})
        try:
            while not self.closing:
                self._wait_and_handle()
        finally:
            self._kill_all()
        return 0

    def _wait_and_handle(self) -> None:
        for key, _ in self.selector.select(self._seconds_to_next_deadline()):
            if key.fd == 0:
                self._read_commands()
            elif key.fd == self.wakeup_read:
                _drain(self.wakeup_read)
            else:
                self._pass_on_messages(self.children[key.data])
        self._reap()
        self._expire()

    def _install_signal_handlers(self) -> None:
        """SIGCHLD wakes select(); SIGTERM and SIGHUP stop the worker like a closed standard input."""
        os.set_blocking(self.wakeup_read, False)
        os.set_blocking(self.wakeup_write, False)
        signal.set_wakeup_fd(self.wakeup_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._stop)

    def _stop(self, signum: int, frame: Any) -> None:
        self.closing = True

    def _seconds_to_next_deadline(self) -> Optional[float]:
        deadlines = [c.deadline for c in self.children.values() if c.deadline is not None and not c.timed_out]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _read_commands(self) -> None:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        if not data:
            self.closing = True
            return
        *lines, self.pending_input = (self.pending_input + data).split(b"\n")
        for line in lines:
            if line.strip():
                command = json.loads(line)
                if "prune" in command:
                    self._prune(int(command["prune"]))
                    continue
                self._start(int(command["run"]), float(command.get("timeout") or 0), command.get("secrets") or {},
                            command.get("max_memory"))

    def _start(self, experiment_id: int, timeout: float, secrets: Mapping[str, Any],
               max_memory: Optional[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        messages, channel = os.pipe()
        prune_requests, prune = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(messages)
            os.close(prune)
            self._become_child(experiment_id, secrets, max_memory, channel, prune_requests)
        os.close(channel)
        os.close(prune_requests)
        try:
            os.setpgid(pid, pid)  # also done by the child: whichever runs first, no kill can miss the group
        except OSError:
            pass
        started = time.monotonic()
        self.children[pid] = _Child(experiment_id, started, started + timeout if timeout > 0 else None, messages,
                                    prune)
        os.set_blocking(messages, False)
        self.selector.register(messages, selectors.EVENT_READ, pid)

    def _prune(self, experiment_id: int) -> None:
        """Ask the child running ``experiment_id`` to stop early; nothing if it is not running (any more)."""
        for child in self.children.values():
            if child.experiment_id == experiment_id and child.prune >= 0:
                try:
                    os.write(child.prune, b"p")
                except OSError:  # the child has ended: its report follows
                    pass
                _close(child, "prune")

    def _pass_on_messages(self, child: _Child, ended: bool = False) -> None:
        """Send the driver the whole lines the child's experiment wrote to its pipe so far.

        The pipe is closed at its end, or once the child has ended and nothing
        more is there: a process the experiment started may hold it open, but
        it is no longer the experiment's voice.
        """
        while child.messages >= 0:
            try:
                data = os.read(child.messages, 65536)
            except BlockingIOError:
                if ended:
                    self._close_messages(child)
                return
            *lines, child.unsent = (child.unsent + data).split(b"\n")
            for line in lines:
                write_all(1, line + b"\n")
            if not data:
                self._close_messages(child)

    def _close_messages(self, child: _Child) -> None:
        self.selector.unregister(child.messages)
        os.close(child.messages)
        child.messages = -1

    def _become_child(self, experiment_id: int, secrets: Mapping[str, Any], max_memory: Optional[int],
                      channel: int, prune_requests: int) -> NoReturn:
        """Run one job in this forked process, its messages to the driver into ``channel``, and exit.

        A thread waits on ``prune_requests``: a byte there asks the experiment to stop early.

        Never returns into the worker's loop.
        """

        def run() -> int:
            isolate_process(self.pid)
            adopt_orphans()  # so that what the experiment leaves behind is found when it ends
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for fd in (self.wakeup_read, self.wakeup_write):
                os.close(fd)
            _redirect_standard_streams(self.folder.log_file(experiment_id))
            set_driver_channel(pipe_sink(channel))
            threading.Thread(target=_wait_for_prune_request, args=(prune_requests, experiment_id),
                             name="experiment-runner-prune", daemon=True).start()
            run_job(self.folder, experiment_id, self.pickled_stages, secrets, max_memory)
            return 0

        exit_with(run, INTERNAL_ERROR)

    def _reap(self) -> None:
        """Collect ended children; kill what ended experiments left behind, then report them."""
        ended = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ended.append((pid, status))
        if not ended:
            return
        kill_strays(keep=self.children)
        for pid, status in ended:
            child = self.children.pop(pid, None)
            if child is not None:
                _close(child, "prune")
                self._pass_on_messages(child, ended=True)
                send(self._report(child, os.waitstatus_to_exitcode(status)))

    def _report(self, child: _Child, exit_code: int) -> Dict[str, Any]:
        """The ``done`` message: the outcome the child wrote, else how it ended."""
        report: Dict[str, Any] = {
            "done": child.experiment_id,
            "duration": time.monotonic() - child.started,
            "exit_code": exit_code,
            "timed_out": child.timed_out,
            "outcome": None,
        }
        outcome_file = self.folder.outcome_file(child.experiment_id)
        if exit_code == 0 and outcome_file.exists():
            report["outcome"] = json.loads(outcome_file.read_text(encoding="utf-8"))
        return report

    def _expire(self) -> None:
        now = time.monotonic()
        for pid, child in self.children.items():
            if child.deadline is not None and not child.timed_out and now >= child.deadline:
                child.timed_out = True
                kill_group(pid)

    def _kill_all(self) -> None:
        for pid, child in self.children.items():
            kill_group(pid)
            if child.messages >= 0:
                os.close(child.messages)
            _close(child, "prune")
        end_descendants()
        self.children.clear()


def send(message: Dict[str, Any]) -> None:
    """One JSON line to the driver, written whole to descriptor 1 (sys.stdout is not used)."""
    write_all(1, (json.dumps(message) + "\n").encode("utf-8"))


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def message_line(experiment_id: int, kind: str, data: Any) -> bytes:
    """The line that carries one message to the driver; data that is not JSON travels pickled."""
    try:
        text = json.dumps({"message": experiment_id, "kind": kind, "data": data})
    except (TypeError, ValueError):
        pickled = base64.b64encode(cloudpickle.dumps(data)).decode("ascii")
        text = json.dumps({"message": experiment_id, "kind": kind, "pickled": pickled})
    return (text + "\n").encode("utf-8")


def pipe_sink(fd: int) -> Sink:
    """A channel sink writing each message as one line to ``fd``, whole even when threads send at once."""
    lock = threading.Lock()

    def sink(experiment_id: int, kind: str, data: Any) -> None:
        line = message_line(experiment_id, kind, data)
        with lock:
            write_all(fd, line)

    return sink


def _close(child: _Child, pipe: str) -> None:
    """Close the child's pipe end named ``pipe`` (an attribute of _Child) once."""
    fd = getattr(child, pipe)
    if fd >= 0:
        os.close(fd)
        setattr(child, pipe, -1)


def _wait_for_prune_request(fd: int, experiment_id: int) -> None:
    """In the child: a byte on ``fd`` asks the experiment to stop early; the worker closing it without one, not."""
    try:
        if os.read(fd, 1):
            ask_to_prune(experiment_id)
    finally:
        os.close(fd)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _redirect_standard_streams(log: Path) -> None:
    """Standard input from /dev/null; standard output and error (the SSH channel) into the job's log."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)


def _rerun(job: Path) -> int:
    folder = LaunchFolder(job.parent)
    enter_context(folder)
    secrets = _ask_for_secrets(load_job(folder, int(job.name)))
    outcome = run_job(folder, int(job.name), secrets=secrets)
    print(json.dumps(dataclasses.asdict(outcome), indent=2))
    return 0 if outcome.ok else 1


def _ask_for_secrets(experiment: Experiment) -> Dict[str, str]:
    """The secrets that the job file masks, typed in again (on the terminal, else read from standard input)."""
    return {key: getpass.getpass(f"{key} (a secret, not kept in the job folder): ")
            for key in experiment.secret_values()}


def main(argv: Sequence[str]) -> int:
    args: List[str] = list(argv)
    if len(args) == 2 and args[0] == "--run":
        return _rerun(Path(args[1]).resolve())
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    return guard(Worker(LaunchFolder(Path(args[0]))).serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
