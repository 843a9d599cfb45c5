"""The Ray tasks of a session: what runs on the workers, and how the stages get there.

The stages travel once per session, as cloudpickle bytes (those of
:func:`~experiment_runner.launchers.base.pickle_stages`, as with the other
backends) put in Ray's object store; each worker unpickles them once. Before
that, a probe task asks a worker which of the stages' modules it cannot
import: their top-level packages then travel by value, like a script's own
functions, and a second probe checks that a worker can load the result.

Each experiment, and the outcome its task returns, travels as bytes the
session pickles itself (:func:`pack`): Ray passes bytes as they are, while
any other object goes through Ray's own serialization (msgpack, then
cloudpickle's pure-Python pickler), which costs more than the no-op
experiment itself. The resources each experiment asks for are set once, on
the session's remote functions, not per task with ``.options()``.
"""
from __future__ import annotations

import functools
import importlib.util
import pickle
import socket
import sys
import types
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional

import cloudpickle
import ray
import ray.exceptions as ray_errors

from ..errors import UsageError
from ..experiment import Experiment, Stages, run_experiment
from ..metrics import watching_prune_marker
from ..logs import redirect_file_descriptors
from .base import pickle_stages
from .ray_outcomes import first_line

__all__ = ["SessionTasks", "TASK_STARTED", "ship_stages", "pack"]

#: What a timed experiment's task yields first, with the worker's host name.
TASK_STARTED = "started"
#: How long a probe task may take (a runtime_env may install packages first).
PROBE_TIMEOUT_SECONDS = 600.0


# --------------------------------------------------------------------------- on the worker


@functools.lru_cache(maxsize=2)
def _loaded_stages(pickled: bytes) -> Stages:
    """The stages, unpickled once per worker (a worker runs many experiments of the same session)."""
    return cloudpickle.loads(pickled)


def pack(value: Any) -> bytes:
    """``value`` as pickle bytes: the C pickler for plain data, cloudpickle for what it cannot pickle by reference."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(value)


def _execute(packed_experiment: bytes, pickled_stages: bytes) -> bytes:
    """run_experiment with everything the stages print, C code included, in the experiment's log files."""
    experiment = pickle.loads(packed_experiment)
    with watching_prune_marker(experiment.absolute_folder()):  # the driver's way to ask it to stop early
        return pack(run_experiment(experiment, _loaded_stages(pickled_stages), capture=redirect_file_descriptors))


def _run(packed_experiment: bytes, pickled_stages: bytes) -> bytes:
    return _execute(packed_experiment, pickled_stages)


def _run_timed(packed_experiment: bytes, pickled_stages: bytes) -> Iterator[Any]:
    yield (TASK_STARTED, socket.gethostname())
    yield _execute(packed_experiment, pickled_stages)


def _missing_modules(names: List[str]) -> List[str]:
    """The module names a worker cannot import."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _load_problem(pickled: bytes) -> Optional[str]:
    """None if a worker can unpickle the stages, else the error it met."""
    try:
        cloudpickle.loads(pickled)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


# --------------------------------------------------------------------------- on the driver


@dataclass(frozen=True)
class SessionTasks:
    """The Ray tasks of a session, made anew for each one.

    A run stopped early ends its Ray job with tasks in flight: Ray kills
    their workers but keeps counting their leases against the task's
    function, and from then on starts workers for that function only one
    every 10 s, for as long as the driver process lives. Fresh functions keep
    the next run in the same process (a notebook, say) from inheriting that.
    """

    #: Runs an experiment.
    plain: Any
    #: Runs an experiment with a timeout, first reporting that it started.
    timed: Any
    #: The probes of :func:`ship_stages`.
    missing_modules: Any
    load_problem: Any

    @classmethod
    def fresh(cls, resources: Dict[str, Any]) -> "SessionTasks":
        """The tasks of a new session; ``resources``: what each experiment asks for (``ray.remote`` arguments).

        Ray's own rules on those amounts (no finer than it counts) become a UsageError.
        """
        experiment_task, probe = ray.remote(max_retries=0, **resources), ray.remote(num_cpus=0, max_retries=0)
        try:
            plain, timed = experiment_task(_run), experiment_task(_run_timed)
        except ValueError as error:
            raise UsageError(f"Ray refuses the resources asked per experiment: {error}") from error
        return cls(plain, timed, probe(_missing_modules), probe(_load_problem))

    def submit(self, experiment: Experiment, stages_ref: Any) -> Any:
        """The task's ObjectRef, or, for an experiment with a timeout, its ObjectRefGenerator."""
        task = self.timed if experiment.timeout > 0 else self.plain
        return task.remote(pack(experiment), stages_ref)


@dataclass
class ShippedStages:
    """The stages in Ray's object store, and the packages registered to travel by value for them."""

    ref: Any
    by_value: List[types.ModuleType]

    def release(self) -> None:
        """Stop pickling those packages by value (other code of this process may pickle them)."""
        for module in self.by_value:
            cloudpickle.unregister_pickle_by_value(module)
        self.by_value = []


def ship_stages(stages: Stages, tasks: SessionTasks) -> ShippedStages:
    """Put the stages in the object store, their code by value where the workers cannot import it.

    A UsageError when a worker still cannot load them, with how to ship the code.
    """
    shipped = ShippedStages(None, [])
    try:
        for name in _probe(tasks.missing_modules, _stage_module_names(stages)):
            _register_by_value(name, shipped.by_value)
        pickled = pickle_stages(stages, "ray")
        problem = _probe(tasks.load_problem, pickled)
        if problem:
            raise UsageError(
                f"the Ray workers cannot load the stage functions: {problem}. Install your code on every "
                "node, or ship it with ray_runtime_env={'working_dir': '.'} (README: Running on Ray)"
            )
        shipped.ref = ray.put(pickled)
    except BaseException:
        shipped.release()
        raise
    return shipped


def _stage_module_names(stages: Stages) -> List[str]:
    """Modules the stage functions come from; ``__main__`` is always pickled by value by cloudpickle."""
    names: List[str] = []
    for function in (stages.pre, stages.fit, stages.post):
        module = getattr(function, "__module__", None)
        if isinstance(module, str) and module != "__main__" and module not in names:
            names.append(module)
    return names


def _register_by_value(module_name: str, registered: List[types.ModuleType]) -> None:
    """Pickle the functions of ``module_name``'s top-level package by value (as ``__main__``'s are)."""
    module = sys.modules.get(module_name.partition(".")[0])
    if module is None or module.__name__ in cloudpickle.list_registry_pickle_by_value():
        return
    cloudpickle.register_pickle_by_value(module)
    registered.append(module)


def _probe(function: Any, argument: Any) -> Any:
    """Run a 0-CPU probe task on some worker of the cluster and return its result."""
    try:
        return ray.get(function.remote(argument), timeout=PROBE_TIMEOUT_SECONDS)
    except ray_errors.GetTimeoutError as error:
        raise UsageError(f"the Ray cluster ran no task within {PROBE_TIMEOUT_SECONDS:g} s") from error
    except ray_errors.RayError as error:
        raise UsageError(
            f"a Ray worker cannot run experiment-runner (is it installed on every node, with the same "
            f"Python?): {first_line(error)}"
        ) from error
