"""backend=single: one experiment after another in the driver's own process.

The simplest backend and the one to debug with: breakpoints and prints work,
prints reach the terminal and the experiment's log files. A timeout is
enforced with a real-time interval timer (SIGALRM), which interrupts Python
code but not a C call that never returns to the interpreter; the process
backends enforce it by killing instead.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, Sequence

from ..errors import ExperimentTimeout, UsageError
from ..experiment import TIMEOUT, Experiment, Outcome, Stages, run_experiment
from .base import Launcher


class SingleLauncher(Launcher):
    name = "single"

    def check(self, experiments: Sequence[Experiment]) -> None:
        timed = any(experiment.timeout for experiment in experiments)
        if timed and threading.current_thread() is not threading.main_thread():
            raise UsageError(
                "timeout with backend=single needs the main thread (it uses SIGALRM); "
                "call run_experiments from the main thread or use backend=multiprocessing"
            )

    def launch(self, experiments: Sequence[Experiment], stages: Stages) -> Iterator[Outcome]:
        for experiment in experiments:
            yield run_with_time_limit(experiment, stages)


def run_with_time_limit(experiment: Experiment, stages: Stages) -> Outcome:
    """run_experiment, stopped by ExperimentTimeout after ``experiment.timeout`` seconds."""
    try:
        with time_limit(experiment.timeout):
            return run_experiment(experiment, stages)
    except ExperimentTimeout:
        return Outcome.failure(
            experiment.experiment_id,
            TIMEOUT,
            f"stopped after the timeout of {experiment.timeout:g} s",
            error_type="ExperimentTimeout",
            duration=experiment.timeout,
        )


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ExperimentTimeout in the main thread when ``seconds`` (> 0) have passed."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ExperimentTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
