"""Intermediate metrics: report_metrics in a stage, metrics.jsonl, read_metrics and the learning curves.

That every backend writes each repetition's lines where it runs is a contract
case (experiment_runner.testing); here, on backend single: what a line holds,
the errors a bad call gets, the message to the driver, reading and plotting.
"""
import re

import numpy
import pytest

from experiment_runner import read_metrics, report_metrics, run_experiments
from experiment_runner.channel import Message
from experiment_runner.errors import MetricsError, NoResultsError, ReportError
from experiment_runner.metrics import METRICS, repetition_running
from experiment_runner.report import plot_learning_curves
from conftest import read_lines
from test_report import report

USE = "call report_metrics(step, name=value, ...) from a stage"


def fit(cfg, _):
    """``steps`` steps of a loss that falls faster for a larger lr; a repetition adds 0.01."""
    for step in range(cfg.get("steps", 4)):
        report_metrics(step, loss=1.0 / (1 + cfg["lr"] * step) + 0.01 * cfg["run_id"], lr=cfg["lr"])
    return 1.0 / (1 + cfg["lr"] * cfg.get("steps", 4))


def post(cfg, loss):
    return {"final_loss": loss}


def run(out_path, cfgs, **settings):
    basecfg = {"out_path": str(out_path), "fit": fit, "post": post, "verbose": False, **settings}
    return run_experiments(basecfg, cfgs)


@pytest.fixture(scope="module")
def curves(tmp_path_factory):
    """A finished run: 3 experiments (lr 0.1, 1, 10) x 2 repetitions, each reporting 4 steps. Tests only read it."""
    out_path = tmp_path_factory.mktemp("metrics") / "curves"
    run(out_path, [{"lr": lr} for lr in (0.1, 1.0, 10.0)], repetitions=2)
    return out_path


def test_a_line_holds_the_step_the_seconds_since_the_repetition_started_and_the_metrics(tmp_path):
    with repetition_running(str(tmp_path), 0):
        report_metrics(0, loss=0.5, acc=1)
        report_metrics(1, loss=0.25, acc=2)
    first, second = read_lines(tmp_path / "metrics.jsonl")
    assert list(first) == ["step", "time", "loss", "acc"]
    assert (first["step"], first["loss"], first["acc"], second["step"], second["loss"]) == (0, 0.5, 1, 1, 0.25)
    assert 0 <= first["time"] <= second["time"] < 60


def test_numpy_numbers_are_numbers_and_nan_and_infinities_are_null(tmp_path):
    with repetition_running(str(tmp_path), 0):
        report_metrics(numpy.int64(3), f32=numpy.float32(0.5), i64=numpy.int64(7), array=numpy.array(2.5),
                       nan=float("nan"), inf=numpy.float64("inf"), minus_inf=-float("inf"))
    [line] = read_lines(tmp_path / "metrics.jsonl")
    assert line["step"] == 3 and type(line["step"]) is int
    assert (line["f32"], line["i64"], line["array"]) == (0.5, 7, 2.5) and type(line["i64"]) is int
    assert line["nan"] is None and line["inf"] is None and line["minus_inf"] is None


def test_outside_a_running_experiment_it_says_how_to_use_it(tmp_path):
    with pytest.raises(MetricsError, match=re.escape(f"outside a running experiment: {USE}")):
        report_metrics(0, loss=1.0)
    with repetition_running(str(tmp_path), 0):
        pass
    with pytest.raises(MetricsError, match="outside a running experiment"):
        report_metrics(0, loss=1.0)


@pytest.mark.parametrize("call, message", [
    (lambda: report_metrics("3", loss=1.0), r"the step must be an int \(an epoch, an iteration\), got str: '3'"),
    (lambda: report_metrics(1.0, loss=1.0), "the step must be an int .*, got float: 1.0"),
    (lambda: report_metrics(True, loss=1.0), "the step must be an int .*, got bool: True"),
    (lambda: report_metrics(2), r"report_metrics\(2\) got no metrics: give each by name, such as "
                                r"report_metrics\(2, loss=0.25, acc=0.9\)"),
    (lambda: report_metrics(0, loss="low"), r"loss = 'low' \(str\) is not a number: report ints or floats"),
    (lambda: report_metrics(0, loss=None), r"loss = None \(NoneType\) is not a number"),
    (lambda: report_metrics(0, loss=[0.1]), r"loss = \[0.1\] \(list\) is not a number"),
    (lambda: report_metrics(0, ok=True), r"ok = True \(bool\) is not a number"),
    (lambda: report_metrics(0, loss=numpy.array([0.1, 0.2])), r"\(ndarray\) is not a number"),
    (lambda: report_metrics(0, time=1.0), "'time' is a column of every metrics line, not a metric name"),
    (lambda: report_metrics(0, run_id=1), "'run_id' is a column of every metrics line"),
], ids=["step-str", "step-float", "step-bool", "no-metrics", "str", "none", "list", "bool", "array", "time",
        "run_id"])
def test_a_bad_call_is_one_clear_error_and_writes_nothing(tmp_path, call, message):
    with repetition_running(str(tmp_path), 0), pytest.raises(MetricsError, match=message):
        call()
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_bad_call_fails_its_experiment_with_that_message(tmp_path):
    def fit_with_a_string(cfg, _):
        report_metrics(0, loss="n/a")

    summary = run_experiments({"out_path": str(tmp_path / "run"), "fit": fit_with_a_string, "verbose": False},
                              [{"lr": 1}])
    assert summary.failed == 1
    [failure] = read_lines(tmp_path / "run" / "failures.jsonl")
    assert failure["error_type"] == "MetricsError" and "loss = 'n/a' (str) is not a number" in failure["message"]


def test_the_driver_is_told_each_line_with_its_repetition(tmp_path):
    """Through a pool worker each line; backend single, which runs the experiment in the driver, tells it afterwards
    the newest line of each repetition (the file has them all), so a long training loop holds no growing list."""
    from experiment_runner.launchers.process_pool import ProcessPoolLauncher
    from experiment_runner.launchers.single import SingleLauncher
    from experiment_runner.runner import make_experiments
    from experiment_runner.settings import RunSettings

    for launcher, out_path, told_steps in [(ProcessPoolLauncher, tmp_path / "pool", [0, 1, 2]),
                                           (SingleLauncher, tmp_path / "single", [2])]:
        settings = RunSettings.from_basecfg({"out_path": str(out_path), "fit": fit, "post": post, "repetitions": 2,
                                             "backend": launcher.name, "num_workers": 1})
        [experiment] = make_experiments([{"lr": 1.0, "steps": 3}], settings)
        out_path.mkdir()
        with launcher(settings).session(settings.stages) as session:
            session.submit(experiment)
            events = list(session.events())
        told = [event for event in events if isinstance(event, Message) and event.kind == METRICS]
        assert [(m.experiment_id, m.data["run_id"], m.data["step"]) for m in told] == [
            (0, run_id, step) for run_id in (0, 1) for step in told_steps], launcher.name
        lines = {(run_id, line["step"]): line for run_id in (0, 1)
                 for line in read_lines(out_path / "0" / str(run_id) / "metrics.jsonl")}
        assert all({k: v for k, v in m.data.items() if k != "run_id"} == lines[m.data["run_id"], m.data["step"]]
                   for m in told)


def test_read_metrics_is_a_row_per_line_with_the_experiment_and_repetition(curves):
    frame = read_metrics(curves)
    assert list(frame.columns) == ["experiment_id", "run_id", "step", "time", "loss", "lr"]
    assert len(frame) == 3 * 2 * 4
    assert list(frame["experiment_id"].unique()) == [0, 1, 2] and list(frame["run_id"].unique()) == [0, 1]
    last = frame[(frame.experiment_id == 1) & (frame.run_id == 1) & (frame.step == 3)]
    assert last["loss"].item() == pytest.approx(1 / (1 + 3) + 0.01)


def test_read_metrics_skips_a_torn_last_line_and_reads_a_run_without_metrics(tmp_path):
    run(tmp_path / "run", [{"lr": 1.0, "steps": 2}])
    with open(tmp_path / "run" / "0" / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "time": 0.1, "lo')  # a kill while writing
    assert list(read_metrics(tmp_path / "run")["step"]) == [0, 1]
    run_experiments({"out_path": str(tmp_path / "plain"), "fit": lambda cfg, _: 1, "verbose": False}, [{"a": 1}])
    empty = read_metrics(tmp_path / "plain")
    assert len(empty) == 0 and list(empty.columns) == ["experiment_id", "run_id", "step", "time"]
    with pytest.raises(NoResultsError, match="no run at"):
        read_metrics(tmp_path / "nowhere")


def test_a_metric_reported_only_as_nan_is_a_float_column(tmp_path):
    (tmp_path / "0").mkdir()
    with repetition_running(str(tmp_path / "0"), 0):
        report_metrics(0, loss=float("nan"))
    assert str(read_metrics(tmp_path)["loss"].dtype) == "float64"


def image_of(path):
    image = pytest.importorskip("matplotlib.image")
    pixels = image.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert pixels.std() > 0.05, "not blank"
    return pixels


def test_learning_curves_are_a_png_with_a_panel_per_metric_and_a_line_per_experiment(curves, tmp_path):
    pytest.importorskip("matplotlib")
    figure = plot_learning_curves(curves, output=tmp_path / "curves.png")
    image_of(tmp_path / "curves.png")
    loss, lr = figure.axes
    assert (loss.get_ylabel(), lr.get_ylabel(), lr.get_xlabel()) == ("loss", "lr", "step")
    labels = [text.get_text() for text in loss.get_legend().get_texts()]
    assert labels == ["2: lr=10.0", "1: lr=1.0", "0: lr=0.1"], "best final_loss first"
    [best] = [line for line in loss.get_lines() if line.get_label() == "2: lr=10.0"]
    assert list(best.get_xdata()) == [0, 1, 2, 3]
    assert best.get_ydata()[1] == pytest.approx(1 / 11 + 0.005), "the mean of the 2 repetitions"
    assert len(loss.collections) == 3, "a ± std band per experiment"


def test_with_many_experiments_the_best_are_in_colour_and_the_rest_grey(tmp_path):
    pytest.importorskip("matplotlib")
    run(tmp_path / "run", [{"lr": lr, "steps": 3} for lr in range(12)])
    loss = plot_learning_curves(tmp_path / "run", ["loss"]).axes[0]
    assert [text.get_text() for text in loss.get_legend().get_texts()] == [
        "11: lr=11", "10: lr=10", "9: lr=9", "8: lr=8", "7: lr=7"]
    assert loss.get_title() == "learning curves of 12 experiments: the best 5 in colour"
    [grey] = loss.collections
    assert len(grey.get_segments()) == 7
    top_2 = plot_learning_curves(tmp_path / "run", ["loss"], top=2, sort="final_loss", ascending=False).axes[0]
    assert [text.get_text() for text in top_2.get_legend().get_texts()] == ["0: lr=0", "1: lr=1"]


def test_report_plot_alone_writes_the_learning_curves_next_to_the_results(curves, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = report(curves, "--plot")
    written = curves / "learning_curves.png"
    assert code == 0 and out == f"wrote {written}\n" and "3 of 3 experiments finished" in err
    image_of(written)
    written.unlink()
    code, out, _ = report(curves, "--plot", "loss", "--top", "1", "--output", tmp_path / "loss.png")
    assert code == 0 and out == f"wrote {tmp_path / 'loss.png'}\n"
    image_of(tmp_path / "loss.png")


def test_report_plot_of_what_no_experiment_reported_says_what_there_is(curves, tmp_path):
    code, out, err = report(curves, "--plot", "final_loss")  # a final score only: its plot needs a parameter
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--plot needs --x P" in err and "reported step by step with report_metrics, for its learning curves: " \
        "loss, lr" in err
    code, out, err = report(curves, "--plot", "acc")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "unknown metric 'acc' for --plot; the metrics of this run are: final_loss, fit_time, loss, lr" in err
    run_experiments({"out_path": str(tmp_path / "plain"), "fit": lambda cfg, _: 1, "verbose": False}, [{"a": 1}])
    code, _, err = report(tmp_path / "plain", "--plot")
    assert code == 2 and "no intermediate metrics in" in err and "report_metrics(step, name=value, ...)" in err
    with pytest.raises(ReportError, match="unknown metric reported step by step 'acc' to plot.*: loss, lr"):
        plot_learning_curves(curves, ["acc"])
