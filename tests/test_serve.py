"""``experiment-runner serve``'s JSON API over HTTP: a real server on a loopback port, over real runs.

The runs are made by the tests (serve_runs.py): a finished sweep with known
accuracies, a run with failures, a run still going in another process.
"""
import json
import os
import shutil
import signal
import time

import pytest

from experiment_runner import Pruned, run_experiments
from experiment_runner.serve import serve
from experiment_runner.serve import site as site_module
from serve_runs import (BY_ACCURACY, FAILING_ID, api, errors_of, get, lines, make_failures, make_sweep,
                        start_blocked_run, wait_for)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder of runs: sweep/ (finished) and failures/ (finished, with failures)."""
    root = tmp_path_factory.mktemp("runs")
    make_sweep(root / "sweep")
    make_failures(root / "failures")
    return root


@pytest.fixture(scope="module")
def serving(runs):
    with serve(runs) as server:
        yield server


def test_the_runs_list_shows_each_run_with_its_state_counts_backend_and_command(serving):
    answer = api(serving, "runs")
    assert answer["root"] == str(serving.root.resolve())
    by_name = {run["run"]: run for run in answer["runs"]}
    assert set(by_name) == {"sweep", "failures"}
    sweep = by_name["sweep"]
    assert (sweep["state"], sweep["backend"], sweep["search"]) == ("finished", "single", False)
    assert (sweep["total"], sweep["finished"], sweep["failed"], sweep["pruned"], sweep["pending"],
            sweep["running"]) == (8, 7, 1, 0, 0, 0)
    assert sweep["started"] and sweep["wall_time"] >= 0
    assert "pytest" in sweep["command"] or "python" in sweep["command"]
    failures = by_name["failures"]
    assert (failures["finished"], failures["failed"], failures["pending"]) == (2, 4, 0)
    assert [run["started"] for run in answer["runs"]] == sorted((run["started"] for run in answer["runs"]),
                                                                reverse=True)


def test_one_run_names_its_parameters_varying_first_its_metrics_and_its_best_experiment(serving):
    run = api(serving, "run", run="sweep")
    assert run["parameters"] == ["lr", "depth", "model.name"]
    assert run["varying"] == ["lr", "depth"]
    assert run["metrics"] == ["acc", "loss", "fit_time"]
    assert run["best"] == {"experiment_id": BY_ACCURACY[0], "metric": "acc", "value": pytest.approx(0.905),
                           "direction": "max"}
    assert run["out_path"] == str(serving.root.resolve() / "sweep")
    assert run["path"] == os.path.join(str(serving.root), "sweep")
    assert run["eta_seconds"] is None
    assert run["version"] == api(serving, "run", run="sweep")["version"]


def test_the_best_metric_and_direction_can_be_chosen(serving):
    assert api(serving, "run", run="sweep", best="loss:min")["best"]["experiment_id"] == 0
    assert api(serving, "results", run="sweep", best="acc:min")["best_id"] == 6
    status, answer, _ = get(serving.url + "api/run?run=sweep&best=acc:highest")
    assert status == 400 and "METRIC:max" in answer["error"]


def test_results_are_one_row_per_experiment_with_mean_std_and_count_over_repetitions(serving):
    answer = api(serving, "results", run="sweep")
    names = [column["name"] for column in answer["columns"]]
    assert names == ["experiment_id", "lr", "depth", "model.name", "acc", "loss", "fit_time"]
    assert [column["kind"] for column in answer["columns"]][:2] == ["id", "parameter"]
    assert (answer["total"], answer["matched"], answer["best_id"]) == (7, 7, BY_ACCURACY[0])
    first = answer["rows"][0]
    assert first["experiment_id"] == 0
    assert first["parameters"] == {"lr": 0.001, "depth": 1, "model.name": "ridge"}
    assert first["metrics"]["acc"] == {"mean": pytest.approx(0.505), "std": pytest.approx(0.005), "n": 2}


@pytest.mark.parametrize("order, expected", [("desc", BY_ACCURACY), ("asc", BY_ACCURACY[::-1])])
def test_results_sort_by_a_metric_either_way(serving, order, expected):
    answer = api(serving, "results", run="sweep", sort="acc", order=order)
    assert [row["experiment_id"] for row in answer["rows"]] == expected


@pytest.mark.parametrize("metric", ["acc", "loss"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_of_one_row_come_in_the_order_of_the_whole_table(serving, metric, order):
    whole = [row["experiment_id"] for row in api(serving, "results", run="sweep", sort=metric, order=order)["rows"]]
    pages = [api(serving, "results", run="sweep", sort=metric, order=order, offset=offset, limit=1)["rows"]
             for offset in range(8)]
    assert [row["experiment_id"] for page in pages for row in page] == whole


def test_results_sort_by_a_parameter_and_come_in_pages(serving):
    pages = [api(serving, "results", run="sweep", sort="lr", order="desc", offset=offset, limit=3)
             for offset in (0, 3, 6)]
    ids = [row["experiment_id"] for page in pages for row in page["rows"]]
    assert ids == [6, 4, 5, 2, 3, 0, 1]
    assert [len(page["rows"]) for page in pages] == [3, 3, 1]
    assert {page["matched"] for page in pages} == {7}


def test_a_filter_narrows_the_results_and_two_filters_must_both_hold(serving):
    by_lr = api(serving, "results", run="sweep", filter="lr:0.01")
    assert [row["experiment_id"] for row in by_lr["rows"]] == [2, 3]
    assert (by_lr["matched"], by_lr["total"]) == (2, 7)
    both = api(serving, "results", run="sweep", filter=["lr:0.01", "depth:2"])
    assert [row["experiment_id"] for row in both["rows"]] == [3]
    as_text = api(serving, "results", run="sweep", filter="model.name:ridge")
    as_json = api(serving, "results", run="sweep", filter='model.name:"ridge"')
    assert as_text["matched"] == as_json["matched"] == 7
    assert api(serving, "results", run="sweep", filter="lr:0.5")["matched"] == 0


def test_the_values_of_a_parameter_are_counted_for_the_filters(serving):
    assert api(serving, "values", run="sweep", parameter="lr")["values"] == [[0.001, 2], [0.01, 2], [0.1, 2],
                                                                             [1.0, 1]]


@pytest.mark.parametrize("query, message", [
    ("sort=nope", "no such column"), ("order=up", "asc or desc"), ("limit=0", "between"),
    ("offset=x", "whole number"), ("filter=lr", "PARAMETER:VALUE"),
])
def test_a_bad_results_query_is_a_400_with_one_line(serving, query, message):
    status, answer, _ = get(serving.url + f"api/results?run=sweep&{query}")
    assert status == 400 and message in answer["error"] and "\n" not in answer["error"]


def test_an_experiment_shows_its_config_scores_per_repetition_logs_and_metrics(serving):
    answer = api(serving, "experiment", run="sweep", id=3)
    folder = serving.root.resolve() / "sweep" / "3"
    assert answer["path"] == str(folder)
    assert answer["status"] == "finished"
    assert answer["config"]["lr"] == 0.01 and answer["config"]["model"] == {"name": "ridge"}
    assert [(rep["run_id"], rep["scores"]["acc"], rep["path"]) for rep in answer["repetitions"]] == [
        (0, 0.90, str(folder / "0")), (1, 0.91, str(folder / "1"))]
    assert answer["scores"]["mean_acc"] == pytest.approx(0.905)
    assert answer["logs"]["1/stdout.log"] == "fitting lr=0.01 depth=2 repetition 1"
    assert [(line["run_id"], line["step"], line["loss"]) for line in answer["metrics"]][:3] == [
        (0, 0, 0.01), (0, 1, 0.005), (0, 2, pytest.approx(0.01 / 3))]
    assert answer["failures"] == []


def test_a_failed_experiment_shows_its_failures_and_traceback_in_its_log(serving):
    answer = api(serving, "experiment", run="sweep", id=FAILING_ID)
    assert answer["status"] == "failed" and answer["scores"] is None
    assert {line["error_type"] for line in answer["failures"]} == {"ValueError"}
    assert "ValueError: diverged at lr=1.0" in answer["logs"]["0/stderr.log"]


@pytest.mark.parametrize("id_", ["99", "-1", "x"])
def test_an_unknown_experiment_is_a_404_or_400(serving, id_):
    status, answer, _ = get(serving.url + f"api/experiment?run=sweep&id={id_}")
    assert status in (400, 404) and answer["error"]


def test_failures_are_grouped_by_identical_error_largest_group_first(serving):
    answer = api(serving, "failures", run="failures")
    assert answer["total"] == 4
    assert [(g["error"], g["status"], g["count"], g["experiment_ids"]) for g in answer["groups"]] == [
        ("ValueError: cannot use <object object at 0x…>", "error", 3, [2, 3, 4]),
        ("ZeroDivisionError: division by zero", "error", 1, [5]),
    ]
    tail = answer["groups"][1]["traceback_tail"].splitlines()
    assert tail[-1] == "ZeroDivisionError: division by zero" and len(tail) <= 15


def test_an_experiment_that_failed_then_finished_on_retry_is_no_failure(serving):
    answer = api(serving, "experiment", run="failures", id=1)
    assert answer["status"] == "finished"
    assert [line["message"] for line in answer["failures"]] == ["first attempt fails"]
    assert all(1 not in group["experiment_ids"] for group in api(serving, "failures", run="failures")["groups"])


def test_a_run_served_alone_is_named_dot(runs):
    with serve(runs / "sweep") as server:
        assert [run["run"] for run in api(server, "runs")["runs"]] == ["."]
        assert api(server, "results", run=".")["total"] == 7


def test_serving_reads_the_tree_and_writes_nothing_into_it(runs, serving):
    def snapshot():
        return sorted((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in runs.rglob("*"))

    before = snapshot()
    for run in ("sweep", "failures"):
        for path in ("run", "results", "failures"):
            api(serving, path, run=run)
        api(serving, "experiment", run=run, id=1)
    api(serving, "runs")
    assert snapshot() == before


# ---------------------------------------------------------------- a run still going


def test_a_run_in_progress_is_running_and_its_view_follows_the_new_lines(tmp_path):
    flag = tmp_path / "flag"
    process = start_blocked_run(tmp_path / "runs" / "live", flag)
    try:
        with serve(tmp_path / "runs") as server:
            run = api(server, "run", run="live")
            assert (run["state"], run["total"], run["finished"]) == ("running", 4, 2)
            assert run["running"] == 1 and run["pending"] == 1  # backend single: one at a time
            assert run["eta_seconds"] is not None
            assert api(server, "experiment", run="live", id=2)["status"] == "running"
            version = run["version"]
            flag.unlink()
            assert process.wait(timeout=60) == 0, errors_of(tmp_path / "runs" / "live").read_text()
            run = api(server, "run", run="live")
            assert (run["state"], run["finished"], run["running"], run["pending"]) == ("finished", 4, 0, 0)
            assert run["version"] != version
            assert api(server, "results", run="live")["total"] == 4
    finally:
        flag.unlink(missing_ok=True)
        process.kill()
        process.wait()


def test_a_run_killed_on_the_way_is_interrupted(tmp_path):
    flag = tmp_path / "flag"
    process = start_blocked_run(tmp_path / "live", flag)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    try:
        with serve(tmp_path / "live") as server:
            run = api(server, "run", run=".")
            assert (run["state"], run["finished"], run["pending"], run["running"]) == ("interrupted", 2, 2, 0)
    finally:
        flag.unlink()


def test_lines_appended_show_at_the_next_request_and_a_rewritten_file_is_read_anew(tmp_path, runs):
    run = tmp_path / "copy"
    shutil.copytree(runs / "sweep", run)
    results = run / "results.jsonl"
    with serve(run) as server:
        before = api(server, "run", run=".")
        records = [json.loads(line) for line in results.read_text().splitlines()]
        extra = {**records[0], "experiment_id": FAILING_ID, "scores": {"acc": 0.99, "loss": 9.0}}
        text = json.dumps(extra) + "\n"
        with open(results, "a") as f:
            f.write(text[:20])  # a line being written: not shown until it is whole
            f.flush()
            assert api(server, "results", run=".")["total"] == 7
            f.write(text[20:])
        after = api(server, "run", run=".")
        assert after["version"] != before["version"]
        assert (after["finished"], after["failed"], after["best"]["experiment_id"]) == (8, 0, FAILING_ID)
        with open(results, "a") as f:  # the best recorded again, now the worst: the next best is the best
            f.write(json.dumps({**extra, "scores": {"acc": 0.0, "loss": 9.0}}) + "\n")
        assert api(server, "run", run=".")["best"]["experiment_id"] == BY_ACCURACY[0]
        results.write_text("".join(json.dumps(record) + "\n" for record in records[:2]))  # a rewrite, shorter
        assert [row["experiment_id"] for row in api(server, "results", run=".")["rows"]] == [0, 1]


def test_a_run_s_path_is_shown_from_the_folder_as_it_was_given(runs, monkeypatch):
    """``serve results`` names its runs ``results/sweep`` (the page shows that); out_path stays absolute."""
    monkeypatch.chdir(runs.parent)
    with serve(runs.name) as server:
        assert api(server, "run", run="sweep")["path"] == f"{runs.name}/sweep"
    with serve(f"{runs.name}/sweep/") as server:
        run = api(server, "run", run=".")
        assert (run["path"], run["out_path"]) == (f"{runs.name}/sweep", str((runs / "sweep").resolve()))


def test_the_lines_a_follower_reads_are_only_the_new_ones(tmp_path):
    from experiment_runner.serve.follow import LineFollower

    path = tmp_path / "results.jsonl"
    follower = LineFollower(path)
    assert follower.read_new() == ([], False)
    path.write_text('{"a": 1}\n{"a": 2')
    assert follower.read_new() == ([{"a": 1}], False)
    with open(path, "a") as f:
        f.write('}\nnot json\n{"a": 3}\n')
    assert follower.read_new() == ([{"a": 2}, {"a": 3}], False)
    assert follower.bad_lines == 1
    assert follower.read_new() == ([], False)
    replaced = tmp_path / "new"
    replaced.write_text('{"b": 1}\n{"b": 2}\n{"b": 3}\n{"b": 4}\n')
    os.replace(replaced, path)  # same length or longer, but another file: read from its start
    assert follower.read_new() == ([{"b": 1}, {"b": 2}, {"b": 3}, {"b": 4}], True)


def test_lines_that_only_the_json_module_reads_are_read_as_it_reads_them(tmp_path):
    """A NaN another tool wrote, an int beyond 64 bits: the fast parser refuses them, the lines are still read."""
    import math

    from experiment_runner.serve.follow import LineFollower

    path = tmp_path / "results.jsonl"
    path.write_text('{"a": 1}\n{"a": NaN}\n{"a": 123456789012345678901234567890}\n{"a": 1.5}\n')
    records, _ = LineFollower(path).read_new()
    assert [record["a"] for record in records][::2] == [1, 123456789012345678901234567890]
    assert math.isnan(records[1]["a"]) and records[3] == {"a": 1.5} and type(records[2]["a"]) is int


def test_time_is_not_spent_rereading_what_was_read(tmp_path, runs):
    """A request after a new line reads only that line: the follower's offset moves by its length."""
    from experiment_runner.serve.site import Site

    run = tmp_path / "copy"
    shutil.copytree(runs / "sweep", run)
    site = Site(run)
    view = site.view({"run": ["."]})
    offset = view._followers["results"].offset
    assert offset == (run / "results.jsonl").stat().st_size
    with open(run / "results.jsonl", "a") as f:
        f.write('{"experiment_id": 7, "scores": {"acc": 0.1}}\n')
    view.refresh()
    assert view._followers["results"].offset == (run / "results.jsonl").stat().st_size
    assert lines(run / "results.jsonl") == 8 and len(view.results) == 8


def test_a_big_run_answers_at_once_with_what_is_read_so_far_then_whole(runs, monkeypatch):
    """Read a few hundred bytes at a time and not waited for: the first answers are partial, with ``loading``."""
    from experiment_runner.serve import run_view, site

    monkeypatch.setattr(run_view, "LOAD_CHUNK", 300)
    monkeypatch.setattr(site, "FIRST_READING_WAIT", 0.0)
    monkeypatch.setattr(run_view.RunView, "_load", slowly(run_view.RunView._load))
    with serve(runs / "sweep") as server:
        first = api(server, "run", run=".")
        assert first["loading"]["read_bytes"] < first["loading"]["total_bytes"]
        assert first["finished"] < 7
        wait_for(lambda: api(server, "run", run=".")["loading"] is None, what="the whole run")
        whole = api(server, "results", run=".", sort="acc", order="desc")
        assert (whole["total"], whole["loading"]) == (7, None)
        assert [row["experiment_id"] for row in whole["rows"]] == BY_ACCURACY


def slowly(load):
    """``RunView._load`` with each step of the first reading 50 ms apart."""
    from experiment_runner.serve import run_view

    def load_slowly(view):
        refresh = view.refresh

        def step(max_bytes=None):
            time.sleep(0.05)
            return refresh(max_bytes)

        view.refresh = step
        try:
            return load(view)
        finally:
            del view.refresh

    assert run_view.LOAD_CHUNK == 300
    return load_slowly


def test_a_search_s_best_experiment_is_by_its_own_metric_and_direction(tmp_path):
    """A search that maximises its loss: the best row is the highest loss, whatever the metric's name says."""
    from experiment_runner import interval, run_experiments

    run_experiments({"out_path": str(tmp_path / "search"), "fit": lambda cfg, _: cfg["x"] ** 2,
                     "post": lambda cfg, y: {"loss": y}, "verbose": False}, {"x": interval(-2.0, 2.0)},
                    search={"name": "optuna", "n_trials": 5, "seed": 0, "metric": "loss", "direction": "maximize"})
    with serve(tmp_path / "search") as server:
        run = api(server, "run", run=".")
        assert run["search"] is True and run["total"] == run["finished"] == 5
        highest = max(row["metrics"]["loss"]["mean"] for row in api(server, "results", run=".")["rows"])
        assert run["best"]["metric"] == "loss" and run["best"]["direction"] == "max"
        assert run["best"]["value"] == pytest.approx(highest)


def test_runs_that_start_later_appear_and_runs_inside_runs_are_not_looked_for(tmp_path, runs):
    with serve(tmp_path) as server:
        assert api(server, "runs")["runs"] == []
        shutil.copytree(runs / "sweep", tmp_path / "2026" / "sweep")
        shutil.copytree(runs / "failures", tmp_path / "2026" / "sweep" / "inner")
        assert [run["run"] for run in api(server, "runs")["runs"]] == ["2026/sweep"]
        status, _, _ = get(server.url + "api/run?run=2026/sweep/inner")
        assert status == 200  # asked for by name, a run inside a run is served all the same


def test_the_state_of_a_run_comes_from_the_locks_listed_in_proc_locks(tmp_path, runs):
    from experiment_runner.serve.runs import is_locked, locked_inodes

    status = (runs / "sweep").stat()
    listing = tmp_path / "locks"
    listing.write_text(
        "1: POSIX  ADVISORY  WRITE 77 08:01:99 0 EOF\n"
        f"2: FLOCK  ADVISORY  WRITE 78 {os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
        " 0 EOF\n"
        f"2: -> FLOCK  ADVISORY  WRITE 79 00:00:{status.st_ino + 1} 0 EOF\n")
    assert is_locked(runs / "sweep", locked_inodes(listing)) is True
    assert is_locked(runs / "failures", locked_inodes(listing)) is False
    assert is_locked(runs / "sweep", locked_inodes(tmp_path / "absent")) is None


def test_the_runs_list_keeps_every_run_it_shows_read_however_many_there_are(tmp_path, monkeypatch):
    """The page asks for the runs list every two seconds: no run may be read again whole at each of them."""
    monkeypatch.setattr(site_module, "KEPT_RUNS", 1)
    for name in ("a", "b", "c"):
        make_sweep(tmp_path / name)
    with serve(tmp_path) as server:
        api(server, "runs")
        views = {name: server._server.site.view_of(tmp_path.resolve() / name) for name in ("a", "b", "c")}
        assert [run["finished"] > 0 for run in api(server, "runs")["runs"]] == [True] * 3
        assert all(server._server.site.view_of(tmp_path.resolve() / name) is view for name, view in views.items())


def test_pruned_experiments_are_counted_apart_from_the_failures_without_a_traceback(tmp_path):
    """A search stopped them on purpose: the runs list counts them as pruned, the failures view lists them apart."""
    def fit(cfg, _):
        if cfg["x"] % 2:
            raise Pruned("stopped early at step 3")
        if cfg["x"] == 4:
            raise ValueError("diverged")
        return cfg["x"]

    run_experiments({"out_path": str(tmp_path / "run"), "fit": fit, "verbose": False}, [{"x": x} for x in range(6)])
    with serve(tmp_path / "run") as server:
        [run] = api(server, "runs")["runs"]
        assert (run["finished"], run["failed"], run["pruned"], run["pending"]) == (2, 1, 3, 0)
        answer = api(server, "failures", run=".")
        assert answer["total"] == 1 and [group["error"] for group in answer["groups"]] == ["ValueError: diverged"]
        assert answer["pruned"] == {"count": 3, "experiment_ids": [1, 3, 5]}
