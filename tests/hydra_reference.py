"""Real Hydra 1.3 as the reference for our composition and sweeps, and ours put in the same shape.

hydra-core pins omegaconf<2.4 and an antlr runtime, so it cannot live in the
project's environment: :func:`hydra_python` gives it a venv of its own, made
once (``python -m venv`` + pip, quick from pip's cache) in the system temp
folder under a name that carries the versions, and reused by later sessions.
Where it cannot be made (no package index, pip fails), it raises
:class:`HydraUnavailable` with pip's reason, for the tests to skip with.

Both sides answer a :class:`Case` (a config tree, a primary config name,
overrides) with an :class:`Outcome`: the list of jobs (one for a plain
composition, one per experiment for a sweep), each the config as composed
(``config``, interpolations as written) and resolved (``resolved``), or the
error. :func:`hydra_outcomes` runs a whole case table in one Hydra process
per core, and keeps Hydra's answers for later sessions
(see ``hydra_driver.py`` for exactly what it calls); :func:`our_outcome`
calls our composition in-process, as the command line does:
:func:`experiment_runner.config.compose` for a composition and
:meth:`~experiment_runner.config.Composition.plan` for a sweep.

What is ours only, and so left out of the comparison:

- Run settings that Hydra's config lacks. Our composed config carries the
  run's settings as top-level keys (``backend``, ``out_path``,
  ``repetitions``, ... and the sweep's ``n_configs`` and ``seed``:
  ``RUN_KEYS``), some of which ours may derive from Hydra's own settings;
  Hydra keeps those in the ``hydra`` node, which a task never sees. Such a
  key is dropped from our composed config only where Hydra's config lacks
  it; a key Hydra's config has too (a project's own ``seed: 1``) is
  compared like any other.
- For a sweep, each experiment is compared as its stages receive it: our
  experiment's parameters (the run settings split off), resolved, against
  the config Hydra's task function receives, resolved. Our experiments carry
  no override list, so Hydra's job overrides are only shown, not compared.

Configs are compared as JSON: types count (``1``, ``1.0``, ``'1'`` and
``true`` all differ), the order of keys does not, dict keys are compared as
text (JSON has no other), NaN equals NaN.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

#: The newest Hydra 1.3 on the package index; the plugins are those whose launchers map to our backends.
HYDRA_VERSION = "1.3.8"
HYDRA_REQUIREMENTS = (
    f"hydra-core=={HYDRA_VERSION}",
    "hydra-joblib-launcher==1.2.0",
    "hydra-submitit-launcher==1.2.0",
)
DRIVER = Path(__file__).with_name("hydra_driver.py")
#: Generous: the whole case table takes seconds; this only stops a hung process.
DRIVER_TIMEOUT = 600
PIP_TIMEOUT = 600


class HydraUnavailable(Exception):
    """The Hydra venv cannot be made here; the message says why (pip's own words)."""


# ---------------------------------------------------------------- the cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: a config tree, the primary config, the overrides.

    ``files`` maps a path under the config folder to its text.
    ``config_name=None`` is Hydra without a primary config, and ours too.
    ``sweep=True`` compares the experiments of a sweep (Hydra's multirun jobs).
    ``run=True`` runs the app as ``@hydra.main`` does without ``-m``: ``hydra.mode`` (given, or in a config)
    decides between one job and a multirun; the experiments are compared as a sweep's.
    ``hydra_error=True`` says Hydra refuses the case: ours must refuse it too, in one line.
    ``unordered=True`` compares the jobs whatever their order (Hydra's ``shuffle()`` draws a new one each run).
    """

    id: str
    files: Mapping[str, str]
    overrides: Tuple[str, ...] = ()
    config_name: Optional[str] = "config"
    sweep: bool = False
    run: bool = False
    hydra_error: bool = False
    unordered: bool = False

    def write(self, root: Path) -> Path:
        """The config tree in a fresh folder ``root/<id>``; returns that folder."""
        folder = root / self.id
        folder.mkdir(parents=True)
        for name, text in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return folder


# ---------------------------------------------------------------- outcomes


@dataclasses.dataclass
class Outcome:
    """What one side made of a case: jobs (``overrides``, ``config``, ``resolved``) or an error."""

    jobs: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    error: Optional[Dict[str, str]] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Outcome":
        return cls(jobs=list(data.get("jobs", [])), error=data.get("error"))

    @property
    def refusal(self) -> Optional[Dict[str, str]]:
        """The error, or the first job's config that cannot be resolved (a task would fail on it)."""
        if self.error is not None:
            return self.error
        return next((job["resolved"]["error"] for job in self.jobs if _is_error(job.get("resolved"))), None)

    @property
    def failed(self) -> bool:
        return self.refusal is not None

    def describe(self) -> str:
        """The error, or one line per job."""
        if self.error is not None:
            return f"{self.error['type']}: {self.error['message']}"
        return "\n".join(canonical({k: v for k, v in job.items() if k != "overrides"}) for job in self.jobs)


def _is_error(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"error"} and isinstance(node["error"], dict)


def canonical(data: Any) -> str:
    """JSON text that compares configs: keys sorted, every key as text, NaN and infinities kept."""
    return json.dumps(json.loads(json.dumps(data, default=repr)), sort_keys=True, ensure_ascii=False)


def same(ours: Outcome, hydra: Outcome, case: Case) -> bool:
    """Both fail, or the same jobs with the same configs (after :func:`drop_ours_only`)."""
    if hydra.failed or ours.failed:
        return hydra.failed and ours.failed
    return _comparable(ours, case) == _comparable(hydra, case)


def _comparable(outcome: Outcome, case: Case) -> List[str]:
    fields = ("resolved",) if case.sweep or case.run else ("config", "resolved")
    jobs = [canonical({f: job[f] for f in fields}) for job in outcome.jobs]
    return sorted(jobs) if case.unordered else jobs


def drop_ours_only(ours: Outcome, hydra: Outcome) -> Outcome:
    """Ours without the run settings Hydra's config lacks (see the module's docstring)."""
    from experiment_runner.config import RUN_KEYS

    if ours.error is not None or hydra.error is not None or len(ours.jobs) != len(hydra.jobs):
        return ours
    jobs = []
    for job, reference in zip(ours.jobs, hydra.jobs):
        jobs.append({field: _without_run_keys(job.get(field), reference.get(field), RUN_KEYS) for field in job})
    return Outcome(jobs=jobs)


def _without_run_keys(node: Any, reference: Any, run_keys: Any) -> Any:
    if not isinstance(node, dict) or _is_error(node):
        return node
    keep = reference if isinstance(reference, dict) else {}
    return {k: v for k, v in node.items() if k not in run_keys or k in keep}


# ---------------------------------------------------------------- ours


def our_outcome(case: Case, config_dir: Path) -> Outcome:
    """Our composition of ``case`` (the tree already written to ``config_dir``), in Hydra's shape."""
    from experiment_runner.errors import ExperimentRunnerError

    try:
        with warnings.catch_warnings():
            return _our_jobs(case, config_dir)
    except ExperimentRunnerError as error:
        return Outcome(error={"type": type(error).__name__, "message": str(error)})
    except Exception as error:  # a crash is an outcome too: it never matches, and the report shows it
        return Outcome(error={"type": f"crash {type(error).__name__}", "message": str(error)})


def _our_jobs(case: Case, config_dir: Path) -> Outcome:
    from experiment_runner.config import compose, resolved_container, unresolved_container
    from experiment_runner.errors import ExperimentRunnerError, IgnoredSettingWarning
    from experiment_runner.expand import plan_sweep

    warnings.simplefilter("ignore", IgnoredSettingWarning)  # the Hydra settings ours ignores: a line, not a config

    # the driver names Hydra's job "app" (initialize_config_dir(job_name=...)): ours is given the same name
    # a sweep is Hydra's multirun (-m), a composition its compose API (no sweeper)
    composition = compose(config_dir, case.config_name, list(case.overrides), job_name="app", multirun=case.sweep)
    if case.sweep or case.run:
        return Outcome(jobs=[{"resolved": params} for params in plan_sweep(composition).experiments])
    jobs = []
    for branch in composition.branches:
        job: Dict[str, Any] = {"config": unresolved_container(branch.config)}
        try:
            job["resolved"] = resolved_container(branch.config)
        except ExperimentRunnerError as error:
            job["resolved"] = {"error": {"type": type(error).__name__, "message": str(error)}}
        jobs.append(job)
    return Outcome(jobs=jobs)


def is_one_line(outcome: Outcome) -> bool:
    """Our refusal is one of the package's errors, in one line."""
    error = outcome.refusal
    return error is not None and not error["type"].startswith("crash ") and "\n" not in error["message"].strip()


# ---------------------------------------------------------------- Hydra


def hydra_outcomes(cases: Sequence[Case], root: Path, python: Path,
                   processes: Optional[int] = None) -> Dict[str, Tuple[Path, Outcome]]:
    """Every case written under ``root`` and answered by real Hydra: id -> (config dir, outcome).

    Hydra's answer to a case never changes for the pinned versions, so it is
    kept in the venv's ``outcomes`` folder, keyed by the case's files,
    config name, overrides and kind, the driver's source and the versions;
    only the cases without a kept answer run, in one Hydra process per core
    (or ``processes``).
    Error messages keep the config dir as ``<config_dir>``.
    """
    folders = {case.id: case.write(root / "configs") for case in cases}
    store = _OutcomeStore(python.parent.parent / "outcomes")
    missing = [case for case in cases if not store.has(case)]
    requests = [_request(case, folders[case.id]) for case in missing]
    for case, outcome in zip(missing, _run_in_parallel(python, requests, root / "hydra-work", processes)):
        store.put(case, outcome, folders[case.id])
    return {case.id: (folders[case.id], store.get(case)) for case in cases}


def hydra_compose(config_dir: Path, config_name: Optional[str], overrides: Sequence[str],
                  python: Optional[Path] = None) -> Outcome:
    """Hydra's composition of one config dir, as its task function would see it (one job, or the error)."""
    return _run_one("compose", config_dir, config_name, overrides, python)


def hydra_sweep(config_dir: Path, config_name: Optional[str], overrides: Sequence[str],
                python: Optional[Path] = None) -> Outcome:
    """The jobs of Hydra's multirun (BasicSweeper + BasicLauncher): each its override list and config."""
    return _run_one("sweep", config_dir, config_name, overrides, python)


def _run_one(kind: str, config_dir: Path, config_name: Optional[str], overrides: Sequence[str],
             python: Optional[Path]) -> Outcome:
    request = {"kind": kind, "config_dir": str(Path(config_dir).resolve()), "config_name": config_name,
               "overrides": list(overrides)}
    with tempfile.TemporaryDirectory() as work:
        return run_driver(python or hydra_python(), [request], Path(work))[0]


def _request(case: Case, folder: Path) -> Dict[str, Any]:
    return {"kind": "sweep" if case.sweep else "run" if case.run else "compose", "config_dir": str(folder.resolve()),
            "config_name": case.config_name, "overrides": list(case.overrides)}


def _run_in_parallel(python: Path, requests: List[Dict[str, Any]], work: Path,
                     processes: Optional[int] = None) -> List[Outcome]:
    """The requests split over one driver process per core (at most 4); outcomes in the requests' order."""
    if not requests:
        return []
    count = max(1, min(processes or 4, len(os.sched_getaffinity(0)), len(requests)))
    chunks = [requests[index::count] for index in range(count)]
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda i: run_driver(python, chunks[i], work / str(i)), range(count)))
    outcomes: List[Outcome] = [Outcome()] * len(requests)
    for index, answer in enumerate(answers):
        outcomes[index::count] = answer
    return outcomes


def run_driver(python: Path, requests: List[Dict[str, Any]], work: Path) -> List[Outcome]:
    """One Hydra process for all ``requests``; ``work`` is its working directory (multirun writes there)."""
    work.mkdir(parents=True, exist_ok=True)
    requests_file, outcomes_file = work / "requests.json", work / "outcomes.json"
    requests_file.write_text(json.dumps(requests), encoding="utf-8")
    done = subprocess.run(  # -I: only the venv's packages, whatever PYTHONPATH or the tests folder hold
        [str(python), "-I", str(DRIVER), str(requests_file), str(outcomes_file)],
        cwd=work, capture_output=True, text=True, timeout=DRIVER_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Hydra driver failed (exit code {done.returncode}):\n{done.stderr[-4000:]}")
    return [Outcome.from_json(data) for data in json.loads(outcomes_file.read_text(encoding="utf-8"))]


class _OutcomeStore:
    """Hydra's outcomes kept between test sessions, one JSON file per case key."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.driver = hashlib.sha256(DRIVER.read_bytes()).hexdigest()

    def _path(self, case: Case) -> Path:
        key = json.dumps({
            "driver": self.driver, "requirements": HYDRA_REQUIREMENTS, "sweep": case.sweep, "run": case.run,
            "config_name": case.config_name, "overrides": case.overrides, "files": sorted(case.files.items()),
        })
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def has(self, case: Case) -> bool:
        return self._path(case).is_file()

    def get(self, case: Case) -> Outcome:
        return Outcome.from_json(json.loads(self._path(case).read_text(encoding="utf-8")))

    def put(self, case: Case, outcome: Outcome, folder: Path) -> None:
        text = json.dumps(dataclasses.asdict(outcome)).replace(json.dumps(str(folder.resolve()))[1:-1], "<config_dir>")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(case)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)


# ---------------------------------------------------------------- the venv


def hydra_venv_dir() -> Path:
    """Where the venv lives: named by the Hydra version and this Python, so a later session reuses it."""
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return Path(tempfile.gettempdir()) / f"experiment-runner-hydra-{HYDRA_VERSION}-{python}"


def hydra_python() -> Path:
    """The Python of a venv holding Hydra (made now if there is none yet); raises :class:`HydraUnavailable`.

    Safe when several test sessions start at once: one makes it under a
    lock, the others wait and reuse it. A venv is used only once its
    ``complete`` marker names exactly :data:`HYDRA_REQUIREMENTS`.
    """
    venv = hydra_venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_complete(venv):
            _create_venv(venv)
    return _venv_python(venv)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _marker(venv: Path) -> Path:
    return venv / "complete"


def _is_complete(venv: Path) -> bool:
    marker = _marker(venv)
    return marker.is_file() and marker.read_text().split() == list(HYDRA_REQUIREMENTS) and _venv_python(venv).exists()


def _create_venv(venv: Path) -> None:
    """``python -m venv`` without pip, then this Python's pip installs into it (its cache makes it quick)."""
    shutil.rmtree(venv, ignore_errors=True)
    _run_step([sys.executable, "-m", "venv", "--without-pip", str(venv)], "python -m venv")
    _run_step(
        [sys.executable, "-m", "pip", "--python", str(_venv_python(venv)), "install", "--quiet",
         "--disable-pip-version-check", *HYDRA_REQUIREMENTS],
        "pip install " + " ".join(HYDRA_REQUIREMENTS),
    )
    _marker(venv).write_text("\n".join(HYDRA_REQUIREMENTS) + "\n")


def _run_step(command: List[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HydraUnavailable(f"{what} failed: {error}") from error
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
        raise HydraUnavailable(f"{what} failed (exit code {done.returncode}): {' | '.join(errors)}")
