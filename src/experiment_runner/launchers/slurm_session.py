"""backend=slurm, in the driver: one run's job arrays, sent with submitit and watched with squeue.

Opening. :meth:`SlurmSession.open` finds Slurm's commands and submitit,
pickles the stages and lets ``sbatch --test-only`` judge the first array as
it will be submitted (partition, account, qos, resources, array size): a
UsageError with Slurm's own words, before the run writes anything.

Submitting. Whatever waits is sent as job arrays of at most
``slurm_array_size`` tasks (one sbatch per array, one array task per
experiment, at most ``slurm_array_parallelism`` tasks of an array running at
once). An experiment submitted later (a retry) goes out in the next pass of
:meth:`SlurmSession.events`, in a small array of its own, while the others
still run. submitit pickles each task's call and writes the batch script; in
the job it runs :func:`slurm_job.run_in_job <.slurm_job.run_in_job>` and
pickles its return value.

Watching. The session looks for those result files and asks ``squeue`` every
``slurm_poll_interval`` seconds for jobs that Slurm ended without one (time
limit, out of memory, node failure, scancel); each becomes an Outcome with the
state and reason Slurm gives. (submitit's own job states come from sacct,
which needs Slurm's accounting database; squeue works on every cluster and
keeps ended jobs for MinJobAge, 300 s by default.)

Logs. Slurm writes each task's stdout and stderr straight into the
experiment's ``stdout.log`` and ``stderr.log``: the batch script's
``--output`` names ``<folder>/batch-<k>/%a/stdout.log`` and
``<folder>/batch-<k>/<a>`` is a symlink to the experiment's folder, made
before the array is submitted. Slurm's own messages ("CANCELLED ... DUE TO
TIME LIMIT") land there too. Slurm creates both files; those still empty
when the job has ended are removed, so an experiment that printed nothing
has no logs, as on every backend.

Files. The run's pickles and batch scripts live in ``<out_path>/.slurm/<job name>``
(the out_path has to be on a filesystem the compute nodes share anyway),
made at the first submission and removed when the session closes, so the
tree keeps its documented shape. A folder left there by a driver killed
outright names jobs that may still run: the first submission of that
out_path's next run (a resume) cancels them.

Stopping. Every array of the run carries the run's unique job name; closing
the session (the run ended, Ctrl-C, SIGTERM, an error) runs
``scancel --name=<it>``, which also catches an array whose sbatch was
interrupted before its id was known.

submitit's internals. Only its public API is used: ``SlurmExecutor``,
``update_parameters``, ``map_array``, and of each job ``job_id``, ``paths``
(``result_pickle``, ``submitted_pickle``), ``result()`` and ``exception()``;
in the job, ``JobEnvironment.USR_SIG`` (slurm_job.py). What is read beyond
that, each guarded where it is read: the traceback framed in the message of
``job.exception()`` (:func:`job_failure_text`, falling back to the whole
message), and the ``SUBMITIT_LOG_LEVEL`` variable the jobs set
(slurm_options.py: ignored, it only adds submitit's log lines to stdout.log).

Messages and pruning. A job has no channel back to the driver while it runs:
the session follows the metrics.jsonl of its experiments in flight and
yields their metrics messages, and :meth:`SlurmSession.prune` writes a marker
file into the experiment's folder that its ``should_prune()`` looks for (see
:mod:`.metrics_follower`), both on the filesystem the nodes share.
``sbatch --test-only`` gets the run's options on its command line
(:func:`sbatch_flags`) rather than from submitit's private script writer.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import ExperimentRunnerError, MissingDependencyError, UsageError, WorkerStartError
from ..experiment import CRASHED, STDERR_LOG, STDOUT_LOG, Experiment, Outcome, Stages
from ..logs import remove_empty_logs
from ..settings import RunSettings
from .base import Event, Session, pickle_stages
from .metrics_follower import MetricsFollower
from .slurm_capacity import slots_free
from .slurm_job import MISSING_SECRETS, STAGE_LOAD_ERROR, run_in_job, secrets_in_environment
from .slurm_options import SlurmOptions
from .slurm_squeue import JobInfo, query_jobs, slurm_failure

#: Slurm's client commands the backend runs (submitit insists on srun being there too).
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "srun")

#: Seconds between two looks for result files.
RESULT_POLL = 0.2

#: Seconds a job that ended in a state other than FINAL_STATES may take to show its result file (shared
#: filesystems lag) or to go back to PENDING (Slurm requeues jobs after a node failure or a preemption).
RESULT_GRACE = 15.0

#: Seconds a job may be missing from squeue before it counts as lost.
LOST_GRACE = 30.0

#: Free bytes under which the disk of the run's job folder counts as full when a job failed without a result.
NEARLY_FULL = 64 * 1024

#: Slurm job states of a job that has ended.
ENDED_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
     "PREEMPTED"}
)

#: Ended states in which the job can have left no result and is not requeued: final as soon as seen.
FINAL_STATES = frozenset({"CANCELLED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY"})

#: submitit parameters that are not sbatch options of the same name.
SUBMITIT_ONLY_PARAMETERS = frozenset({"array_parallelism", "use_srun", "setup"})

#: The rule of dashes submitit puts above and below a failed job's traceback in ``job.exception()``.
TRACE_RULE = "-" * 22

INSTALL_HINT = (
    "run on a login node of your cluster, load Slurm there (e.g. 'module load slurm') or add the folder "
    "that holds sbatch to PATH (export PATH=/path/to/slurm/bin:$PATH); to install Slurm's client commands: "
    "apt-get install slurm-client (Debian, Ubuntu), with SLURM_CONF pointing at your cluster's slurm.conf"
)


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


class SlurmSession(Session):
    """One run on Slurm: its job folder, its submitit executor and its jobs not finished yet."""

    window = None  # each job array is made of the experiments submitted: all of them at once

    def __init__(self, settings: RunSettings, options: SlurmOptions, parameters: Dict[str, Any], stages: Stages,
                 first_array_size: int):
        super().__init__(stages)
        self.options = options
        self.parameters = parameters
        self.first_array_size = first_array_size
        self.job_name = f"{options.job_name}-{uuid.uuid4().hex[:10]}"
        self.folder = (Path(settings.out_path) / ".slurm" / self.job_name).absolute()
        self.executor: Any = None
        #: job id -> (its submitit job, its experiment), for the jobs without an outcome yet.
        self.pending: Dict[str, Tuple[Any, Experiment]] = {}
        #: result file name -> job id, for the jobs pending.
        self.result_files: Dict[str, str] = {}
        self.submitting = False
        self._arrays = 0
        self._stages_file: Optional[Path] = None
        self._stages_bytes = b""
        self._sys_path: List[str] = []
        self._first_seen: Dict[str, float] = {}
        self._follower = MetricsFollower()
        self._slots: Optional[int] = None

    @property
    def slots(self) -> Optional[int]:
        """The run's jobs that can start at once when the session opened (see :mod:`.slurm_capacity`)."""
        return self._slots

    def prune(self, experiment_id: int) -> None:
        """Write the experiment's marker file, if it is in flight (see the module doc)."""
        self._follower.prune(experiment_id)

    def open(self) -> None:
        """Slurm's commands, submitit, stages that pickle, and Slurm's consent to the first array."""
        require_slurm_commands()
        submitit = import_submitit()
        self._stages_bytes = pickle_stages(self.stages, "slurm")
        self._sys_path = [os.path.abspath(p) for p in sys.path if os.path.exists(p or ".")]
        if self.first_array_size:
            test_submission(self.parameters, self.options, self.job_name, self.first_array_size)
        self._slots = slots_free(self.options.partition, self.parameters["cpus_per_task"],
                                 self.options.array_parallelism)
        self.executor = submitit.SlurmExecutor(folder=self.folder)
        self.executor.update_parameters(job_name=self.job_name, **self.parameters)

    def events(self) -> Iterator[Event]:
        """Submit what waits, then yield each Outcome as its job leaves a result or Slurm ends it without one."""
        next_query = time.monotonic() + self.options.poll_interval
        while self.waiting or self.pending:
            self._submit_waiting()
            slurm_says: Optional[Dict[str, JobInfo]] = None
            if time.monotonic() >= next_query:
                slurm_says = query_jobs({job_id.split("_")[0] for job_id in self.pending})
                next_query = time.monotonic() + self.options.poll_interval
            # listed after squeue answered: a job it saw ended has its result file here by now, if it left one
            for name in self.result_files.keys() & set(os.listdir(self.folder)):
                yield self._read_result(self.result_files.pop(name))
            if slurm_says is not None:
                yield from self._ended_without_result(slurm_says)
            yield from self._follower.messages()
            if self.pending and not self.waiting:
                time.sleep(RESULT_POLL)

    def _submit_waiting(self) -> None:
        """Send every waiting experiment, as arrays of at most ``slurm_array_size``."""
        if not self.waiting:
            return
        self.submitting = True
        if self._stages_file is None:
            self._stages_file = self._make_folder()
        size = self.options.array_size
        while self.waiting:
            batch = [self.waiting.popleft() for _ in range(min(size, len(self.waiting)))]
            self._submit_array(batch)
        self.submitting = False

    def _make_folder(self) -> Path:
        """The run's job folder with its stages file, once any job folder a dead driver left is cancelled."""
        cancel_stale_runs(self.folder.parent)
        self.folder.mkdir(parents=True, exist_ok=True)
        stages_file = self.folder / "stages.pkl"
        stages_file.write_bytes(self._stages_bytes)
        return stages_file

    def _submit_array(self, batch: List[Experiment]) -> None:
        links = self.folder / f"batch-{self._arrays}"
        self._arrays += 1
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
                                               [str(self._stages_file)] * n, [self._sys_path] * n)
        except Exception as error:  # submitit raises its own errors with sbatch's message in them
            first, last = batch[0].experiment_id, batch[-1].experiment_id
            raise ExperimentRunnerError(
                f"sbatch did not take the job array of experiments {first}..{last}: {' '.join(str(error).split())}"
            ) from error
        for job, experiment in zip(jobs, batch):
            self.pending[job.job_id] = (job, experiment)
            self._follower.follow(experiment)
            self.result_files[job.paths.result_pickle.name] = job.job_id

    def _read_result(self, job_id: str) -> Outcome:
        """The Outcome the job returned, or a crash if submitit reports that the job failed around it."""
        job, experiment = self.pending.pop(job_id)
        self._follower.forget(experiment.experiment_id)
        error = job.exception()  # None once the job returned: its result file is there
        if error is None:
            outcome: Outcome = job.result()
        else:  # e.g. the job's Python cannot import experiment_runner to unpickle its task
            last_line, trace = job_failure_text(error)
            outcome = Outcome.failure(
                experiment.experiment_id, CRASHED, f"the Slurm job failed before running the experiment: {last_line}",
                error_type="SlurmJobFailed", traceback_text=f"Slurm job {job_id}:\n{trace}",
            )
        for path in (job.paths.result_pickle, job.paths.submitted_pickle):
            path.unlink(missing_ok=True)
        _remove_empty_logs(experiment)
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
        self._follower.forget(experiment.experiment_id)
        del self.result_files[job.paths.result_pickle.name]
        _remove_empty_logs(experiment)
        if info is None:
            return Outcome.failure(experiment.experiment_id, CRASHED,
                                   f"Slurm no longer lists job {job_id} and it left no result",
                                   error_type="SlurmJobLost")
        outcome = slurm_failure(experiment, job_id, info)
        if info.state == "FAILED":
            outcome.disk_full = self._full_disk()
        return outcome

    def _full_disk(self) -> Optional[str]:
        """What to say when the disk of the job folder is (all but) full, else None.

        A job whose result pickle cannot be written there fails without a
        result (exit code 1): on a full disk that is no failure of its
        experiment, and the run stops as it does for any full disk. The
        threshold, not zero, allows for the result files the driver removed
        meanwhile.
        """
        try:
            stats = os.statvfs(self.folder)
        except OSError:
            return None
        if stats.f_bavail * stats.f_frsize >= NEARLY_FULL:
            return None
        return f"no space left on device for the job results in '{self.folder}'"

    def close(self) -> None:
        """Cancel the run's jobs still queued or running, then remove its job folder."""
        self._follower.close()
        if self._stages_file is None:
            return  # nothing was submitted, nothing written
        try:
            if self.pending or self.submitting:
                subprocess.run(["scancel", f"--name={self.job_name}"], capture_output=True, timeout=60)
        finally:
            _remove_folder(self.folder)
            with contextlib.suppress(OSError):
                self.folder.parent.rmdir()  # .slurm, unless another run of this out_path still uses it
            self._stages_file = None


#: Seconds a cancelled job may go on writing into the run's job folder (its log, its result) before it is gone.
CANCELLED_JOB_GRACE = 10.0


def _remove_folder(folder: Path) -> None:
    """Remove the run's job folder, again while a job that scancel is still stopping writes a file into it."""
    deadline = time.monotonic() + CANCELLED_JOB_GRACE
    shutil.rmtree(folder, ignore_errors=True)
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def _remove_empty_logs(experiment: Experiment) -> None:
    """The logs Slurm and the job opened for an experiment that printed nothing there go once its job ended."""
    paths = experiment.paths
    folders = {paths.root, *(paths.run_dir(run_id) for run_id in range(experiment.repetitions))}
    remove_empty_logs(*(folder / name for folder in folders for name in (STDOUT_LOG, STDERR_LOG)))


def job_failure_text(error: Exception) -> Tuple[str, str]:
    """(the last line of the traceback, the traceback) of a job that raised around the experiment.

    submitit's public ``job.exception()`` returns the job's traceback inside
    an explanatory message, framed by rules of dashes. Only that framing is
    read; if a submitit version frames it otherwise, the whole message stands
    for the traceback and its first line for the last line.
    """
    text = str(error)
    parts = text.split(TRACE_RULE)
    framed = len(parts) >= 3 and parts[1].strip()
    trace = parts[1].strip() if framed else text.strip()
    lines = trace.splitlines()
    if not lines:
        return "no traceback", text
    return (lines[-1] if framed else lines[0]), trace


def test_submission(parameters: Dict[str, Any], options: SlurmOptions, job_name: str, array_size: int) -> None:
    """Let Slurm judge the partition, account, qos, resources and array size before anything runs.

    The options are given to ``sbatch --test-only`` on its command line, as
    submitit would write them into the batch script (``key_name`` as
    ``--key-name``, ``True`` as a bare flag, ``None`` left out).
    """
    command = ["sbatch", "--test-only", *sbatch_flags(parameters, options, job_name, array_size), "--wrap=true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"backend=slurm could not run sbatch --test-only: {error}") from error
    if done.returncode != 0:
        answer = " ".join((done.stderr or done.stdout).split())
        raise UsageError(
            f"Slurm refuses the run's jobs (sbatch --test-only: {answer}); check slurm_partition, "
            "slurm_account, slurm_qos, slurm_time_limit, slurm_array_size, slurm_additional_parameters "
            "and num_cpus, num_gpus, max_memory"
        )


def sbatch_flags(parameters: Dict[str, Any], options: SlurmOptions, job_name: str, array_size: int) -> List[str]:
    """The sbatch options of an array of ``array_size`` of the run's jobs, as command-line flags."""
    flags: Dict[str, Any] = {
        k: v for k, v in parameters.items() if k not in SUBMITIT_ONLY_PARAMETERS and v is not None}
    flags["job_name"] = job_name
    if array_size > 1:
        flags["array"] = f"0-{array_size - 1}%{min(array_size, options.array_parallelism)}"
    flags.update(options.additional_parameters)
    return [f"--{key.replace('_', '-')}" + ("" if value is True else f"={value}") for key, value in flags.items()]


def cancel_stale_runs(folder: Path) -> None:
    """Cancel the jobs of runs whose driver died (kill -9) before it could, and remove their folders.

    A run's job folder is named after its jobs, and a live run removes its
    folder when its session closes, so every folder in ``<out_path>/.slurm``
    that is not this run's is stale: its jobs must not go on writing into
    experiments that run again now.
    """
    if not folder.is_dir():
        return
    for stale in folder.iterdir():
        subprocess.run(["scancel", f"--name={stale.name}"], capture_output=True, timeout=60)
        shutil.rmtree(stale, ignore_errors=True)
