"""Report: the recorded results as DataFrames, tables and plots.

Two layers. The first reads the out_path tree with the standard library only
(:class:`RunRecords`, :func:`metric_stats`, :func:`top_experiments`), so the
driver can use it for its end-of-run summary. The second builds DataFrames,
text tables and plots (the plots in :mod:`experiment_runner.report_plot`);
pandas and matplotlib are imported inside its functions only, so
``import experiment_runner.report`` stays cheap.

Metrics are summarized per experiment as ``mean_<M>`` and ``std_<M>``, the
names the store uses for repetitions > 1; with one repetition the mean is the
value and the std is missing (not 0: there is no spread to report).
"""
from __future__ import annotations

import contextlib
import dataclasses
import heapq
import html
import json
import math
import numbers
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .errors import ExperimentRunnerError, MissingDependencyError, NoResultsError, ReportError
from .store import RunPaths, read_jsonl

__all__ = [
    "read_results",
    "varying_parameters",
    "summarize_results",
    "results_table",
    "format_table",
    "plot_metric",
    "experiments_without",
    "experiments_with_null",
    "experiments_without_number",
    "sort_order",
    "lower_is_better",
    "RunRecords",
    "TABLE_FORMATS",
    "FAILURE_COLUMNS",
]

#: Output formats of :func:`format_table`.
TABLE_FORMATS = ("table", "markdown", "csv", "html")

#: Keys of a results.jsonl line that are not the user's configuration.
_RECORD_KEYS = ("experiment_id", "out_path", "scores")

#: The fields of a failures.jsonl line, besides ``config.*``: the columns of read_results(..., failures=True).
FAILURE_COLUMNS = ("experiment_id", "run_id", "attempt", "status", "error_type", "message", "exit_code", "host",
                   "duration", "time", "stdout", "stderr", "traceback")

PathLike = Union[str, Path]
#: (mean, std): the mean an int for whole numbers of ints (see :func:`metric_stat`).
Stat = Tuple[Union[int, float], Optional[float]]


# --- the tree, read with the standard library ---------------------------------------------------


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

    @classmethod
    def load(cls, path: PathLike) -> "RunRecords":
        paths = RunPaths(_run_root(path))
        with _reading(paths.root):
            if not paths.results.exists():
                raise NoResultsError(f"no {paths.results.name} in '{paths.root}': is it the out_path of a run?")
            results = {line["experiment_id"]: line for line in read_jsonl(paths.results)}
            configs = {line["experiment_id"]: line["config"] for line in read_jsonl(paths.experiments)}
            if not configs:  # a tree without experiments.jsonl: the finished experiments are all we know
                configs = {i: _config_of(line) for i, line in results.items()}
            failed = {line["experiment_id"] for line in read_jsonl(paths.failures)} - set(results)
        return cls(paths.root, results, configs, failed)

    @property
    def failures_file(self) -> Path:
        return RunPaths(self.root).failures

    @property
    def total(self) -> int:
        return len(set(self.configs) | set(self.results) | self.failed_ids)

    @property
    def missing(self) -> int:
        """Experiments neither finished nor failed: still running, queued, or never run."""
        return self.total - len(self.results) - len(self.failed_ids)

    def status_line(self) -> str:
        """How far the run got, e.g. ``'8 of 10 experiments finished, 1 failed (see ...), 1 not finished'``."""
        text = f"{self.root}: {len(self.results)} of {self.total} experiments finished"
        if self.failed_ids:
            text += f", {len(self.failed_ids)} failed (see {self.failures_file})"
        if self.missing:
            text += f", {self.missing} not finished yet (still running, or resume the run)"
        return text

    def require_results(self) -> None:
        if not self.results:
            raise NoResultsError(f"no finished experiments yet in {self.status_line()}")


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """An OSError while reading the run at ``path`` (a name too long, no permission) as one line."""
    try:
        yield
    except OSError as error:
        if isinstance(error, ExperimentRunnerError):
            raise
        raise ReportError(f"cannot read '{error.filename or path}': {error.strerror or error}") from error


def _config_of(record: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in record.items() if key not in _RECORD_KEYS}


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


def _is_number(value: Any) -> bool:
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
        if not _is_number(mean):
            return None
        whole = _whole_mean(value)
        return float(mean) if whole is None else whole, float(std) if _is_number(std) else None
    if _is_int(value):
        return value, None
    return (float(value), None) if _is_number(value) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _whole_mean(values: List[Any]) -> Optional[int]:
    """The mean of ``values`` if they are all ints and it is a whole number (exact, however large); else None."""
    if not values or not all(_is_int(v) for v in values):
        return None
    total = sum(values)
    return total // len(values) if total % len(values) == 0 else None


def repetition_values(scores: Mapping[str, Any], metric: str) -> List[float]:
    """The finite values of ``metric``, one per repetition."""
    value = scores.get(metric)
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if _is_number(v)]


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
    if not _is_int(mean) and math.isnan(mean):
        return ""
    spec = _number_format(mean, decimals)
    text = str(int(mean)) if _is_int(mean) else format(mean, spec)
    return text if std is None or math.isnan(std) else f"{text} ± {format(std, spec)}"


def _number_format(value: Union[int, float], decimals: Optional[int]) -> str:
    """The format spec of ``value`` as :func:`format_stat` writes it."""
    if _is_int(value):
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
        config = flatten(_config_of(record))
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


# --- DataFrames, tables, plots --------------------------------------------------------------------


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as error:
        raise MissingDependencyError(
            "reading results into a DataFrame needs pandas: pip install 'experiment-runner[pandas]'"
        ) from error
    return pandas


def read_results(path: PathLike, failures: bool = False) -> Any:
    """results.jsonl (or failures.jsonl with ``failures=True``) as a flat DataFrame.

    ``path`` is a run's out_path or the .jsonl file itself. Columns are
    flattened like ``pandas.json_normalize``: scores appear as
    ``scores.<metric>``, nested config keys as ``a.b``. Works on a run still
    in progress: a line being written is not read. Failures without any line
    are an empty frame with the columns failures would have: those of
    :data:`FAILURE_COLUMNS`, then ``config.<key>`` for the keys of the
    run's experiments (from experiments.jsonl).
    """
    pandas = _pandas()
    path = Path(path)
    with _reading(path):
        if path.is_dir():
            paths = RunPaths(path)
            path = paths.failures if failures else paths.results
        if not path.exists():
            raise NoResultsError(f"no {path.name} in '{path.parent}': is it the out_path of a run?")
        records = list(read_jsonl(path))
    if not records and path.name == RunPaths(path.parent).failures.name:
        return pandas.DataFrame(columns=[*FAILURE_COLUMNS, *_failure_config_columns(RunPaths(path.parent))])
    return pandas.json_normalize(records)


def _failure_config_columns(paths: RunPaths) -> List[str]:
    """The ``config.<key>`` columns that failures of this run's experiments would have, in the same order.

    A failure holds the experiment's config with its experiment_id and
    out_path; nested keys are dotted and an empty dict has no column, as
    pandas.json_normalize writes them.
    """
    names: Dict[str, None] = {}
    for line in read_jsonl(paths.experiments):
        config = flatten({**line["config"], "experiment_id": line["experiment_id"], "out_path": ""})
        names.update(dict.fromkeys(key for key, value in config.items() if value != {}))
    return [f"config.{name}" for name in names]


def _hashable(value: Any) -> Any:
    """A list or dict config value as its JSON text, so it can be compared, grouped and shown; NaN as None."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _sort_key(value: Any) -> Tuple[int, Any]:
    """Numbers in numeric order, then everything else by its text (None last)."""
    if _is_number(value):
        return (0, value)
    return (2, "") if value is None else (1, str(value))


def _flat_configs(run: RunRecords) -> Dict[int, Dict[str, Any]]:
    return {i: {k: _hashable(v) for k, v in flatten(config).items()} for i, config in run.configs.items()}


def _params_frame(run: RunRecords) -> Any:
    """One row per planned experiment (index experiment_id), one column per flattened config key.

    Values stay Python objects (dtype object), so an int stays an int even
    where another experiment lacks the key.
    """
    pandas = _pandas()
    configs = _flat_configs(run)
    ids = sorted(configs)
    frame = pandas.DataFrame([configs[i] for i in ids], index=ids, dtype=object)
    return frame.rename_axis("experiment_id")


def _varying(frame: Any) -> List[str]:
    return [name for name in frame.columns if frame[name].map(_cell_identity).nunique() > 1]


def _cell_identity(value: Any) -> Tuple[Any, ...]:
    """What tells two cells of a parameter apart: a missing parameter (NaN) and a null one differ from values."""
    if _is_missing(value):
        return ("missing",)
    return ("null",) if value is None else ("value", _hashable(value))


def _is_missing(value: Any) -> bool:
    """A cell of a parameter the experiment does not have: NaN where the frame has no value (None is null)."""
    return isinstance(value, float) and math.isnan(value)


def varying_parameters(results: Union[PathLike, Any]) -> List[str]:
    """The configuration keys whose values differ across the sweep, in config order.

    ``results`` is a run's out_path (every planned experiment counts, so a run
    in progress shows the same parameters as the finished one) or a DataFrame
    from :func:`read_results` (its ``scores.*``, ``experiment_id`` and
    ``out_path`` columns are not parameters).
    """
    if isinstance(results, (str, Path)):
        return _varying(_params_frame(RunRecords.load(results)))
    columns = [c for c in results.columns if c not in _RECORD_KEYS and not str(c).startswith("scores.")]
    return _varying(results[columns])


def _records(run: Union[PathLike, RunRecords]) -> RunRecords:
    return run if isinstance(run, RunRecords) else RunRecords.load(run)


def _check_name(name: str, available: Sequence[str], what: str, role: str) -> None:
    """``role`` says what the name was given for: 'to sort by', 'for x', ..."""
    if name not in available:
        raise ReportError(
            f"unknown {what} {name!r} {role}; the {what}s of this run are: {', '.join(available) or 'none'}"
        )


def _stats_frame(run: RunRecords, metrics: Sequence[str]) -> Any:
    """``mean_<M>``/``std_<M>`` per finished experiment (index experiment_id); NaN where missing.

    The stds are floats. A mean column keeps the ints of :func:`metric_stat`
    (dtype int64, or object beside floats and NaN), so the table and the CSV
    write a count as ``12580`` and only a float with a point.
    """
    pandas = _pandas()
    columns: Dict[str, List[Any]] = {f"{kind}_{name}": [] for name in metrics for kind in ("mean", "std")}
    for record in run.results.values():
        stats = metric_stats(record.get("scores") or {})
        for name in metrics:
            mean, std = stats.get(name, (math.nan, None))
            columns[f"mean_{name}"].append(mean)
            columns[f"std_{name}"].append(math.nan if std is None else std)
    index = list(run.results)
    return pandas.DataFrame({name: _number_column(values, index) for name, values in columns.items()}, index=index)


def _number_column(values: List[Any], index: List[int]) -> Any:
    """int64 for ints alone (that fit), float for floats and NaN, else Python numbers (dtype object)."""
    pandas = _pandas()
    if values and all(_is_int(value) and -2**63 <= value < 2**63 for value in values):
        return pandas.Series(values, index=index, dtype="int64")
    return pandas.Series(values, index=index, dtype=object if any(map(_is_int, values)) else float)


def sort_order(run: Union[PathLike, RunRecords], sort: Optional[str] = None,
               ascending: Optional[bool] = None) -> Tuple[str, bool]:
    """The metric to sort by (default: the first one ``post`` returns) and whether lowest comes first.

    ``ascending=None`` decides by the metric's name (:func:`lower_is_better`),
    so the best experiments come first for an accuracy and for a loss alike.
    """
    run = _records(run)
    run.require_results()
    metrics = ordered_metrics(run.results.values())
    if not metrics:
        raise NoResultsError(f"the results in '{run.root}' hold no numeric metric to report")
    sort = metrics[0] if sort is None else sort
    _check_name(sort, metrics, "metric", "to sort by")
    return sort, lower_is_better(sort) if ascending is None else ascending


def summarize_results(
    run: Union[PathLike, RunRecords],
    *,
    sort: Optional[str] = None,
    ascending: Optional[bool] = None,
    top: Optional[int] = None,
    best_per: Optional[str] = None,
) -> Any:
    """The finished experiments as numbers: ``experiment_id``, varying parameters, ``mean_<M>``, ``std_<M>``.

    Rows are sorted by the mean of metric ``sort``, best first (see
    :func:`sort_order`; ``ascending`` True or False sets the order); experiments
    without a value come last, ties in experiment_id order. ``best_per=P``
    keeps the best experiment for each value of parameter P (P is shown even
    if constant); then ``top`` keeps the first N rows. A mean is an int where
    the metric's values are ints with a whole mean (see :func:`metric_stat`).
    """
    run = _records(run)
    sort, ascending = sort_order(run, sort, ascending)
    metrics = ordered_metrics(run.results.values())
    params = _params_frame(run)
    if best_per is not None:
        _check_name(best_per, list(params.columns), "parameter", "for best-per")
    varying = _varying(params)
    shown = [c for c in params.columns if c in varying or c == best_per]
    frame = params[shown].join(_stats_frame(run, metrics), how="inner").sort_index()
    frame = frame.sort_values(f"mean_{sort}", ascending=ascending, na_position="last", kind="stable")
    if best_per is not None:
        frame = frame.drop_duplicates(subset=[best_per], keep="first")
    if top is not None:
        frame = frame.head(top)
    return frame.reset_index()


def _format_param(value: Any) -> str:
    """A parameter's cell: empty where the experiment has no such parameter, ``null`` (JSON's word) where it is null."""
    if _is_missing(value):
        return ""
    return "null" if value is None else str(value)


def _is_stat_column(column: Any) -> bool:
    return str(column).startswith(("mean_", "std_"))


def results_table(
    run: Union[PathLike, RunRecords, Any],
    *,
    sort: Optional[str] = None,
    ascending: Optional[bool] = None,
    top: Optional[int] = None,
    best_per: Optional[str] = None,
    decimals: Optional[int] = None,
) -> Any:
    """The table people read: varying parameters and one ``mean ± std`` column per metric, as strings.

    ``run`` is an out_path, a :class:`RunRecords`, or a frame from
    :func:`summarize_results` (then it is only formatted, not selected again).
    Metrics show ``decimals`` digits after the point (default: 4 significant
    digits, so a loss of 1e-5 and an accuracy of 0.93 both stay readable); a
    metric of one repetition shows its value alone.
    """
    summary = run
    if isinstance(run, (str, Path, RunRecords)):
        summary = summarize_results(run, sort=sort, ascending=ascending, top=top, best_per=best_per)
    table = summary[[c for c in summary.columns if not _is_stat_column(c)]].copy()
    for column in table.columns.drop("experiment_id"):
        table[column] = table[column].map(_format_param)
    for column in summary.columns:
        if str(column).startswith("mean_"):
            name = column[len("mean_"):]
            pairs = zip(summary[column], summary[f"std_{name}"])
            table[name] = [format_stat(mean, std, decimals) for mean, std in pairs]
    return table


def csv_frame(summary: Any, decimals: Optional[int] = None) -> Any:
    """A frame from :func:`summarize_results` as the CSV writes it.

    Metric columns are rounded to ``decimals`` (None: as recorded; ints stay
    ints), and a null parameter is ``null`` while a missing one stays empty,
    as in the table.
    """
    frame = summary.copy()
    for column in frame.columns:
        if not _is_stat_column(column):
            frame[column] = frame[column].map(lambda value: "null" if value is None else value)
        elif decimals is not None:
            frame[column] = frame[column].map(lambda value: value if _is_int(value) else round(value, decimals))
    return frame


def format_table(table: Any, fmt: str = "table", title: str = "", note: str = "") -> str:
    """A table from :func:`results_table` as text: ``table`` (terminal), ``markdown``, ``csv`` or ``html``.

    ``html`` is a whole page, with ``title`` as its heading and ``note`` (such
    as :meth:`RunRecords.status_line`) above the table; the other formats are the table alone.
    """
    if fmt not in TABLE_FORMATS:
        raise ReportError(f"unknown format {fmt!r}: expected one of {', '.join(TABLE_FORMATS)}")
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "markdown":
        return _markdown(table)
    if fmt == "html":
        return _html_page(table, title, note)
    return table.to_string(index=False) + "\n"


def _markdown(table: Any) -> str:
    def row(cells: Iterable[Any]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = [row(table.columns), row("---" for _ in table.columns)]
    lines += [row(values) for values in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 0.3em 0.8em; border-bottom: 1px solid #ccc; text-align: right; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{note}</p>
{table}
</body>
</html>
"""


def _html_page(table: Any, title: str, note: str) -> str:
    body = table.to_html(index=False, border=0, classes="results")
    return _PAGE.format(title=html.escape(title or "results"), note=html.escape(note), table=body)



# --- plots: in report_plot.py ---------------------------------------------------------------------

#: The names of report_plot that this module still offers. report_plot imports this module, so they are
#: looked up when first asked for (PEP 562): either module can be imported first.
_PLOT_NAMES = ("plot_metric", "experiments_without", "experiments_with_null", "experiments_without_number")

if TYPE_CHECKING:
    from .report_plot import experiments_with_null, experiments_without, experiments_without_number, plot_metric


def __getattr__(name: str) -> Any:
    if name in _PLOT_NAMES:
        from . import report_plot

        value = getattr(report_plot, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
