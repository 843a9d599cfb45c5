"""What the server keeps of a run's lines (parameters by column, scores as arrays) gives back what was recorded."""
import json
import math

import pytest

from experiment_runner.report_records import flatten
from experiment_runner.serve.columns import ABSENT, ParameterColumns, ScoreBlocks, metric_mean
from experiment_runner.serve.site import Site

SCORES = [
    {"acc": [0.5, 0.25], "mean_acc": 0.375, "std_acc": 0.125, "fit_time": [0.1, 0.2]},
    {"acc": [0.75, 0.5], "mean_acc": 0.625, "std_acc": 0.125, "fit_time": [0.3, 0.1]},
    {"acc": [1, 2], "mean_acc": 1.5, "std_acc": 0.5, "fit_time": [0.1, 0.1]},  # ints: kept as ints
    {"acc": [0.5, None], "mean_acc": None, "std_acc": None, "fit_time": [0.1, 0.2]},  # a missing value
    {"acc": float("nan"), "fit_time": 0.5, "note": "diverged", "extra": {"a": [1, 2]}},  # other keys
    {"acc": [0.5], "mean_acc": float("inf"), "std_acc": 0.0, "fit_time": [0.1]},
    ["not", "a", "dict"],
    {},
]


def same(a, b):
    return json.dumps(a, allow_nan=True) == json.dumps(b, allow_nan=True) and type(a) is type(b)


def test_scores_come_back_as_recorded_and_means_are_those_of_metric_mean():
    blocks = ScoreBlocks()
    blocks.add(list(range(4)), SCORES[:4])
    blocks.add(list(range(4, len(SCORES))), SCORES[4:])
    for experiment_id, scores in enumerate(SCORES):
        assert same(blocks.scores(experiment_id), scores)
        assert same(blocks[experiment_id], {"scores": scores})
    assert isinstance(blocks.scores(2)["acc"][0], int) and isinstance(blocks.scores(0)["acc"][0], float)
    for metric in ("acc", "fit_time", "note", "missing"):
        expected = {i: metric_mean(s, metric) for i, s in enumerate(SCORES) if metric_mean(s, metric) is not None}
        assert blocks.mean_column(metric) == expected
        assert blocks.has_number(metric) == bool(expected)
    assert blocks.mean_column("acc", since=1) == {}  # block 1 holds no finite acc
    assert sorted(blocks) == list(range(len(SCORES))) and len(blocks) == len(SCORES)


def test_an_experiment_recorded_again_has_its_last_scores():
    blocks = ScoreBlocks()
    blocks.add([0, 1, 2], [{"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    blocks.add([1], [{"acc": "n/a"}])
    blocks.add([2, 2], [{"acc": 0.5}, {"acc": 0.9}])  # twice in one chunk: the later line counts
    assert blocks.mean_column("acc") == {0: 0.1, 2: 0.9}
    assert blocks.scores(1) == {"acc": "n/a"} and len(blocks) == 3
    assert blocks.sorted_ids() == [0, 1, 2]
    blocks.add([1], [{"acc": None, "loss": 1.0}])
    assert blocks.has_number("loss") and not blocks.has_number("missing")
    lost = ScoreBlocks()
    lost.add([0], [{"acc": 0.5}])
    lost.add([0], [{"acc": None}])  # its number was in the line recorded first only
    assert not lost.has_number("acc") and lost.mean_column("acc") == {}


def test_ids_come_back_in_order_whatever_order_their_lines_came_in():
    blocks = ScoreBlocks()
    blocks.add([0, 1], [{}, {}])
    blocks.add([5, 3], [{}, {}])
    blocks.add([4], [{}])
    assert blocks.sorted_ids() == [0, 1, 3, 4, 5]
    blocks.add([6], [{}])
    assert blocks.sorted_ids() == [0, 1, 3, 4, 5, 6]


CONFIGS = [
    {"lr": 0.1, "model": {"name": "forest", "depth": 3}, "tags": [1, 2]},
    {"lr": 0.01, "model": {"name": "mlp", "depth": 4}, "tags": [1]},
    {"lr": 0.01, "model": {"name": "mlp"}, "extra": None},  # another shape
    {"lr": 1, "model": {}, "flag": True},  # an empty dict is a value
    {"a.b": 1, "a": {"b": 2}},  # a dotted name meets a nested one: as flatten does it
]


@pytest.mark.parametrize("chunks", [[CONFIGS[:2], CONFIGS[2:]], [[config] for config in CONFIGS], [CONFIGS]])
def test_parameters_by_column_are_flatten_of_each_config(chunks):
    columns = ParameterColumns()
    start = 0
    for chunk in chunks:
        columns.add(list(range(start, start + len(chunk))), chunk)
        start += len(chunk)
    for experiment_id, config in enumerate(CONFIGS):
        assert columns[experiment_id] == flatten(config)
    assert columns.value("model.depth", 2) is ABSENT and columns.count("model.depth") == 2
    assert dict(columns) == {i: flatten(config) for i, config in enumerate(CONFIGS)}


def test_a_config_recorded_again_forgets_the_parameters_it_no_longer_has():
    columns = ParameterColumns()
    columns.add([0, 1], [{"a": 1, "b": 2, "c": 1}, {"a": 3, "b": 4, "c": 1}])
    assert columns.varying() == ["a", "b"]
    columns.add([1], [{"a": 1, "c": 1.0}])
    assert columns[1] == {"a": 1, "c": 1.0} and columns.count("b") == 1
    assert columns.varying() == ["b"]  # a is 1 in both now; b is missing in one; 1 and 1.0 are one value
    columns.add([2, 2], [{"a": 1, "b": 2}, {"a": 2}])  # twice in one chunk
    assert columns[2] == {"a": 2}


@pytest.mark.parametrize("chunks", [[[0, 1, 2, 3]], [[0], [1], [2], [3]]])
def test_a_parameter_varies_when_json_tells_its_values_apart(chunks):
    configs = [{"flag": 1, "same": [1], "text": "a"}, {"flag": True, "same": [1], "text": "a"},
               {"flag": 1, "same": [1], "text": "a"}, {"flag": 1, "same": [1], "text": "b"}]
    columns = ParameterColumns()
    for ids in chunks:
        columns.add(ids, [configs[i] for i in ids])
    assert columns.varying() == ["flag", "text"]


def test_the_experiment_panel_reads_its_config_line_again(tmp_path):
    """What experiments.jsonl recorded is read again from its line (the folder has no config.json yet)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.yaml").write_text("backend: single\n")
    configs = [{"lr": 10.0 ** -i, "model": {"name": "mlp"}} for i in range(3)]
    (run / "experiments.jsonl").write_text("".join(
        json.dumps({"experiment_id": i, "hash": str(i), "config": config}) + "\n" for i, config in enumerate(configs)))
    (run / "results.jsonl").write_text(json.dumps({**configs[0], "experiment_id": 0, "scores": {"acc": 1}}) + "\n")
    view = Site(run).view({"run": ["."]})
    assert [view.recorded_config(i) for i in range(3)] == configs and view.recorded_config(3) is None
    assert view.params[2] == {"lr": 0.01, "model.name": "mlp"} and view.total == 3


def test_a_tree_without_experiments_jsonl_takes_the_configs_from_its_results(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.yaml").write_text("backend: single\n")
    lines = [{"lr": 0.1, "experiment_id": 0, "out_path": "x/0", "scores": {"acc": 0.5}},
             {"lr": 0.2, "experiment_id": 1, "out_path": "x/1", "scores": {"acc": math.pi}, "trial": {"n": 1}}]
    (run / "results.jsonl").write_text("\n\n".join(json.dumps(line) for line in lines) + "\n")  # a blank line too
    view = Site(run).view({"run": ["."]})
    assert view.recorded_config(1) == {"lr": 0.2} and view.params[0] == {"lr": 0.1}
    assert view.row(1)["metrics"]["acc"] == {"mean": math.pi, "std": None, "n": 1}


@pytest.mark.parametrize("descending", [True, False])
def test_the_first_rows_by_a_metric_are_those_of_a_sort_of_all_of_them_ties_in_id_order(descending):
    from experiment_runner.serve.results_api import _best_of

    scored = {i: float((i * 7919) % 13) for i in reversed(range(500))}  # many ties, ids not in order
    everything = sorted(scored.items(), key=lambda item: (-item[1] if descending else item[1], item[0]))
    for count in (1, 38, 39, 50, 500, 600):
        assert _best_of(scored, count, descending) == everything[:count]
    assert _best_of({}, 5, descending) == []


def test_configs_with_their_keys_in_another_order_or_other_keys_are_flattened_as_well():
    configs = [{"a": 1, "m": {"x": 1}}, {"m": {"x": 2}, "a": 2}, {"a": 3, "b": 1}, {"a": 4, "m": {"y": 1}}]
    columns = ParameterColumns()
    columns.add([0, 1], configs[:2])
    columns.add([2, 3], configs[2:])
    assert [columns[i] for i in range(4)] == [flatten(config) for config in configs]


def test_a_result_recorded_again_updates_the_columns_and_best_row_already_made(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.yaml").write_text("backend: single\n")
    results = run / "results.jsonl"
    results.write_text("".join(json.dumps({"x": i, "experiment_id": i, "scores": {"acc": [a, a], "mean_acc": a}})
                               + "\n" for i, a in enumerate([0.5, 0.9, 0.7])))
    view = Site(run).view({"run": ["."]})
    assert view.metric_column("acc") == {0: 0.5, 1: 0.9, 2: 0.7} and view.best("acc", True) == (1, 0.9)
    with open(results, "a") as f:
        f.write(json.dumps({"x": 1, "experiment_id": 1, "scores": {"acc": [None, 1], "mean_acc": None}}) + "\n")
        f.write(json.dumps({"x": 3, "experiment_id": 3, "scores": {"acc": 0.6}}) + "\n")
    view.refresh()
    assert view.metric_column("acc") == {0: 0.5, 2: 0.7, 3: 0.6} and view.best("acc", True) == (2, 0.7)
    assert view.best("acc", False) == (0, 0.5) and view.results.scores(1) == {"acc": [None, 1], "mean_acc": None}
