"""backend=slurm: experiments as Slurm job arrays, submitted with submitit.

How it works. ``launch()`` sends the experiments as job arrays of at most
``slurm_array_size`` tasks (one sbatch per array, one array task per
experiment, at most ``slurm_array_parallelism`` tasks of an array running at
once). submitit pickles each task's call, writes the batch script and, in the
job, unpickles and runs :func:`run_in_job`, then pickles its return value. The
driver's generator watches the round's folder for those result files and asks
``squeue`` every ``slurm_poll_interval`` seconds for jobs that Slurm ended
without one (time limit, out of memory, node failure, scancel); each becomes
an Outcome with the state and reason Slurm gives. (submitit's own job states
come from sacct, which needs Slurm's accounting database; squeue works on
every cluster and keeps ended jobs for MinJobAge, 300 s by default.)

In the job. :func:`run_in_job` loads the stage functions, then runs the
experiment in a forked child process and watches it: the child's exit code or
signal is a ``crashed`` outcome ("exit code 3", "killed by SIGSEGV"), and the
exact ``timeout`` (in seconds) is enforced there by killing the child. Slurm's
time limit (in minutes) is only the safety net: it is ``ceil(timeout / 60)``
plus ``TIME_LIMIT_MARGIN`` minutes unless ``slurm_time_limit`` is set.

Logs. Slurm writes each task's stdout and stderr straight into the
experiment's ``stdout.log`` and ``stderr.log``: the batch script's
``--output`` names ``<round>/batch-<k>/%a/stdout.log`` and ``<round>/batch-<k>/<a>``
is a symlink to the experiment's folder, made before the array is submitted.
What the stages print goes there too (repetition by repetition with
repetitions > 1), and so do Slurm's own messages ("CANCELLED ... DUE TO TIME
LIMIT").

Files. A round's pickles and batch scripts live in ``<out_path>/.slurm/<job name>``
(the out_path has to be on a filesystem the compute nodes share anyway); the
folder is removed when the round ends, so the tree keeps its documented shape.
A folder left there by a driver killed outright names jobs that may still
run: the next round of that out_path (a resume) cancels them first.

Imports in the job. The job is a fresh interpreter (the driver's
``sys.executable``) started by slurmd in the driver's working directory and
environment. The stages travel pickled with cloudpickle (functions of
``__main__`` by value, others by reference) and the job puts the driver's
``sys.path`` in front of its own before loading them, so a stage module that
the driver imports from its script's folder, PYTHONPATH or pytest's
``pythonpath`` imports in the job too, as long as the path is on the shared
filesystem.

Stopping. Every array of a round carries the round's unique job name; closing
the generator (Ctrl-C, SIGTERM, an error) runs ``scancel --name=<it>``, which
also catches an array whose sbatch was interrupted before its id was known.
"""
from __future__ import annotations

import contextlib
import faulthandler
import json
import math
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import ExperimentRunnerError, MissingDependencyError, UsageError, WorkerStartError
from ..experiment import CANCELLED, CRASHED, ERROR, TIMEOUT, Experiment, Outcome, Stages, run_experiment
from ..logs import redirect_file_descriptors
from ..settings import RunSettings
from . import options as declared
from .base import Launcher, pickle_stages
from .isolation import describe_exit

#: Slurm's client commands the backend runs (submitit insists on srun being there too).
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "srun")

#: Seconds between two looks for result files.
RESULT_POLL = 0.2

#: Seconds a job that ended in a state other than FINAL_STATES may take to show its result file (shared
#: filesystems lag) or to go back to PENDING (Slurm requeues jobs after a node failure or a preemption).
RESULT_GRACE = 15.0

#: Seconds a job may be missing from squeue before it counts as lost.
LOST_GRACE = 30.0

#: Seconds the child that ran an experiment may take to exit after sending its outcome.
EXIT_GRACE = 5.0

#: Slurm job states of a job that has ended.
ENDED_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
     "PREEMPTED"}
)

#: Ended states in which the job can have left no result and is not requeued: final as soon as seen.
FINAL_STATES = frozenset({"CANCELLED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY"})

INSTALL_HINT = (
    "run on a login node of your cluster, load Slurm there (e.g. 'module load slurm') or add the folder "
    "that holds sbatch to PATH (export PATH=/path/to/slurm/bin:$PATH); to install Slurm's client commands: "
    "apt-get install slurm-client (Debian, Ubuntu), with SLURM_CONF pointing at your cluster's slurm.conf"
)


@dataclass(frozen=True)
class SlurmOptions:
    """The ``slurm_*`` settings as the backend uses them."""

    partition: Optional[str] = None
    time_limit: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    additional_parameters: Dict[str, Any] = field(default_factory=dict)
    setup: Tuple[str, ...] = ()
    array_size: int = 1000
    array_parallelism: int = 256
    poll_interval: float = 5.0
    job_name: str = "experiment-runner"

    @classmethod
    def from_settings(cls, settings: RunSettings) -> "SlurmOptions":
        """The slurm_* settings, typed and checked by their declaration (launchers/options.py)."""
        given = declared.check_options(declared.SlurmOptions, settings)
        defaults = cls()
        return cls(
            partition=given.slurm_partition,
            time_limit=None if given.slurm_time_limit is None else str(given.slurm_time_limit),
            account=given.slurm_account,
            qos=given.slurm_qos,
            additional_parameters=dict(given.slurm_additional_parameters or {}),
            setup=tuple(given.slurm_setup or ()),
            array_size=given.slurm_array_size or defaults.array_size,
            array_parallelism=given.slurm_array_parallelism or defaults.array_parallelism,
            poll_interval=float(given.slurm_poll_interval or defaults.poll_interval),
            job_name=given.slurm_job_name or defaults.job_name,
        )


def sbatch_parameters(settings: RunSettings, options: SlurmOptions) -> Dict[str, Any]:
    """submitit's SlurmExecutor parameters for every job of the run (log paths are set per array)."""
    parameters: Dict[str, Any] = {
        "time": declared.job_time_limit(options.time_limit, settings.timeout),
        "cpus_per_task": max(1, math.ceil(settings.num_cpus)),
        "array_parallelism": options.array_parallelism,
        "use_srun": False,
        # submitit logs to stdout in the job: only its warnings, on stderr, belong in the experiment's logs
        "setup": ["export SUBMITIT_LOG_LEVEL=NOCONFIG", *options.setup],
    }
    optional = {
        "partition": options.partition,
        "account": options.account,
        "qos": options.qos,
        "gpus_per_node": math.ceil(settings.num_gpus) if settings.num_gpus else None,
        "mem": f"{math.ceil(settings.max_memory / 2**20)}M" if settings.max_memory else None,
    }
    parameters.update({k: v for k, v in optional.items() if v is not None})
    return parameters


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError as error:
        raise MissingDependencyError(
            f"backend=slurm needs submitit ({error}): pip install 'experiment-runner[slurm]'"
        ) from error
    return submitit


def require_slurm_commands() -> None:
    missing = [command for command in SLURM_COMMANDS if shutil.which(command) is None]
    if missing:
        raise UsageError(
            f"backend=slurm needs Slurm's commands {', '.join(SLURM_COMMANDS)}, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH: {INSTALL_HINT}"
        )


class SlurmLauncher(Launcher):
    name = "slurm"
    Options = declared.SlurmOptions

    def __init__(self, settings: RunSettings):
        super().__init__(settings)
        self.options = SlurmOptions.from_settings(settings)
        self.parameters = sbatch_parameters(settings, self.options)

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Slurm's commands, submitit, stages that pickle, and ``sbatch --test-only`` of the first array."""
        require_slurm_commands()
        import_submitit()
        pickle_stages(self.settings.stages, self.name)
        if experiments:
            self._test_submission(min(len(experiments), self.options.array_size))

    def _test_submission(self, array_size: int) -> None:
        """Let Slurm judge the partition, account, qos, resources and array size before anything runs."""
        executor = _executor(Path(self.settings.out_path) / ".slurm" / "check", self.parameters,
                             self.options.job_name)
        executor.update_parameters(additional_parameters=dict(self.options.additional_parameters))
        if array_size > 1:
            executor.parameters["map_count"] = array_size  # as submitit does for an array
        script = executor._make_submission_file_text("true", "check")
        try:
            done = subprocess.run(["sbatch", "--test-only"], input=script, capture_output=True, text=True,
                                  timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise UsageError(f"backend=slurm could not run sbatch --test-only: {error}") from error
        if done.returncode != 0:
            answer = " ".join((done.stderr or done.stdout).split())
            raise UsageError(
                f"Slurm refuses the run's jobs (sbatch --test-only: {answer}); check slurm_partition, "
                "slurm_account, slurm_qos, slurm_time_limit, slurm_array_size, slurm_additional_parameters "
                "and num_cpus, num_gpus, max_memory"
            )

    def launch(self, experiments: Sequence[Experiment], stages: Stages) -> Iterator[Outcome]:
        if not experiments:
            return
        slurm_round = SlurmRound(self.settings, self.options, self.parameters)
        try:
            slurm_round.submit(experiments, stages)
            yield from slurm_round.outcomes()
        finally:
            slurm_round.close()


def _executor(folder: Path, parameters: Dict[str, Any], job_name: str) -> Any:
    submitit = import_submitit()
    executor = submitit.SlurmExecutor(folder=folder)
    executor.update_parameters(job_name=job_name, **parameters)
    return executor


@dataclass(frozen=True)
class JobInfo:
    """What squeue says about one job (array task)."""

    state: str
    reason: str
    exit_status: Optional[int]
    time_limit: str
    node: str


class SlurmRound:
    """One launch(): its job arrays, the jobs not finished yet and its folder of job files."""

    def __init__(self, settings: RunSettings, options: SlurmOptions, parameters: Dict[str, Any]):
        self.settings = settings
        self.options = options
        self.job_name = f"{options.job_name}-{uuid.uuid4().hex[:10]}"
        self.folder = (Path(settings.out_path) / ".slurm" / self.job_name).absolute()
        self.executor = _executor(self.folder, parameters, self.job_name)
        self.pending: Dict[str, Tuple[Any, Experiment]] = {}
        self.result_files: Dict[str, str] = {}  # result file name -> job id, for the jobs pending
        self.submitting = False
        self._first_seen: Dict[str, float] = {}

    def submit(self, experiments: Sequence[Experiment], stages: Stages) -> None:
        """One job array per ``slurm_array_size`` experiments."""
        self.submitting = True
        cancel_stale_rounds(self.folder.parent)
        self.folder.mkdir(parents=True, exist_ok=True)
        stages_file = self.folder / "stages.pkl"
        stages_file.write_bytes(pickle_stages(stages, "slurm"))
        sys_path = [os.path.abspath(p) for p in sys.path if os.path.exists(p or ".")]
        size = self.options.array_size
        for index in range(0, len(experiments), size):
            self._submit_array(index // size, list(experiments[index:index + size]), str(stages_file), sys_path)
        self.submitting = False

    def _submit_array(self, index: int, batch: List[Experiment], stages_file: str, sys_path: List[str]) -> None:
        links = self.folder / f"batch-{index}"
        links.mkdir()
        for task, experiment in enumerate(batch):
            root = experiment.paths.root.absolute()
            root.mkdir(parents=True, exist_ok=True)
            (links / str(task)).symlink_to(root, target_is_directory=True)
        task_folder = links / ("%a" if len(batch) > 1 else "0")  # submitit sends a single experiment as a plain job
        self.executor.update_parameters(additional_parameters={
            **self.options.additional_parameters,
            "output": str(task_folder / "stdout.log"),
            "error": str(task_folder / "stderr.log"),
        })
        n = len(batch)
        try:
            with secrets_in_environment(batch):
                jobs = self.executor.map_array(run_in_job, [e.without_secret_values() for e in batch],
                                               [stages_file] * n, [sys_path] * n)
        except Exception as error:  # submitit raises its own errors with sbatch's message in them
            first, last = batch[0].experiment_id, batch[-1].experiment_id
            raise ExperimentRunnerError(
                f"sbatch did not take the job array of experiments {first}..{last}: {' '.join(str(error).split())}"
            ) from error
        for job, experiment in zip(jobs, batch):
            self.pending[job.job_id] = (job, experiment)
            self.result_files[job.paths.result_pickle.name] = job.job_id

    def outcomes(self) -> Iterator[Outcome]:
        """Yield each experiment's Outcome as its job leaves a result or Slurm ends it without one."""
        next_query = time.monotonic() + self.options.poll_interval
        while self.pending:
            slurm_says: Optional[Dict[str, JobInfo]] = None
            if time.monotonic() >= next_query:
                slurm_says = query_jobs({job_id.split("_")[0] for job_id in self.pending})
                next_query = time.monotonic() + self.options.poll_interval
            # listed after squeue answered: a job it saw ended has its result file here by now, if it left one
            for name in self.result_files.keys() & set(os.listdir(self.folder)):
                yield self._read_result(self.result_files.pop(name))
            if slurm_says is not None:
                yield from self._ended_without_result(slurm_says)
            if self.pending:
                time.sleep(RESULT_POLL)

    def _read_result(self, job_id: str) -> Outcome:
        """The Outcome the job pickled; submitit pickles ``("error", traceback)`` if the job failed around it."""
        job, experiment = self.pending.pop(job_id)
        kind, value = pickle.loads(job.paths.result_pickle.read_bytes())  # written whole (renamed into place)
        for path in (job.paths.result_pickle, job.paths.submitted_pickle):
            path.unlink(missing_ok=True)
        if kind == "success":
            outcome: Outcome = value
        else:  # e.g. the job's Python cannot import experiment_runner to unpickle its task
            last_line = value.strip().splitlines()[-1] if value.strip() else "no traceback"
            outcome = Outcome.failure(
                experiment.experiment_id, CRASHED, f"the Slurm job failed before running the experiment: {last_line}",
                error_type="SlurmJobFailed", traceback_text=f"Slurm job {job_id}:\n{value}",
            )
        if outcome.error_type == MISSING_SECRETS:
            raise WorkerStartError(f"Slurm job {job_id} on {outcome.host}: {outcome.message}")
        if outcome.error_type == STAGE_LOAD_ERROR:
            raise WorkerStartError(
                f"Slurm job {job_id} on {outcome.host} cannot load the stage functions: {outcome.message}; "
                "make their modules importable on the compute nodes (installed in the job's Python, on "
                "PYTHONPATH or in a folder of the driver's sys.path on the shared filesystem)"
            )
        return outcome

    def _ended_without_result(self, slurm_says: Dict[str, JobInfo]) -> Iterator[Outcome]:
        for job_id in list(self.pending):
            outcome = self._judge(job_id, slurm_says.get(job_id))
            if outcome is not None:
                yield outcome

    def _judge(self, job_id: str, info: Optional[JobInfo]) -> Optional[Outcome]:
        """The Outcome of a job that Slurm ended without a result, once it is sure; else None."""
        if info is not None and info.state not in ENDED_STATES:
            self._first_seen.pop(job_id, None)
            return None
        waiting = time.monotonic() - self._first_seen.setdefault(job_id, time.monotonic())
        if info is None and waiting < LOST_GRACE:
            return None
        if info is not None and info.state not in FINAL_STATES and waiting < RESULT_GRACE:
            return None
        job, experiment = self.pending.pop(job_id)
        del self.result_files[job.paths.result_pickle.name]
        if info is None:
            return Outcome.failure(experiment.experiment_id, CRASHED,
                                   f"Slurm no longer lists job {job_id} and it left no result",
                                   error_type="SlurmJobLost")
        return slurm_failure(experiment, job_id, info)

    def close(self) -> None:
        """Cancel the round's jobs still queued or running, then remove its folder."""
        try:
            if self.pending or self.submitting:
                subprocess.run(["scancel", f"--name={self.job_name}"], capture_output=True, timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.folder.parent.rmdir()  # .slurm, unless another round still uses it


def cancel_stale_rounds(folder: Path) -> None:
    """Cancel the jobs of rounds whose driver died (kill -9) before it could, and remove their folders.

    A round's folder is named after its jobs, and a live round removes its
    folder when it ends, so every folder left in ``<out_path>/.slurm`` is stale:
    its jobs must not go on writing into experiments that run again now.
    """
    if not folder.is_dir():
        return
    for stale in folder.iterdir():
        subprocess.run(["scancel", f"--name={stale.name}"], capture_output=True, timeout=60)
        shutil.rmtree(stale, ignore_errors=True)


SQUEUE_FIELDS = ("JobArrayID", "State", "Reason", "exit_code", "TimeLimit", "NodeList")


def query_jobs(job_ids: Sequence[str]) -> Optional[Dict[str, JobInfo]]:
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
    said = f"job {job_id}: state {info.state}, reason {info.reason}"
    exit_code = None
    if info.exit_status is not None:
        exit_code = exit_code_of(info.exit_status)
        said += f", {describe_exit(exit_code)}"
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


def exit_code_of(wait_status: int) -> int:
    """A wait status (as squeue reports it) as an exit code, negative for a signal like Popen's."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


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

    SIGTERM kills at once (Slurm's time limit and scancel then leave no
    result, and the driver records what Slurm says); the early warning signal
    submitit asks Slurm for is ignored, since nothing is requeued.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCONT, signal.SIG_DFL)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
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
    return supervise(experiment, stages)


def supervise(experiment: Experiment, stages: Stages) -> Outcome:
    """Run the experiment in a forked child; its death or an expired timeout becomes the Outcome."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_child, args=(experiment, stages, sender), daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    try:
        if not receiver.poll(experiment.timeout or None):
            child.kill()
            return Outcome.failure(
                experiment.experiment_id, TIMEOUT,
                f"stopped after the timeout of {experiment.timeout:g} s (its process was killed)",
                error_type="ExperimentTimeout", duration=time.monotonic() - started,
            )
        return receiver.recv()
    except EOFError:
        child.join()
        return Outcome.failure(
            experiment.experiment_id, CRASHED,
            f"the process running the experiment died: {describe_exit(child.exitcode)}",
            error_type="ExperimentCrashed", exit_code=child.exitcode, duration=time.monotonic() - started,
        )
    finally:
        child.join(EXIT_GRACE)
        if child.is_alive():
            child.kill()
            child.join()


def _run_child(experiment: Experiment, stages: Stages, sender: Connection) -> None:
    for signum in (signal.SIGTERM, signal.SIGCONT, signal.SIGUSR2):  # the user's code gets the defaults
        signal.signal(signum, signal.SIG_DFL)
    faulthandler.enable()  # a segfault's Python traceback lands in the experiment's stderr.log
    sender.send(run_experiment(experiment, stages, capture=redirect_file_descriptors, isolated=True))
