"""Report: the recorded results as DataFrames, tables and plots.

Built on :mod:`experiment_runner.report_records`, which reads the out_path
tree with the standard library only (runs, metrics and their statistics, the
driver's end-of-run summary). Here: DataFrames, text tables and plots (the
plots in :mod:`experiment_runner.report_plot`); pandas and matplotlib are
imported inside its functions only, so ``import experiment_runner.report``
stays cheap.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import MissingDependencyError, NoResultsError, ReportError
from .report_records import RECORD_KEYS, PathLike, RunRecords, flatten, format_stat, is_int
from .report_records import lower_is_better, metric_stats, ordered_metrics, reading
from .report_records import check_name, flat_configs, format_param, hashable, is_missing, metrics_records, records_of
from .run_files import RunPaths, read_jsonl

__all__ = [
    "read_results",
    "read_metrics",
    "varying_parameters",
    "summarize_results",
    "results_table",
    "format_table",
    "plot_metric",
    "plot_learning_curves",
    "curve_metrics",
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


#: The fields of a failures.jsonl line, besides ``config.*``: the columns of read_results(..., failures=True).
FAILURE_COLUMNS = ("experiment_id", "run_id", "attempt", "status", "error_type", "message", "exit_code", "host",
                   "duration", "time", "stdout", "stderr", "traceback")


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
    with reading(path):
        if path.is_dir():
            paths = RunPaths(path)
            path = paths.failures if failures else paths.results
        if not path.exists():
            raise NoResultsError(f"no {path.name} in '{path.parent}': is it the out_path of a run?")
        records = list(read_jsonl(path))
    if not records and path.name == RunPaths(path.parent).failures.name:
        return pandas.DataFrame(columns=[*FAILURE_COLUMNS, *_failure_config_columns(RunPaths(path.parent))])
    return pandas.json_normalize(records)


def read_metrics(path: PathLike) -> Any:
    """The intermediate metrics the run's experiments reported (``report_metrics``) as one DataFrame.

    ``path`` is a run's out_path. One row per metrics.jsonl line: columns
    ``experiment_id``, ``run_id``, ``step``, ``time`` (seconds since the
    repetition started), then one per metric (NaN where a line lacks it, or
    recorded null for NaN or an infinity), in experiment, repetition and
    reporting order. Works on a run in progress: a line being written is not
    read. A run without metrics is an empty frame with the first four columns.
    """
    pandas = _pandas()
    frame = pandas.DataFrame.from_records(metrics_records(path))
    if not len(frame.columns):
        return pandas.DataFrame(columns=["experiment_id", "run_id", "step", "time"])
    for column in frame.columns[4:]:
        if frame[column].isna().all():  # only nulls (NaN or infinities reported): a float column all the same
            frame[column] = frame[column].astype(float)
    return frame


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


def _params_frame(run: RunRecords) -> Any:
    """One row per planned experiment (index experiment_id), one column per flattened config key.

    Values stay Python objects (dtype object), so an int stays an int even
    where another experiment lacks the key.
    """
    pandas = _pandas()
    configs = flat_configs(run)
    ids = sorted(configs)
    frame = pandas.DataFrame([configs[i] for i in ids], index=ids, dtype=object)
    return frame.rename_axis("experiment_id")


def _varying(frame: Any) -> List[str]:
    return [name for name in frame.columns if frame[name].map(_cell_identity).nunique() > 1]


def _cell_identity(value: Any) -> Tuple[Any, ...]:
    """What tells two cells of a parameter apart: a missing parameter (NaN) and a null one differ from values."""
    if is_missing(value):
        return ("missing",)
    return ("null",) if value is None else ("value", hashable(value))


def varying_parameters(results: Union[PathLike, Any]) -> List[str]:
    """The configuration keys whose values differ across the sweep, in config order.

    ``results`` is a run's out_path (every planned experiment counts, so a run
    in progress shows the same parameters as the finished one) or a DataFrame
    from :func:`read_results` (its ``scores.*``, ``experiment_id`` and
    ``out_path`` columns are not parameters).
    """
    if isinstance(results, (str, Path)):
        return _varying(_params_frame(RunRecords.load(results)))
    columns = [c for c in results.columns if c not in RECORD_KEYS and not str(c).startswith(("scores.", "trial."))]
    return _varying(results[columns])


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
    if values and all(is_int(value) and -2**63 <= value < 2**63 for value in values):
        return pandas.Series(values, index=index, dtype="int64")
    return pandas.Series(values, index=index, dtype=object if any(map(is_int, values)) else float)


def sort_order(run: Union[PathLike, RunRecords], sort: Optional[str] = None,
               ascending: Optional[bool] = None) -> Tuple[str, bool]:
    """The metric to sort by (default: the first one ``post`` returns) and whether lowest comes first.

    ``ascending=None`` decides by the metric's name (:func:`lower_is_better`),
    so the best experiments come first for an accuracy and for a loss alike.
    """
    run = records_of(run)
    run.require_results()
    metrics = ordered_metrics(run.results.values())
    if not metrics:
        raise NoResultsError(f"the results in '{run.root}' hold no numeric metric to report")
    sort = metrics[0] if sort is None else sort
    check_name(sort, metrics, "metric", "to sort by")
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
    run = records_of(run)
    sort, ascending = sort_order(run, sort, ascending)
    metrics = ordered_metrics(run.results.values())
    params = _params_frame(run)
    if best_per is not None:
        check_name(best_per, list(params.columns), "parameter", "for best-per")
    varying = _varying(params)
    shown = [c for c in params.columns if c in varying or c == best_per]
    frame = params[shown].join(_stats_frame(run, metrics), how="inner").sort_index()
    frame = frame.sort_values(f"mean_{sort}", ascending=ascending, na_position="last", kind="stable")
    if best_per is not None:
        frame = frame.drop_duplicates(subset=[best_per], keep="first")
    if top is not None:
        frame = frame.head(top)
    return frame.reset_index()


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
        table[column] = table[column].map(format_param)
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
            frame[column] = frame[column].map(lambda value: value if is_int(value) else round(value, decimals))
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

#: The names of report_plot that this module still offers, looked up when first asked for (PEP 562).
_PLOT_NAMES = ("plot_metric", "experiments_without", "experiments_with_null", "experiments_without_number",
               "plot_learning_curves", "curve_metrics")

if TYPE_CHECKING:
    from .report_plot import curve_metrics, experiments_with_null, experiments_without, experiments_without_number
    from .report_plot import plot_learning_curves, plot_metric


def __getattr__(name: str) -> Any:
    if name in _PLOT_NAMES:
        from . import report_plot

        value = getattr(report_plot, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
