"""Report plots: a metric's mean with std error bars over a parameter, drawn with matplotlib.

matplotlib is imported inside :func:`plot_metric` only; the run is read with
:mod:`experiment_runner.report`, whose helpers this module shares.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .errors import MissingDependencyError, ReportError
from .report_records import PathLike, RunRecords, check_name, flat_configs, format_param, is_number, ordered_metrics
from .report_records import records_of, repetition_values, sort_key

__all__ = [
    "plot_metric",
    "experiments_without",
    "experiments_with_null",
    "experiments_without_number",
]

#: hue value -> x value -> every repetition's value of the metric at that point.
Lines = Dict[Any, Dict[Any, List[float]]]


def _parameter_names(configs: Iterable[Mapping[str, Any]]) -> List[str]:
    names: Dict[str, None] = {}
    for config in configs:
        names.update(dict.fromkeys(config))
    return list(names)


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


def _lines(run: RunRecords, metric: str, x: str, hue: Optional[str]) -> Lines:
    configs = flat_configs(run)
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


def _matplotlib_figure() -> Any:
    """A new Figure drawn by the Agg canvas, without pyplot: no GUI, and the user's backend is left alone."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError(
            "plotting results needs matplotlib: pip install 'experiment-runner[plot]'"
        ) from error
    figure = Figure(figsize=(7, 4.5), layout="constrained")
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
    run = records_of(run)
    run.require_results()
    check_name(metric, ordered_metrics(run.results.values()), "metric", "to plot")
    parameters = _parameter_names(flat_configs(run).values())
    check_name(x, parameters, "parameter", "for x")
    if hue is not None:
        check_name(hue, parameters, "parameter", "for hue")
    figure = _matplotlib_figure()
    _draw(figure.add_subplot(), _lines(run, metric, x, hue), metric, x, hue)
    if output is not None:
        figure.savefig(output, format=_image_format(figure, output), dpi=150)
    return figure


def _image_format(figure: Any, output: PathLike) -> str:
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


def _draw(axes: Any, lines: Lines, metric: str, x: str, hue: Optional[str]) -> None:
    xs = sorted({value for points in lines.values() for value in points}, key=sort_key)
    numeric = all(is_number(value) for value in xs)
    position = {value: value if numeric else i for i, value in enumerate(xs)}
    means = []
    for key in sorted(lines, key=sort_key):
        points = sorted(lines[key].items(), key=lambda item: sort_key(item[0]))
        mean = [statistics.fmean(values) for _, values in points]
        std = [statistics.pstdev(values) for _, values in points]
        label = None if hue is None else f"{hue}={format_param(key)}"
        axes.errorbar([position[v] for v, _ in points], mean, yerr=std, marker="o", capsize=3, label=label)
        means.extend(mean)
    if not numeric:
        axes.set_xticks(range(len(xs)), [format_param(v) for v in xs])
    elif _spans_decades(xs):
        axes.set_xscale("log")
    if _spans_decades(means):
        axes.set_yscale("log")
    axes.set_xlabel(x)
    axes.set_ylabel(f"{metric} (mean ± std)")
    axes.set_title(f"{metric} by {x}" + (f" and {hue}" if hue else ""))
    axes.grid(True, alpha=0.3)
    if hue is not None:
        axes.legend(fontsize="small")
