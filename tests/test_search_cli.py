"""search=optuna on the command line: the config group, the space from the sweep syntax, --list, --help, a run."""
import json
import sys
import textwrap

import pytest
from optuna.distributions import CategoricalDistribution as Categorical
from optuna.distributions import FloatDistribution as Float
from optuna.distributions import IntDistribution as Int

from experiment_runner.cli import App, guarded
from experiment_runner.config import compose
from experiment_runner.errors import ConfigError
from experiment_runner.expand import plan_sweep
from experiment_runner.search.space import Space

CONFIG = """\
    fit: search_stages:fit
    post: search_stages:post
    verbose: false
    lr: 0.01
    layers: 2
    kind: a
    """
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
    return Space(sweep.experiments[0]).distributions()


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
