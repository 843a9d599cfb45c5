"""backend=slurm: what squeue says about the run's jobs, and the Outcome of a job Slurm ended without a result."""
from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

from ..experiment import CANCELLED, CRASHED, TIMEOUT, Experiment, Outcome
from .isolation import describe_exit, exit_code_of


@dataclass(frozen=True)
class JobInfo:
    """What squeue says about one job (array task)."""

    state: str
    reason: str
    exit_status: Optional[int]
    time_limit: str
    node: str


SQUEUE_FIELDS = ("JobArrayID", "State", "Reason", "exit_code", "TimeLimit", "NodeList")


def query_jobs(job_ids: Iterable[str]) -> Optional[Dict[str, JobInfo]]:
    """squeue's view of the given jobs and their array tasks (ended ones included, while Slurm keeps them).

    None when squeue did not answer (a busy controller): no job counts as lost for that.
    """
    command = ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(sorted(job_ids))}",
               f"--Format={','.join(f'{name}:|' for name in SQUEUE_FIELDS)}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return {} if "Invalid job id" in done.stderr else None  # the first: Slurm forgot all of them
    return dict(parse_squeue_line(line) for line in done.stdout.splitlines() if line.strip())


def parse_squeue_line(line: str) -> Tuple[str, JobInfo]:
    job_id, state, reason, exit_status, time_limit, node = (part.strip() for part in line.split("|")[:6])
    status = int(exit_status) if exit_status.isdigit() else None
    return job_id, JobInfo(state.split()[0] if state else "UNKNOWN", reason, status, time_limit, node)


def slurm_failure(experiment: Experiment, job_id: str, info: JobInfo) -> Outcome:
    """The Outcome of a job that Slurm ended without a result, with the state and reason Slurm gives."""
    said = f"job {job_id}: state {info.state}"
    if info.reason and info.reason != "None":  # squeue's word for no reason
        said += f", reason {info.reason}"
    exit_code = None
    if info.exit_status is not None:
        exit_code = exit_code_of(info.exit_status)
        said += f", {describe_job_exit(exit_code)}"
    if info.state in ("TIMEOUT", "DEADLINE"):
        status, error_type = TIMEOUT, "SlurmTimeLimit"
        message = f"stopped by Slurm at the job's time limit of {info.time_limit} ({said})"
        if experiment.timeout:
            message += f"; the experiment's timeout of {experiment.timeout:g} s had not stopped it"
    elif info.state == "CANCELLED":
        status, error_type, message = CANCELLED, "SlurmCancelled", f"cancelled in Slurm ({said})"
    else:
        status, error_type, message = CRASHED, "SlurmJobEnded", f"Slurm ended the job without a result ({said})"
    outcome = Outcome.failure(experiment.experiment_id, status, message, error_type=error_type, exit_code=exit_code)
    if info.node:
        outcome.host = info.node
    return outcome


def describe_job_exit(exit_code: int) -> str:
    """:func:`describe_exit`, naming the signal in a shell's exit code past 128 (a job's script is run by a shell)."""
    said = describe_exit(exit_code)
    if exit_code > 128:
        try:
            name = signal.Signals(exit_code - 128).name
        except ValueError:
            return said
        said += f" (128 + {name}: the job's process was killed by {name})"
    return said
