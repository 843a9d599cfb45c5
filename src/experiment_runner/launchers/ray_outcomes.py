"""What happened to an experiment's Ray task, as the Outcome the driver records.

Ray reports an experiment's end as a value (the Outcome its task returned) or
as an error: the task raised, its worker died, Ray's memory monitor killed it,
its node died, the driver cancelled it after its timeout. This module turns
each into the same statuses and messages the other backends record.
"""
from __future__ import annotations

import math
import os
import re
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import ray.exceptions as ray_errors

from ..experiment import CRASHED, ERROR, TIMEOUT, Experiment, Outcome
from .isolation import describe_exit

__all__ = ["Flight", "timed_out", "crashed", "outcome_from_error", "first_line"]

#: How long a force-cancelled task may take to report back before it is given up.
CANCEL_GRACE_SECONDS = 30.0
#: faulthandler's names of the fatal signals it reports.
_FATAL_SIGNALS = {
    "Segmentation fault": signal.SIGSEGV,
    "Bus error": signal.SIGBUS,
    "Aborted": signal.SIGABRT,
    "Floating-point exception": signal.SIGFPE,
    "Floating point exception": signal.SIGFPE,
    "Illegal instruction": signal.SIGILL,
}


@dataclass
class Flight:
    """One experiment submitted to Ray and not yet reported: its task and what the driver knows of it."""

    experiment: Experiment
    #: The task's ObjectRef, or its ObjectRefGenerator for an experiment with a timeout.
    handle: Any
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


def timed_out(flight: Flight) -> Outcome:
    timeout = flight.experiment.timeout
    message = f"stopped after the timeout of {timeout:g} s (its Ray task was force-cancelled, killing its worker)"
    return _failure(flight, TIMEOUT, message, "ExperimentTimeout", duration=timeout)


def crashed(flight: Flight, message: str, error_type: str = "WorkerCrashedError") -> Outcome:
    return _failure(flight, CRASHED, message, error_type)


def outcome_from_error(flight: Flight, error: ray_errors.RayError) -> Outcome:
    """What a Ray error about an experiment's task means for the experiment."""
    if isinstance(error, ray_errors.OutOfMemoryError):
        return crashed(flight, f"killed by Ray's memory monitor, out of memory: {first_line(error)}",
                       "OutOfMemoryError")
    if isinstance(error, ray_errors.WorkerCrashedError):
        return crashed(flight, _worker_died_message(flight.experiment))
    if isinstance(error, (ray_errors.NodeDiedError, ray_errors.LocalRayletDiedError)):
        return crashed(flight, f"the Ray node running the experiment died: {first_line(error)}",
                       type(error).__name__)
    if isinstance(error, ray_errors.RayTaskError):
        cause = error.cause if isinstance(getattr(error, "cause", None), BaseException) else error
        return _failure(flight, ERROR, first_line(cause), type(cause).__name__, traceback_text=str(error))
    return _failure(flight, ERROR, first_line(error), type(error).__name__)


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


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]
