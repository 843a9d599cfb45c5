"""The experiment-runner command, python -m experiment_runner and the @main decorator, as a user runs them."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
from datetime import datetime
from pathlib import Path

import pytest
import yaml

import experiment_runner
from experiment_runner.cli import App, guarded

TESTS = Path(__file__).parent
EXAMPLE = TESTS.parent / "examples" / "regression" / "experiment.py"

CONFIG = """\
    defaults:
      - model: small
      - _self_
    pre: stages:pre
    fit: stages:fit
    post: stages:post
    verbose: false
    x: ${variation:1,2,3}
    """
GROUP_OPTIONS = {"model/small.yaml": "size: 1\n", "model/large.yaml": "size: 100\n"}


def write_project(root, config=CONFIG, files=GROUP_OPTIONS):
    conf = root / "conf"
    for name, text in {"config.yaml": textwrap.dedent(config), **files}.items():
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(text)
    return conf


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run the command in this process, in a project in tmp_path: returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    write_project(tmp_path)

    def run(*argv):
        code = guarded(list(argv), App(["experiment-runner"]))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def runs(root):
    """The run folders under root/results."""
    return sorted(p for p in (root / "results").iterdir()) if (root / "results").exists() else []


def jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def command():
    """The installed console script (python -m experiment_runner where it is not installed)."""
    script = shutil.which("experiment-runner", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "experiment_runner"]


def subprocess_env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


# ---------------------------------------------------------------- printing without running


def test_version(cli):
    assert cli("--version") == (0, f"experiment-runner {experiment_runner.__version__}\n", "")


def test_cfg_prints_the_composed_config_with_secrets_masked_and_runs_nothing(cli, tmp_path):
    code, out, err = cli("--cfg", "model=large", "+db.password=hunter2", "x=5")
    assert (code, err) == (0, "")
    printed = yaml.safe_load(out)
    assert printed["model"] == {"size": 100} and printed["x"] == 5
    assert printed["db"] == {"password": "***"} and "hunter2" not in out
    assert runs(tmp_path) == []


def test_cfg_resolve_resolves_interpolations(cli):
    code, out, _ = cli("--cfg", "--resolve", "+out_path=results/${now:%Y}")
    assert code == 0
    assert yaml.safe_load(out)["out_path"] == f"results/{datetime.now().year}"
    assert yaml.safe_load(out)["x"] == {"_variation_": [1, 2, 3]}


def test_list_prints_each_experiment_and_the_count(cli, tmp_path):
    code, out, _ = cli("--list", "+y=a,b")
    lines = out.splitlines()
    assert code == 0
    assert [json.loads(line.split(" ", 1)[1]) for line in lines[:-1]] == [
        {"model": {"size": 1}, "x": x, "y": y} for x in (1, 2, 3) for y in ("a", "b")
    ]
    assert lines[-1] == "6 experiments: the whole grid of 6 configurations over x, y"
    code, out, _ = cli("-l", "n_configs=2", "seed=3")
    assert out.splitlines()[-1] == "2 experiments: 2 sampled (seed 3) of 3 configurations over x"
    assert runs(tmp_path) == []


def test_help_shows_the_config_groups_with_their_options_and_the_config(cli):
    code, out, _ = cli("--help", "model=large")
    assert code == 0
    assert "usage: experiment-runner" in out and "--config-dir" in out and "+key=value" in out
    assert "== Config groups (conf) ==\n  model: large, small\n" in out
    assert "== Config (conf/config.yaml, with the overrides given) ==\nmodel:\n  size: 100\n" in out


def test_help_shows_even_when_the_config_cannot_be_composed(cli):
    code, out, _ = cli("--help", "model=nope")
    assert code == 0
    assert "(cannot compose it: override 'model=nope': config group 'model' has no option 'nope'" in out


def test_config_dir_and_config_name_choose_another_primary_config(cli, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "exp.yaml").write_text("fit: stages:fit\nlr: 0.5\n")
    code, out, _ = cli("--cfg", "--config-dir", str(other), "--config-name", "exp")
    assert (code, yaml.safe_load(out)) == (0, {"fit": "stages:fit", "lr": 0.5})
    assert cli("-c", "-cd", str(other), "-cn", "exp")[1] == out


# ---------------------------------------------------------------- errors

ERRORS = [
    pytest.param(["model=larg"], "config group 'model' has no option 'larg'; did you mean large?",
                 id="unknown-group-option"),
    pytest.param(["xx=1"], "the config has no key 'xx'; did you mean x?", id="unknown-key"),
    pytest.param(["x==1"], "bad override 'x==1'", id="bad-override-syntax"),
    pytest.param(["fit=stages:fitt"],
                 "cannot import fit 'stages:fitt': 'stages' has no attribute 'fitt'; did you mean fit",
                 id="unimportable-stage"),
    pytest.param(["fit=nowhere.module:fit"], "cannot import fit 'nowhere.module:fit': No module named 'nowhere'",
                 id="missing-stage-module"),
    pytest.param(["+backend=nope"], "unknown backend 'nope'", id="unknown-backend"),
    pytest.param(["repetitions=0"], "repetitions must be a whole number >= 1, got 0", id="bad-setting"),
    pytest.param(["--cfgg"], "unrecognized arguments: --cfgg (see experiment-runner --help)", id="unknown-flag"),
    pytest.param(["--resume", "nowhere"], "cannot resume 'nowhere': it holds no run.yaml", id="resume-not-a-run"),
]


@pytest.mark.parametrize("argv, message", ERRORS)
def test_bad_input_is_one_line_exit_2_and_runs_nothing(cli, tmp_path, argv, message):
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert err == f"experiment-runner: error: {err.split('error: ', 1)[1]}"
    assert err.count("\n") == 1 and message in err
    assert runs(tmp_path) == []


def test_bad_yaml_names_the_file_and_line(cli, tmp_path):
    (tmp_path / "conf" / "model" / "small.yaml").write_text("size: 1\nlayers: [1, 2\n")
    code, _, err = cli("--cfg")
    assert code == 2
    assert "conf/model/small.yaml, line 3: bad YAML: did not find expected ',' or ']'" in err


def test_debug_shows_the_traceback(cli):
    code, _, err = cli("--debug", "xx=1")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.endswith("experiment-runner: error: override 'xx=1': the config has no key 'xx'; did you mean x? "
                        "(to add a new key, use +xx=1)\n")


# ---------------------------------------------------------------- running


def test_a_run_writes_the_tree_and_a_run_yaml_to_rerun_it(cli, tmp_path):
    code, _, _ = cli("model=large", "x=1,2", "+secret_token=abc", "out_path=out")
    assert code == 0
    lines = jsonl(tmp_path / "out" / "results.jsonl")
    assert [(line["x"], line["model"], line["scores"]["y"]) for line in lines] == [
        (1, {"size": 100}, 2), (2, {"size": 100}, 4)
    ]
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["command"] == "experiment-runner model=large x=1,2 '+secret_token=***' out_path=out"
    assert record["overrides"] == ["model=large", "x=1,2", "+secret_token=***", "out_path=out"]
    assert record["config_dir"] == str((tmp_path / "conf").resolve()) and record["config_name"] == "config"
    assert record["choices"] == {"model": "large"}
    assert record["config"]["x"] == {"_variation_": [1, 2]} and record["config"]["secret_token"] == "***"
    assert record["resolved_config"]["out_path"] == "out"
    assert record["sweep"] == {"size": 2, "dimensions": ["x"], "n_configs": None, "seed": None}
    assert record["experiments"] == 2 and record["stages"]["fit"] == "stages:fit"
    assert "abc" not in (tmp_path / "out" / "run.yaml").read_text()


def test_timestamped_out_paths_never_share_a_folder(cli, tmp_path):
    year = datetime.now().year
    assert cli("out_path=results/${now:%Y}")[0] == 0
    assert cli("out_path=results/${now:%Y}")[0] == 0
    assert [p.name for p in runs(tmp_path)] == [f"{year}", f"{year}_1"]
    assert all(len(jsonl(p / "results.jsonl")) == 3 for p in runs(tmp_path))


def test_the_default_out_path_is_a_fresh_timestamped_folder(cli, tmp_path):
    assert cli()[0] == 0
    (folder,) = runs(tmp_path)
    assert datetime.strptime(folder.name, "%Y-%m-%d_%H-%M-%S")
    assert len(jsonl(folder / "results.jsonl")) == 3


def test_a_fixed_out_path_that_holds_a_run_is_an_error(cli, tmp_path):
    assert cli("out_path=out")[0] == 0
    code, _, err = cli("out_path=out")
    assert code == 2 and "out_path 'out' already holds files" in err


def test_resume_recomposes_the_sampled_sweep_from_run_yaml(cli, tmp_path):
    assert cli("out_path=out", "x=range(100)", "n_configs=4")[0] == 0
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert isinstance(record["sweep"]["seed"], int)
    (tmp_path / "out" / "results.jsonl").write_text(
        "".join(line + "\n" for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()[:2])
    )
    code, _, err = cli("--resume", "out", "verbose=true")
    assert code == 0
    assert "4 of 4 experiments finished (2 in earlier runs)" in err
    assert len(jsonl(tmp_path / "out" / "results.jsonl")) == 4


def test_a_failed_experiment_makes_exit_code_1(cli, tmp_path):
    code, _, _ = cli("out_path=out", "+action=raise")
    assert code == 1
    assert len(jsonl(tmp_path / "out" / "failures.jsonl")) == 3


def test_report_is_dispatched_to_the_report_command(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType("experiment_runner.report_cli")
    fake.main = lambda argv: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "experiment_runner.report_cli", fake)
    assert guarded(["report", "results/x", "--top", "5"], App(["experiment-runner"])) == 3
    assert seen == [["results/x", "--top", "5"]]


# ---------------------------------------------------------------- end to end, in subprocesses


def test_console_script_end_to_end(tmp_path):
    write_project(tmp_path)
    done = subprocess.run([*command(), "model=large", "repetitions=2", "+db_password=pw"],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (folder,) = runs(tmp_path)
    lines = jsonl(folder / "results.jsonl")
    assert sorted(line["x"] for line in lines) == [1, 2, 3]
    assert all(line["scores"]["y"] == [line["x"] * 2, line["x"] * 2 + 1] for line in lines)
    assert all((folder / str(i) / "1" / "config.json").exists() for i in range(3))
    text = (folder / "run.yaml").read_text()
    record = yaml.safe_load(text)
    assert record["overrides"] == ["model=large", "repetitions=2", "+db_password=***"]
    assert record["settings"]["repetitions"] == 2 and record["config"]["db_password"] == "***"
    assert "pw" not in text.replace("password", "")


def test_decorated_script_end_to_end(tmp_path):
    pytest.importorskip("numpy")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "model=knn", "model.k=1,5", "dataset=linear", "repetitions=1",
         f"out_path={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "best: model={'name': 'knn', 'k': " in done.stdout
    lines = jsonl(tmp_path / "run" / "results.jsonl")
    assert [line["model"] for line in lines] == [{"name": "knn", "k": 1}, {"name": "knn", "k": 5}]
    assert all(line["dataset"]["name"] == "linear" and line["scores"]["test_mse"] > 0 for line in lines)
    record = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())
    assert record["choices"] == {"model": "knn", "dataset": "linear"}
    assert record["stages"]["fit"] == "__main__:fit"
    assert record["command"].startswith(f"python {EXAMPLE} model=knn")


def test_python_m_experiment_runner(tmp_path):
    done = subprocess.run([sys.executable, "-m", "experiment_runner", "--version"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"python -m experiment_runner {experiment_runner.__version__}\n")


@pytest.mark.parametrize("flag", ["--help", "--cfg"])
def test_help_and_cfg_import_no_heavy_library(tmp_path, flag):
    write_project(tmp_path)
    probe = (
        "import json, sys\n"
        "from experiment_runner.cli import console_main\n"
        "try:\n"
        f"    console_main([{flag!r}, 'model=large'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    assert not modules & {"ray", "pandas", "matplotlib", "asyncssh", "paramiko", "numpy"}


def test_ctrl_c_exits_130_and_prints_the_exact_resume_command(tmp_path):
    slow = "x: ${variation:1,2,3,4,5,6}\n    action: sleep\n    seconds: 0.3\n"
    write_project(tmp_path, CONFIG.replace("x: ${variation:1,2,3}\n", slow))
    process = subprocess.Popen([*command(), "verbose=true"], cwd=tmp_path, env=subprocess_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (runs(tmp_path) and (runs(tmp_path)[0] / "results.jsonl").exists()
                                               and (runs(tmp_path)[0] / "results.jsonl").read_text()):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    (folder,) = runs(tmp_path)
    prog = "experiment-runner" if len(command()) == 1 else "python -m experiment_runner"
    assert f"to finish it, run: {prog} --resume results/{folder.name}\n" in err
    assert 1 <= len(jsonl(folder / "results.jsonl")) < 6
    done = subprocess.run([*command(), "--resume", f"results/{folder.name}"], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(line["x"] for line in jsonl(folder / "results.jsonl")) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("backend", ["single", "multiprocessing", "ray", "malocher"])
def test_the_repository_conf_composes_with_every_backend_option(monkeypatch, capsys, backend):
    monkeypatch.chdir(TESTS.parent)
    assert guarded(["--list", f"backend={backend}"], App(["experiment-runner"])) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "4 experiments: the whole grid of 4 configurations over model.alpha"
    from experiment_runner.config import compose

    assert compose("conf", "config", [f"backend={backend}"]).plan().basecfg["backend"] == backend


def test_the_repository_conf_runs_the_example(monkeypatch, tmp_path, capsys):
    pytest.importorskip("numpy")
    monkeypatch.chdir(TESTS.parent)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out_path = tmp_path / "run"
    assert guarded(["repetitions=1", "verbose=false", f"out_path={out_path}"], App(["experiment-runner"])) == 0
    lines = jsonl(out_path / "results.jsonl")
    assert sorted(line["model"]["alpha"] for line in lines) == [0.01, 0.1, 1.0, 10.0]
    assert all(line["scores"]["test_mse"] < 1 for line in lines)
