"""search=optuna on the command line: the config group, the space from the sweep syntax (group sweeps and
interpolations too), --list, --help, a run, a resume."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution as Categorical
from optuna.distributions import FloatDistribution as Float
from optuna.distributions import IntDistribution as Int
from optuna.trial import TrialState

from experiment_runner.cli import App, guarded
from experiment_runner.config import compose
from experiment_runner.errors import ConfigError
from experiment_runner.expand import plan_sweep
from experiment_runner.testing.processes import wait_until
from conftest import read_lines
from test_search import _lock_is_free, load_study
from test_search_spaces import trials_by_experiment

CONFIG = """\
    fit: search_stages:fit
    post: search_stages:post
    verbose: false
    lr: 0.01
    layers: 2
    kind: a
    """
SRC = Path(__file__).resolve().parent.parent / "src"
STAGES = """\
    def fit(cfg, _):
        return (cfg["lr"] - 0.05) ** 2 + 0.01 * cfg["layers"]


    def post(cfg, loss):
        return {"loss": loss}
    """


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(textwrap.dedent(CONFIG))
    (tmp_path / "search_stages.py").write_text(textwrap.dedent(STAGES))
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


def space_of(project, *overrides):
    sweep = plan_sweep(compose(project / "conf", "config", ["search=optuna", *overrides]))
    return sweep.experiments[0].distributions()


# The sweep syntax and the distribution it searches, as Hydra's optuna sweeper maps it: choice() categorical,
# interval() a float range (its grammar makes interval's bounds floats), int(interval()) an int range, tag(log, ...)
# a log scale, range() an ordered range with its step (floats: a stepped float range), shuffle(range()) a
# categorical. One difference: Hydra's optuna sweeper includes range()'s stop (range(1,4) searches 1 to 4, while
# its basic sweeper runs 1, 2, 3); here range() means what it means in a grid, the stop excluded.
SYNTAX = [
    ("kind=a,b", {"kind": Categorical(("a", "b"))}),
    ("kind=choice(a,b)", {"kind": Categorical(("a", "b"))}),
    ("layers=1,2,4", {"layers": Categorical((1, 2, 4))}),
    ("layers=range(1,4)", {"layers": Int(1, 3)}),
    ("layers=range(0,10,2)", {"layers": Int(0, 8, step=2)}),
    ("layers=range(8,0,-2)", {"layers": Int(2, 8, step=2)}),
    ("lr=range(0.1,0.5,0.1)", {"lr": Float(0.1, 0.4, step=0.1)}),
    ("layers=shuffle(range(1,4))", None),
    ("layers=range(1,2)", {"layers": Categorical((1,))}),
    ("lr=interval(0.001,0.1)", {"lr": Float(0.001, 0.1)}),
    ("lr=interval(1,2)", {"lr": Float(1.0, 2.0)}),
    ("lr=tag(log,interval(0.001,0.1))", {"lr": Float(0.001, 0.1, log=True)}),
    ("layers=int(interval(1,8))", {"layers": Int(1, 8)}),
    ("layers=int(tag(log,interval(1,1024)))", {"layers": Int(1, 1024, log=True)}),
    ("+model.depth=int(interval(2,6))", {"model.depth": Int(2, 6)}),
]


@pytest.mark.parametrize("override, distributions", SYNTAX, ids=[case[0] for case in SYNTAX])
def test_the_sweep_syntax_becomes_the_search_space(project, override, distributions):
    found = space_of(project, override)
    if distributions is None:  # shuffled: a categorical of the values, in an order of their own
        assert list(found) == ["layers"] and sorted(found["layers"].choices) == [1, 2, 3]
    else:
        assert found == distributions


def test_a_variation_in_yaml_is_a_categorical_dimension(project):
    (project / "conf" / "config.yaml").write_text(textwrap.dedent(CONFIG) + "width: ${variation:8,16}\n")
    assert space_of(project, "lr=interval(0.01,0.1)") == {"width": Categorical((8, 16)), "lr": Float(0.01, 0.1)}


def test_without_a_search_an_interval_is_refused_in_one_line(project):
    with pytest.raises(ConfigError, match=r"override 'lr=interval\(0,1\)': interval\(\) needs an adaptive search: "
                                          "add search=optuna"):
        compose(project / "conf", "config", ["lr=interval(0,1)"])


def test_a_search_runs_from_the_command_line_and_resumes(cli, project):
    argv = ["search=optuna", "search.n_trials=3", "search.seed=0", "lr=tag(log,interval(0.001,0.1))",
            "layers=int(interval(1,8))", "kind=a,b", "out_path=run"]
    code, out, err = cli(*argv)
    assert code == 0, err
    results = [json.loads(line) for line in (project / "run" / "results.jsonl").read_text().splitlines()]
    assert [line["trial"]["number"] for line in results] == [0, 1, 2]
    assert all(type(line["layers"]) is int and 0.001 <= line["lr"] <= 0.1 for line in results)
    assert "name: optuna" in (project / "run" / "run.yaml").read_text()
    code, out, err = cli("--resume", "run")
    assert code == 0 and "nothing left to run: 3 of 3 experiments finished" in err


def test_the_first_line_and_the_summary_say_how_many_trials_run_at_once(cli):
    """Without search.max_in_flight: as many as the backend runs at once (here the pool's two workers)."""
    code, out, err = cli("search=optuna", "search.n_trials=3", "search.seed=0", "lr=interval(0.001,0.1)",
                         "backend=multiprocessing", "backend.num_workers=2", "verbose=true", "out_path=run")
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0].startswith("experiment-runner: 3 experiments, backend multiprocessing (2 at once), out_path ")
    assert any(line.startswith("3 of 3 experiments finished, 2 at once, in ") for line in lines), err


@pytest.mark.parametrize("listing", [[], ["--list"]])
def test_a_search_without_optuna_installed_is_one_line_saying_how_to_install_it(cli, monkeypatch, listing):
    for module in [name for name in sys.modules if name == "optuna" or name.startswith("optuna.")]:
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    code, out, err = cli("search=optuna", "lr=tag(log,interval(0.001,0.1))", *listing)
    assert code == 2 and "Traceback" not in err
    assert err.strip().endswith("search=optuna needs Optuna, which is not installed: "
                                "pip install 'experiment-runner[search]'")


def test_list_shows_the_space_and_the_budget(cli):
    code, out, err = cli("search=optuna", "search.n_trials=50", "search.pruner=median", "search.max_in_flight=4",
                         "lr=tag(log,interval(0.001,0.1))", "kind=a,b", "--list")
    assert code == 0, err
    assert out.splitlines() == [
        "lr: interval(0.001, 0.1, log=True)",
        "kind: choice('a', 'b')",
        "search=optuna: 50 trials, sampler tpe, pruner median, minimize loss, 4 at once",
    ]


def test_help_shows_the_search_settings_with_their_docs(cli):
    code, out, err = cli("--help", "search=optuna")
    assert "search: grid, optuna" in out
    assert "== Settings of search=optuna (set one with search.KEY=VALUE) ==" in out
    assert "n_trials: 20" in out and "# experiments (trials) in all, over every resume" in out


@pytest.mark.parametrize("override, message", [
    ("search.n_trials=0", "search.n_trials must be a whole number >= 1, got 0"),
    ("search.sampler=best", "search.sampler must be a name or {name: ..., <its arguments>}"),
    ("+search.trials=3", "unknown key 'trials' in search"),
])
def test_bad_search_settings_are_one_line_errors(cli, project, override, message):
    code, out, err = cli("search=optuna", override, "lr=interval(0.01,0.1)", "out_path=run")
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not (project / "run").exists()


GROUPS_CONFIG = """\
    defaults:
      - model: forest
      - optim: adam
      - _self_
    fit: group_stages:fit
    post: group_stages:post
    verbose: false
    name: run_${optim.lr}
    """
GROUP_FILES = {
    "model/forest.yaml": "kind: forest\ntrees: ${variation:10,20}\n",
    "model/svm.yaml": "kind: svm\nc: 1.0\n",
    "optim/adam.yaml": "base_lr: 0.01\nlr: ${.base_lr}\n",
}
GROUP_STAGES = """\
    import time


    def fit(cfg, _):
        time.sleep(cfg.get("sleep", 0))
        return cfg["optim"]["lr"] + 0.001 * cfg["model"].get("trees", 0)


    def post(cfg, loss):
        return {"loss": loss}
    """


@pytest.fixture
def groups(project):
    """The project with config groups: model (forest, whose file sweeps trees; svm) and optim (interpolations)."""
    for name, text in {"config.yaml": textwrap.dedent(GROUPS_CONFIG), **GROUP_FILES}.items():
        (project / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (project / "conf" / name).write_text(text)
    (project / "group_stages.py").write_text(textwrap.dedent(GROUP_STAGES))
    return project


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
        cli, groups, backend):
    code, out, err = cli(*SEARCH, "search.n_trials=8", f"backend={backend}", "out_path=run")
    assert code == 0, err
    lines = check_trials(groups / "run")
    assert sorted(line["experiment_id"] for line in lines) == list(range(8))
    assert {line["model"]["kind"] for line in lines} == {"forest", "svm"}
    distributions = load_study(groups / "run").trials[0].distributions
    assert distributions["model"] == Categorical(["forest", "svm"])
    code, out, err = cli("--resume", "run")
    assert code == 0 and "nothing left to run: 8 of 8 experiments finished" in err


def test_list_shows_each_groups_choice_and_the_dimensions_of_its_options(cli, groups):
    code, out, err = cli(*SEARCH, "--list")
    assert code == 0, err
    assert out.splitlines()[:3] == ["model: choice('forest', 'svm')", "model.trees: choice(10, 20)",
                                    "optim.base_lr: interval(0.001, 0.1, log=True)"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # the bruteforce sampler is new
def test_the_search_composes_the_configs_the_grid_composes(cli, groups):
    """The bruteforce sampler walks the whole space: the same configurations as the grid's, interpolations alike."""
    sweep = ["model=forest,svm", "optim.base_lr=0.01,0.05"]
    assert cli(*sweep, "out_path=grid")[0] == 0
    code, out, err = cli("search=optuna", "search.sampler=bruteforce", "search.n_trials=6", *sweep, "out_path=search")
    assert code == 0, err

    def configs(out_path):
        kept = ("model", "optim", "name")
        lines = read_lines(groups / out_path / "results.jsonl")
        return sorted(json.dumps({key: line[key] for key in kept}) for line in lines)

    assert len(configs("grid")) == 6 and configs("search") == configs("grid")


def test_options_searching_one_key_over_different_values_are_refused_in_one_line(cli, groups):
    (groups / "conf" / "model" / "svm.yaml").write_text("kind: svm\ntrees: ${variation:1,2}\n")
    code, out, err = cli(*SEARCH, "out_path=run")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert ("model.trees is searched over choice(10, 20) in one place and choice(1, 2) in another: a search "
            "parameter has one set of values") in err
    assert not (groups / "run").exists()


@pytest.mark.parametrize("backend", ["single", "multiprocessing"])
def test_a_killed_search_over_groups_and_interpolations_resumes_to_exactly_its_budget(groups, backend):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(groups), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "experiment_runner"]
    argv = [*SEARCH, "search.n_trials=10", "+sleep=0.2", f"backend={backend}", "out_path=run"]
    driver = subprocess.Popen([*command, *argv], env=env, cwd=groups, stderr=subprocess.DEVNULL)
    out_path = groups / "run"
    wait_until(lambda: _counted(out_path / "results.jsonl") >= 3 and _counted(out_path / "experiments.jsonl") > 3,
               "three trials finished and the next one asked", process=driver)
    driver.kill()
    driver.wait()
    done_before = _counted(out_path / "results.jsonl")
    assert done_before < 10
    wait_until(lambda: _lock_is_free(out_path), "the killed driver's workers gone")
    resumed = subprocess.run([*command, "--resume", "run"], env=env, cwd=groups, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    lines = check_trials(out_path)
    listed = [line["experiment_id"] for line in read_lines(out_path / "experiments.jsonl")]
    assert sorted(line["experiment_id"] for line in lines) == sorted(listed) == list(range(10))
    completed = [t for t in load_study(out_path).trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["experiment_id"] for t in completed) == list(range(10))


def _counted(path):
    return len(read_lines(path)) if path.exists() else 0
