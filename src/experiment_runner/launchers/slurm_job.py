"""backend=slurm, inside the job: what submitit calls there, and the secrets the driver passes it.

submitit unpickles and calls :func:`run_in_job` in each array task. It loads
the stage functions with the driver's import paths, takes the experiment's
secrets out of the environment, and runs the experiment in a forked child
process that it watches (isolation.run_in_child): the child's exit code or
signal is a ``crashed`` outcome ("exit code 3", "killed by SIGSEGV"), and the
exact ``timeout`` (in seconds) is enforced by killing the child's process
group. Memory is Slurm's to limit (``--mem``). The driver's side of the secrets
(:func:`secrets_in_environment`) is here too, beside what reads them.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

from ..experiment import ERROR, Experiment, Outcome
from ..logs import redirect_file_descriptors
from ..metrics import watching_prune_marker
from .isolation import run_in_child


#: error_type of the Outcome a job returns when it cannot load the stage functions.
STAGE_LOAD_ERROR = "StageLoadError"

#: error_type of the Outcome a job returns when its experiment's secrets did not reach it.
MISSING_SECRETS = "MissingSecrets"


#: The environment variable that carries a job array's secrets from the driver to its jobs (sbatch's
#: --export=ALL): job pickles and batch scripts are files on a shared filesystem, an environment is not.
SECRETS_VARIABLE = "EXPERIMENT_RUNNER_SECRETS"


@contextlib.contextmanager
def secrets_in_environment(batch: Sequence[Experiment]) -> Iterator[None]:
    """The secrets of ``batch`` in this process's environment while sbatch copies it into the jobs.

    Each distinct set of secret values is written once: a sweep's experiments
    usually share them, and an environment variable is limited to 128 KiB.
    """
    values: List[Dict[str, Any]] = []
    index: Dict[str, int] = {}
    for experiment in batch:
        secrets = experiment.secret_values()
        if secrets:
            if secrets not in values:
                values.append(secrets)
            index[str(experiment.experiment_id)] = values.index(secrets)
    if not index:
        yield
        return
    previous = os.environ.get(SECRETS_VARIABLE)
    os.environ[SECRETS_VARIABLE] = json.dumps({"values": values, "index": index})
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SECRETS_VARIABLE, None)
        else:
            os.environ[SECRETS_VARIABLE] = previous


def secrets_from_environment(experiment: Experiment) -> Dict[str, Any]:
    """The secrets the driver passed to this job for ``experiment``; the variable is gone afterwards.

    A KeyError with a message when the experiment has secrets but the job did
    not receive them (sbatch's --export was narrowed).
    """
    text = os.environ.pop(SECRETS_VARIABLE, None)
    secret_keys = list(experiment.secret_values())
    if not secret_keys:
        return {}
    carried = json.loads(text) if text else {"values": [], "index": {}}
    position = carried["index"].get(str(experiment.experiment_id))
    if position is None:
        raise KeyError(
            f"the job did not receive the experiment's secrets ({', '.join(secret_keys)}): they travel in the "
            f"environment variable {SECRETS_VARIABLE}, so sbatch's --export must pass the environment (ALL)"
        )
    return carried["values"][position]


def run_in_job(experiment: Experiment, stages_file: str, sys_path: List[str]) -> Outcome:
    """The body of every job (submitit calls it in the job): run one experiment under watch.

    submitit has set its own handlers before calling it (SIGTERM and SIGCONT
    logged and ignored, its preemption signal checkpointing and requeueing).
    Here SIGTERM kills at once (Slurm's time limit and scancel then leave no
    result, and the driver records what Slurm says) and the preemption
    signal, which submitit asks Slurm to send before the time limit, is
    ignored, since nothing is requeued.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCONT, signal.SIG_DFL)
    signal.signal(preemption_signal(), signal.SIG_IGN)
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    try:
        experiment = experiment.with_secret_values(secrets_from_environment(experiment))
    except KeyError as error:
        return Outcome(experiment.experiment_id, ERROR, error_type=MISSING_SECRETS, message=str(error.args[0]))
    try:
        import cloudpickle

        stages = cloudpickle.loads(Path(stages_file).read_bytes())
    except BaseException as error:  # a stage module may raise anything, SystemExit included, on import
        return Outcome(experiment.experiment_id, ERROR, error_type=STAGE_LOAD_ERROR,
                       message=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    # Slurm's own messages may follow the experiment's output in its logs: the driver removes empty ones
    with watching_prune_marker(experiment.absolute_folder()):  # the driver's way to ask it to stop early
        return run_in_child(experiment, stages,
                            capture=functools.partial(redirect_file_descriptors, remove_empty=False))


def preemption_signal() -> signal.Signals:
    """The signal submitit asks Slurm to send before the time limit (``--signal``): SIGUSR2 unless configured.

    Read from submitit's public ``JobEnvironment.USR_SIG`` (the name without
    "SIG", set by the SUBMITIT_PREEMPT_SIGNAL variable); a name that is no
    signal here (submitit itself then fails before calling the job) or a
    submitit without that attribute falls back to SIGUSR2, submitit's default.
    """
    import submitit

    name = getattr(submitit.JobEnvironment, "USR_SIG", "USR2")
    return getattr(signal.Signals, f"SIG{name}", signal.SIGUSR2)
