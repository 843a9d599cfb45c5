"""The plot endpoints of the page: /api/plot, /api/parallel, /api/curves and /api/compare.

Their numbers come from :mod:`experiment_runner.report_plot`, the functions
``experiment-runner report --plot`` draws with, applied to the records the
server keeps of each run (:class:`~.run_view.RunView`), so that the page and
the report plot the same points. Answers are kept until the run's records change.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import NoResultsError
from ..report_plot import MetricPlot, curve_selection, curves_title, mean_line, metric_plot, varying_names
from ..report_records import RunRecords, flat_configs, format_param, is_number, lower_is_better, metric_stat
from ..report_records import metrics_files, sort_key
from .run_view import RunView
from .site import Query, RequestError, Site, one, whole

__all__ = ["ROUTES", "plot", "parallel", "curves", "compare", "records_of_view"]

#: Lines a parallel-coordinates view draws at most (more are slow to draw without a GPU, and unreadable): beyond,
#: the best BEST_LINES experiments by the metric and an even sample of the others (the answer says how many).
PARALLEL_LINES = 1000
BEST_LINES = 200
#: Rows of /api/compare unless ``limit`` says otherwise (the best ones by the metric), and the most it may say.
COMPARE_ROWS = 200
MAX_COMPARE_ROWS = 5000


def records_of_view(view: RunView) -> RunRecords:
    """The run as report_plot reads it, made from what the server keeps (nothing is read again)."""
    failed, pruned = view.failed_and_pruned()
    return RunRecords(view.root, view.results, view.params, failed, pruned)  # mappings, made as they are read


def _optional(query: Query, key: str) -> Optional[str]:
    return one(query, key, "") or None


def _cached(view: RunView, key: Tuple[Any, ...], make: Callable[[RunRecords], Any]) -> Any:
    """``make`` applied to the run's records, under the run's lock, kept until its records change."""
    return view.cached(key, lambda: make(records_of_view(view)))


# ---------------------------------------------------------------- a metric over a parameter


def plot(site: Site, query: Query) -> Dict[str, Any]:
    """``metric`` (mean ± std over repetitions) over parameter ``x``, one line per value of ``hue``."""
    view = site.view(query)
    metric, x, hue = one(query, "metric"), one(query, "x"), _optional(query, "hue")
    return _cached(view, ("plot", metric, x, hue), lambda run: plot_answer(metric_plot(run, metric, x, hue)))


def plot_answer(plot: MetricPlot, label: Optional[str] = None) -> Dict[str, Any]:
    """A :class:`MetricPlot` as JSON; categories (text, null, lists) as their labels, in the report's order."""
    def positions(values: Sequence[Any]) -> List[Any]:
        return list(values) if plot.numeric else [format_param(value) for value in values]

    return {"metric": plot.metric, "x": plot.x, "hue": plot.hue, "log_x": plot.log_x, "log_y": plot.log_y,
            "categories": None if plot.numeric else positions(plot.xs),
            "lines": [{"label": line.label or label, "x": positions(line.x), "mean": line.mean, "std": line.std}
                      for line in plot.lines]}


# ---------------------------------------------------------------- parallel coordinates


def parallel(site: Site, query: Query) -> Dict[str, Any]:
    """One axis per varying parameter and one for ``metric``; one line per finished experiment, coloured by it."""
    view = site.view(query)
    metric = one(query, "metric")
    return _cached(view, ("parallel", metric), lambda run: parallel_answer(run, metric))


def parallel_answer(run: RunRecords, metric: str) -> Dict[str, Any]:
    configs = flat_configs(run)
    means = {i: stat[0] for i, record in run.results.items()
             if (stat := metric_stat(record.get("scores") or {}, metric)) is not None}
    if not means:
        raise RequestError(400, f"no finished experiment has a number for {metric!r}")
    ids = sorted(means)
    shown = ids if len(ids) <= PARALLEL_LINES else _sample(ids, means, lower_is_better(metric))
    names = varying_names(configs[i] for i in ids if i in configs)
    dimensions = [_dimension(name, [configs.get(i, {}).get(name, _MISSING) for i in shown]) for name in names]
    color = [means[i] for i in shown]
    dimensions.append(_dimension(metric, color))
    return {"metric": metric, "lower_is_better": lower_is_better(metric), "color": color,
            "dimensions": dimensions, "experiment_ids": shown, "shown": len(shown), "total": len(ids),
            "best_kept": min(BEST_LINES, len(ids)) if len(shown) < len(ids) else len(ids)}


def _sample(ids: List[int], means: Dict[int, float], lowest_first: bool) -> List[int]:
    """PARALLEL_LINES of ``ids``: the BEST_LINES best by ``means``, and the others evenly spread, in id order."""
    ranked = sorted(ids, key=lambda i: (means[i] if lowest_first else -means[i], i))
    best, others = ranked[:BEST_LINES], sorted(ranked[BEST_LINES:])
    step = len(others) / (PARALLEL_LINES - BEST_LINES)
    return sorted(best + [others[int(k * step)] for k in range(PARALLEL_LINES - BEST_LINES)])


_MISSING = object()
#: At most this many distinct values of a numeric log axis are labelled one by one.
_LABELLED_TICKS = 12


def _dimension(label: str, values: List[Any]) -> Dict[str, Any]:
    """A parcoords axis: numbers as they are (log10 where they span decades), anything else as a category index."""
    if all(is_number(value) for value in values):
        if min(values) > 0 and max(values) / min(values) >= 100:
            distinct = sorted(set(values))
            ticks = distinct if len(distinct) <= _LABELLED_TICKS else _powers_of_ten(distinct)
            return {"label": f"{label} (log)", "values": [math.log10(value) for value in values],
                    "tickvals": [math.log10(tick) for tick in ticks], "ticktext": [format_param(t) for t in ticks]}
        return {"label": label, "values": values}
    categories = sorted({_category(value) for value in values}, key=lambda c: sort_key(None if c == "" else c))
    index = {category: i for i, category in enumerate(categories)}
    return {"label": label, "values": [index[_category(value)] for value in values],
            "tickvals": list(range(len(categories))), "ticktext": [c or "(none)" for c in categories]}


def _category(value: Any) -> str:
    return "" if value is _MISSING else format_param(value)


def _powers_of_ten(values: List[float]) -> List[float]:
    low, high = math.floor(math.log10(values[0])), math.ceil(math.log10(values[-1]))
    return [10.0 ** power for power in range(low, high + 1)]


# ---------------------------------------------------------------- learning curves


def curves(site: Site, query: Query) -> Dict[str, Any]:
    """The intermediate values of one metric against the step, one line per experiment, the best ones named.

    Read from the experiments' metrics.jsonl files, again only when one of them changed.
    """
    view = site.view(query)
    metric = _optional(query, "metric")
    top = whole(query, "top", 0) or None
    files = tuple((str(path), *_size_and_time(path)) for _, _, path in metrics_files(view.root))
    return _cached(view, ("curves", metric, top, files), lambda run: curves_answer(run, metric, top, bool(files)))


def _size_and_time(path: os.PathLike) -> Tuple[int, int]:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return -1, -1  # went away meanwhile (a resume clearing an experiment): it has nothing to draw
    return status.st_size, status.st_mtime_ns


def curves_answer(run: RunRecords, metric: Optional[str], top: Optional[int], any_files: bool) -> Dict[str, Any]:
    nothing = {"metric": None, "metrics": [], "curves": [], "others": None, "title": "", "log_y": False}
    if not any_files:
        return nothing
    try:
        selection = curve_selection(run, None, top=top)
    except NoResultsError:
        return nothing  # metrics.jsonl files without a number in them yet: no curve to draw
    metrics = selection.names
    if metric in metrics and metric != metrics[0]:
        selection = curve_selection(run, [metric], top=top)  # the best ones by this metric's curves
    metric = metric if metric in metrics else metrics[0]
    steps_by_id = selection.curves[metric]
    lines = {i: mean_line(steps) for i, steps in steps_by_id.items()}
    shown = [i for i in selection.shown if i in lines]
    grey = [i for i in sorted(lines) if i not in set(shown)]
    others: Dict[str, List[Optional[float]]] = {"step": [], "value": []}
    for i in grey:  # one trace for all the grey lines, broken by nulls: thousands of curves stay quick to draw
        xs, means, _ = lines[i]
        others["step"] += [*xs, None]
        others["value"] += [*means, None]
    all_means = [m for _, means, _ in lines.values() for m in means]
    return {"metric": metric, "metrics": metrics, "title": curves_title(len(lines), len(shown)),
            "log_y": bool(all_means) and min(all_means) > 0 and max(all_means) / min(all_means) >= 100,
            "curves": [{"experiment_id": i, "label": selection.labels[i], "step": lines[i][0],
                        "mean": lines[i][1], "std": lines[i][2]} for i in shown],
            "others": others if grey else None}


# ---------------------------------------------------------------- several runs


def compare(site: Site, query: Query) -> Dict[str, Any]:
    """Two or more runs in one table (a ``run`` column; the best rows by ``metric``) and one plot line per run."""
    names = [name for text in query.get("runs", []) for name in text.split(",") if name]
    if len(names) < 1:
        raise RequestError(400, "name the runs to compare: runs=R1,R2")
    views = [site.view_of(site.folder_of(name)) for name in dict.fromkeys(names)]
    for view in views:
        view.refresh()
    limit = whole(query, "limit", COMPARE_ROWS, 1, MAX_COMPARE_ROWS)
    rows, metrics, parameters = _rows_of(views)
    metric = _optional(query, "metric")
    metric = metric if metric in metrics else next((m for m in metrics if m != "fit_time"), None)
    x = _optional(query, "x")
    x = x if x in parameters else (parameters[0] if parameters else None)
    ranked = _best_first(rows, metric)
    answer = {"runs": [view.name for view in views], "metrics": metrics, "parameters": parameters,
              "metric": metric, "x": x,
              "columns": [{"name": "run", "kind": "run"}, {"name": "experiment_id", "kind": "id"},
                          *({"name": name, "kind": "parameter"} for name in parameters),
                          *({"name": name, "kind": "metric"} for name in metrics)],
              "rows": ranked[:limit], "matched": len(ranked), "plot": None}
    if metric is not None and x is not None:
        answer["plot"] = _compare_plot(views, metric, x)
    return answer


def _rows_of(views: List[RunView]) -> Tuple[List[Dict[str, Any]], List[str], List[str]]:
    """Every finished experiment of every run (a ``run`` key added), the metrics of all, and the parameters that
    vary across all of them (those of the first run first)."""
    rows: List[Dict[str, Any]] = []
    metrics: Dict[str, None] = {}
    for view in views:
        with view.lock:
            rows += [{"run": view.name, **row} for row in view.cached("rows", lambda: list(view.rows()))]
            metrics.update(dict.fromkeys(view.metric_names))
    parameters = varying_names(row["parameters"] for row in rows)
    return rows, sorted(metrics, key=lambda name: name == "fit_time"), parameters


def _best_first(rows: List[Dict[str, Any]], metric: Optional[str]) -> List[Dict[str, Any]]:
    if metric is None:
        return rows
    sign = 1 if lower_is_better(metric) else -1
    with_metric = [row for row in rows if metric in row["metrics"]]
    without = [row for row in rows if metric not in row["metrics"]]
    return sorted(with_metric, key=lambda row: sign * row["metrics"][metric]["mean"]) + without


def _compare_plot(views: List[RunView], metric: str, x: str) -> Optional[Dict[str, Any]]:
    """One line per run that has ``metric`` and ``x``: report_plot's numbers of each run, labelled by the run."""
    answers = []
    for view in views:
        with view.lock:
            if metric in view.metric_names and x in view.parameter_names():
                answer = _cached(view, ("plot", metric, x, None), lambda run: plot_answer(metric_plot(run, metric, x)))
                answers.append((view.name, answer))
    if not answers:
        return None
    categorical = any(answer["categories"] is not None for _, answer in answers)
    lines = [{**line, "label": name, "x": [format_param(v) for v in line["x"]] if categorical else line["x"]}
             for name, answer in answers for line in answer["lines"]]
    categories = sorted({x for line in lines for x in line["x"]}, key=sort_key) if categorical else None
    return {"metric": metric, "x": x, "hue": None, "lines": lines, "categories": categories,
            "log_x": not categorical and all(answer["log_x"] for _, answer in answers),
            "log_y": all(answer["log_y"] for _, answer in answers)}


ROUTES = {"/api/plot": plot, "/api/parallel": parallel, "/api/curves": curves, "/api/compare": compare}
