"""The plot endpoints of ``experiment-runner serve`` give the numbers that ``report --plot`` draws.

A real server on a loopback port over real runs (serve_runs.py's sweep: lr x
depth, 2 repetitions, one experiment failing, a loss reported step by step);
each answer is checked against the matplotlib figure of report_plot.
"""
import shutil
import urllib.parse

import pytest

from experiment_runner import run_experiments
from experiment_runner.report_plot import plot_learning_curves, plot_metric
from experiment_runner.serve import plots, serve
from serve_runs import BY_ACCURACY, FAILING_ID, api, get, make_sweep

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """sweep/ and its copy again/ (the same numbers under another name: two runs to compare)."""
    root = tmp_path_factory.mktemp("plots")
    make_sweep(root / "sweep")
    shutil.copytree(root / "sweep", root / "again")
    return root


@pytest.fixture(scope="module")
def serving(runs):
    with serve(runs) as server:
        yield server


def drawn_lines(axes):
    """(x, mean, std) of each errorbar line of a report plot, in the order drawn."""
    lines = []
    for container in axes.containers:
        data_line, _, (bars,) = container.lines
        stds = [(top - bottom) / 2 for (_, bottom), (_, top) in bars.get_segments()]
        lines.append((list(data_line.get_xdata()), list(data_line.get_ydata()), stds))
    return lines


def answered_lines(answer):
    return [(line["x"], line["mean"], line["std"]) for line in answer["lines"]]


def flat(lines):
    """Every number of (x, mean, std) lines in one list, and the length of each part: what approx compares."""
    return [float(v) for line in lines for part in line for v in part], [len(part) for line in lines for part in line]


@pytest.mark.parametrize("metric, x, hue", [("acc", "lr", None), ("acc", "lr", "depth"), ("loss", "depth", "lr")])
def test_a_metric_plot_has_the_numbers_and_axes_of_the_report_plot(serving, runs, metric, x, hue):
    answer = api(serving, "plot", run="sweep", metric=metric, x=x, **({"hue": hue} if hue else {}))
    axes = plot_metric(runs / "sweep", metric, x=x, hue=hue).axes[0]
    numbers, shape = flat(drawn_lines(axes))
    assert flat(answered_lines(answer)) == (pytest.approx(numbers), shape)
    assert answer["log_x"] == (axes.get_xscale() == "log")
    assert answer["log_y"] == (axes.get_yscale() == "log")
    labels = [text.get_text() for text in axes.get_legend().get_texts()] if hue else [None]
    assert [line["label"] for line in answer["lines"]] == labels


def test_the_plot_of_a_metric_over_lr_pools_the_repetitions_and_spans_decades(serving):
    answer = api(serving, "plot", run="sweep", metric="acc", x="lr")
    assert answer["log_x"] is True and answer["categories"] is None
    [line] = answer["lines"]
    assert line["x"] == [0.001, 0.01, 0.1, 1.0]
    # lr=0.01: depth 1 and 2, repetitions 0 and 1: 0.70, 0.71, 0.90, 0.91
    assert line["mean"][1] == pytest.approx(0.805) and line["std"][1] == pytest.approx(0.100125, abs=1e-6)


def test_a_text_parameter_is_a_categorical_axis_labelled_as_the_report_labels_it(serving, runs):
    answer = api(serving, "plot", run="sweep", metric="acc", x="model.name")
    axes = plot_metric(runs / "sweep", "acc", x="model.name").axes[0]
    assert answer["categories"] == [label.get_text() for label in axes.get_xticklabels()] == ["ridge"]
    assert answer["lines"][0]["x"] == ["ridge"]


def test_unknown_names_are_one_line_errors_naming_the_known_ones(serving):
    status, answer, _ = get(serving.url + "api/plot?" + urllib.parse.urlencode(
        {"run": "sweep", "metric": "accuracy", "x": "lr"}))
    assert status == 400
    assert answer["error"] == "unknown metric 'accuracy' to plot; the metrics of this run are: acc, loss, fit_time"


def test_parallel_coordinates_have_an_axis_per_varying_parameter_and_the_metric(serving):
    answer = api(serving, "parallel", run="sweep", metric="acc")
    lr, depth, acc = answer["dimensions"]
    assert lr["label"] == "lr (log)" and lr["ticktext"] == ["0.001", "0.01", "0.1", "1.0"]
    assert [10 ** value for value in lr["values"]] == pytest.approx([0.001, 0.001, 0.01, 0.01, 0.1, 0.1, 1.0])
    assert depth == {"label": "depth", "values": [1, 2, 1, 2, 1, 2, 1]}
    assert acc["values"] == answer["color"] == pytest.approx([0.505, 0.605, 0.705, 0.905, 0.655, 0.805, 0.305])
    assert FAILING_ID not in answer["experiment_ids"] and (answer["shown"], answer["total"]) == (7, 7)
    assert answer["lower_is_better"] is False


def test_parallel_coordinates_of_many_experiments_keep_the_best_and_a_sample_of_the_others(serving, monkeypatch):
    monkeypatch.setattr(plots, "PARALLEL_LINES", 5)
    monkeypatch.setattr(plots, "BEST_LINES", 2)
    answer = api(serving, "parallel", run="again", metric="loss")  # another run, another metric: nothing cached
    assert (answer["shown"], answer["total"], answer["best_kept"]) == (5, 7, 2)
    ids = answer["experiment_ids"]
    assert ids == sorted(set(ids)) and {0, 1} <= set(ids)  # the lowest losses: lr * depth = 0.001, 0.002
    assert len(answer["color"]) == len(answer["dimensions"][0]["values"]) == 5


def test_learning_curves_are_the_report_curves_best_first(serving, runs):
    answer = api(serving, "curves", run="sweep")
    figure = plot_learning_curves(runs / "sweep")
    drawn = [(line.get_label(), [float(y) for y in line.get_ydata()]) for line in figure.axes[0].get_lines()]
    assert answer["metric"] == "loss" and answer["metrics"] == ["loss"]
    assert [curve["experiment_id"] for curve in answer["curves"]] == BY_ACCURACY  # ranked by acc, as the report
    assert [curve["label"] for curve in answer["curves"]] == [label for label, _ in drawn]
    for curve, (_, means) in zip(answer["curves"], drawn):
        assert curve["mean"] == pytest.approx(means)
    assert answer["curves"][0]["step"] == [0, 1, 2]
    assert answer["title"] == figure.axes[0].get_title() == "learning curves of 7 experiments"
    assert answer["others"] is None  # up to 10 experiments, all in colour


def test_no_intermediate_metrics_no_curves_and_an_unknown_curve_metric_is_the_first(serving, tmp_path):
    assert api(serving, "curves", run="sweep", metric="nope")["metric"] == "loss"
    run_experiments({"out_path": str(tmp_path / "plain"), "fit": lambda cfg, _: cfg["x"],
                     "post": lambda cfg, y: {"y": y}, "verbose": False}, [{"x": 1}, {"x": 2}])
    with serve(tmp_path) as server:
        answer = api(server, "curves", run="plain")
    assert (answer["curves"], answer["metrics"], answer["others"]) == ([], [], None)


def test_compare_puts_two_runs_in_one_table_and_one_plot(serving):
    answer = api(serving, "compare", runs="sweep,again", metric="acc", x="lr")
    assert answer["runs"] == ["sweep", "again"]
    assert answer["parameters"] == ["lr", "depth"] and answer["metrics"] == ["acc", "loss", "fit_time"]
    assert answer["matched"] == 14 and {row["run"] for row in answer["rows"]} == {"sweep", "again"}
    best_first = [row["metrics"]["acc"]["mean"] for row in answer["rows"]]
    assert best_first == sorted(best_first, reverse=True)
    [sweep, again] = answer["plot"]["lines"]
    assert (sweep["label"], again["label"]) == ("sweep", "again")
    single = api(serving, "plot", run="sweep", metric="acc", x="lr")["lines"][0]
    assert (sweep["x"], sweep["mean"], sweep["std"]) == (single["x"], single["mean"], single["std"])
    assert (again["x"], again["mean"]) == (single["x"], single["mean"])


def test_compare_needs_runs_that_are_there(serving):
    status, answer, _ = get(serving.url + "api/compare?runs=sweep,..%2F..")
    assert status == 404 and "no run" in answer["error"]
    status, answer, _ = get(serving.url + "api/compare")
    assert status == 400 and answer["error"] == "name the runs to compare: runs=R1,R2"
