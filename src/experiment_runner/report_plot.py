"""Report plots, drawn with matplotlib: a metric's mean with std error bars over a parameter, and learning curves.

matplotlib is imported inside :func:`plot_metric` and :func:`plot_learning_curves` only; the run is read with
:mod:`experiment_runner.report_records`, whose helpers :mod:`experiment_runner.report` shares.
"""
from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .errors import MissingDependencyError, NoResultsError, ReportError
from .report_records import PathLike, RunRecords, check_name, flat_configs, format_param, is_number, ordered_metrics
from .report_records import lower_is_better, metric_names, metric_stat, metrics_records, records_of, repetition_values
from .report_records import sort_key
from .metrics import LINE_FIELDS

__all__ = [
    "plot_metric",
    "varying_names",
    "metric_plot",
    "MetricPlot",
    "PlotLine",
    "experiments_without",
    "experiments_with_null",
    "experiments_without_number",
    "plot_learning_curves",
    "curve_metrics",
    "curve_selection",
    "CurveSelection",
    "mean_line",
    "curves_title",
]

#: hue value -> x value -> every repetition's value of the metric at that point.
Lines = Dict[Any, Dict[Any, List[float]]]


def _parameter_names(configs: Iterable[Mapping[str, Any]]) -> List[str]:
    names: Dict[str, None] = {}
    for config in configs:
        names.update(dict.fromkeys(config))
    return list(names)


def varying_names(configs: Iterable[Mapping[str, Any]]) -> List[str]:
    """The parameters of flat ``configs`` whose value differs between them, or that some of them lack."""
    configs = list(configs)
    return [name for name in _parameter_names(configs)
            if len({repr(config.get(name, _ABSENT)) for config in configs}) > 1]


def experiments_without(run: Union[PathLike, RunRecords], parameter: str) -> List[int]:
    """The finished experiments whose configuration has no ``parameter`` (another option of a group sweep).

    :func:`plot_metric` leaves them out, and those of :func:`experiments_with_null`:
    they have no place on that axis.
    """
    return [i for i, value in _values_of(records_of(run), parameter).items() if value is _ABSENT]


def experiments_with_null(run: Union[PathLike, RunRecords], parameter: str) -> List[int]:
    """The finished experiments whose ``parameter`` is null."""
    return [i for i, value in _values_of(records_of(run), parameter).items() if value is None]


_ABSENT = object()


def _values_of(run: RunRecords, parameter: str) -> Dict[int, Any]:
    """``parameter``'s value in each finished experiment, by experiment_id; ``_ABSENT`` where it has none."""
    configs = flat_configs(run)
    return {i: configs.get(i, {}).get(parameter, _ABSENT) for i in sorted(run.results)}


def experiments_without_number(run: Union[PathLike, RunRecords], metric: str) -> List[int]:
    """The finished experiments that have no number for ``metric`` (a string, null, or none at all).

    :func:`plot_metric` leaves them out: they have no point to draw.
    """
    run = records_of(run)
    return sorted(i for i, record in run.results.items() if not repetition_values(record.get("scores") or {}, metric))


def _has_number(scores: Mapping[str, Any], metric: str) -> bool:
    """Whether ``metric`` is one of ``ordered_metrics`` for these scores (a metric with a number), found quickly."""
    return metric in scores and metric in metric_names(scores) and metric_stat(scores, metric) is not None


def _lines(run: RunRecords, configs: Dict[int, Dict[str, Any]], metric: str, x: str, hue: Optional[str]) -> Lines:
    lines: Lines = {}
    for experiment_id, record in run.results.items():
        config = configs.get(experiment_id, {})
        if config.get(x) is None or (hue is not None and config.get(hue) is None):
            continue  # missing or null: no place on the axis, nor a line of its own
        values = repetition_values(record.get("scores") or {}, metric)
        if values:
            points = lines.setdefault(None if hue is None else config[hue], {})
            points.setdefault(config[x], []).extend(values)
    return lines


def matplotlib_figure(height: float = 4.5) -> Any:
    """A new Figure drawn by the Agg canvas, without pyplot: no GUI, and the user's backend is left alone."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError(
            "plotting results needs matplotlib: pip install 'experiment-runner[plot]'"
        ) from error
    figure = Figure(figsize=(7, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_metric(
    run: Union[PathLike, RunRecords],
    metric: str,
    x: str,
    hue: Optional[str] = None,
    output: Optional[PathLike] = None,
) -> Any:
    """A matplotlib Figure: ``metric``'s mean with std error bars over parameter ``x``, a line per ``hue`` value.

    Each point pools the repetitions of every finished experiment with that
    ``x`` (and ``hue``) value; experiments without ``x`` or ``hue`` (the other
    options of a group sweep) or with it null are left out, and so are those
    without a number for ``metric`` (:func:`experiments_without`,
    :func:`experiments_with_null` and :func:`experiments_without_number`
    name them). An axis whose values span two decades or more is
    logarithmic. With ``output``, the figure is also saved there, in the
    format its suffix names (``.png``, ``.pdf``, ``.svg``, ...; PNG without one).
    """
    plot = metric_plot(run, metric, x, hue)
    figure = matplotlib_figure()
    _draw(figure.add_subplot(), plot)
    if output is not None:
        figure.savefig(output, format=image_format(figure, output), dpi=150)
    return figure


def image_format(figure: Any, output: PathLike) -> str:
    image_format = Path(output).suffix.lstrip(".").lower() or "png"
    supported = figure.canvas.get_supported_filetypes()
    if image_format not in supported:
        raise ReportError(f"cannot write a plot as .{image_format}: name a file ending in one of "
                          f"{', '.join('.' + name for name in sorted(supported))}")
    return image_format


def _spans_decades(values: Sequence[Any]) -> bool:
    """Positive numbers whose largest is at least 100 times the smallest: a log axis reads better."""
    if len(values) < 2 or not all(is_number(v) and v > 0 for v in values):
        return False
    return max(values) / min(values) >= 100


@dataclasses.dataclass
class PlotLine:
    """One line of :func:`plot_metric`: the mean and std of the metric at each x value."""

    label: Optional[str]  # ``hue=value``; None without hue
    x: List[Any]
    mean: List[float]
    std: List[float]


@dataclasses.dataclass
class MetricPlot:
    """What :func:`plot_metric` draws, as numbers: the web view draws the same (``experiment-runner serve``)."""

    metric: str
    x: str
    hue: Optional[str]
    xs: List[Any]  # every x value of every line, in axis order
    numeric: bool  # False: the x values are categories, placed at 0, 1, 2, ... and labelled
    log_x: bool
    log_y: bool
    lines: List[PlotLine]


def metric_plot(run: Union[PathLike, RunRecords], metric: str, x: str, hue: Optional[str] = None) -> MetricPlot:
    """The lines of :func:`plot_metric` (its names checked the same way), without drawing them."""
    run = records_of(run)
    run.require_results()
    if not any(_has_number(record.get("scores") or {}, metric) for record in run.results.values()):
        check_name(metric, ordered_metrics(run.results.values()), "metric", "to plot")
    configs = flat_configs(run)
    parameters = _parameter_names(configs.values())
    check_name(x, parameters, "parameter", "for x")
    if hue is not None:
        check_name(hue, parameters, "parameter", "for hue")
    lines = _lines(run, configs, metric, x, hue)
    xs = sorted({value for points in lines.values() for value in points}, key=sort_key)
    numeric = all(is_number(value) for value in xs)
    plot_lines = []
    for key in sorted(lines, key=sort_key):
        points = sorted(lines[key].items(), key=lambda item: sort_key(item[0]))
        label = None if hue is None else f"{hue}={format_param(key)}"
        plot_lines.append(PlotLine(label, [value for value, _ in points],
                                   [statistics.fmean(values) for _, values in points],
                                   [statistics.pstdev(values) for _, values in points]))
    means = [mean for line in plot_lines for mean in line.mean]
    return MetricPlot(metric, x, hue, xs, numeric, numeric and _spans_decades(xs), _spans_decades(means), plot_lines)


def _draw(axes: Any, plot: MetricPlot) -> None:
    position = {value: value if plot.numeric else i for i, value in enumerate(plot.xs)}
    for line in plot.lines:
        axes.errorbar([position[v] for v in line.x], line.mean, yerr=line.std, marker="o", capsize=3,
                      label=line.label)
    if not plot.numeric:
        axes.set_xticks(range(len(plot.xs)), [format_param(v) for v in plot.xs])
    elif plot.log_x:
        axes.set_xscale("log")
    if plot.log_y:
        axes.set_yscale("log")
    axes.set_xlabel(plot.x)
    axes.set_ylabel(f"{plot.metric} (mean ± std)")
    axes.set_title(f"{plot.metric} by {plot.x}" + (f" and {plot.hue}" if plot.hue else ""))
    axes.grid(True, alpha=0.3)
    if plot.hue is not None:
        axes.legend(fontsize="small")


# --- learning curves: the intermediate metrics of report_metrics ----------------------------------

#: metric -> experiment_id -> step -> the values its repetitions reported at that step.
Curves = Dict[str, Dict[int, Dict[int, List[float]]]]

#: With more experiments than this, only the best ones are drawn in colour (and named), the others in grey.
ALL_IN_COLOUR = 10
#: How many experiments are drawn in colour when there are more than ALL_IN_COLOUR (unless ``top`` says).
BEST_IN_COLOUR = 5


def _curves(run: RunRecords) -> Curves:
    curves: Curves = {}
    for line in metrics_records(run.root):
        experiment_id, step = line["experiment_id"], line["step"]
        for name, value in line.items():
            if name not in _NOT_METRICS and is_number(value):
                curves.setdefault(name, {}).setdefault(experiment_id, {}).setdefault(step, []).append(value)
    return curves


_NOT_METRICS = frozenset(("experiment_id", "run_id", *LINE_FIELDS))


def curve_metrics(run: Union[PathLike, RunRecords]) -> List[str]:
    """The metrics the run's experiments reported step by step (``report_metrics``), in the order first reported."""
    return list(_curves(records_of(run)))


def plot_learning_curves(
    run: Union[PathLike, RunRecords],
    metrics: Optional[Sequence[str]] = None,
    *,
    top: Optional[int] = None,
    sort: Optional[str] = None,
    ascending: Optional[bool] = None,
    output: Optional[PathLike] = None,
) -> Any:
    """A matplotlib Figure: each intermediate metric (all, or ``metrics``) against its step, one line per experiment.

    A line is the mean over an experiment's repetitions at each step, with a
    band of ± std where several repetitions reported that step. The best
    experiments are drawn in colour and named in the legend, the others thin
    and grey: the best ``top`` (default: all up to 10 experiments, else the
    best 5). Best is by the final score ``sort`` of results.jsonl (default:
    the first metric, ordered as the table orders it, ``ascending`` too); an
    experiment without one (running, failed) comes after those with one, and
    a run without finished experiments ranks by the last reported value of
    the first metric plotted. ``output`` saves the figure as :func:`plot_metric` does.
    """
    from matplotlib.ticker import MaxNLocator

    selection = curve_selection(run, metrics, top=top, sort=sort, ascending=ascending)
    names, shown = selection.names, selection.shown
    figure = matplotlib_figure(height=1.0 + 2.6 * len(names))
    axes_list = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for axes, name in zip(axes_list, names):
        _draw_curves(axes, selection.curves[name], shown, selection.labels, name)
    axes_list[-1].set_xlabel("step")
    axes_list[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes_list[0].set_title(curves_title(len(selection.ids), len(shown)))
    axes_list[0].legend(fontsize="small", loc="best")
    if output is not None:
        figure.savefig(output, format=image_format(figure, output), dpi=150)
    return figure


@dataclasses.dataclass
class CurveSelection:
    """Which learning curves :func:`plot_learning_curves` draws and how: the web view draws the same."""

    curves: Curves
    names: List[str]  # the metrics plotted, one panel each
    ids: List[int]  # every experiment that reported one of them
    shown: List[int]  # the best ones, in colour and named, best first; the others are grey
    labels: Dict[int, str]  # of the shown ones


def curve_selection(run: Union[PathLike, RunRecords], metrics: Optional[Sequence[str]] = None, *,
                    top: Optional[int] = None, sort: Optional[str] = None,
                    ascending: Optional[bool] = None) -> CurveSelection:
    """The curves of :func:`plot_learning_curves` (its arguments checked the same way), without drawing them."""
    run = records_of(run)
    curves = _curves(run)
    if not curves:
        raise NoResultsError(f"no intermediate metrics in '{run.root}': an experiment records them by calling "
                             "experiment_runner.report_metrics(step, name=value, ...) from a stage")
    names = list(curves) if metrics is None else list(metrics)
    for name in names:
        check_name(name, list(curves), "metric reported step by step", "to plot")
    ids = sorted({i for name in names for i in curves[name]})
    ranked = _ranked(run, ids, curves[names[0]], names[0], sort, ascending)
    shown = ranked[:top if top is not None else (len(ids) if len(ids) <= ALL_IN_COLOUR else BEST_IN_COLOUR)]
    return CurveSelection(curves, names, ids, shown, _experiment_labels(run, shown))


def _ranked(run: RunRecords, ids: List[int], first: Dict[int, Dict[int, List[float]]], first_name: str,
            sort: Optional[str], ascending: Optional[bool]) -> List[int]:
    """``ids``, best first: by the final score ``sort`` if experiments finished, else by ``first``'s last step."""
    scored = ordered_metrics(run.results.values())
    if scored:
        sort = scored[0] if sort is None else sort
        check_name(sort, scored, "metric", "to sort by")
        stats = {i: metric_stat(run.results[i].get("scores") or {}, sort) for i in ids if i in run.results}
        value = {i: stat[0] for i, stat in stats.items() if stat is not None}
    else:
        sort = first_name
        value = {i: statistics.fmean(steps[max(steps)]) for i, steps in first.items() if i in ids}
    lowest_first = lower_is_better(sort) if ascending is None else ascending
    sign = 1 if lowest_first else -1
    return sorted(ids, key=lambda i: (0, sign * value[i], i) if i in value else (1, 0, i))


def _experiment_labels(run: RunRecords, ids: List[int]) -> Dict[int, str]:
    """``3: lr=0.1, depth=2``: each experiment's id with the parameters that vary across the run."""
    configs = flat_configs(run)
    varying = varying_names(configs.values())
    labels = {}
    for i in ids:
        config = configs.get(i, {})
        params = ", ".join(f"{name}={format_param(config[name])}" for name in varying if name in config)
        labels[i] = f"{i}: {params}" if params else str(i)
        if len(labels[i]) > 60:
            labels[i] = labels[i][:57] + "..."
    return labels


def _draw_curves(axes: Any, curves: Dict[int, Dict[int, List[float]]], shown: List[int], labels: Dict[int, str],
                 name: str) -> None:
    from matplotlib.collections import LineCollection

    grey = [mean_line(steps)[:2] for i, steps in sorted(curves.items()) if i not in shown]
    if grey:
        segments = [list(zip(xs, ys)) for xs, ys in grey]
        axes.add_collection(LineCollection(segments, colors="0.7", linewidths=0.8, alpha=0.6))
        axes.autoscale_view()
    for i in shown:
        if i not in curves:
            continue
        xs, means, stds = mean_line(curves[i])
        [line] = axes.plot(xs, means, linewidth=1.6, label=labels[i])
        if any(stds):
            axes.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                              color=line.get_color(), alpha=0.2, linewidth=0)
    all_means = [m for steps in curves.values() for m in mean_line(steps)[1]]
    if _spans_decades(all_means):
        axes.set_yscale("log")
    axes.set_ylabel(name)
    axes.grid(True, alpha=0.3)


def mean_line(steps: Dict[int, List[float]]) -> Any:
    """(steps, means, stds) of one experiment's curve, in step order."""
    xs = sorted(steps)
    return xs, [statistics.fmean(steps[x]) for x in xs], [statistics.pstdev(steps[x]) for x in xs]


def curves_title(experiments: int, shown: int) -> str:
    title = f"learning curves of {experiments} experiment" + ("s" if experiments != 1 else "")
    if shown < experiments:
        title += f": the best {shown} in colour"
    return title
