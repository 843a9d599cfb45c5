"""Record: the out_path tree, written by one writer in the driver process.

``RunPaths`` owns the run-level file names; ``ExperimentPaths`` (experiment.py)
the per-experiment ones. results.jsonl and failures.jsonl get one whole JSON
line per write, flushed at once, so a reader or a resumed run never sees half a
record, even after ``kill -9`` of the driver.
"""
from __future__ import annotations

import collections
import dataclasses
import fcntl
import getpass
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import IO, AbstractSet, Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import yaml

from .errors import OutPathError, OutPathExistsError, ResumeMismatchError, RunInProgressError
from .experiment import Experiment, Outcome
from .serialization import dumps, masked_argv, write_atomic


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Every run-level path of the out_path tree."""

    root: Path

    @property
    def run_yaml(self) -> Path:
        return self.root / "run.yaml"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def experiments(self) -> Path:
        return self.root / "experiments.jsonl"

    @property
    def results(self) -> Path:
        return self.root / "results.jsonl"

    @property
    def failures(self) -> Path:
        return self.root / "failures.jsonl"


def read_jsonl(path: Path) -> Iterator[Dict[str, Any]]:
    """The complete lines of a JSON-lines file; a torn last line (a killed writer) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return
            if line.strip():
                yield json.loads(line)


class RunStore:
    """Prepares the out_path, records outcomes and knows what a resumed run has finished."""

    def __init__(self, out_path: str):
        self.paths = RunPaths(Path(out_path))
        self._results: Optional[IO[str]] = None
        self._failures: Optional[IO[str]] = None
        self._lock_fd: Optional[int] = None

    @property
    def root(self) -> Path:
        return self.paths.root

    def prepare(
        self, if_exists: str, experiments: List[Experiment]
    ) -> Tuple[List[Experiment], List[Experiment]]:
        """Make the out_path ready; return all experiments of the run and those still to run.

        For a fresh run both are ``experiments`` (moved to the folder actually
        claimed with if_exists=new). On resume the sweep is matched, by config
        hash, against the experiments recorded in the tree: they keep their
        recorded ids, and the ones already in results.jsonl are not run again.
        """
        if if_exists == "new":
            self.paths = RunPaths(claim_fresh_folder(self.root))
            self._lock()
            experiments = [dataclasses.replace(e, out_path=str(self.root)) for e in experiments]
        else:
            self._create_root()
            self._lock()
            if self._holds_files() and if_exists == "resume":
                return self._resumable(experiments)
            if self._holds_files() and if_exists == "overwrite":
                self._remove_previous_run()
            elif self._holds_files():
                raise OutPathExistsError(
                    f"out_path '{self.root}' already holds files: choose another out_path, or set "
                    "if_exists=resume to continue that run (if_exists=overwrite replaces it)"
                )
        write_atomic(
            self.paths.experiments,
            "".join(dumps({"experiment_id": e.experiment_id, "hash": e.config_hash, "config": e.stored_config})
                    + "\n"
                    for e in experiments),
        )
        self._open_records()
        return experiments, experiments

    def _create_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise OutPathError(f"out_path '{self.root}' is a file, not a folder: choose another out_path")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
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
        return self.root.is_dir() and any(self.root.iterdir())

    def _remove_previous_run(self) -> None:
        if not self.paths.run_yaml.exists():
            raise OutPathExistsError(
                f"out_path '{self.root}' holds files but no run.yaml, so it is not a run of experiment-runner: "
                "refusing to overwrite it; choose another out_path"
            )
        for child in self.root.iterdir():  # the folder itself stays: it carries the lock
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def _resumable(self, experiments: List[Experiment]) -> Tuple[List[Experiment], List[Experiment]]:
        if not self.paths.experiments.exists():
            raise OutPathExistsError(
                f"cannot resume '{self.root}': it holds no {self.paths.experiments.name}, "
                "so it is not a run of experiment-runner"
            )
        recorded = list(read_jsonl(self.paths.experiments))
        ids_by_hash: Dict[str, List[int]] = collections.defaultdict(list)
        for line in recorded:
            ids_by_hash[line["hash"]].append(line["experiment_id"])
        remaining = {h: list(ids) for h, ids in ids_by_hash.items()}
        resumed, unknown = [], 0
        for experiment in experiments:
            ids = remaining.get(experiment.config_hash)
            if not ids:
                unknown += 1
                continue
            resumed.append(dataclasses.replace(experiment, experiment_id=ids.pop(0)))
        missing = sum(len(ids) for ids in remaining.values())
        if unknown or missing:
            raise ResumeMismatchError(
                f"cannot resume '{self.root}': {unknown} of this sweep's {len(experiments)} experiments are not "
                f"in the recorded run and {missing} of its {len(recorded)} recorded experiments are not in this "
                "sweep; resume with the same configuration and overrides (a sampled sweep also needs the same "
                "seed), or start a new out_path"
            )
        self._drop_torn_line(self.paths.results)
        self._drop_torn_line(self.paths.failures)
        done = self.finished_ids()
        resumed.sort(key=lambda e: e.experiment_id)
        self._open_records()
        return resumed, [e for e in resumed if e.experiment_id not in done]

    def finished_ids(self) -> Set[int]:
        return {line["experiment_id"] for line in read_jsonl(self.paths.results)}

    @staticmethod
    def _drop_torn_line(path: Path) -> None:
        """Cut a half-written last line left by a killed writer, so appending starts on a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def write_run_record(self, record: Dict[str, Any], secret_keys: AbstractSet[str]) -> None:
        """run.yaml (``record``, its secrets already masked) and environment.json (``secret_keys`` masked)."""
        text = yaml.safe_dump(record, sort_keys=False, allow_unicode=True)
        write_atomic(self.paths.run_yaml, text)
        write_atomic(self.paths.environment, json.dumps(describe_environment(secret_keys), indent=2) + "\n")

    def _open_records(self) -> None:
        self._results = open(self.paths.results, "a", encoding="utf-8")
        self._failures = open(self.paths.failures, "a", encoding="utf-8")

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close the record files and release the out_path's lock."""
        for f in (self._results, self._failures):
            if f is not None:
                f.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def record(self, outcome: Outcome, experiment: Experiment, attempt: int = 0) -> None:
        """Append the outcome as one line: to results.jsonl if it finished, else to failures.jsonl."""
        if outcome.ok:
            _append_line(self._results, {**experiment.record(), "scores": outcome.scores})
        else:
            _append_line(self._failures, failure_record(outcome, experiment, attempt))


def _append_line(f: Optional[IO[str]], record: Dict[str, Any]) -> None:
    if f is None:
        raise RuntimeError("RunStore.record called outside 'with store:'")
    f.write(dumps(record) + "\n")
    f.flush()


def failure_record(outcome: Outcome, experiment: Experiment, attempt: int) -> Dict[str, Any]:
    run_id = outcome.run_id if outcome.run_id is not None else 0
    return {
        "experiment_id": experiment.experiment_id,
        "run_id": outcome.run_id,
        "attempt": attempt,
        "status": outcome.status,
        "error_type": outcome.error_type,
        "message": outcome.message,
        "exit_code": outcome.exit_code,
        "host": outcome.host,
        "duration": outcome.duration,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stdout": str(experiment.paths.stdout(run_id)),
        "stderr": str(experiment.paths.stderr(run_id)),
        "config": experiment.record(),
        "traceback": outcome.traceback,
    }


def claim_fresh_folder(root: Path) -> Path:
    """``root``, else ``root_1``, ``root_2``, ...: the first folder this process creates itself.

    mkdir fails when the folder exists, so two runs started in the same second
    never share one.
    """
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


def describe_environment(secret_keys: AbstractSet[str]) -> Dict[str, Any]:
    """What reproducing the run needs to know about this machine and code (argv with ``secret_keys`` masked)."""
    return {
        "python": sys.version,
        "executable": sys.executable,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "user": _user(),
        "cwd": os.getcwd(),
        "argv": masked_argv(sys.argv, secret_keys),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packages": _package_versions(["experiment-runner", "omegaconf", "PyYAML", "tqdm", "numpy", "pandas", "ray",
                                       "cloudpickle", "scikit-learn", "torch"]),
        "git": _git_state(),
    }


def _user() -> Optional[str]:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _package_versions(names: Sequence[str]) -> Dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git_state() -> Optional[Dict[str, Any]]:
    """The commit of the working directory's repository and whether it has changes, if it is one."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}
