"""backend=dask: each experiment is a Dask future on a ``distributed`` cluster (an example plugin).

Options: ``dask_scheduler``, the address of a running scheduler
(``tcp://host:8786``), or null (the default) for a LocalCluster this backend
starts for the run and closes after it; ``dask_workers``, how many workers
that LocalCluster has (default: the machine's CPUs). Each worker should run one
thread (``dask worker --nthreads 1``): what an experiment prints is captured
per process, and it runs in the driver's working directory (shared with the
driver, as the run's out_path is).

What it does not do, and refuses rather than ignores: ``timeout`` and
``max_memory`` (Dask cannot stop a running task). Closing the session (the
run ended, Ctrl-C, an error) cancels its futures and ends the worker processes
that still run one of its experiments (their nannies start fresh ones): Dask
cannot stop a running task otherwise.
"""
from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Any, Dict, Iterator, Optional, Sequence, Set, Tuple

from experiment_runner.errors import UsageError
from experiment_runner.experiment import CANCELLED, CRASHED, Experiment, Outcome, Stages, run_experiment
from experiment_runner.launchers.base import Event, Launcher, Session, pickle_stages
from experiment_runner.launchers.isolation import usable_cpus
from experiment_runner.launchers.options import BackendOptions, option

__all__ = ["DaskLauncher", "DaskOptions", "DaskSession"]


@dataclasses.dataclass
class DaskOptions(BackendOptions):
    """Experiments as Dask futures on a distributed cluster (the example plugin backend)."""

    dask_scheduler: Optional[str] = option(None, "null: a LocalCluster for the run; else tcp://host:8786",
                                           expect="an address such as tcp://host:8786, or null")
    dask_workers: Optional[int] = option(None, "workers of that LocalCluster; null: one per CPU", at_least=1)


class DaskLauncher(Launcher):
    name = "dask"
    Options = DaskOptions

    def check(self, experiments: Sequence[Experiment]) -> None:
        if any(experiment.timeout for experiment in experiments):
            raise UsageError("backend=dask cannot enforce a timeout (Dask cannot stop a running task): "
                             "remove timeout or use backend=multiprocessing")
        if self.settings.max_memory is not None:
            raise UsageError("backend=dask cannot enforce max_memory: set the workers' --memory-limit instead")

    def session(self, stages: Stages) -> Session:
        options = self.typed_options
        return DaskSession(stages, options.dask_scheduler, options.dask_workers)


class DaskSession(Session):
    """A Client (and, without a scheduler address, a LocalCluster) held for the whole run."""

    def __init__(self, stages: Stages, scheduler: Optional[str], workers: Optional[int]):
        super().__init__(stages)
        self.scheduler, self.workers = scheduler, workers
        self._cluster: Any = None
        self._client: Any = None
        self._finished: Any = None  # distributed.as_completed over the futures in flight
        self._in_flight: Dict[str, Tuple[Any, int]] = {}  # future key -> (future, experiment id)
        self._token = uuid.uuid4().hex  # marks this session's experiments where they run

    def open(self) -> None:
        from distributed import Client, LocalCluster, as_completed

        pickled = pickle_stages(self.stages, "dask")  # a clear error for stages that cannot travel
        if self.scheduler is None:
            self._cluster = LocalCluster(n_workers=self.workers or usable_cpus(), threads_per_worker=1,
                                         processes=True, dashboard_address=":0")
        self._client = Client(self.scheduler or self._cluster)
        self._stages = self._client.scatter(pickled, broadcast=True)  # sent to every worker once
        self._finished = as_completed()

    @property
    def slots(self) -> Optional[int]:
        """The worker threads of the cluster when the session opened (one experiment each)."""
        if self._client is None:
            return None
        workers = self._client.scheduler_info().get("workers", {})
        return sum(worker.get("nthreads", 1) for worker in workers.values()) or None

    def events(self) -> Iterator[Event]:
        while self.waiting or not self._finished.is_empty():
            while self.waiting:
                self._send(self.waiting.popleft())
            future = next(self._finished)
            yield self._outcome(future)

    def _send(self, experiment: Experiment) -> None:
        future = self._client.submit(_run, experiment, self._stages, os.getcwd(), self._token, pure=False)
        self._in_flight[future.key] = (future, experiment.experiment_id)
        self._finished.add(future)

    def _outcome(self, future: Any) -> Outcome:
        _, experiment_id = self._in_flight.pop(future.key)
        if future.status == "finished":
            return future.result()
        error = future.exception()  # the worker died (KilledWorker) or the task could not run
        return Outcome.failure(experiment_id, CRASHED, f"dask: {type(error).__name__}: {error}",
                               error_type=type(error).__name__)

    def close(self) -> None:
        if self._client is not None:
            self._stop_in_flight()
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def _stop_in_flight(self) -> None:
        """Cancel this session's experiments, then end the worker processes whose threads still run one.

        Dask cannot stop a running task; the worker's nanny starts a fresh worker in its place. Every worker
        is asked, and looks at what its own threads run (``_RUNNING``), not at the scheduler's view, in which
        a cancelled task is gone while its thread still runs. A LocalCluster of our own ends with its workers.
        """
        from distributed import Event

        if not self._in_flight:
            return
        # The scheduler may still hand an experiment whose worker ends to another worker, cancelled or not:
        # the session's event, set first, makes such a late start return at once.
        Event(self._token, client=self._client).set()
        self._client.cancel([future for future, _ in self._in_flight.values()], force=True)
        if self._cluster is None:
            # Waited for: a request still on its way when the client closes is dropped. A worker that ends
            # answers with an error instead, which is ignored here.
            self._client.run(_end_worker_running, self._token, on_error="ignore")


#: In a worker process: the experiments its threads run now, as (session token, experiment id).
_RUNNING: Set[Tuple[str, int]] = set()
#: In a worker process: each session's stages, unpickled by its first experiment there.
_STAGES: Dict[str, Stages] = {}


def _end_worker_running(token: str) -> None:
    """On a worker's event loop (its task thread may be busy for hours): end the process if it runs the session's."""
    if any(running == token for running, _ in _RUNNING):
        os._exit(1)


def _run(experiment: Experiment, pickled_stages: bytes, cwd: str, token: str) -> Outcome:
    """On a worker, in the driver's working directory (a relative out_path is the driver's): the experiment."""
    import cloudpickle

    from distributed import Event

    if Event(token).is_set():  # the session closed before this (re)start: run nothing
        return Outcome.failure(experiment.experiment_id, CANCELLED, "the run was stopped")
    mark = (token, experiment.experiment_id)
    before = os.getcwd()
    _RUNNING.add(mark)
    os.chdir(cwd)
    try:
        if token not in _STAGES:  # unpickled once per session in each worker process
            _STAGES[token] = cloudpickle.loads(pickled_stages)
        return run_experiment(experiment, _STAGES[token])
    finally:
        os.chdir(before)
        _RUNNING.discard(mark)
