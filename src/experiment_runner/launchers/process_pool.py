"""backend=multiprocessing: experiments in parallel in worker processes on this machine.

How it works. The run's session (:class:`PoolSession`) keeps up to
``num_workers`` worker processes for the whole run, retries included, each a
fresh Python interpreter (``python -c ... _pool_worker.main``) connected to the
driver by a socket pair (pool_workers.py is the driver's end). A worker gets
the pickled stages once, then experiments, which it runs one after another
with :func:`isolation.run_isolated` (stdout and stderr, C-level output
included, go to the worker's capture files under ``<out_path>/.live/`` and
from there to the experiment's logs, see logs.WorkerCapture; the driver
salvages them when a worker dies), sending back what the experiment
tells the driver (:mod:`experiment_runner.channel`) and one Outcome each;
while experiments are short, they go in chunks (see QUEUE_TIME) that wait in
the worker (its Inbox), so the worker never idles for a round trip, and that
it gives back when the one it runs takes long while another worker idles. The
driver's end of each socket never blocks: a message to a worker waits in that
worker's buffer and goes out as fast as the worker reads, and what a worker
sends collects until a whole message is there. So a config or an outcome of
any size never stops the driver (a blocking send of a large config to a busy
worker would hold up every timeout, and one crossing a large outcome would
deadlock). The session's ``events()`` waits on every worker's socket (to read,
and to write while something waits to go out) and process at once (one
``poll``) with a timeout set by the earliest experiment deadline, so it
notices a finished experiment, a dead worker and an expired timeout as soon
as each happens, without helper threads.
A worker that dies or overruns its experiment's timeout is killed with its
whole process group and replaced; only its experiment fails. Workers die with
the driver, even with ``kill -9`` (PR_SET_PDEATHSIG), and a watchdog process in
each worker's process group then kills what the experiments started (see
:func:`isolation.start_watchdog`).

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

import contextlib
import functools
import math
import os
import select
import shutil
import sys
import time
import warnings
from collections import deque
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..channel import STARTED, Message
from ..errors import ExperimentRunnerWarning, WorkerStartError
from ..experiment import Experiment, Outcome, Stages
from ..logs import LIVE_FOLDER, salvage_left_behind_output, salvage_worker_output
from ._pool_worker import PRUNE, RELEASE, WorkerSetup
from .isolation import describe_exit, died_outcome, timeout_outcome
from .pool_plan import PoolPlan, plan_pool, warn_of_fewer_cpus
from .pool_workers import READ_PER_TURN, Task, Worker, elapsed, worker_deadline
from . import options as declared
from .base import Event, Launcher, Session, pickle_stages

#: A worker that dies this many times in a row before it is ready means workers cannot start at all.
MAX_START_FAILURES = 3

#: Short experiments go to a worker in chunks, as ``Pool.map``'s chunksize does: several in one message,
#: queued in the worker behind the one it runs, so it never waits for the driver between two of them and
#: the driver sends one message per chunk. A chunk holds about QUEUE_TIME seconds of work (by the
#: worker's last experiment), at most MAX_QUEUE experiments, and at most a fair share of those waiting,
#: so that at the end of a run no worker sits on a queue while another idles. Timeouts and crashes
#: stay per experiment: the driver knows each worker's queue in order, the running one first.
QUEUE_TIME = 0.02
MAX_QUEUE = 64

#: An experiment shorter than this (seconds) makes its worker eligible for a queue. Longer
#: experiments gain nothing from it, and a queued experiment waiting behind a long one could
#: keep another worker idle at the end of the run.
SHORT_EXPERIMENT = 0.05

#: Seconds a worker may take to exit by itself (after a stop, or after its socket closed) before it is killed.
EXIT_GRACE = 2.0


def _pace(worker: Worker) -> Optional[float]:
    """How long an experiment takes on ``worker``, as far as the driver can tell: its last one's duration, or the
    time the running one has taken so far if that is longer (nothing is queued behind a straggler); None: unknown."""
    running = worker.running
    if worker.last_duration is None or running is None:
        return worker.last_duration
    return max(worker.last_duration, elapsed(running))


class WorkerLeftWarning(ExperimentRunnerWarning):
    """A worker could read no more from the driver (say, out of memory): it was replaced, no experiment lost."""


class ProcessPoolLauncher(Launcher):
    """Runs experiments in parallel in reused worker processes; see the module docstring."""

    name = "multiprocessing"
    Options = declared.MultiprocessingOptions

    @functools.cached_property
    def plan(self) -> PoolPlan:
        return plan_pool(self.settings)

    #: How many experiments the run has, as check() saw them; None: not told (then every slot starts at once).
    experiment_count: Optional[int] = None

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Only a warning; stages that cannot be pickled are refused when the session opens, before any write."""
        warn_of_fewer_cpus(self.settings.num_cpus, self.plan)
        self.experiment_count = len(experiments)

    def session(self, stages: Stages) -> Session:
        return PoolSession(self.plan, stages, self.name, first_workers=self._first_workers())

    def _first_workers(self) -> int:
        """How many workers start as the session opens: as many as the run can use at once; none for a
        resumed run, which knows only once its records are read how many experiments are left (perhaps none):
        its workers start as experiments arrive."""
        if self.settings.if_exists == "resume":
            return 0
        count = self.experiment_count or self.plan.num_workers  # 0: a search, whose trials are asked as it goes
        return min(count, self.plan.num_workers)


class PoolSession(Session):
    """The pool of one run: workers started as experiments arrive and kept until the session closes.

    Each worker slot is filled once there is work for it, and refilled only
    when its worker died, overran a timeout or was retired
    (max_experiments_per_worker, a MemoryError); a retry runs on the workers
    that are there. ``events()`` yields the Messages the experiments send and
    one Outcome per submitted experiment as each finishes. That an experiment
    started, the driver knows itself (it is first in its worker's queue): that
    Message costs no frame from the worker.
    """

    def __init__(self, plan: PoolPlan, stages: Stages, backend: str, first_workers: int = 0):
        super().__init__(stages)
        self.plan = plan
        self.backend = backend
        #: Workers started as the session opens (see :meth:`open`).
        self.first_workers = first_workers
        self.setup: Optional[WorkerSetup] = None
        self.workers: Dict[int, Worker] = {}
        self.start_failures = 0
        #: events() has yielded every outcome: closing may let idle workers exit by themselves.
        self.drained = False
        #: STARTED messages of experiments handed to an idle worker, yielded by the next turn of events().
        self.started: List[Message] = []
        #: The run's out_path (from the first experiment submitted): the workers capture output under it.
        self.out_path: Optional[str] = None

    def open(self) -> None:
        """Start the first workers, then pickle the stages (refused now if they cannot be) and send them.

        A worker is a fresh interpreter that takes several hundredths of a second
        to be ready: started first, it gets ready while the driver pickles the
        stages (importing cloudpickle) and writes the run's records, instead of after.
        """
        for slot in range(self.first_workers):
            self.workers[slot] = Worker(slot, self.plan)
        self.setup = WorkerSetup(pickle_stages(self.stages, self.backend), list(sys.path), self.plan.max_memory)
        for worker in self.workers.values():
            worker.set_up(self.setup)

    @property
    def slots(self) -> int:
        return self.plan.num_workers

    def submit(self, experiment: Experiment, *, again: bool = False) -> None:
        self.drained = False
        if self.out_path is None:
            self.out_path = experiment.out_path
            salvage_left_behind_output(self.out_path)
        super().submit(experiment, again=again)

    def events(self) -> Iterator[Event]:
        while self.waiting or any(worker.tasks for worker in self.workers.values()):
            self._start_workers()
            self._dispatch()
            yield from self.started
            self.started.clear()
            yield from self._wait_and_collect()
        self.drained = True

    def close(self) -> None:
        """Stop what runs: at once when experiments are in flight, else idle workers get a moment to exit."""
        try:
            if self.drained:
                self._stop()
        finally:
            try:
                self._kill()
            finally:
                self._remove_live_folder()

    def _start_workers(self) -> None:
        """Fill empty slots while there is more work than idle or starting workers."""
        waiting = sum(1 for worker in self.workers.values() if not worker.tasks and not worker.stopping)
        for slot in range(self.plan.num_workers):
            if len(self.waiting) <= waiting:
                return
            if slot not in self.workers:
                self.workers[slot] = worker = Worker(slot, self.plan)
                worker.set_up(self.setup)
                waiting += 1

    def _dispatch(self) -> None:
        """One experiment to each idle worker first, then chunks to workers whose queue ran half empty."""
        for worker in self.workers.values():
            if self.waiting and not worker.tasks and self._capacity(worker):
                self._send(worker, [self.waiting.popleft()])
        for worker in self.workers.values():
            capacity = self._capacity(worker)
            if self.waiting and capacity > 1 and len(worker.tasks) <= capacity // 2:
                count = min(capacity - len(worker.tasks), len(self.waiting))
                self._send(worker, [self.waiting.popleft() for _ in range(count)])
        if not self.waiting and self._idle_workers():
            for worker in self._stuck_queues():
                worker.releasing = worker.send(RELEASE)

    def prune(self, experiment_id: int) -> None:
        """Tell the worker running ``experiment_id`` to stop it early; its reading thread sets the flag at once.

        Only the running experiment of a worker (the first of its queue) is
        asked: one queued behind it has reported nothing a search could judge
        it by, and the worker's flag names the experiment, so a request that
        arrives after that one ended does not stop the next.
        """
        for worker in self.workers.values():
            if worker.tasks and worker.tasks[0].experiment.experiment_id == experiment_id:
                worker.send((PRUNE, experiment_id))
                return

    def _idle_workers(self) -> List[Worker]:
        return [worker for worker in self.workers.values() if not worker.tasks and self._capacity(worker)]

    def _stuck_queues(self) -> List[Worker]:
        """Workers whose queue waits behind an experiment that has run longer than a whole queue was meant to take.

        Its experiments are asked back (work stealing) when another worker has
        nothing to do: a straggler then holds up only itself.
        """
        now = time.monotonic()
        return [worker for worker, stuck_at in self._queues_to_watch() if stuck_at <= now]

    def _queues_to_watch(self) -> List[Tuple[Worker, float]]:
        """Each worker that could be asked for its queue, with when that queue counts as stuck (time.monotonic).

        Not a worker already asked, one whose socket broke, or one that is
        stopping (it reads nothing after its last message).
        """
        return [(worker, worker.tasks[0].started + QUEUE_TIME) for worker in self.workers.values()
                if len(worker.tasks) > 1 and worker.tasks[0].started is not None and not worker.releasing
                and not worker.stopping and not worker.channel.broken]

    def _take_back(self, worker: Worker, experiment_ids: List[int]) -> None:
        """The experiments ``worker`` gave back unstarted, the last of its queue, waiting again in their order."""
        worker.releasing = False
        released = set(experiment_ids)
        given_back = [task.experiment for task in worker.tasks if task.experiment.experiment_id in released]
        worker.tasks = deque(task for task in worker.tasks if task.experiment.experiment_id not in released)
        self.waiting.extendleft(reversed(given_back))

    def _capacity(self, worker: Worker) -> int:
        """How many experiments ``worker`` may hold at once now: the one it runs and those queued behind it."""
        if not worker.ready or worker.stopping:
            return 0
        depth = 1
        pace = _pace(worker)
        if pace is not None and pace < SHORT_EXPERIMENT:
            by_time = int(QUEUE_TIME / max(pace, QUEUE_TIME / MAX_QUEUE))
            depth += min(by_time, len(self.waiting) // len(self.workers))
        limit = self.plan.max_experiments_per_worker
        return min(depth, limit - worker.finished) if limit else depth

    def _send(self, worker: Worker, chunk: List[Experiment]) -> None:
        """Send ``chunk`` to ``worker`` in one message; back to waiting if the worker is gone."""
        if not worker.send(chunk):
            self.waiting.extendleft(reversed(chunk))
            return
        if not worker.tasks:
            self.started.append(Message(chunk[0].experiment_id, STARTED))
            worker.tasks.append(Task(chunk[0], time.monotonic()))
            chunk = chunk[1:]
        worker.tasks.extend(Task(experiment) for experiment in chunk)

    def _wait_and_collect(self) -> Iterator[Event]:
        for worker, ended in self._wait(self._seconds_to_next_deadline()).items():
            worker.channel.flush()
            yield from self._collect(worker, ended)
        yield from self._expire_timeouts()

    def _wait(self, timeout: Optional[float]) -> Dict[Worker, bool]:
        """The workers that sent something, ended or can take more bytes, waiting at most ``timeout`` seconds;
        with whether their process was seen to have ended."""
        poller = select.poll()
        owners: Dict[int, Worker] = {}
        for worker in self.workers.values():
            for fd, events in worker.poll_events():
                poller.register(fd, events)
                owners[fd] = worker
        ready: Dict[Worker, bool] = {}
        for fd, _ in poller.poll(None if timeout is None else math.ceil(timeout * 1000)):
            worker = owners[fd]
            ready[worker] = ready.get(worker, False) or fd == worker.sentinel
        return ready

    def _seconds_to_next_deadline(self) -> Optional[float]:
        """Until the next timeout, or the moment a queue counts as stuck while a worker idles."""
        deadlines = [deadline for deadline in map(worker_deadline, self.workers.values()) if deadline is not None]
        if not self.waiting and self._idle_workers():
            deadlines += [stuck_at for _, stuck_at in self._queues_to_watch()]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _collect(self, worker: Worker, ended: bool) -> Iterator[Event]:
        """Handle what ``worker`` sent; a closed socket or an ended process (``ended``) means it is gone."""
        for kind, payload in worker.channel.receive(None if ended else READ_PER_TURN):
            yield from self._handle(worker, kind, payload)
        if self.workers.get(worker.slot) is worker and (worker.channel.closed or ended):
            worker.wait_for_exit(time.monotonic() + EXIT_GRACE)
            yield from self._lost(worker)

    def _handle(self, worker: Worker, kind: str, payload: Any) -> Iterator[Event]:
        if kind == "message":
            yield Message(*payload)
        elif kind == "ready":
            worker.ready = True
            self.start_failures = 0
        elif kind == "released":
            self._take_back(worker, payload)
        elif kind == "leaving":
            self._let_go(worker, *payload)
        elif kind == "setup_error":
            raise WorkerStartError(f"the worker processes cannot load the stage functions:\n{payload}")
        elif kind == "outcome" and worker.tasks:
            worker.tasks.popleft()
            worker.finished += 1
            worker.last_duration = payload.duration
            if self._should_replace(worker, payload):
                self._retire(worker)
            yield payload
            if worker.tasks:
                worker.tasks[0].started = time.monotonic()
                yield Message(worker.tasks[0].experiment.experiment_id, STARTED)

    def _should_replace(self, worker: Worker, outcome: Outcome) -> bool:
        """A worker is replaced after max_experiments_per_worker, and after a MemoryError left it in doubt."""
        limit = self.plan.max_experiments_per_worker
        return bool(limit and worker.finished >= limit) or outcome.error_type == "MemoryError"

    def _retire(self, worker: Worker) -> None:
        """Ask ``worker`` to exit; its slot stays taken (its GPUs busy) until the process has ended."""
        worker.stopping = True
        worker.send(None)

    def _let_go(self, worker: Worker, released: List[int], why: str) -> None:
        """``worker`` can read no more: it ends after the experiment it runs, and gets nothing more to run."""
        self._take_back(worker, released)
        worker.stopping = worker.leaving = True
        warnings.warn(f"worker {worker.slot} of backend=multiprocessing stopped reading the driver's messages; it "
                      f"ends after its experiment and is replaced:\n{why}", WorkerLeftWarning, stacklevel=2)

    def _lost(self, worker: Worker) -> Iterator[Outcome]:
        """The worker's process ended (or must end): reap it, fail the experiment it ran, requeue the rest."""
        self._remove(worker)
        returncode = self._reap(worker)
        if worker.tasks and worker.leaving and returncode == 0:  # it ended as it said: what it holds never ran
            self.waiting.appendleft(worker.tasks.popleft().experiment)
        elif worker.tasks:
            yield self._crashed(worker.tasks.popleft(), returncode)
        elif not worker.ready and not worker.stopping:
            self._count_start_failure(returncode)

    def _remove(self, worker: Worker) -> None:
        """Take ``worker`` out of the pool; the experiments queued behind its running one go back to pending."""
        del self.workers[worker.slot]
        while len(worker.tasks) > 1:
            self.waiting.appendleft(worker.tasks.pop().experiment)

    def _crashed(self, task: Task, returncode: Optional[int]) -> Outcome:
        return died_outcome(task.experiment, returncode, elapsed(task), max_memory=self.plan.max_memory)

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
            deadline = worker_deadline(worker)
            if deadline is not None and deadline <= now:
                self._remove(worker)
                self._reap(worker)
                task = worker.tasks.popleft()
                yield timeout_outcome(task.experiment, elapsed(task))

    def _stop(self) -> None:
        """Ask every worker to exit and give them a moment to do so (kill() ends what remains)."""
        for worker in self.workers.values():
            if not worker.stopping:
                self._retire(worker)
        deadline = time.monotonic() + EXIT_GRACE
        for worker in self.workers.values():
            worker.wait_for_exit(deadline)

    def _kill(self) -> None:
        """Kill and reap every worker; safe to call at any moment, and more than once."""
        for worker in self.workers.values():
            worker.kill_group()
        while self.workers:
            _, worker = self.workers.popitem()
            self._reap(worker)

    def _reap(self, worker: Worker) -> Optional[int]:
        """Kill and reap ``worker``; what its experiment printed before it was stopped goes to its logs."""
        returncode = worker.reap()
        if worker.tasks and self.out_path is not None:
            salvage_worker_output(self.out_path, worker.slot)
        return returncode

    def _remove_live_folder(self) -> None:
        """The workers' capture files go once every worker has ended: the tree keeps its documented shape."""
        if self.out_path is not None:
            with contextlib.suppress(FileNotFoundError):  # no experiment ran
                shutil.rmtree(os.path.join(self.out_path, LIVE_FOLDER))
