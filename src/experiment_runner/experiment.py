"""One experiment: its config, its folders, its three stages and its outcome.

:func:`run_experiment` is the one function that runs an experiment's stages;
every backend calls it, wherever the experiment runs. It never raises for a
failing stage: the failure becomes an :class:`Outcome` with a status.
"""
from __future__ import annotations

import contextlib
import functools
import operator
import os
import time
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Dict, Iterator, Mapping, Optional, Tuple

from .channel import running
from .errors import ExperimentTimeout, disk_full_text
from .logs import tee_python_streams
from .metrics import METRICS_FILE, PRUNED, repetition_running, stopped_early
from .experiment_files import append_to_log, make_folder, mark_new_attempt, write_config
from .stage_arguments import as_dictconfig, takes_one_argument, wants_dictconfig
from .stage_files import put_back_file_names, source_files
from .serialization import copy_plain, dumps, hashable_form, json_encoder, mask_secrets, secret_values, to_jsonable
from .serialization import mask_secret_texts, with_secret_values
from .output_dir import OUTPUT_DIR, mentions_output_dir, with_output_dir
from .repetition_scores import aggregate_scores

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Stages", "Experiment", "ExperimentPaths", "Outcome", "Capture", "run_experiment", "run_stages",
           "config_hash", "OUTPUT_DIR", "RESERVED_KEYS", "OK", "ERROR", "TIMEOUT", "CRASHED", "CANCELLED", "PRUNED",
           "CONFIG_FILE", "STDOUT_LOG", "STDERR_LOG"]

#: Keys the runner adds to each stage's cfg; a user config must not set them.
RESERVED_KEYS = ("experiment_id", "run_id", "out_path")

#: Outcome statuses (and PRUNED, from metrics.py). Everything but OK is recorded in failures.jsonl; all but PRUNED fail.
OK, ERROR, TIMEOUT, CRASHED, CANCELLED = "ok", "error", "timeout", "crashed", "cancelled"

#: ``capture(stdout_path, stderr_path)``: a context manager that sends what the stages print to those logs.
#: The paths are absolute: a stage may change the working directory before a log is written.
Capture = Callable[[str, str], ContextManager[Any]]


@dataclass(frozen=True)
class Stages:
    """The user's three functions; ``pre`` and ``post`` may be None."""

    fit: Callable[[dict, Any], Any]
    pre: Optional[Callable[[dict], Any]] = None
    post: Optional[Callable[[dict, Any], Any]] = None

    @property
    def calls(self) -> Tuple[bool, bool, bool, bool]:
        """How the stages are called, read from their signatures once: whether pre, fit and post each take the
        cfg as a DictConfig (see stage_arguments.as_dictconfig), and whether fit is called as ``fit(cfg)``."""
        calls = self.__dict__.get("_calls")
        if calls is None:
            fit_alone = self.pre is None and takes_one_argument(self.fit)
            calls = self.__dict__["_calls"] = (*(stage is not None and wants_dictconfig(stage)
                                                 for stage in (self.pre, self.fit, self.post)), fit_alone)
        return calls

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled with the files the stages come from, which cloudpickle 3.1 drops from functions sent by value.

        It names their code ``<dynamic-code>``, so a script's own stages
        would lose their file and source lines in a worker's traceback;
        :func:`_unpickled_stages` puts the file names back.
        """
        return _unpickled_stages, (self.fit, self.pre, self.post, source_files((self.pre, self.fit, self.post)))


def _unpickled_stages(fit: Any, pre: Any, post: Any, source_files: Dict[str, str]) -> Stages:
    put_back_file_names((pre, fit, post), source_files)
    return Stages(fit, pre, post)


#: What no computed value is (None can be one).
_UNSET = object()

#: The file names of an experiment's (or repetition's) folder.
CONFIG_FILE, STDOUT_LOG, STDERR_LOG = "config.json", "stdout.log", "stderr.log"


@dataclass(frozen=True)
class ExperimentPaths:
    """Owns every path of one experiment's folder in the out_path tree."""

    root: Path
    repetitions: int

    def run_dir(self, run_id: int) -> Path:
        """Where repetition ``run_id`` works: ``<id>`` alone, ``<id>/<rep>`` with repetitions > 1."""
        return self.root if self.repetitions == 1 else self.root / str(run_id)

    def config_file(self, run_id: Optional[int] = None) -> Path:
        return (self.root if run_id is None else self.run_dir(run_id)) / CONFIG_FILE

    def stdout(self, run_id: int) -> Path:
        return self.run_dir(run_id) / STDOUT_LOG

    def stderr(self, run_id: int) -> Path:
        return self.run_dir(run_id) / STDERR_LOG


@dataclass(frozen=True)
class Experiment:
    """One configuration of a run; ``config`` is the user's, JSON-able, without reserved keys."""

    experiment_id: int
    config: Dict[str, Any]
    out_path: str
    repetitions: int = 1
    timeout: float = 0.0
    #: Dotted keys of ``config`` whose values are secret: ``***`` in every file, in clear only for the stages.
    secret_keys: Tuple[str, ...] = ()
    #: The stages run in the repetition's own folder (its ``out_path``) as working directory (Hydra's job.chdir).
    chdir: bool = False
    #: ``config`` holds what JSON has no form for (NaN, infinities, keys that are no text): the stages get it as
    #: given, the files its JSON form (see :func:`~experiment_runner.serialization.to_stage_values`).
    holds_non_json: bool = False

    @property
    def paths(self) -> ExperimentPaths:
        from pathlib import Path  # here: a worker runs experiments without it (see _folder_prefix)

        return ExperimentPaths(Path(self.folder), self.repetitions)

    @property
    def folder(self) -> str:
        """``<out_path>/<id>`` as text, as ``str(paths.root)`` spells it."""
        return self._once("_folder", Experiment._make_folder)

    def _make_folder(self) -> str:
        return _folder_prefix(self.out_path) + str(self.experiment_id)

    @property
    def stored_config(self) -> Dict[str, Any]:
        """The config as files hold it: JSON, secrets as ``***`` (shared: not to be changed)."""
        return self._once("_stored", Experiment._make_stored_config)

    def _make_stored_config(self) -> Dict[str, Any]:
        return mask_secrets(to_jsonable(self.config) if self.holds_non_json else self.config, self.secret_keys)

    @property
    def _mentions_output_dir(self) -> bool:
        return self._once("_mentions", Experiment._look_for_output_dir)

    def _look_for_output_dir(self) -> bool:
        return mentions_output_dir(self.config)

    def _once(self, name: str, compute: Callable[["Experiment"], Any]) -> Any:
        """``compute(self)`` the first time, then kept on the instance (not a field: no part of equality or pickle).

        A run needs the folder and stored config of an experiment for each of
        its files; computed once, they cost a dict lookup afterwards
        (functools.cached_property would take a lock each first time).
        """
        value = self.__dict__.get(name, _UNSET)
        if value is _UNSET:
            value = self.__dict__[name] = compute(self)
        return value

    def __getstate__(self) -> Dict[str, Any]:
        """The fields only: what is computed from them is computed again where the experiment travels to."""
        state = self.__dict__
        return {name: state[name] for name in _EXPERIMENT_FIELDS}

    @property
    def config_hash(self) -> str:
        """Identifies the experiment by its config, so a resumed sweep finds it again.

        The hash is of the config as stored, secrets as ``***`` (it is stored
        too, and must not let anyone test guesses of a secret against it), but
        with NaN and infinities told apart, which JSON stores as null.
        """
        hashed = hashable_form(self.config) if self.holds_non_json else self.config
        return config_hash(mask_secrets(hashed, self.secret_keys))

    def record_text(self) -> str:
        """:meth:`record` as one line of JSON, made once per experiment: config.json holds it, and results.jsonl
        the same text with the scores added (in backend=single the same object serves both)."""
        return self._once("_record_text", Experiment._make_record_text)

    def _make_record_text(self) -> str:
        return dumps(self.record())

    def record(self) -> Dict[str, Any]:
        """The config as written to ``<id>/config.json`` and into results.jsonl, secrets as ``***``."""
        stored = self.stored_config  # only serialised: shared, not copied, unless OUTPUT_DIR is to be replaced
        folder = self.folder
        if self._mentions_output_dir:
            stored = with_output_dir(stored, os.path.abspath(folder))
        return {**stored, "experiment_id": self.experiment_id, "out_path": folder}

    def secret_values(self) -> Dict[str, Any]:
        """The secrets of ``config`` by dotted key, for where the config travels as a file."""
        return secret_values(self.config, self.secret_keys)

    def without_secret_values(self) -> "Experiment":
        """This experiment with its secrets as ``***``, to travel where files may keep it (a job's pickle)."""
        return replace(self, config=mask_secrets(self.config, self.secret_keys))

    def with_secret_values(self, values: Mapping[str, Any]) -> "Experiment":
        """This experiment with the secrets that its stored config masks put back."""
        return replace(self, config=with_secret_values(self.config, values))

    def absolute_folder(self) -> str:
        """``os.path.abspath(folder)``: where the files go, whichever working directory a stage moved to."""
        prefix = _absolute_prefix(self.out_path)
        return os.path.abspath(self.folder) if prefix is None else prefix + str(self.experiment_id)

    def run_folder(self, run_id: int, root: Optional[str] = None) -> str:
        """Where repetition ``run_id`` works, as text; under ``root`` (the folder, made absolute) if given."""
        folder = self.folder if root is None else root
        return folder if self.repetitions == 1 else f"{folder}/{run_id}"

    def stage_config(self, run_id: int) -> Dict[str, Any]:
        """The cfg that pre, fit and post of repetition ``run_id`` receive (a fresh copy)."""
        folder = self.run_folder(run_id)
        if self._mentions_output_dir:
            cfg = with_output_dir(self.config, os.path.abspath(folder))
        else:
            cfg = copy_plain(self.config)  # a fresh copy: the keys below go into it, not into a second one
        if type(cfg) is not dict:  # a config given as another kind of mapping: the stages get a dict
            cfg = dict(cfg)
        cfg["experiment_id"] = self.experiment_id
        cfg["out_path"] = folder
        cfg["run_id"] = run_id
        return cfg


#: The names of an Experiment's fields: what its pickle holds.
_EXPERIMENT_FIELDS = tuple(experiment_field.name for experiment_field in fields(Experiment))


@functools.lru_cache(maxsize=1)
def _host_name() -> str:
    """This machine's name, asked once per process (an Outcome is made per experiment).

    ``uname``'s node name is what ``socket.gethostname()`` returns (glibc's gethostname
    reads it), without importing the socket module into every worker; where there is no
    ``os.uname`` (Windows), it is asked of the socket module.
    """
    if not hasattr(os, "uname"):
        import socket

        return socket.gethostname()
    return os.uname().nodename


@functools.lru_cache(maxsize=64)
def _folder_prefix(out_path: str) -> str:
    """What precedes a child's name in ``out_path`` as pathlib spells it (``./a//b`` -> ``a/b/``, ``.`` -> ``''``).

    So the files keep naming folders as ``str(Path(out_path) / name)`` does, at the cost of a concatenation,
    spelt as pathlib spells a POSIX path (empty and ``.`` parts dropped; a leading ``//``, exactly two, kept), so
    that a worker never imports pathlib.
    """
    if os.sep != "/":  # drives and backslashes (Windows): pathlib's own spelling
        from pathlib import Path

        return str(Path(out_path) / "x")[:-1]
    parts = "".join(f"{part}/" for part in out_path.split("/") if part and part != ".")
    if not out_path.startswith("/"):
        return parts
    return ("//" if out_path.startswith("//") and not out_path.startswith("///") else "/") + parts


@functools.lru_cache(maxsize=64)
def _absolute_prefix(out_path: str) -> Optional[str]:
    """:func:`_folder_prefix` made absolute, for an absolute ``out_path`` (the working directory plays no part): the
    prefix of ``os.path.abspath`` of a child, at the cost of a concatenation; None for a relative ``out_path``."""
    prefix = _folder_prefix(out_path)
    return os.path.abspath(prefix + "x")[:-1] if os.path.isabs(prefix) else None


def config_hash(config: Dict[str, Any]) -> str:
    import hashlib  # here: the driver hashes configs, a worker never does (its OpenSSL binding takes milliseconds)

    return hashlib.sha256(_hash_text(config).encode("utf-8")).hexdigest()[:16]


#: The text a config hash is of: ``json.dumps(config, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
#: allow_nan=True)``, with its encoder made once.
_hash_text = json_encoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=True)


@dataclass
class Outcome:
    """What a launcher yields for one attempt at one experiment."""

    experiment_id: int
    status: str
    scores: Optional[Dict[str, Any]] = None
    run_id: Optional[int] = None
    error_type: Optional[str] = None
    message: Optional[str] = None
    traceback: Optional[str] = None
    exit_code: Optional[int] = None
    host: str = field(default_factory=_host_name)
    duration: float = 0.0
    #: Set when the attempt failed because a disk (or a quota) was full, saying which file if the error did:
    #: the driver then stops the run instead of recording a failure that no experiment could avoid.
    disk_full: Optional[str] = None
    #: A finished experiment's record (config.json's text), set by a backend whose worker ran the very experiment
    #: the driver holds (backend=multiprocessing): the driver's results line is this text with the scores added,
    #: so the driver does not encode the config again. None: the driver makes the text itself.
    record: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled as its fields' values in order: half the bytes and time of a dataclass's own pickle, paid once per
        experiment by a process backend's worker, and in reading it by the driver. So a new field goes last: an
        Outcome of an earlier version then reads with the new field's default."""
        return type(self), _outcome_values(self)

    @classmethod
    def failure(
        cls,
        experiment_id: int,
        status: str,
        message: str,
        *,
        error_type: Optional[str] = None,
        run_id: Optional[int] = None,
        traceback_text: Optional[str] = None,
        exit_code: Optional[int] = None,
        duration: float = 0.0,
    ) -> "Outcome":
        """A failure seen from outside the experiment (timeout, crash, cancel)."""
        return cls(
            experiment_id,
            status,
            run_id=run_id,
            error_type=error_type,
            message=message,
            traceback=traceback_text,
            exit_code=exit_code,
            duration=duration,
        )


#: An Outcome's field values, in the order its constructor takes them.
_outcome_values = operator.attrgetter(*(outcome_field.name for outcome_field in fields(Outcome)))


def run_experiment(
    experiment: Experiment, stages: Stages, capture: Capture = tee_python_streams, isolated: bool = False
) -> Outcome:
    """Run all repetitions of ``experiment``; a raising stage becomes an ``error`` Outcome.

    ``capture(stdout_path, stderr_path)`` is a context manager that sends what
    the stages print to the repetition's log files; backends choose how.
    ``isolated``: the experiment runs in a process of its own, out of reach of
    the user's Ctrl-C (see :func:`_is_the_stages_failure`).
    """
    with running(experiment.experiment_id):
        return _run_repetitions(experiment, stages, capture, isolated)


def _run_repetitions(experiment: Experiment, stages: Stages, capture: Capture, isolated: bool) -> Outcome:
    started = time.perf_counter()
    run_id: Optional[int] = None
    root = experiment.absolute_folder()  # a stage may change the working directory; the logs come after
    stderr = f"{experiment.run_folder(0, root)}/{STDERR_LOG}"
    try:
        fresh = make_folder(root)
        write_config(f"{root}/{CONFIG_FILE}", experiment.record_text(), fresh)
        per_repetition = []
        for run_id in range(experiment.repetitions):
            cfg = experiment.stage_config(run_id)
            folder = experiment.run_folder(run_id, root)
            if experiment.repetitions > 1:
                fresh = make_folder(folder)
                stored = to_jsonable(cfg) if experiment.holds_non_json else cfg  # NaN as null, keys as text
                config = dumps(mask_secrets(stored, experiment.secret_keys))
                write_config(f"{folder}/{CONFIG_FILE}", config, fresh)
            stdout, stderr = f"{folder}/{STDOUT_LOG}", f"{folder}/{STDERR_LOG}"
            if not fresh:  # a retry or a resumed run: what an earlier attempt printed may be there
                mark_new_attempt(stdout, stderr, metrics=f"{folder}/{METRICS_FILE}")
            with capture(stdout, stderr), _working_directory(cfg, experiment.chdir), repetition_running(folder, run_id):
                per_repetition.append(run_stages(stages, cfg))
        scores = aggregate_scores(per_repetition)
    except BaseException as error:
        if not _is_the_stages_failure(error, isolated):
            raise
        secrets = experiment.secret_values()  # a stage's message may quote one: *** in every record of it
        trace, message = mask_secret_texts(_user_traceback(error), secrets), mask_secret_texts(str(error), secrets)
        pruned = stopped_early(error)  # no failure: a one-line note in the log, not a traceback
        append_to_log(stderr, f"{PRUNED}: stopped early ({type(error).__name__}: {message})\n" if pruned else trace)
        return Outcome(
            experiment.experiment_id,
            PRUNED if pruned else ERROR,
            run_id=run_id,
            error_type=type(error).__name__,
            message=message,
            traceback=trace,
            duration=time.perf_counter() - started,
            disk_full=disk_full_text(error),
        )
    return Outcome(experiment.experiment_id, OK, scores=scores, duration=time.perf_counter() - started)


def _working_directory(cfg: Dict[str, Any], chdir: bool) -> ContextManager[Any]:
    """With ``chdir``, the stages run in their folder, ``cfg["out_path"]`` (then absolute); back afterwards."""
    return _in_folder(cfg) if chdir else _UNCHANGED


_UNCHANGED = contextlib.nullcontext()


@contextlib.contextmanager
def _in_folder(cfg: Dict[str, Any]) -> Iterator[None]:
    folder = os.path.abspath(cfg["out_path"])
    cfg["out_path"] = folder
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _is_the_stages_failure(error: BaseException, isolated: bool) -> bool:
    """Whether ``error``, raised while the stages ran, is the experiment's failure (its outcome) rather than the run's.

    An Exception or SystemExit always is. In the driver's own process
    (backend=single) a KeyboardInterrupt is the user's Ctrl-C, which stops
    the run, and ExperimentTimeout is the backend's timeout. An isolated
    process (a process backend's worker, in a process group, job or machine
    of its own) is out of reach of the terminal's Ctrl-C and is stopped by
    killing it, so a KeyboardInterrupt there, or any other BaseException,
    comes from the stage itself: its failure, and the worker goes on.
    """
    if isinstance(error, (Exception, SystemExit)):
        return True
    return isolated and not isinstance(error, ExperimentTimeout)


def _user_traceback(error: BaseException) -> str:
    """The traceback from the user's stage on, without this module's frames."""
    import traceback  # here: formatted only when a stage failed (run_isolated imports it before a memory limit)

    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb or error.__traceback__))


def run_stages(stages: Stages, cfg: Dict[str, Any]) -> Dict[str, Any]:
    """pre -> fit -> post for one repetition; the scores with ``fit_time`` added."""
    pre, fit, post = stages.pre, stages.fit, stages.post
    pre_dictconfig, fit_dictconfig, post_dictconfig, fit_alone = stages.calls
    returned_by_pre = pre(as_dictconfig(cfg) if pre_dictconfig else cfg) if pre is not None else None
    fit_started = time.perf_counter()
    if fit_alone:
        returned_by_fit = fit(as_dictconfig(cfg) if fit_dictconfig else cfg)
    else:
        returned_by_fit = fit(as_dictconfig(cfg) if fit_dictconfig else cfg, returned_by_pre)
    fit_time = time.perf_counter() - fit_started
    scores = post(as_dictconfig(cfg) if post_dictconfig else cfg, returned_by_fit) if post is not None else {}
    if scores is None:
        scores = {}
    if not isinstance(scores, dict):
        raise TypeError(f"post must return a dict of metrics, got {type(scores).__name__}: {scores!r:.80}")
    if "fit_time" in scores:
        raise ValueError("post returned 'fit_time', which the runner measures and sets itself: rename that metric")
    scores = to_jsonable(dict(scores), "scores") if scores else {}
    scores["fit_time"] = fit_time
    return scores
