"""Adaptive search with Optuna: trials are experiments, recorded in the out_path tree with the study beside them.

Real Optuna throughout, on backends single and multiprocessing; small budgets so that each test takes
about a second.
"""
import fcntl
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiment_runner import Variation, int_interval, interval, report_metrics, run_experiments
from experiment_runner.errors import ConfigError, ResumeMismatchError, UsageError
from experiment_runner.report_cli import main as report_main
from experiment_runner.search.history import plot_optimization_history
from experiment_runner.search.space import Space
from experiment_runner.testing.processes import wait_until
from conftest import read_lines

SRC = Path(__file__).resolve().parent.parent / "src"
SPACE = {"x": interval(-2.0, 2.0), "layers": int_interval(1, 4), "kind": Variation(["a", "b"]), "fixed": 7}


def fit(cfg, _):
    """A quadratic in x; kind "fail" raises, kind "hang" sleeps past any timeout; reports 3 steps of its loss."""
    if cfg["kind"] == "fail":
        raise ValueError("this kind fails")
    if cfg["kind"] == "hang":
        time.sleep(60)
    loss = (cfg["x"] - 0.5) ** 2 + 0.1 * cfg["layers"] + 0.01 * cfg.get("run_id", 0)
    for step in range(3):
        report_metrics(step, loss=loss + 1.0 / (step + 1))
    return loss


def post(cfg, loss):
    return {"loss": loss}


def search(out_path, space=SPACE, **settings):
    """Run a search of ``space``; settings go to basecfg, those named like search settings into ``search``."""
    names = {"n_trials", "metric", "direction", "sampler", "pruner", "max_in_flight", "seed"}
    given = {"name": "optuna", "n_trials": 6, "seed": 0, **{k: settings.pop(k) for k in list(settings) if k in names}}
    basecfg = {"out_path": str(out_path), "fit": fit, "post": post, "verbose": False, **settings}
    return run_experiments(basecfg, space, search=given)


def load_study(out_path):
    journal = optuna.storages.journal.JournalFileBackend(str(out_path / "study.journal"))
    return optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(journal))


@pytest.mark.parametrize("backend", [{"backend": "single"}, {"backend": "multiprocessing", "num_workers": 2}],
                         ids=["single", "multiprocessing"])
def test_each_trial_is_an_experiment_with_its_folder_config_line_and_trial(tmp_path, backend):
    summary = search(tmp_path / "run", **backend)
    assert (summary.total, summary.finished, summary.failed) == (6, 6, 0)
    listed = read_lines(tmp_path / "run" / "experiments.jsonl")
    results = sorted(read_lines(tmp_path / "run" / "results.jsonl"), key=lambda line: line["experiment_id"])
    assert [line["experiment_id"] for line in listed] == list(range(6))
    assert [line["experiment_id"] for line in results] == list(range(6))
    study = load_study(tmp_path / "run")
    trials = {t.user_attrs["experiment_id"]: t for t in study.trials}
    for line in results:
        trial = trials[line["experiment_id"]]
        assert line["trial"] == {"number": trial.number, "state": "COMPLETE"}
        assert trial.value == line["scores"]["loss"]
        assert type(line["layers"]) is int and 1 <= line["layers"] <= 4  # ints stay ints
        assert type(line["x"]) is float and -2 <= line["x"] <= 2
        assert line["kind"] in ("a", "b") and line["fixed"] == 7
        assert (tmp_path / "run" / str(line["experiment_id"]) / "config.json").is_file()
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}


def test_the_first_repetitions_metrics_reach_the_trial_as_intermediate_values(tmp_path):
    search(tmp_path / "run", backend="multiprocessing", num_workers=2, n_trials=3)
    for trial in load_study(tmp_path / "run").trials:
        assert sorted(trial.intermediate_values) == [0, 1, 2]
        assert trial.intermediate_values[2] == pytest.approx(trial.value + 1 / 3)


def test_the_objective_is_the_mean_over_repetitions_and_its_std_is_kept(tmp_path):
    search(tmp_path / "run", repetitions=2, n_trials=3)
    results = {line["experiment_id"]: line for line in read_lines(tmp_path / "run" / "results.jsonl")}
    for trial in load_study(tmp_path / "run").trials:
        scores = results[trial.user_attrs["experiment_id"]]["scores"]
        assert trial.value == pytest.approx(scores["mean_loss"]) == pytest.approx(sum(scores["loss"]) / 2)
        assert trial.user_attrs["std"] == pytest.approx(0.005)


def test_failed_experiments_are_failed_trials_after_their_retries_and_the_search_goes_on(tmp_path):
    space = {**SPACE, "kind": Variation(["fail", "a"])}
    summary = search(tmp_path / "run", space, n_trials=8, retries=1, sampler="random")
    failures = read_lines(tmp_path / "run" / "failures.jsonl")
    failed_ids = sorted({line["experiment_id"] for line in failures})
    assert failed_ids == summary.failed_ids and 0 < len(failed_ids) < 8
    assert [line["attempt"] for line in failures].count(1) == len(failed_ids)  # retried once each
    assert all("trial" not in line for line in failures if line["attempt"] == 0)
    assert all(line["trial"]["state"] == "FAIL" for line in failures if line["attempt"] == 1)
    study = load_study(tmp_path / "run")
    states = {t.user_attrs["experiment_id"]: t.state for t in study.trials}
    assert len(states) == 8
    assert sorted(i for i, state in states.items() if state == TrialState.FAIL) == failed_ids


def test_a_timed_out_experiment_is_a_failed_trial(tmp_path):
    space = {"x": 0.5, "layers": 1, "kind": Variation(["hang", "a"])}
    search(tmp_path / "run", space, backend="multiprocessing", num_workers=2, timeout=1, n_trials=2, sampler="grid")
    failures = read_lines(tmp_path / "run" / "failures.jsonl")
    assert failures and {line["status"] for line in failures} == {"timeout"}
    assert {line["trial"]["state"] for line in failures} == {"FAIL"}
    assert {line["kind"] for line in read_lines(tmp_path / "run" / "results.jsonl")} == {"a"}


def post_nan_below_half(cfg, loss):
    return {"loss": float("nan") if cfg["x"] < 0.5 else cfg["x"]}


def test_a_score_that_is_no_number_fails_its_trial_and_the_search_goes_on(tmp_path):
    run_experiments({"out_path": str(tmp_path / "run"), "fit": fit, "post": post_nan_below_half, "verbose": False},
                    {"x": interval(0.0, 1.0), "kind": "ok", "layers": 1},
                    search={"name": "optuna", "n_trials": 8, "seed": 1, "sampler": "random"})
    lines = read_lines(tmp_path / "run" / "results.jsonl")
    assert len(lines) == 8 and {line["trial"]["state"] for line in lines} == {"FAIL", "COMPLETE"}
    assert all((line["trial"]["state"] == "FAIL") == (line["x"] < 0.5) for line in lines)


def test_max_in_flight_bounds_the_trials_running_at_once(tmp_path):
    search(tmp_path / "run", backend="multiprocessing", num_workers=2, max_in_flight=1, n_trials=3)
    study = load_study(tmp_path / "run")
    trials = sorted(study.trials, key=lambda t: t.datetime_start)
    assert all(a.datetime_complete <= b.datetime_start for a, b in zip(trials, trials[1:]))


def test_several_metrics_make_a_multi_objective_search(tmp_path):
    search(tmp_path / "run", metric=["loss", "fit_time"], direction=["minimize", "minimize"], n_trials=3,
           sampler="nsga2")
    study = load_study(tmp_path / "run")
    assert len(study.directions) == 2 and all(len(t.values) == 2 for t in study.trials)


def test_the_space_and_the_search_are_recorded_in_run_yaml(tmp_path):
    search(tmp_path / "run", n_trials=1)
    text = (tmp_path / "run" / "run.yaml").read_text()
    assert "experiments: 1" in text and "name: optuna" in text
    assert "x: interval(-2.0, 2.0)" in text and "layers: int_interval(1, 4)" in text


@pytest.mark.parametrize("node, distribution", [
    (Variation([1, 2, 3]), optuna.distributions.CategoricalDistribution([1, 2, 3])),
    (interval(0.001, 0.1), optuna.distributions.FloatDistribution(0.001, 0.1)),
    (interval(0.001, 0.1, log=True), optuna.distributions.FloatDistribution(0.001, 0.1, log=True)),
    (interval(0, 1, step=0.25), optuna.distributions.FloatDistribution(0, 1, step=0.25)),
    (int_interval(1, 10), optuna.distributions.IntDistribution(1, 10)),
    (int_interval(1, 1024, log=True), optuna.distributions.IntDistribution(1, 1024, log=True)),
    (int_interval(0, 10, step=2), optuna.distributions.IntDistribution(0, 10, step=2)),
])
def test_python_space_to_optuna_distributions(node, distribution):
    space = Space({"model": {"p": node}, "layers": [node]})
    assert space.distributions() == {"model.p": distribution, "layers.0": distribution}
    assert space.config_of({"model.p": 1, "layers.0": 2}) == {"model": {"p": 1}, "layers": [2]}


@pytest.mark.parametrize("space, search_settings, message", [
    ({"x": 1}, {}, "holds no dimension to search"),
    ([{"x": interval(0, 1)}, {"x": 2}], {}, "must be one configuration"),
    ({"x": Variation([{"a": 1}, print])}, {}, "x: an adaptive search chooses among data"),
    ({"x": interval(0, 1)}, {"n_trials": 0}, "search.n_trials must be a whole number >= 1, got 0"),
    ({"x": interval(0, 1)}, {"direction": "up"}, "search.direction must be minimize or maximize"),
    ({"x": interval(0, 1)}, {"sampler": "best"}, "search.sampler must be a name or {name: ..., <its arguments>}"),
    ({"x": interval(0, 1)}, {"pruner": {"name": "median", "n_startup_trials": "x"}}, None),
    ({"x": interval(0, 1)}, {"n_trial": 3}, "unknown key 'n_trial' in search; did you mean n_trials?"),
    ({"x": interval(0, 1)}, {"metric": ["a", "b"], "direction": ["minimize"]}, "lists 1 directions for 2 metrics"),
    ({"x": interval(0, 1)}, {"metric": ["a", "b"], "pruner": "median"}, "prunes single-objective searches only"),
])
def test_bad_searches_are_one_line_errors_before_anything_runs(tmp_path, space, search_settings, message):
    basecfg = {"out_path": str(tmp_path / "run"), "fit": fit, "verbose": False}
    with pytest.raises(ConfigError) as error:
        run_experiments(basecfg, space, search={"name": "optuna", **search_settings})
    if message is not None:
        assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run" / "results.jsonl").exists()


@pytest.mark.parametrize("make, message", [
    (lambda: interval(1, 1), "interval(1, 1): low must be below high"),
    (lambda: interval(0, 1, log=True), "a log scale needs low > 0"),
    (lambda: interval(1, 2, log=True, step=0.5), "a log scale takes no step"),
    (lambda: int_interval(0.5, 2), "int_interval: low must be a whole number, got 0.5"),
    (lambda: interval("a", 2), "interval: low must be a finite number, got 'a'"),
])
def test_bad_intervals_are_one_line_errors(make, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


DRIVER = '''
import sys, time
from experiment_runner import run_experiments, interval


def fit(cfg, _):
    time.sleep(cfg["sleep"])
    return (cfg["x"] - 0.5) ** 2


def post(cfg, loss):
    return {"loss": loss}


if __name__ == "__main__":
    out_path, if_exists, backend = sys.argv[1:]
    basecfg = {"fit": fit, "post": post, "out_path": out_path, "if_exists": if_exists, "verbose": False,
               "backend": backend, "num_workers": 2}
    run_experiments(basecfg, {"x": interval(0, 1), "sleep": 0.2}, search={"name": "optuna", "n_trials": 10, "seed": 3})
'''


@pytest.mark.parametrize("backend", ["single", "multiprocessing"])
def test_a_search_whose_driver_was_killed_resumes_to_exactly_its_budget(tmp_path, backend):
    """kill -9 of the driver mid-search; resuming reruns the trials in flight with their ids and params, once."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out_path = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, str(script), str(out_path), "error", backend], env=env)
    wait_until(lambda: _asked_and_finished(out_path)[1] >= 3 and _asked_and_finished(out_path)[0] > 3,
               "three trials finished and the next one asked")
    driver.kill()
    driver.wait()
    done_before = {line["experiment_id"] for line in read_lines(out_path / "results.jsonl")}
    assert len(done_before) < 10
    wait_until(lambda: _lock_is_free(out_path), "the killed driver's workers gone")
    subprocess.run([sys.executable, str(script), str(out_path), "resume", backend], env=env, check=True)
    results = [line["experiment_id"] for line in read_lines(out_path / "results.jsonl")]
    listed = [line["experiment_id"] for line in read_lines(out_path / "experiments.jsonl")]
    assert sorted(results) == sorted(listed) == list(range(10))  # each id once: none lost, none counted twice
    trials = load_study(out_path).trials
    assert sorted(t.user_attrs["experiment_id"] for t in trials if t.state == TrialState.COMPLETE) == list(range(10))
    reruns = [t for t in trials if "rerun_of" in t.user_attrs]
    assert reruns, "no trial was in flight when the driver was killed"
    for rerun in reruns:
        stale = trials[rerun.user_attrs["rerun_of"]]
        assert stale.state == TrialState.FAIL and stale.params == rerun.params
        assert stale.user_attrs["experiment_id"] == rerun.user_attrs["experiment_id"] not in done_before


def _asked_and_finished(out_path):
    """How many trials experiments.jsonl and results.jsonl list."""
    files = (out_path / "experiments.jsonl", out_path / "results.jsonl")
    return tuple(len(read_lines(path)) if path.exists() else 0 for path in files)


def _lock_is_free(out_path):
    fd = os.open(out_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def test_resuming_a_finished_search_runs_nothing_and_a_larger_budget_runs_the_rest(tmp_path):
    search(tmp_path / "run", n_trials=2)
    again = search(tmp_path / "run", n_trials=2, if_exists="resume")
    assert (again.total, again.skipped, again.finished) == (2, 2, 0)
    more = search(tmp_path / "run", n_trials=3, if_exists="resume")
    assert (more.total, more.skipped, more.finished) == (3, 2, 1)
    assert [line["experiment_id"] for line in read_lines(tmp_path / "run" / "experiments.jsonl")] == [0, 1, 2]
    assert len(load_study(tmp_path / "run").trials) == 3


def test_a_sweep_is_not_resumed_as_a_search(tmp_path):
    run_experiments({"out_path": str(tmp_path / "run"), "fit": fit, "post": post, "verbose": False},
                    [{"x": 0.0, "layers": 1, "kind": "a"}])
    with pytest.raises(UsageError, match="holds no study.journal, so no search ran there"):
        search(tmp_path / "run", if_exists="resume")


@pytest.mark.parametrize("direction, pick", [("minimize", min), ("maximize", max)])
def test_the_summary_and_the_report_show_the_best_trial_and_its_params(tmp_path, capsys, direction, pick):
    summary = search(tmp_path / "run", direction=direction, n_trials=4)
    results = read_lines(tmp_path / "run" / "results.jsonl")
    best = pick(results, key=lambda line: line["scores"]["loss"])
    params = f"x={best['x']:.4g} layers={best['layers']} kind={best['kind']}"  # floats as the summary shows numbers
    expected = f"best trial #{best['trial']['number']} (experiment {best['experiment_id']}): loss "
    line = next(line for line in summary.lines() if line.startswith("best trial"))
    assert line.startswith(expected) and line.endswith(params)
    capsys.readouterr()
    assert report_main([str(tmp_path / "run")]) == 0
    assert line in capsys.readouterr().err.splitlines()


def test_a_search_resumed_over_another_space_is_refused_in_one_line(tmp_path):
    search(tmp_path / "run", n_trials=1)
    with pytest.raises(ResumeMismatchError, match="its search's space was .*; resume with the same space"):
        search(tmp_path / "run", {**SPACE, "x": interval(-1.0, 1.0)}, n_trials=2, if_exists="resume")
    with pytest.raises(ResumeMismatchError, match="its search's direction was 'minimize', this one's is 'maximize'"):
        search(tmp_path / "run", n_trials=2, direction="maximize", if_exists="resume")
    assert len(read_lines(tmp_path / "run" / "results.jsonl")) == 1


def test_the_grid_sampler_runs_each_point_of_its_grid_once_at_most(tmp_path):
    space = {"x": interval(0.0, 1.0, step=0.5), "layers": int_interval(1, 2), "kind": "a"}
    summary = search(tmp_path / "run", space, n_trials=50, sampler="grid")
    assert (summary.total, summary.finished) == (6, 6)
    points = {(line["x"], line["layers"]) for line in read_lines(tmp_path / "run" / "results.jsonl")}
    assert points == {(x, layers) for x in (0.0, 0.5, 1.0) for layers in (1, 2)}


def fit_slowly_learning(cfg, _):
    """A learning curve that ends at x: a bad x is recognisable early; stops when the pruner says so."""
    from experiment_runner import Pruned, should_prune

    for step in range(10):
        report_metrics(step, loss=cfg["x"] + 1.0 / (step + 1))
        time.sleep(0.02)
        if should_prune():
            raise Pruned()
    return cfg["x"]


def test_the_pruner_stops_bad_trials_which_are_pruned_not_failed(tmp_path):
    """The search's side of the pruning channel, end to end: metrics -> the pruner -> should_prune -> Pruned."""
    basecfg = {"out_path": str(tmp_path / "run"), "fit": fit_slowly_learning, "post": post, "verbose": False,
               "backend": "multiprocessing", "num_workers": 2, "retries": 1}
    run_experiments(basecfg, {"x": interval(0.0, 10.0)},
                    search={"name": "optuna", "n_trials": 10, "seed": 0, "sampler": "random", "max_in_flight": 1,
                            "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1}})
    trials = load_study(tmp_path / "run").trials
    pruned = {t.user_attrs["experiment_id"] for t in trials if t.state == TrialState.PRUNED}
    assert pruned and len(trials) == 10
    lines = [*read_lines(tmp_path / "run" / "results.jsonl"), *read_lines(tmp_path / "run" / "failures.jsonl")]
    pruned_lines = [line for line in lines if line["experiment_id"] in pruned]
    assert len(pruned_lines) == len(pruned)  # recorded once each: a pruned experiment is not retried
    assert {line["trial"]["state"] for line in pruned_lines} == {"PRUNED"}


def test_report_plot_draws_a_searchs_optimisation_history_beside_its_learning_curves(tmp_path, capsys):
    search(tmp_path / "run", n_trials=3)
    assert report_main([str(tmp_path / "run"), "--plot"]) == 0
    assert (tmp_path / "run" / "optimization_history.png").stat().st_size > 0
    assert (tmp_path / "run" / "learning_curves.png").stat().st_size > 0
    figure = plot_optimization_history(tmp_path / "run", tmp_path / "history.png")
    (axes,) = figure.axes
    results = read_lines(tmp_path / "run" / "results.jsonl")
    losses = {line["trial"]["number"]: line["scores"]["loss"] for line in results}
    assert [tuple(point) for point in axes.collections[0].get_offsets()] == sorted(losses.items())
    best_so_far = list(axes.lines[0].get_ydata())
    assert best_so_far == [min(losses[n] for n in losses if n <= number) for number in sorted(losses)]


def fit_bowl(cfg):
    return (cfg["a"] - 0.3) ** 2 + (cfg["b"] - 2) ** 2 / 10 + (0.1 if cfg["kind"] == "u" else 0)


def test_one_trial_at_a_time_the_search_asks_what_optunas_own_optimize_asks_with_the_same_sampler_and_seed(tmp_path):
    """Parity with plain Optuna: the same points, in the same order, so the same best value (nothing lost on the way:
    no seed unused, no parameter in another order, no value rounded)."""
    sampler = {"name": "tpe", "n_startup_trials": 4}
    run_experiments({"out_path": str(tmp_path / "run"), "fit": fit_bowl, "post": post, "verbose": False},
                    {"a": interval(0.0, 1.0), "b": int_interval(0, 5), "kind": Variation(["t", "u"])},
                    search={"name": "optuna", "n_trials": 12, "seed": 7, "sampler": sampler, "max_in_flight": 1})
    ours = sorted(read_lines(tmp_path / "run" / "results.jsonl"), key=lambda line: line["trial"]["number"])
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(n_startup_trials=4, seed=7))
    study.optimize(lambda trial: fit_bowl({"a": trial.suggest_float("a", 0.0, 1.0), "b": trial.suggest_int("b", 0, 5),
                                           "kind": trial.suggest_categorical("kind", ["t", "u"])}), n_trials=12)
    assert [{key: line[key] for key in ("a", "b", "kind")} for line in ours] == [t.params for t in study.trials]
    assert [line["scores"]["loss"] for line in ours] == [t.value for t in study.trials]


def post_two_goals(cfg, loss):
    """Cost grows with x, accuracy too; kind b costs more and is less accurate (dominated, mostly)."""
    worse = 0.5 if cfg["kind"] == "b" else 0.0
    return {"cost": cfg["x"] + worse, "accuracy": 1 - (1 - cfg["x"]) ** 2 - worse}


def dominated(a, b):
    """Whether trial values (cost, accuracy) ``a`` are dominated by ``b``: cost minimised, accuracy maximised."""
    return b[0] <= a[0] and b[1] >= a[1] and b != a


def test_a_multi_objective_search_shows_its_pareto_front_best_first_at_most_shown_and_plots_it(
        tmp_path, capsys, monkeypatch):
    from experiment_runner.search import best

    run_experiments({"out_path": str(tmp_path / "run"), "fit": fit, "post": post_two_goals, "verbose": False},
                    {"x": interval(0.0, 1.0), "kind": Variation(["a", "b"]), "layers": 1},
                    search={"name": "optuna", "n_trials": 16, "seed": 0, "sampler": "random",
                            "metric": ["cost", "accuracy"], "direction": ["minimize", "maximize"]})
    results = read_lines(tmp_path / "run" / "results.jsonl")
    values = {line["trial"]["number"]: (line["scores"]["cost"], line["scores"]["accuracy"]) for line in results}
    front = sorted((n for n in values if not any(dominated(values[n], other) for other in values.values())),
                   key=lambda n: values[n][0])
    assert 1 < len(front) < len(values), "a front, and trials off it, for the test to mean something"
    monkeypatch.setattr(best, "SHOWN", len(front) - 1)
    capsys.readouterr()
    assert report_main([str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().err.splitlines()
    head = lines.index(f"Pareto front (minimize cost and maximize accuracy): {len(front)} of 16 completed trials, "
                       "by cost:")
    shown = lines[head + 1:head + len(front)]
    pattern = r"  #(\d+) \(experiment (\d+)\): cost \S+  accuracy \S+  x=\S+ kind=[ab]"
    assert [int(re.fullmatch(pattern, line).group(1)) for line in shown] == front[:-1]
    assert lines[head + len(front)] == "  ... and 1 more (all: experiment-runner report --plot draws them)"
    assert report_main([str(tmp_path / "run"), "--plot"]) == 0
    assert (tmp_path / "run" / "pareto_front.png").stat().st_size > 0
    assert not (tmp_path / "run" / "optimization_history.png").exists()


def test_a_sweep_without_a_search_never_imports_optuna(tmp_path):
    code = ("import sys\n"
            "from experiment_runner import run_experiments\n"
            f"run_experiments({{'fit': lambda cfg: 1, 'out_path': {str(tmp_path / 'run')!r}, 'verbose': False}}, "
            "[{'a': 1}])\n"
            "print('optuna' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_metric_that_no_score_is_named_stops_the_search_after_its_first_experiment_with_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^search.metric 'accuracy' is not among the scores of experiment \d+ "
                                          r"\(loss, fit_time\): set search.metric"):
        search(tmp_path / "run", metric="accuracy", n_trials=5)
    assert len(read_lines(tmp_path / "run" / "results.jsonl")) == 1  # recorded, the tree whole: nothing lost
    assert {trial.state for trial in load_study(tmp_path / "run").trials} == {TrialState.FAIL}


@pytest.mark.parametrize("backend", ["ray_backend", "malocher_backend", "slurm_backend"])
def test_a_search_runs_on_the_other_backends_each_trial_an_experiment_recorded_once(tmp_path, backend, request):
    search(tmp_path / "run", n_trials=5, max_in_flight=2, **request.getfixturevalue(backend))
    lines = read_lines(tmp_path / "run" / "results.jsonl") + read_lines(tmp_path / "run" / "failures.jsonl")
    trials = load_study(tmp_path / "run").trials
    assert sorted(line["experiment_id"] for line in lines) == list(range(5))
    assert sorted(trial.user_attrs["experiment_id"] for trial in trials) == list(range(5))
    assert {line["trial"]["number"] for line in lines} == {trial.number for trial in trials}
