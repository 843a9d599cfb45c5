"""Reading results: the table, its formats, plots, the report command and the end-of-run summary.

The runs are real (backend single): a sweep over lr x depth with 3
repetitions whose accuracies are chosen so that every order is known, and
one experiment that fails.
"""
import io
import json
import math
import re
import shutil
import subprocess
import sys

import pandas
import pytest

from experiment_runner import run_experiments
from experiment_runner.errors import CorruptRecordError, MissingDependencyError, NoResultsError, ReportError, UsageError
from experiment_runner.report import (
    RunRecords,
    experiments_with_null,
    experiments_without,
    experiments_without_number,
    format_table,
    plot_metric,
    read_results,
    results_table,
    lower_is_better,
    summarize_results,
    varying_parameters,
)
from experiment_runner.report_records import format_stat, top_experiments
from experiment_runner.report_cli import main
from test_imports import imported_after

#: The accuracy of repetition 0 of each (lr, depth); repetition r adds 0.01 * r.
ACCURACY = {
    (0.001, 1): 0.50, (0.001, 2): 0.60,
    (0.01, 1): 0.70, (0.01, 2): 0.90,
    (0.1, 1): 0.65, (0.1, 2): 0.80,
    (1.0, 1): 0.30,
}
SWEEP = [{"lr": lr, "depth": depth, "model": "ridge"} for lr in (0.001, 0.01, 0.1, 1.0) for depth in (1, 2)]
FAILING_ID = 7  # lr=1.0, depth=2
BY_ACCURACY = [3, 5, 2, 4, 1, 0, 6]
STD_OF_3_REPETITIONS = math.sqrt(2 / 3) * 0.01


def fit(cfg, _):
    if (cfg["lr"], cfg["depth"]) not in ACCURACY:
        raise ValueError("diverged")
    return ACCURACY[cfg["lr"], cfg["depth"]] + 0.01 * cfg["run_id"]


def post(cfg, accuracy):
    return {"acc": accuracy, "loss": cfg["lr"] * cfg["depth"]}


def run(out_path, cfgs=SWEEP, **settings):
    basecfg = {"out_path": str(out_path), "fit": fit, "post": post, "verbose": False, **settings}
    return run_experiments(basecfg, cfgs)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A finished run: 8 experiments x 3 repetitions, experiment 7 failed. Tests only read it."""
    out_path = tmp_path_factory.mktemp("report") / "sweep"
    run(out_path, repetitions=3)
    return out_path


def report(*args):
    """Run the report command; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main([str(arg) for arg in args])
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


# --- the table ------------------------------------------------------------------------------------


def test_varying_parameters_hide_the_constant_ones(sweep):
    assert varying_parameters(sweep) == ["lr", "depth"]
    assert varying_parameters(read_results(sweep)) == ["lr", "depth"]


def test_table_shows_varying_parameters_and_mean_and_std_sorted_by_the_first_metric(sweep):
    table = results_table(sweep)
    assert list(table.columns) == ["experiment_id", "lr", "depth", "acc", "loss", "fit_time"]
    assert list(table["experiment_id"]) == BY_ACCURACY
    best = table.iloc[0]
    assert (best["lr"], best["depth"]) == ("0.01", "2")
    assert best["acc"] == "0.9100 ± 0.0082"
    assert best["loss"] == "0.02000 ± 0.00000"


def test_summary_holds_the_numbers(sweep):
    summary = summarize_results(sweep)
    best = summary.iloc[0]
    assert best["mean_acc"] == pytest.approx(0.91)
    assert best["std_acc"] == pytest.approx(STD_OF_3_REPETITIONS)
    assert FAILING_ID not in set(summary["experiment_id"])


def test_sort_ascending_by_another_metric_and_top(sweep):
    table = results_table(sweep, sort="loss", ascending=True, top=3)
    assert list(table["experiment_id"]) == [0, 1, 2]


def test_best_per_parameter_keeps_the_best_experiment_of_each_value(sweep):
    assert list(results_table(sweep, best_per="lr")["experiment_id"]) == [3, 5, 1, 6]
    assert list(results_table(sweep, best_per="depth")["experiment_id"]) == [3, 2]
    assert list(results_table(sweep, best_per="model")["model"]) == ["ridge"], "a constant group is shown"


@pytest.mark.parametrize("metric, lower", [
    ("acc", False), ("accuracy", False), ("f1", False), ("timestamp", False), ("lossless_ratio", False),
    ("loss", True), ("val_loss", True), ("test_mse", True), ("error_rate", True), ("fit_time", True),
    ("RMSE", True), ("train-errors", True), ("valLoss", True), ("TrainLoss", True), ("testMSE", True),
    ("logloss", True), ("runtime", True), ("walltime", True), ("rmsle", True), ("wer", True),
    ("mean_losses", True), ("testAccuracy", False), ("throughput", False), ("class_count", False),
])
def test_lower_is_better_is_read_from_the_metric_name(metric, lower):
    assert lower_is_better(metric) is lower


def test_a_loss_is_sorted_lowest_first_unless_told_otherwise(sweep):
    assert list(results_table(sweep, sort="loss")["experiment_id"]) == [0, 1, 2, 3, 4, 5, 6]
    assert list(results_table(sweep, sort="loss", ascending=False, top=2)["experiment_id"]) == [6, 5]
    assert list(results_table(sweep, ascending=True, top=2)["experiment_id"]) == [6, 0]
    code, out, err = report(sweep, "--sort", "loss", "--descending", "--top", "1")
    assert out.splitlines()[1].split()[0] == "6" and "sorted by loss, highest first" in err


def test_decimals_round_mean_and_std(sweep):
    assert results_table(sweep, top=1, decimals=3)["acc"].iloc[0] == "0.910 ± 0.008"


def test_one_repetition_shows_the_value_alone_and_nested_keys_dotted(tmp_path):
    cfgs = [{"lr": 0.01, "depth": 1, "opt": {"name": "sgd", "momentum": m}, "layers": [1, 2]} for m in (0.0, 0.9)]
    run(tmp_path / "run", cfgs)
    table = results_table(tmp_path / "run")
    assert list(table.columns) == ["experiment_id", "opt.momentum", "acc", "loss", "fit_time"]
    assert list(table["acc"]) == ["0.7000", "0.7000"]


def test_parameters_named_like_secrets_are_columns_and_declared_secrets_are_not(tmp_path):
    cfgs = [{"lr": 0.01, "depth": 1, "max_tokens": n, "tokenizer": t, "secretary_n": n // 256, "api_key": t}
            for n, t in ((256, "bpe"), (512, "wordpiece"))]
    run(tmp_path / "run", cfgs, secret_keys=["api_key"])
    table = results_table(tmp_path / "run")
    assert list(table.columns) == ["experiment_id", "max_tokens", "tokenizer", "secretary_n", "acc", "loss", "fit_time"]
    assert sorted(table["tokenizer"]) == ["bpe", "wordpiece"]


def test_a_sweep_where_nothing_varies_shows_id_and_metrics(tmp_path):
    run(tmp_path / "run", [{"lr": 0.01, "depth": 1}])
    assert list(results_table(tmp_path / "run").columns) == ["experiment_id", "acc", "loss", "fit_time"]


#: A group sweep as ``model=forest,linear`` composes it: only the forest option has a depth.
GROUP_SWEEP = [{"model": {"name": "forest", "depth": depth}} for depth in (1, 2, 3)] + [
    {"model": {"name": "linear", "alpha": 0.5}}
]


def count_nodes(cfg, _):
    return 10_000 + 1_290 * cfg["model"].get("depth", 2)


def nodes_and_accuracy(cfg, nodes):
    return {"n_nodes": nodes, "acc": 0.5 + 0.01 * cfg["model"].get("depth", 0)}


@pytest.fixture(scope="module")
def group_sweep(tmp_path_factory):
    out_path = tmp_path_factory.mktemp("report") / "group_sweep"
    run_experiments({"out_path": str(out_path), "fit": count_nodes, "post": nodes_and_accuracy, "verbose": False},
                    GROUP_SWEEP)
    return out_path


def test_the_table_shows_whole_numbers_as_integers_and_missing_parameters_as_empty_cells(group_sweep):
    table = results_table(group_sweep)
    assert list(table.columns) == ["experiment_id", "model.name", "model.depth", "model.alpha", "n_nodes", "acc",
                                   "fit_time"]
    rows = {row["experiment_id"]: row for row in table.to_dict("records")}
    assert [rows[i]["n_nodes"] for i in range(4)] == ["11290", "12580", "13870", "12580"]
    assert (rows[3]["model.depth"], rows[3]["model.alpha"]) == ("", "0.5")
    assert (rows[0]["model.depth"], rows[0]["model.alpha"]) == ("1", "")
    code, out, _ = report(group_sweep, "--format", "markdown")
    assert code == 0 and "| 3 | linear |  | 0.5 | 12580 | 0.5000 |" in out
    code, out, _ = report(group_sweep)
    assert code == 0 and "nan" not in out and "e+04" not in out


@pytest.mark.parametrize("mean, std, expected", [
    (12580, None, "12580"), (-3, 0.0, "-3 ± 0"), (10**20, None, "100000000000000000000"), (12580, 816.5, "12580 ± 816"),
    (12580.0, None, "12580.0"), (12580.7, 816.4, "12580.7 ± 816.4"), (3000000.5, 0.5, "3000000.5 ± 0.5"),
    (1234.5, None, "1234.5"), (-3.0, 0.0, "-3.000 ± 0.000"), (1.0004, 0.00012, "1.000 ± 0.000"),
    (0.91, 0.0082, "0.9100 ± 0.0082"), (123.456, 1.234, "123.5 ± 1.2"), (0.0, None, "0.000"),
    (4.08e-05, 1.1e-06, "4.080e-05 ± 1.100e-06"), (1e20, None, "1.000e+20"), (math.nan, None, ""),
])
def test_ints_show_in_full_and_other_numbers_four_significant_digits_with_a_point(mean, std, expected):
    assert format_stat(mean, std) == expected


@pytest.mark.parametrize("mean, std, expected", [
    (12580, 816.5, "12580 ± 816"), (3000000.5, 0.5, "3000000.500 ± 0.500"), (0.91, 0.0082, "0.910 ± 0.008"),
])
def test_decimals_set_the_digits_of_every_number_but_an_int(mean, std, expected):
    assert format_stat(mean, std, decimals=3) == expected


def fit_nothing(cfg):
    return None


def counts_and_times(cfg, _):
    """count: ints whose mean is whole (k=0), ints whose mean is not (k=1), floats that are whole (k=2)."""
    count = [12580, 3 + cfg["run_id"], 3.0][cfg["k"]]
    return {"count": count, "big": 3000000.5, "seconds": 1.0004}


def test_a_mean_is_shown_as_an_int_only_when_the_values_are_ints_and_the_std_with_the_means_digits(tmp_path):
    summary = run_experiments({"out_path": str(tmp_path / "run"), "fit": fit_nothing, "post": counts_and_times,
                               "repetitions": 2,
                               "verbose": False}, [{"k": k} for k in range(3)])
    rows = results_table(tmp_path / "run").to_dict("records")
    assert [row["count"] for row in rows] == ["12580 ± 0", "3.500 ± 0.500", "3.000 ± 0.000"]
    assert {(row["big"], row["seconds"]) for row in rows} == {("3000000.5 ± 0.0", "1.000 ± 0.000")}
    code, out, _ = report(tmp_path / "run", "--format", "csv")
    assert code == 0 and [line.split(",")[2:5] for line in out.splitlines()] == [
        ["mean_count", "std_count", "mean_big"], ["12580", "0.0", "3000000.5"], ["3.5", "0.5", "3000000.5"],
        ["3.0", "0.0", "3000000.5"]]
    assert "  #0  12580 ± 0  k=0" in summary.lines()


def accuracy_of_a(cfg, _):
    return {"acc": "n/a" if cfg["a"] == 4 else 0.5 + 0.1 * cfg["a"]}


@pytest.fixture(scope="module")
def gaps(tmp_path_factory):
    """b is 1, null, missing (another option of a group sweep), 2; the last experiment's acc is a string."""
    out_path = tmp_path_factory.mktemp("report") / "gaps"
    cfgs = [{"a": 1, "b": 1}, {"a": 2, "b": None}, {"a": 3}, {"a": 4, "b": 2}]
    run_experiments({"out_path": str(out_path), "fit": fit_nothing, "post": accuracy_of_a, "verbose": False}, cfgs)
    return out_path


def test_a_null_parameter_shows_as_null_and_a_missing_one_as_an_empty_cell(gaps):
    rows = {row["experiment_id"]: row for row in results_table(gaps).to_dict("records")}
    assert [rows[i]["b"] for i in range(4)] == ["1", "null", "", "2"]
    code, out, _ = report(gaps, "--format", "csv")
    assert code == 0 and sorted(line.split(",")[:3] for line in out.splitlines()[1:]) == [
        ["0", "1", "1"], ["1", "2", "null"], ["2", "3", ""], ["3", "4", "2"]]


# --- runs in progress, resumed, failed --------------------------------------------------------------


def test_a_run_in_progress_is_reported_with_its_missing_and_failed_experiments(sweep, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("experiments.jsonl", "failures.jsonl"):
        (partial / name).write_text((sweep / name).read_text())
    lines = (sweep / "results.jsonl").read_text().splitlines(keepends=True)
    (partial / "results.jsonl").write_text("".join(lines[:4]) + lines[4][:25])  # a line being written

    records = RunRecords.load(partial)
    assert (len(records.results), records.total, records.failed_ids, records.missing) == (4, 8, {7}, 3)
    assert varying_parameters(partial) == ["lr", "depth"]
    code, out, err = report(partial)
    assert code == 0
    assert "4 of 8 experiments finished, 1 failed" in err and "3 not finished yet" in err
    assert str(partial / "failures.jsonl") in err
    assert len(out.strip().splitlines()) == 1 + 4


def test_a_resumed_run_counts_an_experiment_that_failed_then_finished_as_finished(tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("")
    cfgs = [{"lr": 0.01, "depth": 1, "flag": str(flag)}, {"lr": 0.1, "depth": 2, "flag": str(flag)}]

    def fit_unless_flag(cfg, _):
        if cfg["depth"] == 2 and flag.exists():
            raise RuntimeError("flag present")
        return fit(cfg, _)

    basecfg = {"out_path": str(tmp_path / "run"), "fit": fit_unless_flag, "post": post, "verbose": False}
    run_experiments(basecfg, cfgs)
    assert RunRecords.load(tmp_path / "run").failed_ids == {1}
    flag.unlink()
    run_experiments({**basecfg, "if_exists": "resume"}, cfgs)

    records = RunRecords.load(tmp_path / "run")
    assert (len(records.results), records.failed_ids, records.missing) == (2, set(), 0)
    assert list(results_table(records)["experiment_id"]) == [1, 0]


def test_no_finished_experiment_yet_is_a_clear_error(tmp_path):
    run(tmp_path / "run", [{"lr": 1.0, "depth": 2}])
    with pytest.raises(NoResultsError, match=r"no finished experiments yet .* 0 of 1 .* 1 failed"):
        results_table(tmp_path / "run")
    code, out, err = report(tmp_path / "run")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "failures.jsonl" in err


def test_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(NoResultsError, match="is it the out_path of a run"):
        results_table(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_results(tmp_path / "nothing")
    assert report(tmp_path)[0] == 2


@pytest.mark.parametrize("line, problem", [
    ('{"experiment_id": 3, "lr"\n', "not JSON (Expecting ':' delimiter"),
    ("[3]\n", "a JSON list, not a record"),
    (b"\xff\n", "not JSON ('utf-8' codec can't decode"),
], ids=["not-json", "not-an-object", "not-utf-8"])
def test_a_corrupt_line_before_the_last_is_an_error_naming_the_file_and_line(sweep, tmp_path, line, problem):
    broken = tmp_path / "broken"
    shutil.copytree(sweep, broken)
    lines = (broken / "results.jsonl").read_bytes().splitlines(keepends=True)
    lines[2] = line if isinstance(line, bytes) else line.encode()
    (broken / "results.jsonl").write_bytes(b"".join(lines))
    where = f"{broken / 'results.jsonl'}, line 3: {problem}"
    with pytest.raises(CorruptRecordError, match=re.escape(where)) as caught:
        read_results(broken)
    assert isinstance(caught.value, UsageError)
    code, out, err = report(broken)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and where in err


def test_a_path_too_long_for_the_filesystem_is_one_line(tmp_path):
    too_long = tmp_path / ("x" * 300)
    with pytest.raises(ReportError, match="File name too long"):
        read_results(too_long)
    code, out, err = report(too_long)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and f"cannot read '{too_long / 'results.jsonl'}': File name too long" in err


# --- errors name what is available ----------------------------------------------------------------

UNKNOWN_NAMES = [
    pytest.param(lambda run: results_table(run, sort="accuracy"), r"metric 'accuracy' .*: acc, loss, fit_time", id="sort"),
    pytest.param(lambda run: results_table(run, best_per="rate"), r"parameter 'rate' .*: lr, depth, model", id="best_per"),
    pytest.param(lambda run: plot_metric(run, "accuracy", x="lr"), r"metric 'accuracy' .*: acc, loss", id="plot"),
    pytest.param(lambda run: plot_metric(run, "acc", x="rate"), r"parameter 'rate' for x.*: lr, depth", id="x"),
    pytest.param(lambda run: plot_metric(run, "acc", x="lr", hue="d"), r"parameter 'd' for hue.*: lr, depth", id="hue"),
]


@pytest.mark.parametrize("make, message", UNKNOWN_NAMES)
def test_unknown_names_are_errors_naming_the_available_ones(sweep, make, message):
    with pytest.raises(ReportError, match=message) as caught:
        make(sweep)
    assert isinstance(caught.value, UsageError)


@pytest.mark.parametrize("args, message", [
    (["--sort", "accuracy"], "the metrics of this run are: acc, loss, fit_time"),
    (["--best-per", "rate"], "the parameters of this run are: lr, depth, model"),
    (["--plot", "acc"], "--plot needs --x"),
    (["--plot", "los"], "unknown metric 'los' for --plot (did you mean 'loss'?); the metrics of this run are: acc, "
                        "fit_time, loss"),
    (["--x", "lr"], "--x and --hue go with --plot"),
    (["--format", "html", "--output", "no/such/folder/table.html"], "does not exist"),
    (["--output", "."], "is a folder"),
], ids=["sort", "best-per", "plot-without-x", "plot-typo", "x-without-plot", "output-folder", "output-is-a-folder"])
def test_report_command_errors_are_one_line_and_exit_2(sweep, args, message):
    code, out, err = report(sweep, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("experiment-runner report: error:")


def test_a_malformed_command_line_exits_2(sweep):
    assert report(sweep, "--top", "0")[0] == 2
    assert report(sweep, "--format", "xls")[0] == 2


# --- formats ------------------------------------------------------------------------------------


def test_terminal_table(sweep):
    code, out, err = report(sweep, "--top", "2")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == ["experiment_id", "lr", "depth", "acc", "loss", "fit_time"]
    assert first.split()[:4] == ["3", "0.01", "2", "0.9100"] and "± 0.0082" in first
    assert "7 of 8 experiments finished, 1 failed" in err and "sorted by acc, highest first" in err


def test_markdown_has_a_header_row(sweep):
    code, out, _ = report(sweep, "--format", "markdown", "--top", "2")
    lines = out.splitlines()
    assert lines[0] == "| experiment_id | lr | depth | acc | loss | fit_time |"
    assert lines[1] == "| --- | --- | --- | --- | --- | --- |"
    assert lines[2].startswith("| 3 | 0.01 | 2 | 0.9100 ± 0.0082 |") and len(lines) == 4


def test_csv_parses_back_as_numbers(sweep, tmp_path):
    output = tmp_path / "table.csv"
    code, out, err = report(sweep, "--format", "csv", "--best-per", "depth", "--output", output)
    assert code == 0 and out == "" and f"wrote {output}" in err
    frame = pandas.read_csv(output)
    assert list(frame.columns) == ["experiment_id", "lr", "depth", "mean_acc", "std_acc", "mean_loss",
                                   "std_loss", "mean_fit_time", "std_fit_time"]
    assert list(frame["experiment_id"]) == [3, 2]
    assert list(frame["mean_acc"]) == pytest.approx([0.91, 0.71])
    assert frame["std_acc"].iloc[0] == pytest.approx(STD_OF_3_REPETITIONS)


def test_csv_rounds_with_decimals(sweep):
    _, out, _ = report(sweep, "--format", "csv", "--decimals", "2", "--top", "1")
    assert out.splitlines()[1].startswith("3,0.01,2,0.91,0.01,0.02,0.0,")


def test_html_is_a_page_with_a_table(sweep):
    code, out, _ = report(sweep, "--format", "html")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>") and "<table" in out and "</html>" in out
    assert "<th>acc</th>" in out and "0.9100 ± 0.0082" in out
    assert "1 failed" in out


def test_format_table_rejects_an_unknown_format(sweep):
    with pytest.raises(ReportError, match="table, markdown, csv, html"):
        format_table(results_table(sweep), "xls")


# --- plots -------------------------------------------------------------------------------------


def test_plot_is_a_decodable_png_with_a_log_axis_where_values_span_decades(sweep, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    output = tmp_path / "acc.png"
    figure = plot_metric(sweep, "acc", x="lr", hue="depth", output=output)
    pixels = image.imread(output)
    assert output.stat().st_size > 10_000 and pixels.shape[0] > 300 and pixels.shape[1] > 300
    axes = figure.axes[0]
    assert axes.get_xscale() == "log" and axes.get_yscale() == "linear"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["depth=1", "depth=2"]
    assert [len(bars.lines[0].get_xdata()) for bars in axes.containers] == [4, 3], "depth=2 lacks the failed lr=1"


def test_plot_axes_are_linear_or_log_by_their_values(sweep):
    pytest.importorskip("matplotlib")
    loss_by_lr = plot_metric(sweep, "loss", x="lr", hue="depth").axes[0]
    assert loss_by_lr.get_xscale() == "log" and loss_by_lr.get_yscale() == "log"
    acc_by_depth = plot_metric(sweep, "acc", x="depth").axes[0]
    assert acc_by_depth.get_xscale() == "linear" and acc_by_depth.get_yscale() == "linear"


def test_plot_points_pool_the_experiments_that_share_an_x_value(sweep):
    pytest.importorskip("matplotlib")
    [bars] = plot_metric(sweep, "acc", x="depth").axes[0].containers
    depth_1 = [0.50, 0.70, 0.65, 0.30]
    assert list(bars.lines[0].get_xdata()) == [1, 2]
    assert bars.lines[0].get_ydata()[0] == pytest.approx(sum(depth_1) / 4 + 0.01)


def test_plot_of_a_text_parameter_labels_its_ticks(tmp_path):
    pytest.importorskip("matplotlib")
    run(tmp_path / "run", [{"lr": 0.01, "depth": 1, "model": m} for m in ("ridge", "lasso")])
    axes = plot_metric(tmp_path / "run", "acc", x="model").axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["lasso", "ridge"]


def test_a_plot_leaves_out_the_experiments_without_its_x_and_says_how_many(group_sweep, tmp_path):
    pytest.importorskip("matplotlib")
    [bars] = plot_metric(group_sweep, "acc", x="model.depth").axes[0].containers
    assert list(bars.lines[0].get_xdata()) == [1, 2, 3]
    assert experiments_without(group_sweep, "model.depth") == [3]
    code, out, err = report(group_sweep, "--plot", "acc", "--x", "model.depth", "--output", tmp_path / "acc.png")
    assert code == 0 and out == f"wrote {tmp_path / 'acc.png'}\n"
    assert err.splitlines()[-1] == "left out of the plot: 1 of 4 finished experiments, which have no model.depth"
    code, out, err = report(group_sweep, "--plot", "acc", "--x", "model.name", "--hue", "model.depth",
                            "--output", tmp_path / "by_name.png")
    assert code == 0 and "left out of the plot: 1 of 4 finished experiments, which have no model.depth\n" in err
    code, out, err = report(group_sweep, "--plot", "acc", "--x", "model.name", "--output", tmp_path / "all.png")
    assert code == 0 and "left out" not in err


def test_a_plot_leaves_out_a_null_x_or_hue_and_a_metric_that_is_not_a_number_and_says_so(gaps, tmp_path):
    pytest.importorskip("matplotlib")
    [bars] = plot_metric(gaps, "acc", x="b").axes[0].containers
    assert list(bars.lines[0].get_xdata()) == [1]
    assert (experiments_without(gaps, "b"), experiments_with_null(gaps, "b")) == ([2], [1])
    assert experiments_without_number(gaps, "acc") == [3]
    code, _, err = report(gaps, "--plot", "acc", "--x", "b", "--output", tmp_path / "by_b.png")
    assert code == 0 and err.splitlines()[-2:] == [
        "left out of the plot: 2 of 4 finished experiments, which have no b or whose b is null",
        'left out of the plot: 1 of 4 finished experiments, whose acc is not a number (experiment 3: "n/a")']
    axes = plot_metric(gaps, "acc", x="a", hue="b").axes[0]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["b=1"]
    code, _, err = report(gaps, "--plot", "acc", "--x", "a", "--hue", "b", "--output", tmp_path / "by_a.png")
    assert code == 0 and "2 of 4 finished experiments, which have no b or whose b is null\n" in err


def test_report_command_writes_the_plot_next_to_the_results(sweep, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, _ = report(sweep, "--plot", "acc", "--x", "lr", "--hue", "depth")
    assert code == 0
    written = sweep / "acc_by_lr_and_depth.png"
    assert out == f"wrote {written}\n" and written.read_bytes().startswith(b"\x89PNG")
    written.unlink()
    code, out, _ = report(sweep, "--plot", "loss", "--x", "depth", "--output", tmp_path / "loss.png")
    assert code == 0 and (tmp_path / "loss.png").stat().st_size > 0


def test_plot_without_matplotlib_names_the_install_command(sweep, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'experiment-runner\[plot\]'"):
        plot_metric(sweep, "acc", x="lr")
    code, _, err = report(sweep, "--plot", "acc", "--x", "lr")
    assert code == 2 and "experiment-runner[plot]" in err


def test_report_runs_as_a_module(sweep):
    done = subprocess.run([sys.executable, "-m", "experiment_runner.report_cli", str(sweep), "--top", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.splitlines()[1].split()[0] == "3"


# --- the end-of-run summary ----------------------------------------------------------------------


def test_top_experiments_streams_the_best_few(sweep):
    metric, best = top_experiments(sweep / "results.jsonl", n=2)
    assert metric == "acc"
    assert [(e.experiment_id, e.params) for e in best] == [(3, {"lr": 0.01, "depth": 2}), (5, {"lr": 0.1, "depth": 2})]
    assert best[0].mean == pytest.approx(0.91) and best[0].std == pytest.approx(STD_OF_3_REPETITIONS)


def test_run_summary_shows_the_best_experiments_by_the_first_metric(tmp_path, capfd):
    summary = run(tmp_path / "run", verbose=True)
    err = capfd.readouterr().err
    assert f"highest acc (all: experiment-runner report {summary.out_path}):" in err
    assert "  #3  0.9000  lr=0.01 depth=2\n  #5  0.8000  lr=0.1 depth=2\n  #2  0.7000  lr=0.01 depth=1\n" in err
    assert summary.lines()[-3:] == ["  #3  0.9000  lr=0.01 depth=2", "  #5  0.8000  lr=0.1 depth=2",
                                    "  #2  0.7000  lr=0.01 depth=1"]


def test_run_summary_lists_the_lowest_when_the_first_metric_is_a_loss(tmp_path, capfd):
    def loss_first(cfg, accuracy):
        return {"val_loss": 1 - accuracy, "acc": accuracy}

    run_experiments({"out_path": str(tmp_path / "run"), "fit": fit, "post": loss_first}, SWEEP[:4])
    err = capfd.readouterr().err
    assert "lowest val_loss (all: experiment-runner report" in err
    assert "  #3  0.1000  lr=0.01 depth=2\n  #2  0.3000  lr=0.01 depth=1\n  #1  0.4000  lr=0.001 depth=2\n" in err


def test_run_summary_without_metrics_or_results_adds_nothing(tmp_path):
    summary = run(tmp_path / "run", [{"lr": 1.0, "depth": 2}])
    assert not any(line.startswith("highest") for line in summary.lines())


def test_the_summary_does_not_import_pandas(tmp_path):
    code = (
        "from experiment_runner import run_experiments\n"
        "def fit(cfg, _): return cfg['x']\n"
        "def post(cfg, y): return {'y': y}\n"
        f"run_experiments({{'out_path': {str(tmp_path / 'run')!r}, 'fit': fit, 'post': post, 'verbose': True}},"
        " [{'x': 1}, {'x': 2}])\n"
        "import experiment_runner.report_cli"
    )
    assert not imported_after(code) & {"pandas", "matplotlib"}
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["scores"]["y"] for line in lines] == [1, 2]


def test_the_plot_files_suffix_picks_its_format(sweep, tmp_path):
    plot_metric(sweep, "loss", x="lr", output=tmp_path / "loss.pdf")
    assert (tmp_path / "loss.pdf").read_bytes().startswith(b"%PDF")
    plot_metric(sweep, "loss", x="lr", output=tmp_path / "loss.svg")
    assert b"<svg" in (tmp_path / "loss.svg").read_bytes()[:500]
    with pytest.raises(ReportError, match=r"cannot write a plot as \.txt"):
        plot_metric(sweep, "loss", x="lr", output=tmp_path / "loss.txt")
