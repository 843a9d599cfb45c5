"""What users write for a grid, searched: Variations of dicts and lists, choices holding dimensions of their own,
group sweeps (``model=forest,svm``) and parameters that interpolate searched ones.

Real Optuna and real runs on backends single and multiprocessing, with a cheap objective.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution as Categorical
from optuna.trial import TrialState

from experiment_runner import Variation, interval, run_experiments
from experiment_runner.cli import App, guarded
from experiment_runner.errors import ConfigError
from experiment_runner.search.space import Space
from experiment_runner.testing.processes import wait_until
from conftest import read_lines
from test_search import _lock_is_free, load_study

SRC = Path(__file__).resolve().parent.parent / "src"
BACKENDS = [{"backend": "single"}, {"backend": "multiprocessing", "num_workers": 2}]
ADAM = {"kind": "adam", "lr": 0.1, "betas": [0.9, 0.999]}
SGD = {"kind": "sgd", "momentum": 0.9, "nesterov": True, "schedule": {"warmup": 5}}


def fit(cfg, _):
    return len(cfg["layers"]) + (cfg["x"] - 0.3) ** 2 + (0.5 if cfg["opt"]["kind"] == "sgd" else 0.0)


def post(cfg, loss):
    return {"loss": loss}


def search(out_path, space, backend=None, **settings):
    basecfg = {"out_path": str(out_path), "fit": fit, "post": post, "verbose": False, **(backend or {})}
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


CONFIG = """\
    defaults:
      - model: forest
      - optim: adam
      - _self_
    fit: space_stages:fit
    post: space_stages:post
    verbose: false
    name: run_${optim.lr}
    """
FILES = {
    "model/forest.yaml": "kind: forest\ntrees: ${variation:10,20}\n",
    "model/svm.yaml": "kind: svm\nc: 1.0\n",
    "optim/adam.yaml": "base_lr: 0.01\nlr: ${.base_lr}\n",
}
STAGES = """\
    import time


    def fit(cfg, _):
        time.sleep(cfg.get("sleep", 0))
        return cfg["optim"]["lr"] + 0.001 * cfg["model"].get("trees", 0)


    def post(cfg, loss):
        return {"loss": loss}
    """


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name, text in {"config.yaml": textwrap.dedent(CONFIG), **FILES}.items():
        (tmp_path / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / name).write_text(text)
    (tmp_path / "space_stages.py").write_text(textwrap.dedent(STAGES))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    return tmp_path


@pytest.fixture
def cli(project, capsys):
    def run(*argv):
        code = guarded(list(argv), App(["experiment-runner"]))
        out, err = capsys.readouterr()
        return code, out, err

    return run


SEARCH = ["search=optuna", "search.seed=0", "model=forest,svm", "optim.base_lr=tag(log,interval(0.001,0.1))"]


def check_trials(out_path):
    """Each trial's config: composed with the option it picked, its own dimensions, its interpolations resolved."""
    trials = trials_by_experiment(out_path)
    lines = read_lines(out_path / "results.jsonl")
    for line in lines:
        params = trials[line["experiment_id"]].params
        assert line["model"]["kind"] == params["model"]
        assert ("model.trees" in params) == (params["model"] == "forest")
        if params["model"] == "forest":
            assert line["model"] == {"kind": "forest", "trees": params["model.trees"]}
        else:
            assert line["model"] == {"kind": "svm", "c": 1.0}
        assert type(line["optim"]["lr"]) is float and line["optim"]["lr"] == line["optim"]["base_lr"]
        assert line["optim"]["base_lr"] == params["optim.base_lr"] and line["name"] == f"run_{line['optim']['lr']}"
    return lines


@pytest.mark.parametrize("backend", ["single", "multiprocessing"])
def test_a_group_sweep_is_a_choice_whose_options_bring_their_dimensions_and_interpolations_follow(
        cli, project, backend):
    code, out, err = cli(*SEARCH, "search.n_trials=8", f"backend={backend}", "out_path=run")
    assert code == 0, err
    lines = check_trials(project / "run")
    assert sorted(line["experiment_id"] for line in lines) == list(range(8))
    assert {line["model"]["kind"] for line in lines} == {"forest", "svm"}
    distributions = load_study(project / "run").trials[0].distributions
    assert distributions["model"] == Categorical(["forest", "svm"])
    code, out, err = cli("--resume", "run")
    assert code == 0 and "nothing left to run: 8 of 8 experiments finished" in err


def test_list_shows_each_groups_choice_and_the_dimensions_of_its_options(cli):
    code, out, err = cli(*SEARCH, "--list")
    assert code == 0, err
    assert out.splitlines()[:3] == ["model: choice('forest', 'svm')", "model.trees: choice(10, 20)",
                                    "optim.base_lr: interval(0.001, 0.1, log=True)"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # the bruteforce sampler is new
def test_the_search_composes_the_configs_the_grid_composes(cli, project):
    """The bruteforce sampler walks the whole space: the same configurations as the grid's, interpolations alike."""
    sweep = ["model=forest,svm", "optim.base_lr=0.01,0.05"]
    assert cli(*sweep, "out_path=grid")[0] == 0
    code, out, err = cli("search=optuna", "search.sampler=bruteforce", "search.n_trials=6", *sweep, "out_path=search")
    assert code == 0, err

    def configs(out_path):
        kept = ("model", "optim", "name")
        lines = read_lines(project / out_path / "results.jsonl")
        return sorted(json.dumps({key: line[key] for key in kept}) for line in lines)

    assert len(configs("grid")) == 6 and configs("search") == configs("grid")


def test_options_searching_one_key_over_different_values_are_refused_in_one_line(cli, project):
    (project / "conf" / "model" / "svm.yaml").write_text("kind: svm\ntrees: ${variation:1,2}\n")
    code, out, err = cli(*SEARCH, "out_path=run")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert ("model.trees is searched over choice(10, 20) in one place and choice(1, 2) in another: a search "
            "parameter has one set of values") in err
    assert not (project / "run").exists()


@pytest.mark.parametrize("backend", ["single", "multiprocessing"])
def test_a_killed_search_over_groups_and_interpolations_resumes_to_exactly_its_budget(project, backend):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(project), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "experiment_runner"]
    argv = [*SEARCH, "search.n_trials=10", "+sleep=0.2", f"backend={backend}", "out_path=run"]
    driver = subprocess.Popen([*command, *argv], env=env, cwd=project, stderr=subprocess.DEVNULL)
    out_path = project / "run"
    wait_until(lambda: _counted(out_path / "results.jsonl") >= 3 and _counted(out_path / "experiments.jsonl") > 3,
               "three trials finished and the next one asked", process=driver)
    driver.kill()
    driver.wait()
    done_before = _counted(out_path / "results.jsonl")
    assert done_before < 10
    wait_until(lambda: _lock_is_free(out_path), "the killed driver's workers gone")
    resumed = subprocess.run([*command, "--resume", "run"], env=env, cwd=project, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    lines = check_trials(out_path)
    listed = [line["experiment_id"] for line in read_lines(out_path / "experiments.jsonl")]
    assert sorted(line["experiment_id"] for line in lines) == sorted(listed) == list(range(10))
    completed = [t for t in load_study(out_path).trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["experiment_id"] for t in completed) == list(range(10))


def _counted(path):
    return len(read_lines(path)) if path.exists() else 0
