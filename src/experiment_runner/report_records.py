"""The out_path tree's records, read with the standard library: runs, metrics and their statistics.

What the driver's end-of-run summary needs (:func:`top_experiments`,
:func:`format_stat`) and what :mod:`experiment_runner.report` builds its
DataFrames and tables on, without importing pandas. Metrics are summarized
per experiment as ``mean_<M>`` and ``std_<M>``, the names the store uses for
repetitions > 1; with one repetition the mean is the value and the std is
missing (not 0: there is no spread to report).
"""
from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .errors import ExperimentRunnerError, NoResultsError, ReportError
from .metrics import METRICS_FILE, PRUNED
from .run_files import RunPaths, read_jsonl

#: Keys of a results.jsonl line that are not the user's configuration.
RECORD_KEYS = ("experiment_id", "out_path", "scores", "trial")  # trial: an adaptive search's number and state

PathLike = Union[str, Path]
#: (mean, std): the mean an int for whole numbers of ints (see :func:`metric_stat`).
Stat = Tuple[Union[int, float], Optional[float]]


def _run_root(path: PathLike) -> Path:
    """A run's out_path, given the out_path or one of its .jsonl files."""
    path = Path(path)
    return path.parent if path.suffix == ".jsonl" else path


@dataclasses.dataclass
class RunRecords:
    """The lines of one run's results, failures and planned experiments, as recorded so far.

    A run in progress or resumed is read as it stands: a line being written is
    skipped, and an experiment recorded twice keeps its last result.
    """

    root: Path
    results: Dict[int, Dict[str, Any]]
    configs: Dict[int, Dict[str, Any]]
    failed_ids: Set[int]
    #: Experiments an adaptive search stopped early (status pruned in failures.jsonl): not failed.
    pruned_ids: Set[int] = dataclasses.field(default_factory=set)

    @classmethod
    def load(cls, path: PathLike) -> "RunRecords":
        paths = RunPaths(_run_root(path))
        with reading(paths.root):
            if not paths.results.exists():
                raise NoResultsError(f"no {paths.results.name} in '{paths.root}': is it the out_path of a run?")
            results = {line["experiment_id"]: line for line in read_jsonl(paths.results)}
            configs = {line["experiment_id"]: line["config"] for line in read_jsonl(paths.experiments)}
            if not configs:  # a tree without experiments.jsonl: the finished experiments are all we know
                configs = {i: config_of(line) for i, line in results.items()}
            failed, pruned = failed_and_pruned(read_jsonl(paths.failures), set(results))
        return cls(paths.root, results, configs, failed, pruned)

    @property
    def failures_file(self) -> Path:
        return RunPaths(self.root).failures

    @property
    def total(self) -> int:
        return len(set(self.configs) | set(self.results) | self.failed_ids | self.pruned_ids)

    @property
    def missing(self) -> int:
        """Experiments neither finished, pruned nor failed: still running, queued, or never run."""
        return self.total - len(self.results) - len(self.failed_ids) - len(self.pruned_ids)

    def status_line(self) -> str:
        """How far the run got, e.g. ``'8 of 10 experiments finished, 1 failed (see ...), 1 not finished'``."""
        text = f"{self.root}: {len(self.results)} of {self.total} experiments finished"
        if self.pruned_ids:
            text += f", {len(self.pruned_ids)} pruned"
        if self.failed_ids:
            text += f", {len(self.failed_ids)} failed (see {self.failures_file})"
        if self.missing:
            text += f", {self.missing} not finished yet (still running, or resume the run)"
        return text

    def require_results(self) -> None:
        if not self.results:
            raise NoResultsError(f"no finished experiments yet in {self.status_line()}")


def failed_and_pruned(failures: Iterable[Dict[str, Any]], finished: Set[int]) -> Tuple[Set[int], Set[int]]:
    """The ids of failed experiments and of pruned ones (status pruned: stopped on purpose), not finished since."""
    failed: Set[int] = set()
    pruned: Set[int] = set()
    for line in failures:
        (pruned if line.get("status") == PRUNED else failed).add(line["experiment_id"])
    pruned -= finished
    return failed - finished - pruned, pruned


def metrics_files(path: PathLike) -> Iterator[Tuple[int, int, Path]]:
    """(experiment_id, run_id, path) of each metrics.jsonl of the run at ``path``, in experiment and run order.

    ``<id>/metrics.jsonl`` is repetition 0's (one repetition), ``<id>/<rep>/metrics.jsonl`` repetition rep's.
    A file that a symbolic link leads out of the run's folder to is no file of the run, and is left out (the
    server of the page never reads outside the folder it serves).
    """
    root = _run_root(path)
    real_root = Path(os.path.realpath(root))
    for experiment_id, folder in numbered_folders(root):
        for run_id, file in experiment_metrics_files(folder):
            if inside(real_root, file):
                yield experiment_id, run_id, file


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, symbolic links resolved, is ``root`` or lies below it (``root`` is resolved already)."""
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root).rstrip(os.sep) + os.sep)


def experiment_metrics_files(folder: Path) -> Iterator[Tuple[int, Path]]:
    """(run_id, path) of each metrics.jsonl of the experiment in ``folder``, in run order."""
    if (folder / METRICS_FILE).is_file():
        yield 0, folder / METRICS_FILE
    for run_id, repetition in numbered_folders(folder):
        if (repetition / METRICS_FILE).is_file():
            yield run_id, repetition / METRICS_FILE


def numbered_folders(folder: Path) -> List[Tuple[int, Path]]:
    """The subfolders named by a number (experiments of a run, repetitions of an experiment), in number order."""
    with os.scandir(folder) as entries:
        numbered = [(int(entry.name), Path(entry.path)) for entry in entries
                    if entry.name.isdigit() and entry.is_dir()]
    return sorted(numbered)


def metrics_records(path: PathLike) -> Iterator[Dict[str, Any]]:
    """The lines of the run's metrics.jsonl files, each with its experiment_id and run_id first, read as they stream.

    A line being written (a torn last line) is skipped, as in results.jsonl.
    """
    root = _run_root(path)
    with reading(root):
        if not root.is_dir():
            raise NoResultsError(f"no run at '{root}': name the out_path of a run")
        for experiment_id, run_id, file in metrics_files(root):
            for line in read_jsonl(file):
                yield {"experiment_id": experiment_id, "run_id": run_id, **line}


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """An OSError while reading the run at ``path`` (a name too long, no permission) as one line."""
    try:
        yield
    except OSError as error:
        if isinstance(error, ExperimentRunnerError):
            raise
        raise ReportError(f"cannot read '{error.filename or path}': {error.strerror or error}") from error


def config_of(record: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in record.items() if key not in RECORD_KEYS}


def flatten(config: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested dicts as dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``), like pandas.json_normalize."""
    flat: Dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_names(scores: Mapping[str, Any]) -> List[str]:
    """The metrics of one ``scores`` dict, without the ``mean_``/``std_`` keys the runner added."""
    added = {f"{prefix}{name}" for name, value in scores.items() if isinstance(value, list)
             for prefix in ("mean_", "std_")}
    return [name for name in scores if name not in added]


def metric_stats(scores: Mapping[str, Any]) -> Dict[str, Stat]:
    """``{metric: (mean, std)}`` for the numeric metrics of one experiment's ``scores``.

    std is None with one repetition. A metric with a missing or non-finite
    value (the runner then records no mean) or a non-numeric one is left out.
    """
    stats = {name: metric_stat(scores, name) for name in metric_names(scores)}
    return {name: stat for name, stat in stats.items() if stat is not None}


def metric_stat(scores: Mapping[str, Any], metric: str) -> Optional[Stat]:
    """``(mean, std)`` of one metric of ``scores`` as :func:`metric_stats` gives it; None if it has none.

    The mean is an int when the metric is whole numbers (ints in results.jsonl)
    whose mean is whole too, so that a count is shown as a count; else a float.
    """
    value = scores.get(metric)
    if isinstance(value, list):
        mean, std = scores.get(f"mean_{metric}"), scores.get(f"std_{metric}")
        if not is_number(mean):
            return None
        whole = _whole_mean(value)
        return float(mean) if whole is None else whole, float(std) if is_number(std) else None
    if is_int(value):
        return value, None
    return (float(value), None) if is_number(value) else None


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _whole_mean(values: List[Any]) -> Optional[int]:
    """The mean of ``values`` if they are all ints and it is a whole number (exact, however large); else None."""
    if not values or not all(is_int(v) for v in values):
        return None
    total = sum(values)
    return total // len(values) if total % len(values) == 0 else None


def repetition_values(scores: Mapping[str, Any], metric: str) -> List[float]:
    """The finite values of ``metric``, one per repetition."""
    value = scores.get(metric)
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if is_number(v)]


def ordered_metrics(records: Iterable[Mapping[str, Any]]) -> List[str]:
    """The numeric metrics of all records in the order ``post`` returned them; ``fit_time`` last."""
    names: Dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(metric_stats(record.get("scores") or {})))
    return sorted(names, key=lambda name: name == "fit_time")


#: Words of a metric's name that say lower is better (test_mse, val_loss, error_rate, fit_time),
#: whole or, for the first group, as the end of a word (logloss, runtime, walltime).
_LOWER_ENDINGS = ("loss", "error", "err", "time", "cost", "regret", "latency", "perplexity", "distance")
_LOWER_WORDS = {"mse", "mae", "rmse", "rmsle", "msle", "mape", "smape", "nll", "wer", "cer", "ece", "bpc", "bpd"}


def _words(name: str) -> List[str]:
    """``valLoss`` -> [val, loss]; ``testMSE_2`` -> [test, mse, 2]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


def lower_is_better(metric: str) -> bool:
    """Whether the best experiments have the lowest ``metric``, guessed from its name (accuracy: no, loss: yes)."""
    for word in _words(metric):
        forms = {word, word[:-1] if word.endswith("s") else word, word[:-2] if word.endswith("es") else word}
        if forms & _LOWER_WORDS or any(form.endswith(_LOWER_ENDINGS) for form in forms):
            return True
    return False


def format_stat(mean: Union[int, float], std: Optional[float], decimals: Optional[int] = None) -> str:
    """``mean ± std``, the std written with the mean's precision so that the two line up.

    An int (a whole number of ints, see :func:`metric_stat`) is written in
    full without a point (``12580``), whatever ``decimals`` says. Any other
    number has ``decimals`` digits after the point, or by default 4
    significant digits with at least one after the point, never an exponent
    from 0.0001 to 1e15 (``0.9100``, ``1.000``, ``12580.7``, ``3000000.5``):
    a float never reads as a whole number.
    """
    if not is_int(mean) and math.isnan(mean):
        return ""
    spec = _number_format(mean, decimals)
    text = str(int(mean)) if is_int(mean) else format(mean, spec)
    return text if std is None or math.isnan(std) else f"{text} ± {format(std, spec)}"


def _number_format(value: Union[int, float], decimals: Optional[int]) -> str:
    """The format spec of ``value`` as :func:`format_stat` writes it."""
    if is_int(value):
        return ".0f"
    if decimals is not None:
        return f".{decimals}f"
    exponent = int(format(value, ".3e").split("e")[1])  # of the value rounded to 4 significant digits
    if exponent < -4 or exponent >= 15:
        return ".3e"
    return f".{max(1, 3 - exponent)}f"


@dataclasses.dataclass(frozen=True)
class TopExperiment:
    experiment_id: int
    mean: float
    std: Optional[float]
    params: Dict[str, Any]


def top_experiments(results_file: PathLike, n: int = 3) -> Tuple[Optional[str], List[TopExperiment]]:
    """The first metric of the run and its ``n`` best experiments, best first.

    Best is the highest mean, or the lowest for a metric whose name says lower
    is better (:func:`lower_is_better`). Streams the file once with json and
    keeps only ``n`` candidates, so the driver can call it at the end of any
    run. ``params`` holds the config keys that vary across the file's experiments.
    """
    metric: Optional[str] = None
    first: Optional[Dict[str, Any]] = None
    varying: Set[str] = set()
    candidates: List[Tuple[float, int, int, TopExperiment]] = []
    for line_number, record in enumerate(read_jsonl(Path(results_file))):
        config = flatten(config_of(record))
        first = config if first is None else first
        varying.update(key for key in set(config) | set(first) if config.get(key) != first.get(key))
        metric = metric or next(iter(ordered_metrics([record])), None)
        stat = metric_stat(record.get("scores") or {}, metric) if metric else None
        if stat is not None:
            entry = TopExperiment(record["experiment_id"], *stat, config)
            score = -entry.mean if lower_is_better(metric) else entry.mean
            # ties go to the lower id; line_number keeps the tuples comparable
            candidate = (score, -entry.experiment_id, -line_number, entry)
            if len(candidates) < n:
                heapq.heappush(candidates, candidate)
            else:
                heapq.heappushpop(candidates, candidate)
    best = [entry for *_, entry in sorted(candidates, reverse=True)]
    return metric, [dataclasses.replace(e, params={k: v for k, v in e.params.items() if k in varying}) for e in best]


def hashable(value: Any) -> Any:
    """A list or dict config value as its JSON text, so it can be compared, grouped and shown; NaN as None."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def sort_key(value: Any) -> Tuple[int, Any]:
    """Numbers in numeric order, then everything else by its text (None last)."""
    if is_number(value):
        return (0, value)
    return (2, "") if value is None else (1, str(value))


def flat_configs(run: RunRecords) -> Dict[int, Dict[str, Any]]:
    return {i: {k: hashable(v) for k, v in flatten(config).items()} for i, config in run.configs.items()}


def records_of(run: Union[PathLike, RunRecords]) -> RunRecords:
    return run if isinstance(run, RunRecords) else RunRecords.load(run)


def check_name(name: str, available: Sequence[str], what: str, role: str) -> None:
    """``role`` says what the name was given for: 'to sort by', 'for x', ..."""
    if name not in available:
        raise ReportError(
            f"unknown {what} {name!r} {role}; the {what}s of this run are: {', '.join(available) or 'none'}"
        )


def is_missing(value: Any) -> bool:
    """A cell of a parameter the experiment does not have: NaN where the frame has no value (None is null)."""
    return isinstance(value, float) and math.isnan(value)


def format_param(value: Any) -> str:
    """A parameter's cell: empty where the experiment has no such parameter, ``null`` (JSON's word) where it is null."""
    if is_missing(value):
        return ""
    return "null" if value is None else str(value)
