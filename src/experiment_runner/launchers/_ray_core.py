"""Everything of backend=ray that needs ``import ray``; imported only when that backend runs.

- :class:`RaySession` owns this process's connection to Ray: an embedded
  local instance it starts and shuts down, a cluster it connects to, or a
  connection the user opened with ``ray.init`` (borrowed, left open).
- Each experiment is one Ray task that calls ``run_experiment`` on a worker.
  An experiment with a timeout runs as a generator task that first reports
  that it started, so the driver times it from its real start (not from its
  submission, which may wait in Ray's queue) and force-cancels it after the
  timeout.
- The driver keeps a bounded number of tasks in flight and streams outcomes
  with ``ray.wait``, so its memory stays flat however many experiments run.
- Stopping a run (Ctrl-C, SIGTERM) does not cancel its tasks one by one: a
  force-cancel racing with a task that just finished crashes Ray's core
  worker in the driver ("Check failed: ... Tried to complete task that was
  not pending"). Closing the session instead ends the driver's Ray job, and
  Ray kills the workers of an ended job (shutting the embedded Ray down kills
  them all). Only on a connection the user opened, which the run leaves
  open, are its tasks cancelled.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import ray
import ray.exceptions as ray_errors
from ray import cloudpickle

from ..errors import UsageError
from ..experiment import CRASHED, ERROR, TIMEOUT, Experiment, Outcome, Stages, run_experiment
from ..logs import redirect_file_descriptors
from ..settings import RunSettings
from .isolation import describe_exit, format_bytes
from .ray_launcher import RayOptions

#: What a timed experiment's task yields first, with the worker's host name.
STARTED = "started"
#: Longest single ray.wait, so Ctrl-C and deadlines are noticed promptly.
POLL_SECONDS = 1.0
#: How long a force-cancelled task may take to report back before it is given up.
CANCEL_GRACE_SECONDS = 30.0
#: How long closing a borrowed connection waits for its cancelled tasks to end.
CLOSE_WAIT_SECONDS = 5.0
#: How long the start-up probe task may take (a runtime_env may install packages first).
PROBE_TIMEOUT_SECONDS = 600.0
#: How long connecting to a cluster's address, and then its first answer, may take.
ANSWER_TIMEOUT_SECONDS = 10.0
#: What an HTTP/2 client sends first (RFC 9113, section 3.4): the preface and an empty SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
#: The frame type of SETTINGS, which an HTTP/2 server sends first.
_HTTP2_SETTINGS = 4

_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
_RESOURCE_KEYS = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "max_memory"}
#: faulthandler's names of the fatal signals it reports.
_FATAL_SIGNALS = {
    "Segmentation fault": signal.SIGSEGV,
    "Bus error": signal.SIGBUS,
    "Aborted": signal.SIGABRT,
    "Floating-point exception": signal.SIGFPE,
    "Floating point exception": signal.SIGFPE,
    "Illegal instruction": signal.SIGILL,
}


# --------------------------------------------------------------------------- the session


class RaySession:
    """This process's connection to Ray for one run, and what it changed to make it.

    Ray has one connection per process, so one session at a time owns it. A
    run that stopped between its check and its launch (say, on an existing
    out_path) leaves its session open until its launcher is collected; the
    next session closes such a stale one instead of borrowing it.
    """

    #: The session that opened this process's connection to Ray, if one did and has not closed it.
    owner: ClassVar[Optional["RaySession"]] = None

    def __init__(self, options: RayOptions):
        self.options = options
        self.borrowed = False
        self._open = False
        self._saved_environment: Dict[str, Optional[str]] = {}
        self._shipped_modules: List[types.ModuleType] = []
        self._checked_stages: Optional[Stages] = None
        self._tasks = SessionTasks.fresh()

    def open(self) -> None:
        """Connect to the cluster, start the embedded instance, or borrow the user's connection."""
        if self._open:
            return
        stale = RaySession.owner
        if stale is not None and stale is not self:
            stale.close()
        if ray.is_initialized():
            self._borrow()
            return
        self._saved_environment = {name: os.environ.get(name) for name in _AUTH_VARIABLES}
        self._set_authentication()
        try:
            self._start_or_connect()
        except BaseException:
            self._restore_environment()
            raise
        self._open = True
        RaySession.owner = self

    def _start_or_connect(self) -> None:
        """ray.init, leaving no Ray process behind when it fails or is interrupted (Ctrl-C, SIGTERM)."""
        if not self.options.embedded:
            _check_answers(self.options.address)
        with _signals_held() as received:
            try:
                ray.init(**self._init_arguments())
            except Exception as error:
                ray.shutdown()
                raise UsageError(_connect_error_message(self.options, error)) from error
        if received:
            ray.shutdown()
            raise KeyboardInterrupt(f"signal {received[0]}")

    def close(self) -> None:
        """Disconnect (shutting the embedded instance down) and undo what open() changed."""
        if not self._open:
            return
        self._open = False
        for module in self._shipped_modules:
            cloudpickle.unregister_pickle_by_value(module)
        self._shipped_modules = []
        self._checked_stages = None
        if self.borrowed:
            return
        RaySession.owner = None
        ray.shutdown()
        self._restore_environment()

    def _borrow(self) -> None:
        if self.options.runtime_env is not None:
            raise UsageError(
                "ray_runtime_env cannot be applied: Ray was already initialized in this process "
                "(ray.init was called before the run); pass runtime_env to that ray.init instead"
            )
        self.borrowed = True
        self._open = True

    def _init_arguments(self) -> Dict[str, Any]:
        arguments: Dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": "warning",
            "runtime_env": self.options.runtime_env,
        }
        if self.options.embedded:
            arguments["include_dashboard"] = False
            return arguments
        arguments["address"] = self.options.address
        if self.options.redis_password is not None:
            arguments["_redis_password"] = self.options.redis_password
        return arguments

    def _set_authentication(self) -> None:
        """Hand Ray its token through this process's environment only, never a file.

        The embedded instance gets a fresh random token unless the user chose
        an authentication mode; Ray would otherwise generate one and save it
        in ~/.ray/auth_token.
        """
        token = self.options.auth_token
        if token is None and self.options.embedded and "RAY_AUTH_MODE" not in os.environ:
            token = secrets.token_hex(32)
        if token is not None:
            os.environ["RAY_AUTH_MODE"] = "token"
            os.environ["RAY_AUTH_TOKEN"] = token
            os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        _reload_ray_authentication()

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reload_ray_authentication()

    def check(self, settings: RunSettings) -> None:
        """Refuse up front what the cluster can never run; make sure the workers can load the stages."""
        request = resource_request(settings, self.options)
        _remote_options(request, self._tasks)
        check_schedulable(request, alive_nodes())
        self.prepare_stages(settings.stages)

    def prepare_stages(self, stages: Stages) -> None:
        """Ship stage code the workers cannot import, then check that a worker can load the stages."""
        if self._checked_stages is stages:
            return
        missing = _probe(self._tasks.missing_modules, _stage_module_names(stages))
        for name in missing:
            self._ship_by_value(name)
        problem = _probe(self._tasks.load_stages, _pickle_stages(stages))
        if problem:
            raise UsageError(
                f"the Ray workers cannot load the stage functions: {problem}. Install your code on every "
                "node, or ship it with ray_runtime_env={'working_dir': '.'} (README: Running on Ray)"
            )
        self._checked_stages = stages

    def _ship_by_value(self, module_name: str) -> None:
        """Pickle the functions of ``module_name``'s top-level package by value (as ``__main__``'s are)."""
        module = sys.modules.get(module_name.partition(".")[0])
        if module is None or module.__name__ in cloudpickle.list_registry_pickle_by_value():
            return
        cloudpickle.register_pickle_by_value(module)
        self._shipped_modules.append(module)

    def run(self, experiments: Sequence[Experiment], stages: Stages, settings: RunSettings) -> Iterator[Outcome]:
        """Run ``experiments`` on the cluster, yielding outcomes as they finish."""
        self.prepare_stages(stages)
        request = resource_request(settings, self.options)
        in_flight = self.options.max_in_flight or max(1, 2 * count_slots(request, alive_nodes()))
        host = socket.gethostname() if self.options.embedded else None
        stages_ref = ray.put(stages)
        dispatcher = Dispatcher(self._tasks, _remote_options(request, self._tasks), stages_ref, in_flight, host,
                                cancel_at_close=self.borrowed)
        yield from dispatcher.run(experiments)


def _reload_ray_authentication() -> None:
    """Make Ray re-read RAY_AUTH_* from the environment.

    Ray caches the authentication mode and token when it is imported; this is
    what Ray's own test utilities do after changing them. Older Rays without
    token authentication have nothing to reload.
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def _signals_held() -> Iterator[List[int]]:
    """Hold Ctrl-C and SIGTERM while ray.init runs; yields the list of those that came meanwhile.

    Interrupted halfway, ray.init leaves Ray's processes running that nothing
    stops, or a half-connected driver that may crash later. Ray also takes
    SIGTERM over while it starts: a handler of its own that exits at once,
    and a C++ handler that aborts the driver. Both are kept out (the latter
    only for this driver, not for its workers), and the caller acts on what
    came once ray.init has returned: it takes seconds, more on a busy machine.
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: List[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    handlers = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in held}
    try:
        with _ray_leaving_sigterm_alone():
            yield received
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def _ray_leaving_sigterm_alone() -> Iterator[None]:
    """Keep ray.init from installing its SIGTERM handlers (see _signals_held); a Ray without these hooks is left as is."""
    from ray._private import ray_constants, utils

    stand_ins = [(utils, "set_sigterm_handler", _keep_sigterm_handler),
                 (ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", True)]
    present = [(module, name, stand_in) for module, name, stand_in in stand_ins if hasattr(module, name)]
    originals = [(module, name, getattr(module, name)) for module, name, _ in present]
    for module, name, stand_in in present:
        setattr(module, name, stand_in)
    try:
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def _keep_sigterm_handler(handler: Any) -> None:
    """Stands in for Ray's set_sigterm_handler while ray.init runs: the run's handler stays."""


def _check_answers(address: Optional[str]) -> None:
    """Fail fast unless something answers at ``host:port`` as a Ray cluster does.

    ray.init retries for minutes where nothing listens, and waits longer still
    on a server that is not Ray's (one that never answers, a web server). The
    head's GCS, which ray.init connects to, is a gRPC server: it answers an
    HTTP/2 client's first bytes with a SETTINGS frame at once. With
    RAY_USE_TLS that exchange is encrypted, so only the connection is checked.
    """
    match = re.fullmatch(r"\[?([^\]/]+?)\]?:(\d+)", address or "")
    if match is None:
        return
    try:
        connection = socket.create_connection((match.group(1), int(match.group(2))), timeout=ANSWER_TIMEOUT_SECONDS)
    except OSError as error:
        raise UsageError(f"cannot connect to the Ray cluster at address={address!r}: {error}") from error
    with connection:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        problem = _http2_problem(connection)
    if problem is not None:
        raise UsageError(
            f"cannot connect to the Ray cluster at address={address!r}: something listens there, but nothing "
            f"Ray-like answers ({problem}); give the address of the head node (`ray start --head` prints it)"
        )


def _http2_problem(connection: socket.socket) -> Optional[str]:
    """None if the server answers the HTTP/2 preface with a SETTINGS frame, as a gRPC server does; else what it did."""
    connection.settimeout(ANSWER_TIMEOUT_SECONDS)
    try:
        connection.sendall(_HTTP2_PREFACE)
        with connection.makefile("rb") as reply:
            frame_header = reply.read(9)
            if _is_settings_frame(frame_header):
                return None
            if not frame_header:
                return "it closed the connection without a reply"
            first_line = (frame_header + reply.readline(60)).decode("ascii", "replace").strip().splitlines()[0]
    except TimeoutError:
        return f"no reply within {ANSWER_TIMEOUT_SECONDS:g} s"
    except OSError as error:
        return f"the connection broke: {error}"
    return f"it replied {first_line!r}"


def _is_settings_frame(frame_header: bytes) -> bool:
    """Whether these 9 bytes head an HTTP/2 SETTINGS frame of the connection (stream 0)."""
    return len(frame_header) == 9 and frame_header[3] == _HTTP2_SETTINGS and frame_header[5:] == bytes(4)


def _connect_error_message(options: RayOptions, error: Exception) -> str:
    cause = error.__cause__ or error
    if isinstance(cause, ray_errors.AuthenticationError) or "authentication" in str(cause).lower():
        return (
            f"the Ray cluster at address={options.address!r} refused this driver's authentication: give "
            "its token with ray_auth_token (or the environment variables RAY_AUTH_MODE=token and RAY_AUTH_TOKEN)"
        )
    if options.embedded:
        return f"cannot start the embedded Ray: {_first_line(cause)}"
    return f"cannot connect to the Ray cluster at address={options.address!r}: {_first_line(cause)}"


# --------------------------------------------------------------------------- resources


def resource_request(settings: RunSettings, options: RayOptions) -> Dict[str, float]:
    """What one experiment asks of a node, in Ray's resource names."""
    request = {"CPU": float(settings.num_cpus)}
    if settings.num_gpus:
        request["GPU"] = float(settings.num_gpus)
    if settings.max_memory:
        request["memory"] = float(settings.max_memory)
    request.update(options.resources)
    return request


def _remote_options(request: Dict[str, float], tasks: SessionTasks) -> Dict[str, Any]:
    """``.options()`` arguments for the experiment tasks; Ray's own rules on amounts become UsageErrors."""
    custom = {name: amount for name, amount in request.items() if name not in _RESOURCE_KEYS}
    arguments: Dict[str, Any] = {"num_cpus": request["CPU"], "num_gpus": request.get("GPU", 0), "resources": custom}
    if "memory" in request:
        arguments["memory"] = int(request["memory"])
    try:
        tasks.plain.options(**arguments)
    except ValueError as error:
        raise UsageError(f"Ray refuses the resources asked per experiment: {error}") from error
    return arguments


def alive_nodes() -> List[Dict[str, float]]:
    """The total resources of each live node of the cluster."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def count_slots(request: Dict[str, float], nodes: Iterable[Dict[str, float]]) -> int:
    """How many experiments asking ``request`` the cluster can run at the same time."""
    return sum(_slots_on(request, node) for node in nodes)


def _slots_on(request: Dict[str, float], node: Dict[str, float]) -> int:
    # A small epsilon: Ray stores amounts in 1/10000 units, so 1.0 / 0.1 must give 10, not 9.
    return min(math.floor(node.get(name, 0.0) / amount + 1e-6) for name, amount in request.items() if amount > 0)


def check_schedulable(request: Dict[str, float], nodes: List[Dict[str, float]]) -> None:
    """A UsageError unless at least one node has everything one experiment asks for."""
    if any(_slots_on(request, node) > 0 for node in nodes):
        return
    largest = {name: max((node.get(name, 0.0) for node in nodes), default=0.0) for name in request}
    short = [name for name in request if largest[name] < request[name]]
    asked = ", ".join(f"{_setting_name(name)}={_amount(name, request[name])}" for name in request)
    offered = ", ".join(f"{_setting_name(name)}={_amount(name, largest[name])}" for name in short)
    detail = f"the most any node has: {offered}" if short else "some node has each, but none has all of them"
    raise UsageError(
        f"no node of the Ray cluster ({len(nodes)} nodes) can run an experiment that asks for {asked}; "
        f"{detail}. Ask for less, or add a node that has it"
    )


def _setting_name(resource: str) -> str:
    return _RESOURCE_KEYS.get(resource, f"ray_resources.{resource}")


def _amount(resource: str, amount: float) -> str:
    return format_bytes(int(amount)) if resource == "memory" else f"{amount:g}"


# --------------------------------------------------------------------------- shipping the stages


def _stage_module_names(stages: Stages) -> List[str]:
    """Modules the stage functions come from; ``__main__`` is always pickled by value by cloudpickle."""
    names: List[str] = []
    for function in (stages.pre, stages.fit, stages.post):
        module = getattr(function, "__module__", None)
        if isinstance(module, str) and module != "__main__" and module not in names:
            names.append(module)
    return names


def _pickle_stages(stages: Stages) -> bytes:
    try:
        return cloudpickle.dumps(stages)
    except Exception as error:
        raise UsageError(
            f"backend=ray cannot send the stage functions to its workers: {type(error).__name__}: {error}"
        ) from error


def _probe(function: Any, argument: Any) -> Any:
    """Run a 0-CPU probe task on some worker of the cluster and return its result."""
    try:
        return ray.get(function.remote(argument), timeout=PROBE_TIMEOUT_SECONDS)
    except ray_errors.GetTimeoutError as error:
        raise UsageError(f"the Ray cluster ran no task within {PROBE_TIMEOUT_SECONDS:g} s") from error
    except ray_errors.RayError as error:
        raise UsageError(
            f"a Ray worker cannot run experiment-runner (is it installed on every node, with the same "
            f"Python?): {_first_line(error)}"
        ) from error


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


def _load_stages(pickled: bytes) -> Optional[str]:
    """None if a worker can unpickle the stages, else the error it met."""
    try:
        cloudpickle.loads(pickled)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


# --------------------------------------------------------------------------- on the worker


def _execute(experiment: Experiment, stages: Stages) -> Outcome:
    """run_experiment with everything the stages print, C code included, in the experiment's log files."""
    return run_experiment(experiment, stages, capture=redirect_file_descriptors)


def _run(experiment: Experiment, stages: Stages) -> Outcome:
    return _execute(experiment, stages)


def _run_timed(experiment: Experiment, stages: Stages) -> Iterator[Any]:
    yield (STARTED, socket.gethostname())
    yield _execute(experiment, stages)


# --------------------------------------------------------------------------- on the driver

Handle = Union["ray.ObjectRef", "ray.ObjectRefGenerator"]


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
    #: The probes of :meth:`RaySession.prepare_stages`.
    missing_modules: Any
    load_stages: Any

    @classmethod
    def fresh(cls) -> "SessionTasks":
        experiment_task, probe = ray.remote(max_retries=0), ray.remote(num_cpus=0, max_retries=0)
        return cls(experiment_task(_run), experiment_task(_run_timed), probe(_missing_modules), probe(_load_stages))

    def submit(self, experiment: Experiment, stages_ref: Any, options: Dict[str, Any]) -> Handle:
        task = self.timed if experiment.timeout > 0 else self.plain
        return task.options(**options).remote(experiment, stages_ref)


@dataclass
class Flight:
    """One experiment submitted to Ray and not yet reported."""

    experiment: Experiment
    handle: Handle
    host: Optional[str] = None
    started: Optional[float] = None
    cancelled: Optional[float] = None

    @property
    def timed(self) -> bool:
        return self.experiment.timeout > 0

    def deadline(self) -> float:
        """When the driver acts next for this flight: cancel it, or give it up after cancelling."""
        if self.cancelled is not None:
            return self.cancelled + CANCEL_GRACE_SECONDS
        if self.started is not None:
            return self.started + self.experiment.timeout
        return math.inf


@dataclass
class Dispatcher:
    """Submits experiments with at most ``in_flight`` at once and yields their outcomes as they finish."""

    tasks: SessionTasks
    task_options: Dict[str, Any]
    stages_ref: Any
    in_flight: int
    host: Optional[str] = None
    #: Whether stopping early cancels the tasks in flight; else closing the session stops them (see the module doc).
    cancel_at_close: bool = False
    flights: Dict[Handle, Flight] = field(default_factory=dict)

    def run(self, experiments: Iterable[Experiment]) -> Iterator[Outcome]:
        waiting = iter(experiments)
        try:
            while True:
                self._fill(waiting)
                if not self.flights:
                    return
                for handle in self._wait():
                    outcome = self._receive(self.flights[handle])
                    if outcome is not None:
                        del self.flights[handle]
                        yield outcome
                yield from self._enforce_deadlines()
        finally:
            if self.cancel_at_close:
                self._cancel_all()
            self.flights.clear()

    def _fill(self, waiting: Iterator[Experiment]) -> None:
        while len(self.flights) < self.in_flight:
            experiment = next(waiting, None)
            if experiment is None:
                return
            flight = self._submit(experiment)
            self.flights[flight.handle] = flight

    def _submit(self, experiment: Experiment) -> Flight:
        # Workers may run in another directory (or on another machine): give them an absolute out_path.
        shipped = replace(experiment, out_path=os.path.abspath(experiment.out_path))
        handle = self.tasks.submit(shipped, self.stages_ref, self.task_options)
        return Flight(experiment, handle, host=self.host)

    def _wait(self) -> List[Handle]:
        """The handles with something to read, waiting at most until the next deadline."""
        handles = list(self.flights)
        next_deadline = min(flight.deadline() for flight in self.flights.values())
        timeout = max(0.0, min(POLL_SECONDS, next_deadline - time.monotonic()))
        ready, rest = ray.wait(handles, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return ready

    def _receive(self, flight: Flight) -> Optional[Outcome]:
        """The flight's outcome, or None when what arrived was its start."""
        try:
            item = ray.get(next(flight.handle)) if flight.timed else ray.get(flight.handle)
        except (StopIteration, ray_errors.RayError) as error:
            if flight.cancelled is not None:
                return timed_out(flight)
            if isinstance(error, StopIteration):
                return crashed(flight, "the Ray task ended without reporting an outcome")
            return outcome_from_error(flight, error)
        if isinstance(item, tuple) and item[:1] == (STARTED,):
            flight.started, flight.host = time.monotonic(), item[1]
            return None
        return item

    def _enforce_deadlines(self) -> Iterator[Outcome]:
        now = time.monotonic()
        for handle, flight in list(self.flights.items()):
            if flight.deadline() > now:
                continue
            if flight.cancelled is None:
                flight.cancelled = now
                ray.cancel(handle, force=True)
            else:
                del self.flights[handle]
                yield timed_out(flight)

    def _cancel_all(self) -> None:
        """Force-cancel every task still in flight and give them a moment to end."""
        handles = list(self.flights)
        self.flights.clear()
        if not handles:
            return
        for handle in handles:
            try:
                ray.cancel(handle, force=True)
            except ray_errors.RayError:
                continue
        try:
            ray.wait(handles, num_returns=len(handles), timeout=CLOSE_WAIT_SECONDS)
        except ray_errors.RayError:
            pass


# --------------------------------------------------------------------------- outcomes seen from outside


def timed_out(flight: Flight) -> Outcome:
    timeout = flight.experiment.timeout
    message = f"stopped after the timeout of {timeout:g} s (its Ray task was force-cancelled, killing its worker)"
    return _failure(flight, TIMEOUT, message, "ExperimentTimeout", duration=timeout)


def crashed(flight: Flight, message: str, error_type: str = "WorkerCrashedError") -> Outcome:
    return _failure(flight, CRASHED, message, error_type)


def outcome_from_error(flight: Flight, error: ray_errors.RayError) -> Outcome:
    """What a Ray error about an experiment's task means for the experiment."""
    if isinstance(error, ray_errors.OutOfMemoryError):
        return crashed(flight, f"killed by Ray's memory monitor, out of memory: {_first_line(error)}",
                       "OutOfMemoryError")
    if isinstance(error, ray_errors.WorkerCrashedError):
        return crashed(flight, _worker_died_message(flight.experiment))
    if isinstance(error, (ray_errors.NodeDiedError, ray_errors.LocalRayletDiedError)):
        return crashed(flight, f"the Ray node running the experiment died: {_first_line(error)}",
                       type(error).__name__)
    if isinstance(error, ray_errors.RayTaskError):
        cause = error.cause if isinstance(getattr(error, "cause", None), BaseException) else error
        return _failure(flight, ERROR, _first_line(cause), type(cause).__name__, traceback_text=str(error))
    return _failure(flight, ERROR, _first_line(error), type(error).__name__)


def _worker_died_message(experiment: Experiment) -> str:
    """Ray reports neither exit code nor signal; a fatal signal may be named in the experiment's stderr.log."""
    stderr = _last_stderr_log(experiment)
    signal_number = _fatal_signal(stderr)
    if signal_number is not None:
        return f"the Ray worker process running the experiment died: {describe_exit(-signal_number)}; see {stderr}"
    return (
        "the Ray worker process running the experiment died: Ray does not report how (os._exit, a kill such "
        f"as SIGKILL or the kernel's out-of-memory killer, a crash in native code); see {stderr} and the "
        "worker logs of its Ray node"
    )


def _last_stderr_log(experiment: Experiment) -> Path:
    paths = replace(experiment, out_path=os.path.abspath(experiment.out_path)).paths
    for run_id in reversed(range(experiment.repetitions)):
        if paths.stderr(run_id).exists():
            return paths.stderr(run_id)
    return paths.stderr(0)


def _fatal_signal(stderr: Path) -> Optional[int]:
    """The signal named by Python's faulthandler ("Fatal Python error: Segmentation fault") at the log's end."""
    try:
        with open(stderr, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = re.findall(r"Fatal Python error: ([A-Za-z -]+)", tail)
    return _FATAL_SIGNALS.get(found[-1].strip()) if found else None


def _failure(flight: Flight, status: str, message: str, error_type: str, **details: Any) -> Outcome:
    duration = time.monotonic() - flight.started if flight.started is not None else 0.0
    outcome = Outcome.failure(
        flight.experiment.experiment_id, status, message, error_type=error_type, **{"duration": duration, **details}
    )
    outcome.host = flight.host or "unknown Ray node"
    return outcome


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]
