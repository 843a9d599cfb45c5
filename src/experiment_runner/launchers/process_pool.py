"""backend=multiprocessing: experiments in parallel in worker processes on this machine.

How it works. The launcher keeps ``num_workers`` worker processes, each a
fresh Python interpreter (``python -c ... _pool_worker.main``) connected to the
driver by a socket pair. A worker gets the pickled stages once, then
experiments, which it runs one after another with :func:`run_experiment`
(stdout and stderr, C-level output included, go to the experiment's log
files), sending back one Outcome each; while experiments are short, a second
one waits in its socket so the worker never idles for a round trip. The
driver's end of each socket never blocks: a message to a worker waits in that
worker's buffer and goes out as fast as the worker reads, and what a worker
sends collects until a whole message is there. So a config or an outcome of
any size never stops the driver (a blocking send of a large config to a busy
worker would hold up every timeout, and one crossing a large outcome would
deadlock). The driver's generator waits on every worker's socket (to read,
and to write while something waits to go out) and process at once (one
``poll``) with a timeout set by the earliest experiment deadline, so it
notices a finished experiment, a dead worker and an expired timeout as soon
as each happens, without helper threads.
A worker that dies or overruns its experiment's timeout is killed with its
whole process group and replaced; only its experiment fails. Workers die with
the driver, even with ``kill -9`` (PR_SET_PDEATHSIG), and a watchdog process in
each worker's process group then kills what the experiments started (see
:func:`_pool_worker.start_watchdog`).

Start method. Workers are started like multiprocessing's ``spawn``: a new
interpreter, never a ``fork`` of the driver, so threads in the driver (tqdm,
Ray or CUDA clients) cannot deadlock them. Unlike ``spawn`` and
``forkserver``, the user's ``__main__`` script is not re-imported in each worker
(stage functions defined there travel by value with cloudpickle, so scripts
without an ``if __name__ == "__main__":`` guard work too), and each worker's
environment is set before the interpreter starts: OMP/MKL/OpenBLAS thread
limits and CUDA_VISIBLE_DEVICES are in place before any user import. How
many workers, and each one's thread limit and GPUs, is planned from the
settings in pool_plan.py; this module runs the pool.

Why not pebble or loky. loky (joblib's executor) turns one dead worker into
TerminatedWorkerError for every pending task and has no per-task timeout;
``concurrent.futures`` breaks the whole pool the same way and
``multiprocessing.Pool`` waits forever for a task whose worker died. pebble
has per-task timeouts and replaces dead workers, but runs three management
threads, gives every worker the same initializer (no per-worker GPU slot),
re-imports ``__main__`` in workers, and its tracker lists races where a task
never completes after a cancellation or an OOM kill (noxdafox/pebble#153,
#97). What we need on top — a GPU slot per worker, an address-space limit per
experiment, workers that die with the driver, exact crash attribution — would
be wrapped around either library anyway, so the pool is our own and small:
one thread, one wait call, and each worker's experiments known in order, so a
crash or a timeout is charged to exactly the experiment that was running.
"""
from __future__ import annotations

import math
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import WorkerStartError
from ..experiment import CRASHED, TIMEOUT, Experiment, Outcome, Stages
from ._pool_worker import FRAME_HEADER, WorkerSetup, format_bytes, frame
from .pool_plan import PoolPlan, plan_pool, warn_of_fewer_cpus
from . import options as declared
from .base import Launcher, pickle_stages

#: A worker that dies this many times in a row before it is ready means workers cannot start at all.
MAX_START_FAILURES = 3

#: Experiments queued in a worker at once when its experiments are short: the next one is already
#: there when it finishes one, so the round trip to the driver is off the critical path.
QUEUE_DEPTH = 2

#: An experiment shorter than this (seconds) makes its worker eligible for a queued one. Longer
#: experiments gain nothing from it, and a queued experiment waiting behind a long one could
#: keep another worker idle at the end of the run.
SHORT_EXPERIMENT = 0.05

#: Seconds a worker may take to exit by itself (after a stop, or after its socket closed) before it is killed.
EXIT_GRACE = 2.0

#: Bytes the driver reads from one worker's socket at a time.
READ_CHUNK = 256 * 1024

#: Bytes the driver reads from one worker before it looks at the others and the deadlines again.
READ_PER_TURN = 16 * READ_CHUNK

_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from experiment_runner.launchers._pool_worker import main; main(*map(int, sys.argv[2:5]))"
)

_SIGNAL_HINTS = {
    "SIGSEGV": " (a segmentation fault, usually in native code)",
    "SIGBUS": " (a bus error, usually in native code)",
    "SIGABRT": " (aborted, usually by native code)",
    "SIGKILL": " (killed from outside, or by the kernel's out-of-memory killer)",
}


class ProcessPoolLauncher(Launcher):
    """Runs experiments in parallel in reused worker processes; see the module docstring."""

    name = "multiprocessing"
    Options = declared.MultiprocessingOptions

    def check(self, experiments: Sequence[Experiment]) -> None:
        pickle_stages(self.settings.stages, self.name)
        warn_of_fewer_cpus(self.settings.num_cpus, plan_pool(self.settings))

    def launch(self, experiments: Sequence[Experiment], stages: Stages) -> Iterator[Outcome]:
        if not experiments:
            return
        plan = plan_pool(self.settings)
        setup = WorkerSetup(pickle_stages(stages, self.name), list(sys.path), plan.max_memory)
        pool = WorkerPool(plan, setup, size=min(plan.num_workers, len(experiments)))
        try:
            yield from pool.run(experiments)
            pool.stop()
        finally:
            pool.kill()


def describe_exit(returncode: Optional[int]) -> str:
    """``'exit code 3'``, ``'killed by SIGSEGV (a segmentation fault, ...)'``."""
    if returncode is None:
        return "an unknown cause (the process could not be reaped)"
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"killed by signal {-returncode}"
    return f"killed by {name}{_SIGNAL_HINTS.get(name, '')}"


@dataclass
class _Task:
    experiment: Experiment
    #: When it started (time.monotonic): when it was sent to an idle worker, or when the experiment
    #: before it in the worker's queue finished; None while it waits in the queue.
    started: Optional[float] = None


class _Channel:
    """The driver's end of a worker's socket; it never blocks.

    A message to send waits, framed, in ``outgoing`` and goes out as fast as
    the worker takes it (:meth:`flush` whenever the socket is writable); what
    arrives collects in ``incoming`` until a whole message is there. A config
    or an outcome of any size thus never stops the driver, and a worker busy
    sending a large outcome can never deadlock with a driver sending it the
    next experiment.
    """

    def __init__(self, sock: socket.socket):
        sock.setblocking(False)
        self.sock = sock
        self.outgoing: Deque[memoryview] = deque()
        self.incoming = bytearray()
        self.chunk = bytearray(READ_CHUNK)
        #: The worker closed its end (EOF): nothing more will arrive.
        self.closed = False
        #: Sending failed: the worker is gone, and nothing more is sent.
        self.broken = False

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def sending(self) -> bool:
        return bool(self.outgoing)

    def send(self, message: Any) -> bool:
        """Queue ``message`` and send what the socket takes now; False when the worker is gone."""
        if not self.broken:
            self.outgoing.append(memoryview(frame(message)))
            self.flush()
        return not self.broken

    def flush(self) -> None:
        """Send as much of what waits as the socket takes now."""
        while self.outgoing and not self.broken:
            try:
                sent = self.sock.send(self.outgoing[0])
            except BlockingIOError:
                return
            except OSError:  # the worker is gone; its death is noticed through the wait
                self.broken = True
                self.outgoing.clear()
                return
            if sent < len(self.outgoing[0]):
                self.outgoing[0] = self.outgoing[0][sent:]
                return
            self.outgoing.popleft()

    def receive(self, limit: Optional[int] = READ_PER_TURN) -> List[Any]:
        """The whole messages that have arrived, reading at most about ``limit`` bytes (None: all there are)."""
        received = 0
        while not self.closed and (limit is None or received < limit):
            try:
                count = self.sock.recv_into(self.chunk)
            except BlockingIOError:
                break
            except OSError:  # reset by a dying worker: the same as its end closing
                count = 0
            if not count:
                self.closed = True
                break
            self.incoming += memoryview(self.chunk)[:count]
            received += count
        return self._whole_messages()

    def _whole_messages(self) -> List[Any]:
        messages = []
        while len(self.incoming) >= FRAME_HEADER.size:
            (size,) = FRAME_HEADER.unpack_from(self.incoming)
            end = FRAME_HEADER.size + size
            if len(self.incoming) < end:
                break
            messages.append(pickle.loads(self.incoming[FRAME_HEADER.size:end]))
            del self.incoming[:end]
        return messages

    def close(self) -> None:
        self.sock.close()


class _Worker:
    """One worker process: its socket, its exit watcher, its lifeline and the experiments it runs."""

    def __init__(self, slot: int, plan: PoolPlan, setup: WorkerSetup):
        self.slot = slot
        self.ready = False
        self.stopping = False
        self.finished = 0
        self.last_duration: Optional[float] = None
        #: Sent and not answered yet, in order; the first one runs, the others wait in the worker.
        self.tasks: Deque[_Task] = deque()
        parent, child = socket.socketpair()
        #: The write end of the worker's lifeline: only the driver holds it, so it closes when the driver dies.
        lifeline_end, self.lifeline = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, _package_root(), str(child.fileno()), str(os.getpid()),
                 str(lifeline_end)],
                env=plan.environment(slot), stdin=subprocess.DEVNULL, pass_fds=[child.fileno(), lifeline_end],
                start_new_session=True,  # its own process group: killed as a group, and Ctrl-C is ours to handle
            )
        except BaseException:
            parent.close()
            os.close(self.lifeline)
            raise
        finally:
            child.close()
            os.close(lifeline_end)
        self.channel = _Channel(parent)
        self.sentinel = _open_pidfd(self.process.pid)
        self.send(setup)

    @property
    def running(self) -> Optional[_Task]:
        return self.tasks[0] if self.tasks else None

    def poll_events(self) -> List[Tuple[int, int]]:
        """What to wait for: something to read (or its end closed), room to send what waits, its exit."""
        events = [(self.channel.fileno(), select.POLLIN | (select.POLLOUT if self.channel.sending else 0))]
        return events if self.sentinel is None else [*events, (self.sentinel, select.POLLIN)]

    def send(self, message: Any) -> bool:
        """False when the worker is gone (its death is noticed through the wait)."""
        return self.channel.send(message)

    def has_exited(self) -> bool:
        """Whether the process has ended, without reaping it (its pid stays ours until reap)."""
        try:
            return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # reaped by someone else's SIGCHLD handler
            return True

    def wait_for_exit(self, deadline: float) -> None:
        """Give the worker until ``deadline`` (time.monotonic) to end by itself."""
        while not self.has_exited() and time.monotonic() < deadline:
            time.sleep(0.005)

    def kill_group(self) -> None:
        """SIGKILL the worker and anything it started (its process group), unless it is already reaped."""
        if self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self) -> Optional[int]:
        """Kill the worker's process group and collect its exit status."""
        self.kill_group()
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # stuck in the kernel (e.g. on a dead NFS mount)
            return None
        finally:
            self.channel.close()
            os.close(self.lifeline)
            if self.sentinel is not None:
                os.close(self.sentinel)
                self.sentinel = None


def _package_root() -> str:
    """The folder holding the experiment_runner package, so a worker imports this very copy."""
    return str(Path(__file__).resolve().parents[2])


def _open_pidfd(pid: int) -> Optional[int]:
    """A descriptor that becomes readable when ``pid`` ends (Linux >= 5.3), else None.

    The socket alone is not enough: a process the experiment forked may hold
    the worker's end open after the worker died.
    """
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class WorkerPool:
    """Runs experiments on ``size`` workers; yields one Outcome per experiment as each finishes."""

    def __init__(self, plan: PoolPlan, setup: WorkerSetup, size: int):
        self.plan = plan
        self.setup = setup
        self.size = size
        self.workers: Dict[int, _Worker] = {}
        self.pending: Deque[Experiment] = deque()
        self.start_failures = 0

    def run(self, experiments: Sequence[Experiment]) -> Iterator[Outcome]:
        self.pending.extend(experiments)
        while self.pending or any(worker.tasks for worker in self.workers.values()):
            self._start_workers()
            self._dispatch()
            yield from self._wait_and_collect()

    def _start_workers(self) -> None:
        """Fill empty slots while there is more work than idle or starting workers."""
        waiting = sum(1 for worker in self.workers.values() if not worker.tasks and not worker.stopping)
        for slot in range(self.size):
            if len(self.pending) <= waiting:
                return
            if slot not in self.workers:
                self.workers[slot] = _Worker(slot, self.plan, self.setup)
                waiting += 1

    def _dispatch(self) -> None:
        """One experiment to each idle worker first, then queue more where experiments are short."""
        for depth in range(1, QUEUE_DEPTH + 1):
            for worker in self.workers.values():
                if self.pending and len(worker.tasks) < depth <= self._capacity(worker):
                    self._send(worker, self.pending.popleft())

    def _capacity(self, worker: _Worker) -> int:
        """How many experiments ``worker`` may hold at once now."""
        if not worker.ready or worker.stopping:
            return 0
        short = worker.last_duration is not None and worker.last_duration < SHORT_EXPERIMENT
        depth = QUEUE_DEPTH if short and len(self.pending) > len(self.workers) else 1
        limit = self.plan.max_experiments_per_worker
        return min(depth, limit - worker.finished) if limit else depth

    def _send(self, worker: _Worker, experiment: Experiment) -> None:
        if worker.send(experiment):
            worker.tasks.append(_Task(experiment, None if worker.tasks else time.monotonic()))
        else:
            self.pending.appendleft(experiment)

    def _wait_and_collect(self) -> Iterator[Outcome]:
        for worker in self._wait(self._seconds_to_next_deadline()):
            worker.channel.flush()
            yield from self._collect(worker)
        yield from self._expire_timeouts()

    def _wait(self, timeout: Optional[float]) -> List[_Worker]:
        """The workers that sent something, ended or can take more bytes, waiting at most ``timeout`` seconds."""
        poller = select.poll()
        owners: Dict[int, _Worker] = {}
        for worker in self.workers.values():
            for fd, events in worker.poll_events():
                poller.register(fd, events)
                owners[fd] = worker
        ready = poller.poll(None if timeout is None else math.ceil(timeout * 1000))
        return list(dict.fromkeys(owners[fd] for fd, _ in ready))

    def _seconds_to_next_deadline(self) -> Optional[float]:
        deadlines = [deadline for deadline in map(_deadline, self.workers.values()) if deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _collect(self, worker: _Worker) -> Iterator[Outcome]:
        """Handle what ``worker`` sent; a closed socket or an ended process means it is gone."""
        ended = _ended(worker)
        for kind, payload in worker.channel.receive(None if ended else READ_PER_TURN):
            yield from self._handle(worker, kind, payload)
        if self.workers.get(worker.slot) is worker and (worker.channel.closed or ended):
            worker.wait_for_exit(time.monotonic() + EXIT_GRACE)
            yield from self._lost(worker)

    def _handle(self, worker: _Worker, kind: str, payload: Any) -> Iterator[Outcome]:
        if kind == "ready":
            worker.ready = True
            self.start_failures = 0
        elif kind == "setup_error":
            raise WorkerStartError(f"the worker processes cannot load the stage functions:\n{payload}")
        elif kind == "outcome" and worker.tasks:
            worker.tasks.popleft()
            if worker.tasks:
                worker.tasks[0].started = time.monotonic()
            worker.finished += 1
            worker.last_duration = payload.duration
            if self._should_replace(worker, payload):
                self._retire(worker)
            yield payload

    def _should_replace(self, worker: _Worker, outcome: Outcome) -> bool:
        """A worker is replaced after max_experiments_per_worker, and after a MemoryError left it in doubt."""
        limit = self.plan.max_experiments_per_worker
        return bool(limit and worker.finished >= limit) or outcome.error_type == "MemoryError"

    def _retire(self, worker: _Worker) -> None:
        """Ask ``worker`` to exit; its slot stays taken (its GPUs busy) until the process has ended."""
        worker.stopping = True
        worker.send(None)

    def _lost(self, worker: _Worker) -> Iterator[Outcome]:
        """The worker's process ended (or must end): reap it, fail the experiment it ran, requeue the rest."""
        self._remove(worker)
        returncode = worker.reap()
        if worker.tasks:
            yield self._crashed(worker.tasks.popleft(), returncode)
        elif not worker.ready and not worker.stopping:
            self._count_start_failure(returncode)

    def _remove(self, worker: _Worker) -> None:
        """Take ``worker`` out of the pool; the experiments queued behind its running one go back to pending."""
        del self.workers[worker.slot]
        while len(worker.tasks) > 1:
            self.pending.appendleft(worker.tasks.pop().experiment)

    def _crashed(self, task: _Task, returncode: Optional[int]) -> Outcome:
        message = f"the worker process running the experiment died: {describe_exit(returncode)}"
        if self.plan.max_memory and returncode is not None and returncode < 0:
            message += f"; with max_memory={format_bytes(self.plan.max_memory)}, native code may crash when it "
            message += "cannot allocate memory"
        return Outcome.failure(
            task.experiment.experiment_id, CRASHED, message, error_type="WorkerCrashed",
            exit_code=returncode, duration=_elapsed(task),
        )

    def _count_start_failure(self, returncode: Optional[int]) -> None:
        self.start_failures += 1
        if self.start_failures >= MAX_START_FAILURES:
            raise WorkerStartError(
                f"worker processes of backend=multiprocessing end as they start ({describe_exit(returncode)}); "
                "their error output is above"
            )

    def _expire_timeouts(self) -> Iterator[Outcome]:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            deadline = _deadline(worker)
            if deadline is not None and deadline <= now:
                self._remove(worker)
                worker.reap()
                task = worker.tasks.popleft()
                yield Outcome.failure(
                    task.experiment.experiment_id, TIMEOUT,
                    f"stopped after the timeout of {task.experiment.timeout:g} s (its worker process was killed)",
                    error_type="ExperimentTimeout", duration=_elapsed(task),
                )

    def stop(self) -> None:
        """Ask every worker to exit and give them a moment to do so (kill() ends what remains)."""
        for worker in self.workers.values():
            if not worker.stopping:
                self._retire(worker)
        deadline = time.monotonic() + EXIT_GRACE
        for worker in self.workers.values():
            worker.wait_for_exit(deadline)

    def kill(self) -> None:
        """Kill and reap every worker; safe to call at any moment, and more than once."""
        for worker in self.workers.values():
            worker.kill_group()
        while self.workers:
            _, worker = self.workers.popitem()
            worker.reap()


def _deadline(worker: _Worker) -> Optional[float]:
    task = worker.running
    if task is None or task.started is None or not task.experiment.timeout:
        return None
    return task.started + task.experiment.timeout


def _elapsed(task: _Task) -> float:
    return time.monotonic() - task.started if task.started is not None else 0.0


def _ended(worker: _Worker) -> bool:
    """Whether the worker's process has ended, as far as its exit watcher (if any) tells."""
    if worker.sentinel is None:
        return False
    poller = select.poll()
    poller.register(worker.sentinel, select.POLLIN)
    return bool(poller.poll(0))
