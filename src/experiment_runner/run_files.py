"""The out_path tree's run-level files, and how they are read: the JSON-lines records (by the store and the
report), and run.yaml (what a run recorded of itself, read back to resume it from the command line).

run.yaml is written by the store (``RunStore.write_run_record``) and read only here.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .errors import CorruptRecordError, UsageError

#: run.yaml's first line, ``format: experiment-runner/1``: it marks the folder as a run of this package (so
#: if_exists=overwrite never takes another tool's run.yaml for one) and numbers the layout of the tree.
RUN_FORMAT_NAME = "experiment-runner"
RUN_FORMAT = f"{RUN_FORMAT_NAME}/1"
#: The errors of reading a file that is not there: absent, a name too long to be there, a folder, a path through a file.
_NO_SUCH_FILE = frozenset({errno.ENOENT, errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR})
#: The keys every run.yaml has had, the marker aside: a run written before the marker is recognised by them.
_UNMARKED_RUN_KEYS = {"out_path", "backend", "experiments", "stages", "settings"}


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

    @property
    def study(self) -> Path:
        """An adaptive search's Optuna study (see search/study.py)."""
        return self.root / "study.journal"

    @property
    def run_files(self) -> Tuple[Path, ...]:
        """The run-level files a run writes (what overwriting or discarding a run removes)."""
        return (self.results, self.failures, self.environment, self.run_yaml, self.experiments, self.study)


def read_jsonl(path: Path) -> Iterator[Dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (a killed writer) is skipped.

    Any other line that is not a JSON object raises :class:`CorruptRecordError`.
    """
    if not path.exists():
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return
            if line.strip():
                yield _parse_record(line, path, number)


def _parse_record(line: bytes, path: Path, number: int) -> Dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError as error:  # not JSON, or not UTF-8
        problem = f"not JSON ({error})"
    else:
        if isinstance(record, dict):
            return record
        problem = f"a JSON {type(record).__name__}, not a record"
    raise CorruptRecordError(
        f"{path}, line {number}: {problem}; repair or delete that line (each line is one whole record)"
    )


def is_run_record(record: Any) -> bool:
    """True for the content of a run.yaml that experiment-runner wrote."""
    if not isinstance(record, dict):
        return False
    if "format" in record:
        return str(record["format"]).startswith(f"{RUN_FORMAT_NAME}/")
    return _UNMARKED_RUN_KEYS <= set(record)


def run_yaml_text(record: Mapping[str, Any]) -> str:
    """run.yaml's text for ``record``: the format line first, then the record in its order."""
    import yaml

    return yaml.safe_dump({"format": RUN_FORMAT, **record}, sort_keys=False, allow_unicode=True)


def read_yaml(path: Path) -> Any:
    """The content of a YAML file, or None when it cannot be read as YAML."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return None


@dataclasses.dataclass(frozen=True)
class RecordedRun:
    """What a run recorded of itself in run.yaml (and environment.json): enough to compose its sweep again."""

    out_path: str
    backend: Optional[str]
    #: The run's settings as recorded (secrets as ``***``).
    settings: Dict[str, Any]
    #: The config directory the command line composed from; None for a run started from Python.
    config_dir: Optional[str]
    config_name: Optional[str]
    overrides: List[str]
    started: Optional[datetime]
    #: Per branch of the sweep: the composed config as recorded (``config``), ``choices``, ``origins``, ``hydra``
    #: and ``settings_only``.
    branches: List[Dict[str, Any]]
    #: The seed that sampled the sweep (None for a whole grid).
    seed: Optional[int]
    #: The sweep's dimensions as recorded (dotted keys).
    dimensions: List[str] = dataclasses.field(default_factory=list)
    #: The working directory the run started in (environment.json's ``cwd``), if recorded.
    started_in: Optional[Path] = None
    #: Config directories searched after ``config_dir`` (a decorated script's ``-cd``).
    extra_config_dirs: List[str] = dataclasses.field(default_factory=list)
    #: The command line that started the run, and those that resumed it before.
    command: Optional[str] = None
    resumed: List[str] = dataclasses.field(default_factory=list)
    #: The decorated script that started the run, whose stages it runs; None for the experiment-runner command.
    script: Optional[str] = None

    @property
    def config_dirs(self) -> List[str]:
        return [d for d in (self.config_dir, *self.extra_config_dirs) if d is not None]

    @property
    def from_command_line(self) -> bool:
        """Whether the run recorded how a command line composed it (a run started from Python did not)."""
        return self.config_dir is not None and bool(self.branches)


def read_recorded_run(out_path: str) -> RecordedRun:
    """The run recorded in ``out_path``, to resume it; one clear line when there is none or its run.yaml is corrupt."""
    paths = RunPaths(Path(out_path))
    record = _load_run_yaml(paths.run_yaml, out_path)
    composed = isinstance(record.get("overrides"), list) and "config_dir" in record and "config" in record
    sweep = record.get("sweep") if isinstance(record.get("sweep"), dict) else {}
    return RecordedRun(
        out_path=out_path,
        backend=str(record["backend"]) if record.get("backend") is not None else None,
        settings=dict(record.get("settings") or {}),
        config_dir=str(record["config_dir"]) if composed else None,
        config_name=_recorded_config_name(record),
        overrides=[str(o) for o in record["overrides"]] if composed else [],
        started=_timestamp(record.get("started"), paths.run_yaml),
        branches=_recorded_branches(record) if composed else [],
        seed=sweep.get("seed") if sweep.get("n_configs") is not None else None,
        dimensions=[str(d) for d in sweep.get("dimensions") or []],
        started_in=_recorded_cwd(paths.environment),
        extra_config_dirs=[str(d) for d in record.get("config_search_path") or []],
        command=str(record["command"]) if record.get("command") else None,
        resumed=[str(command) for command in record.get("resumed") or []],
        script=str(record["script"]) if record.get("script") else None,
    )


def _recorded_branches(record: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Per branch of the sweep (one, or one per option of a group sweep): what run.yaml recorded of it."""
    configs = _per_branch(record.get("config"), None)
    choices, origins, hydra = (_per_branch(record.get(key), default, len(configs))
                               for key, default in (("choices", {}), ("origins", {}), ("hydra", None)))
    settings_only = record.get("settings_only") or []
    return [{"config": c, "choices": ch, "origins": o, "hydra": h, "settings_only": settings_only}
            for c, ch, o, h in zip(configs, choices, origins, hydra)]


def _not_a_folder(path: Path) -> Optional[str]:
    """Why ``path`` is no folder (it does not exist, is a file, or its name is too long), or None for a folder."""
    try:
        return None if stat.S_ISDIR(os.stat(path).st_mode) else "it is a file, not a folder"
    except FileNotFoundError:
        return "there is no such folder"
    except OSError as error:
        return error.strerror or str(error)


def _load_run_yaml(run_yaml: Path, out_path: str) -> Dict[str, Any]:
    """run.yaml's content: a run's record, or an error saying what is wrong with it."""
    import yaml

    try:
        data = run_yaml.read_bytes()
    except OSError as error:
        if error.errno not in _NO_SUCH_FILE:
            raise CorruptRecordError(f"cannot resume '{out_path}': cannot read its run.yaml: "
                                     f"{_yaml_problem(error)}") from error
        not_a_folder = _not_a_folder(run_yaml.parent)
        if not_a_folder:
            raise UsageError(f"cannot resume '{out_path}': {not_a_folder}; give the out_path of the run to finish") \
                from error
        raise UsageError(
            f"cannot resume '{out_path}': it holds no run.yaml, so it is not a run of experiment-runner"
        ) from error
    try:
        record = yaml.safe_load(data.decode("utf-8"))
    except (ValueError, yaml.YAMLError) as error:  # ValueError: not UTF-8
        raise CorruptRecordError(
            f"cannot resume '{out_path}': its run.yaml cannot be read ({_yaml_problem(error)}); restore it from a "
            "copy, or start a new out_path"
        ) from error
    if not is_run_record(record):
        raise CorruptRecordError(
            f"cannot resume '{out_path}': its run.yaml is not a run's record (no 'format: {RUN_FORMAT_NAME}/...' "
            "line); restore it from a copy, or start a new out_path"
        )
    return record


def _yaml_problem(error: Exception) -> str:
    """What a YAML parser or the file system said, on one line, with the line of run.yaml where YAML broke."""
    problem, mark = getattr(error, "problem", None), getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"line {mark.line + 1}: {problem}"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return " ".join(str(error).split())


def _per_branch(value: Any, default: Any, count: int = 1) -> List[Any]:
    """A value recorded once for a single-branch sweep, or as a list with one entry per branch."""
    if isinstance(value, list):
        return value
    return [value if value is not None else default] * count


def _timestamp(value: Any, run_yaml: Path) -> Optional[datetime]:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as error:
        raise CorruptRecordError(f"{run_yaml}: started={value!r} is not a time: restore it from a copy") from error


def _recorded_config_name(record: Mapping[str, Any]) -> Optional[str]:
    """run.yaml's primary config: ``null`` for a run composed without one (an older run.yaml may lack the key)."""
    if "config_name" not in record:
        return "config"
    name = record["config_name"]
    return None if name is None else str(name)


def _recorded_cwd(environment_json: Path) -> Optional[Path]:
    """The working directory that a run's environment.json recorded, or None if it holds none."""
    try:
        environment = json.loads(environment_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cwd = environment.get("cwd") if isinstance(environment, dict) else None
    return Path(cwd) if isinstance(cwd, str) and cwd else None
