"""What users write for a grid, searched from Python: Variations of dicts and lists, choices holding dimensions of
their own (group sweeps and interpolations from the command line: test_search_cli.py).

Real Optuna and real runs on backends single and multiprocessing, with a cheap objective.
"""
import json

import pytest
from optuna.distributions import CategoricalDistribution as Categorical

from experiment_runner import Variation, interval, run_experiments
from experiment_runner.errors import ConfigError
from experiment_runner.search.best import best_trial_lines
from experiment_runner.search.space import Space
from conftest import read_lines
from test_search import load_study

BACKENDS = [{"backend": "single"}, {"backend": "multiprocessing", "num_workers": 2}]
ADAM = {"kind": "adam", "lr": 0.1, "betas": [0.9, 0.999]}
SGD = {"kind": "sgd", "momentum": 0.9, "nesterov": True, "schedule": {"warmup": 5}}


def fit(cfg, _):
    return len(cfg["layers"]) + (cfg["x"] - 0.3) ** 2 + (0.5 if cfg["opt"]["kind"] == "sgd" else 0.0)


def post(cfg, loss):
    return {"loss": loss}


def search(out_path, space, more=None, **settings):
    """Search ``space`` (6 trials); ``more``: basecfg settings (the backend), ``settings``: the search's."""
    basecfg = {"out_path": str(out_path), "fit": fit, "post": post, "verbose": False, **(more or {})}
    return run_experiments(basecfg, space, search={"name": "optuna", "n_trials": 6, "seed": 0, **settings})


def trials_by_experiment(out_path):
    return {t.user_attrs["experiment_id"]: t for t in load_study(out_path).trials if "experiment_id" in t.user_attrs}


@pytest.mark.parametrize("backend", BACKENDS, ids=["single", "multiprocessing"])
def test_a_variation_of_dicts_and_lists_is_a_categorical_named_by_json_text_holding_the_values(tmp_path, backend):
    space = {"opt": Variation([ADAM, SGD]), "layers": Variation([[64, 64], [128]]), "x": interval(0.0, 1.0)}
    summary = search(tmp_path / "run", space, backend)
    assert (summary.total, summary.finished) == (6, 6)
    trials = trials_by_experiment(tmp_path / "run")
    study = load_study(tmp_path / "run")
    assert study.trials[0].distributions["opt"] == Categorical([json.dumps(ADAM), json.dumps(SGD)])
    assert study.trials[0].distributions["layers"] == Categorical(["[64, 64]", "[128]"])
    for line in read_lines(tmp_path / "run" / "results.jsonl"):
        trial = trials[line["experiment_id"]]
        assert line["opt"] in (ADAM, SGD) and line["layers"] in ([64, 64], [128])  # the values, unchanged
        assert json.loads(trial.params["opt"]) == line["opt"] and json.loads(trial.params["layers"]) == line["layers"]
        config = json.loads((tmp_path / "run" / str(line["experiment_id"]) / "config.json").read_text())
        assert {key: config[key] for key in space} == {key: line[key] for key in space}
        assert all(type(n) is int for n in line["layers"])  # ints stay ints, nested values keep their types
        if line["opt"]["kind"] == "sgd":
            assert line["opt"]["nesterov"] is True and line["opt"]["schedule"] == {"warmup": 5}


@pytest.mark.parametrize("opt", [ADAM, SGD], ids=["short", "long"])
def test_the_best_trial_line_shows_a_dict_or_list_choice_as_its_json_text(tmp_path, opt):
    space = {"opt": Variation([opt]), "layers": Variation([[64, 64], [128]]), "x": interval(0.0, 1.0)}
    search(tmp_path / "run", space)
    best = min(read_lines(tmp_path / "run" / "results.jsonl"), key=lambda line: line["scores"]["loss"])
    [line] = best_trial_lines(tmp_path / "run")
    assert f" layers={json.dumps(best['layers'])} " in line and f"experiment {best['experiment_id']})" in line
    opt = json.dumps(best["opt"])
    assert f" opt={opt if len(opt) <= 60 else opt[:57] + '...'} " in line  # a long choice is cut


@pytest.mark.parametrize("backend", BACKENDS, ids=["single", "multiprocessing"])
def test_a_choice_holding_dimensions_of_its_own_searches_them_only_when_picked(tmp_path, backend):
    opt = Variation([{"kind": "adam", "lr": interval(0.001, 0.1, log=True)},
                     {"kind": "sgd", "momentum": Variation([0.9, 0.99])}])
    search(tmp_path / "run", {"opt": opt, "layers": [1], "x": 0.5}, backend, n_trials=8)
    trials = trials_by_experiment(tmp_path / "run")
    kinds = set()
    for line in read_lines(tmp_path / "run" / "results.jsonl"):
        params, kind = trials[line["experiment_id"]].params, line["opt"]["kind"]
        kinds.add(kind)
        assert json.loads(params["opt"])["kind"] == kind
        if kind == "adam":
            assert set(params) == {"opt", "opt.lr"} and line["opt"] == {"kind": "adam", "lr": params["opt.lr"]}
        else:
            assert set(params) == {"opt", "opt.momentum"}
            assert line["opt"] == {"kind": "sgd", "momentum": params["opt.momentum"]}
    assert kinds == {"adam", "sgd"}
    recorded = (tmp_path / "run" / "run.yaml").read_text()
    assert "opt.lr: interval(0.001, 0.1, log=True)" in recorded and "opt.momentum: choice(0.9, 0.99)" in recorded


def test_plain_choices_that_optuna_takes_for_one_another_are_named_by_json_text_and_keep_their_types():
    space = Space({"v": Variation([1, True, 1.0, None]), "w": Variation(["a", 1])})
    assert space.distributions() == {"v": Categorical(["1", "true", "1.0", "null"]), "w": Categorical(["a", 1])}
    built = [space.config_of({"v": label, "w": 1})["v"] for label in ("1", "true", "1.0", "null")]
    assert [(value, type(value)) for value in built] == [(1, int), (True, bool), (1.0, float), (None, type(None))]


def test_a_tuple_choice_stays_a_tuple_and_a_variation_among_choices_joins_them():
    space = Space({"shape": Variation([(2, 3), Variation([(4,), None])])})
    assert space.distributions() == {"shape": Categorical(["[2, 3]", "[4]", "null"])}
    assert space.config_of({"shape": "[2, 3]"}) == {"shape": (2, 3)}


@pytest.mark.parametrize("space, settings, message", [
    ({"opt": Variation([{"f": print}, 1])}, {},
     "opt: an adaptive search chooses among data (numbers, strings, booleans, null, and lists and dicts of them), "
     "not builtin_function_or_method <built-in function print>"),
    ({"shape": Variation([(1, 2), [1, 2]])}, {},
     "shape: the choices (1, 2) and [1, 2] read the same as JSON text, by which an adaptive search names a choice"),
    ({"opt": Variation([{"k": "a", "lr": interval(0, 1)}, {"k": "b", "lr": interval(0, 2)}])}, {},
     "opt.lr is searched over interval(0, 1) in one place and interval(0, 2) in another: a search parameter has "
     "one set of values"),
    ({"opt": Variation([{"k": "a", "lr": Variation([1, 2])}, {"k": "b"}])}, {"sampler": "grid"},
     "search.sampler=grid needs every trial to search the same dimensions, but opt.lr is searched under some "
     "choices only: run the grid (search=grid)"),
])
def test_what_a_search_cannot_take_is_refused_in_one_line_before_anything_runs(tmp_path, space, settings, message):
    with pytest.raises(ConfigError) as error:
        search(tmp_path / "run", space, **settings)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def fit_interrupted_at_2(cfg, _):
    """fit, but Ctrl-C arrives while experiment 2 runs (while INTERRUPT holds)."""
    if INTERRUPT and cfg["experiment_id"] == 2:
        raise KeyboardInterrupt
    return fit(cfg, _)


INTERRUPT = [True]


def test_an_interrupted_search_over_dict_choices_resumes_their_labels_and_reruns_the_trial_in_flight(tmp_path):
    opt = Variation([{"kind": "adam", "lr": interval(0.001, 0.1, log=True)}, SGD])
    space = {"opt": opt, "layers": Variation([[64, 64], [128]]), "x": interval(0.0, 1.0)}
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "run", space, {"fit": fit_interrupted_at_2})
    INTERRUPT.clear()
    summary = search(tmp_path / "run", space, {"fit": fit_interrupted_at_2, "if_exists": "resume"})
    assert (summary.total, summary.skipped, summary.finished) == (6, 2, 4)
    trials = trials_by_experiment(tmp_path / "run")
    lines = read_lines(tmp_path / "run" / "results.jsonl")
    assert sorted(line["experiment_id"] for line in lines) == list(range(6))
    rerun = trials[2]
    stale = load_study(tmp_path / "run").trials[rerun.user_attrs["rerun_of"]]
    assert stale.params == rerun.params and stale.user_attrs["experiment_id"] == 2
    for line in lines:
        params = trials[line["experiment_id"]].params
        assert json.loads(params["opt"])["kind"] == line["opt"]["kind"]
        assert json.loads(params["layers"]) == line["layers"]
        assert line["opt"] == SGD or line["opt"] == {"kind": "adam", "lr": params["opt.lr"]}
