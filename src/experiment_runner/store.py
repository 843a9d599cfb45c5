"""Record: the out_path tree, written by one writer in the driver process.

``RunPaths`` (run_files.py) owns the run-level file names (run_files.py also
reads run.yaml back for ``--resume``); ``ExperimentPaths`` (experiment.py) the
per-experiment ones. results.jsonl and failures.jsonl get one whole JSON line
per write, written straight to the file, so a reader or a resumed run never
sees half a record, even after ``kill -9`` of the driver; a write that fails (a
full disk) is cut back and stops the run with a :class:`RecordWriteError`.
"""
from __future__ import annotations

import collections
import errno
import fcntl
import json
import os
import shutil
from array import array
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence, Set, Tuple

from .errors import (
    DISK_FULL_ERRNOS,
    OutPathError,
    OutPathExistsError,
    OutPathHoldsFilesError,
    RecordWriteError,
    ResumeMismatchError,
    RunInProgressError,
    os_error_text,
)
from .experiment import PRUNED, Experiment, Outcome
from .record_lines import RecordFile, experiment_line, failure_record, results_line
from .resume_match import SECRET_VERIFIER, RecordedExperiments, Renumbered
from .run_files import RUN_FORMAT_NAME, RunPaths, is_run_record, read_jsonl, read_yaml, run_yaml_text
from .serialization import SecretVerifier, dumps, write_atomic


_EXPERIMENT_LINE_KEYS = {"experiment_id", "hash", "config"}


def _listed_experiment_ids(path: Path) -> Optional[Set[int]]:
    """The experiment ids in an experiments.jsonl, or None when its lines are not a run's."""
    try:
        lines = list(read_jsonl(path))
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not all(isinstance(line, dict) and _EXPERIMENT_LINE_KEYS <= set(line) and type(line["experiment_id"]) is int
               for line in lines):
        return None
    return {line["experiment_id"] for line in lines}


class RunStore:
    """Prepares the out_path, records outcomes and knows what a resumed run has finished."""

    def __init__(self, out_path: str):
        self.paths = RunPaths(Path(out_path))
        self._results: Optional[RecordFile] = None
        self._failures: Optional[RecordFile] = None
        self._experiments: Optional[RecordFile] = None  # an adaptive search's: a line per trial as it is asked
        self._lock_fd: Optional[int] = None
        #: True once prepare() began a new run's files (not a resumed run's): a full disk removes them again.
        self._fresh = False

    @property
    def root(self) -> Path:
        return self.paths.root

    def prepare(
        self, if_exists: str, experiments: Sequence[Experiment]
    ) -> Tuple[Sequence[Experiment], Iterable[Experiment]]:
        """Make the out_path ready; return all experiments of the run and those still to run (both with ``len``).

        For a fresh run both are ``experiments``. On resume the sweep is
        matched, by config hash, against the experiments recorded in the tree:
        they keep their recorded ids, and the ones already in results.jsonl are
        not run again. For if_exists=new the runner has claimed a fresh folder
        first (:func:`claim_fresh_folder`): here it is one to use as it is.
        experiments.jsonl is written as the experiments are read, one at a
        time; what is returned makes each one again when read.
        """
        self._create_root()
        self._lock()
        if self._holds_files() and if_exists == "resume":
            return self._resumable(experiments)
        if self._holds_files() and if_exists == "overwrite":
            self._remove_previous_run(len(experiments))
        elif self._holds_files():
            raise _holds_files_error(self.root)
        self._fresh = True
        verifier = SecretVerifier()
        self._write_at_start(self.paths.experiments, (dumps(experiment_line(e, verifier)) + "\n" for e in experiments))
        self._open_records()
        return experiments, experiments

    def prepare_search(self, if_exists: str, n_trials: int) -> Set[int]:
        """Make the out_path ready for an adaptive search; return the experiment ids it lists already.

        A fresh search starts with an empty experiments.jsonl, which gets a
        line per trial as the trial is asked (:meth:`add_experiment`). Resuming
        keeps every file as it is; which trials are left is the study's to say.
        """
        self._create_root()
        self._lock()
        listed: Set[int] = set()
        if self._holds_files() and if_exists == "resume":
            if not self.paths.study.exists():
                raise OutPathExistsError(
                    f"cannot resume '{self.root}' as an adaptive search: it holds no {self.paths.study.name}, so no "
                    "search ran there; resume it as it was run, or start a new out_path"
                )
            for path in (self.paths.results, self.paths.failures, self.paths.experiments):
                self._drop_torn_line(path)
            listed = _listed_experiment_ids(self.paths.experiments) or set()
        else:
            if self._holds_files() and if_exists == "overwrite":
                self._remove_previous_run(n_trials)
            elif self._holds_files():
                raise _holds_files_error(self.root)
            self._fresh = True
            self._write_at_start(self.paths.experiments, "")
        self._open_records()
        self._experiments = RecordFile(self.paths.experiments)
        return listed

    def add_experiment(self, experiment: Experiment) -> None:
        """Append ``experiment``'s line to experiments.jsonl (an adaptive search's trial, as it is asked)."""
        if self._experiments is None:
            raise RuntimeError("RunStore.add_experiment called before prepare_search")
        self._append(self._experiments, dumps(experiment_line(experiment, SecretVerifier())))

    def _create_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError as error:  # a file, not a folder, of that name
            raise OutPathError(f"out_path '{self.root}' is a file, not a folder: choose another out_path") from error
        except OSError as error:  # a parent that is a file, a name too long for the filesystem, no permission
            raise OutPathError(f"cannot create out_path '{self.root}': {error.strerror or error}") from error

    def _lock(self) -> None:
        """Hold an exclusive lock on the out_path folder until the run ends: two runs never write one tree."""
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            raise RunInProgressError(
                f"out_path '{self.root}' is in use by a run that is still going: wait for it to end, "
                "or choose another out_path"
            ) from error
        self._lock_fd = fd

    def _holds_files(self) -> bool:
        return _holds_files(self.root)

    def _remove_previous_run(self, n_experiments: int) -> None:
        """Remove the files of the run of experiment-runner in out_path; anything else there stays.

        Those files are run.yaml, environment.json, the three .jsonl files (and
        their temporary files) and the folders of the experiments listed in
        experiments.jsonl. The out_path folder itself stays: it carries the lock.
        """
        previous_ids = self._previous_run_ids()
        for name in sorted(os.listdir(self.root)):
            experiment_id = int(name) if name.isascii() and name.isdigit() and name == str(int(name)) else None
            if experiment_id is not None and experiment_id < n_experiments and experiment_id not in previous_ids:
                raise OutPathExistsError(
                    f"out_path '{self.root}' holds '{name}', which is not an experiment folder of the run "
                    "there, and this run would write into it: refusing to overwrite; choose another out_path"
                )
        for experiment_id in sorted(previous_ids):
            folder = self.root / str(experiment_id)
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder)
        for path in self.paths.run_files:
            for temporary in self.root.glob(f".{path.name}.*.tmp"):  # left by a writer killed in write_atomic
                temporary.unlink()
            path.unlink(missing_ok=True)

    def _previous_run_ids(self) -> Set[int]:
        """The experiment ids of the run in out_path, once its files show that experiment-runner wrote it.

        run.yaml must carry the ``format: experiment-runner/<version>`` line
        (or, written before it had one, the keys every run.yaml has), and
        experiments.jsonl must list the experiments as a run writes them.
        """
        def refuse(why: str) -> OutPathExistsError:
            return OutPathExistsError(
                f"out_path '{self.root}' is not a run of experiment-runner: {why}; refusing to overwrite it: "
                "choose another out_path"
            )

        if not self.paths.run_yaml.is_file():
            raise refuse("it holds files but no run.yaml")
        if not is_run_record(read_yaml(self.paths.run_yaml)):
            raise refuse(f"its run.yaml has no 'format: {RUN_FORMAT_NAME}/...' line")
        if not self.paths.experiments.is_file():
            raise refuse(f"it holds no {self.paths.experiments.name}")
        ids = _listed_experiment_ids(self.paths.experiments)
        if ids is None:
            raise refuse(f"its {self.paths.experiments.name} does not list experiments as a run writes them")
        return ids

    def _resumable(self, experiments: Sequence[Experiment]) -> Tuple[Sequence[Experiment], Iterable[Experiment]]:
        if not self.paths.experiments.exists():
            raise OutPathExistsError(
                f"cannot resume '{self.root}': it holds no {self.paths.experiments.name}, "
                "so it is not a run of experiment-runner"
            )
        verifier = self._recorded_verifier()
        recorded = RecordedExperiments(read_jsonl(self.paths.experiments), verifier is not None)
        recorded_ids = array("q", bytes(8 * len(experiments)))
        unmatched_secrets: Set[str] = set()
        unmatched = 0
        for position, experiment in enumerate(experiments):
            verified = verifier(experiment.secret_values()) if verifier else None
            recorded_id = recorded.take(experiment.config_hash, verified)
            if recorded_id is None:
                unmatched += 1
                unmatched_secrets.update(experiment.secret_values())
            else:
                recorded_ids[position] = recorded_id
        if unmatched or recorded.left:
            raise self._mismatch(experiments, recorded.count, unmatched, unmatched_secrets, recorded.left)
        self._drop_torn_line(self.paths.results)
        self._drop_torn_line(self.paths.failures)
        resumed = Renumbered(experiments, recorded_ids)
        self._open_records()
        return resumed, resumed.without(self.finished_ids() | self.pruned_ids())

    def _recorded_verifier(self) -> Optional[SecretVerifier]:
        """The verifier of the recorded run's secret values, None for a run that recorded none (or older ones)."""
        for number, line in enumerate(read_jsonl(self.paths.experiments), 1):
            if SECRET_VERIFIER in line:
                try:
                    return SecretVerifier.of(str(line[SECRET_VERIFIER]))
                except ValueError as error:
                    raise ResumeMismatchError(
                        f"cannot resume '{self.root}': line {number} of {self.paths.experiments.name} holds a "
                        f"malformed {SECRET_VERIFIER}; start a new out_path"
                    ) from error
        return None

    def _mismatch(self, experiments: Sequence[Experiment], n_recorded: int, unmatched: int,
                  unmatched_secrets: Set[str], missing: int) -> ResumeMismatchError:
        """Why this sweep is not the recorded one: its configurations, or only its secret values."""
        hashes = collections.Counter(experiment.config_hash for experiment in experiments)
        if hashes == collections.Counter(line["hash"] for line in read_jsonl(self.paths.experiments)):
            return ResumeMismatchError(
                f"cannot resume '{self.root}': this sweep's experiments and the recorded ones differ only in their "
                f"secret values ({', '.join(sorted(unmatched_secrets))}): resume with the same secrets as the "
                "recorded run, or start a new out_path"
            )
        return ResumeMismatchError(
            f"cannot resume '{self.root}': {unmatched} of this sweep's {len(experiments)} experiments are not "
            f"in the recorded run and {missing} of its {n_recorded} recorded experiments are not in this "
            "sweep; resume with the same configuration and overrides (a sampled sweep also needs the same "
            "seed), or start a new out_path"
        )

    def finished_ids(self) -> Set[int]:
        return {line["experiment_id"] for line in read_jsonl(self.paths.results)}

    def pruned_ids(self) -> Set[int]:
        """The experiments an adaptive search stopped early: a resume does not run them again."""
        return {line["experiment_id"] for line in read_jsonl(self.paths.failures) if line.get("status") == PRUNED}

    @staticmethod
    def _drop_torn_line(path: Path) -> None:
        """Cut a half-written last line left by a killed writer, so appending starts on a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def write_run_record(self, record: Dict[str, Any], environment: Dict[str, Any]) -> None:
        """run.yaml (``record``, its secrets already masked; its first line marks the folder as a run) and
        environment.json (``environment``: see :func:`describe_environment`, its secrets masked)."""
        self._write_at_start(self.paths.run_yaml, run_yaml_text(record))
        self._write_at_start(self.paths.environment, json.dumps(environment, indent=2) + "\n")

    def _open_records(self) -> None:
        try:
            self._results = RecordFile(self.paths.results)
            self._failures = RecordFile(self.paths.failures)
        except OSError as error:
            raise self._not_started(error, error.filename) from error

    def _write_at_start(self, path: Path, text: str) -> None:
        """write_atomic for a file the run writes before its first experiment."""
        try:
            write_atomic(path, text)
        except OSError as error:
            raise self._not_started(error, path) from error

    def _not_started(self, error: OSError, path: Any) -> RecordWriteError:
        """The error of a run that could not write its first files; a new run's are removed again.

        So the out_path is as it was (or empty) and the same run can simply be started again.
        """
        if self._fresh:
            self._remove_run_files()
        return record_write_error(os_error_text(error, path), error.errno in DISK_FULL_ERRNOS, started=False)

    def discard_new_run(self, experiment_ids: Iterable[int]) -> bool:
        """Remove what a new run wrote before it could run anything; False (nothing removed) for a resumed run.

        For a backend that turned out to have nowhere to run (no machine
        reachable): the same command can then simply be run again.
        """
        if not self._fresh:
            return False
        self._remove_run_files()
        for experiment_id in experiment_ids:
            folder = self.root / str(experiment_id)
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()
        return True

    def _remove_run_files(self) -> None:
        """Close and remove the run-level files this run wrote (its experiments' folders stay)."""
        self._close_records()
        for own in self.paths.run_files:
            own.unlink(missing_ok=True)

    def _close_records(self) -> None:
        for record_file in (self._results, self._failures, self._experiments):
            if record_file is not None:
                record_file.close()
        self._results = self._failures = self._experiments = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close the record files and release the out_path's lock."""
        self._close_records()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def record(self, outcome: Outcome, experiment: Experiment, attempt: int = 0,
               extra: Optional[Dict[str, Any]] = None) -> None:
        """Append the outcome as one line: to results.jsonl if it finished, else to failures.jsonl.

        ``extra``: more keys for that line (an adaptive search's ``trial``).
        A line that cannot be written whole (a full disk) is cut back and
        stops the run with a :class:`RecordWriteError`.
        """
        if outcome.ok:
            record_file, line = self._results, results_line(experiment, outcome.scores, outcome.record, extra)
        else:
            record_file, line = self._failures, dumps({**failure_record(outcome, experiment, attempt), **(extra or {})})
        if record_file is None:
            raise RuntimeError("RunStore.record called outside 'with store:'")
        self._append(record_file, line)

    @staticmethod
    def _append(record_file: "RecordFile", line: str) -> None:
        try:
            record_file.append_line(line)
        except OSError as error:
            cause = os_error_text(error, record_file.path)
            raise record_write_error(cause, error.errno in DISK_FULL_ERRNOS) from error


def check_out_path(out_path: str, if_exists: str) -> None:
    """Refuse, before anything starts, an out_path that holds files when the run may not touch them (if_exists=error).

    Only reads: the store checks again when it takes the folder (:meth:`RunStore.prepare`), under its lock.
    """
    if if_exists == "error" and _holds_files(Path(out_path)):
        raise _holds_files_error(Path(out_path))


def _holds_files(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError as error:  # a name too long for the filesystem is no folder: creating it says why
        if error.errno != errno.ENAMETOOLONG:
            raise
        return False


def _holds_files_error(folder: Path) -> OutPathHoldsFilesError:
    return OutPathHoldsFilesError(
        f"out_path '{folder}' already holds files: choose another out_path, or set "
        "if_exists=resume to continue that run (if_exists=overwrite replaces it)",
        out_path=str(folder),
    )


def record_write_error(cause: str, disk_full: bool, started: bool = True) -> RecordWriteError:
    """The one-line error of a run that cannot write what it records, saying how to go on.

    ``started``: experiments ran (the run stopped, resume it), or none did (run it again).
    """
    stopped, again = ("the run stopped, keeping what it recorded", "resume it") if started else (
        "no experiment ran", "run it again")
    then = f"free space on that disk, then {again}" if disk_full else f"{again} once that is fixed"
    return RecordWriteError(f"{cause}: {stopped}; {then}")


def remove_if_empty(folder: Path) -> None:
    """Remove a folder a run claimed and then wrote nothing to (it stopped before its first file)."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def claim_fresh_folder(root: Path) -> Path:
    """``root``, else ``root_1``, ``root_2``, ...: the first folder this process creates itself.

    mkdir fails when the folder exists, so two runs started in the same second
    never share one. A root without a name of its own (``.``, ``..``, ``/``)
    is refused: numbering it would make a folder outside the one it names.
    """
    if root.name in ("", ".", ".."):
        raise OutPathError(
            f"out_path '{root}' names no folder of its own for if_exists=new to take or number "
            "(as results/run, then results/run_1, ...): name one, e.g. out_path=results/run"
        )
    for suffix in range(10_000):
        candidate = root.with_name(f"{root.name}_{suffix}") if suffix else root
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
        except OSError as error:
            raise OutPathError(f"cannot create out_path '{candidate}': {error.strerror or error}") from error
    raise OutPathExistsError(f"no free out_path next to '{root}'")
