"""The experiment-runner command, python -m experiment_runner and the @main decorator, as a user runs them."""
import hashlib
import json
import os
import shlex
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
from experiment_runner.expand import plan_sweep
from experiment_runner.launchers import available_launchers
from experiment_runner.run_files import read_recorded_run

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
    code, out, err = cli("--cfg", "model=large", "+db.password=hunter2", "+secret_keys=[db.password]", "x=5")
    assert (code, err) == (0, "")
    printed = yaml.safe_load(out)
    assert printed["model"] == {"size": 100} and printed["x"] == 5
    assert printed["db"] == {"password": "***"} and "hunter2" not in out
    assert runs(tmp_path) == []


def test_list_and_help_mask_declared_secrets_and_show_parameters_named_like_them(cli):
    overrides = ["+secret_keys=[api_key]", "+api_key=hunter2", "+max_tokens=512", "backend=ray",
                 "backend.redis_password=pw"]
    code, out, _ = cli("--list", *overrides)
    assert code == 0 and "hunter2" not in out
    assert json.loads(out.splitlines()[0].split(" ", 1)[1]) == {
        "model": {"size": 1}, "x": 1, "api_key": "***", "max_tokens": 512}
    code, out, _ = cli("--help", *overrides)
    assert code == 0 and "hunter2" not in out and "pw" not in out.replace("password", "")
    assert "api_key: '***'" in out and "redis_password: '***'" in out and "max_tokens: 512" in out


def test_cfg_resolve_resolves_interpolations(cli):
    code, out, _ = cli("--cfg", "--resolve", "+out_path=results/${now:%Y}")
    assert code == 0
    assert yaml.safe_load(out)["out_path"] == f"results/{datetime.now().year}"
    assert yaml.safe_load(out)["x"] == "${variation:1,2,3}"


SWEEP_CONFIG = textwrap.dedent(CONFIG) + """\
opt: '${variation:{name: sgd, momentum: ${variation:0.0,0.9}},{name: adam}}'
name: run_${x}
"""


@pytest.mark.parametrize("flags", [["--cfg"], ["--cfg", "--resolve"]], ids=["cfg", "cfg-resolve"])
def test_cfg_prints_the_sweep_as_written_and_its_output_composes_to_the_same_sweep(cli, tmp_path, flags):
    write_project(tmp_path, SWEEP_CONFIG)
    overrides = ["+tag='a,b',c,'\\'q'", "+layers=[1,2],[3]", "x=1,2"]
    code, printed, _ = cli(*flags, *overrides)
    assert code == 0 and "_variation_" not in printed
    assert yaml.safe_load(printed)["x"] == "${variation:1,2}" and yaml.safe_load(printed)["name"] == "run_${x}"
    (tmp_path / "conf" / "printed.yaml").write_text(printed)
    code, listed, _ = cli("--list", *overrides)
    assert code == 0 and listed.splitlines()[-1].startswith("36 experiments")
    code, relisted, err = cli("--list", "--config-name", "printed")
    assert (code, err) == (0, "") and relisted.splitlines()[-1].startswith("36 experiments")
    # the same experiments; the order may differ, as the command line's sweeps vary in command-line order
    assert sorted(_experiment_lines(relisted)) == sorted(_experiment_lines(listed))


def _experiment_lines(listed):
    return [line.split(" ", 1)[1] for line in listed.splitlines() if line[:1].isdigit() and " {" in line]


def test_cfg_of_a_group_sweep_prints_a_document_per_option_that_composes_to_its_part_of_the_sweep(cli, tmp_path):
    write_project(tmp_path, files={**GROUP_OPTIONS, "model/large.yaml": "size: 100\ndepth: ${variation:1,2}\n"})
    code, printed, _ = cli("--cfg", "model=small,large")
    documents = printed.split("\n---\n")
    assert code == 0 and [document.splitlines()[0] for document in documents] == ["# model=small", "# model=large"]
    code, listed, _ = cli("--list", "model=small,large")
    parts = []
    for number, document in enumerate(documents):
        (tmp_path / "conf" / f"printed{number}.yaml").write_text(document)
        code, out, _ = cli("--list", "--config-name", f"printed{number}")
        parts += [line.split(" ", 1)[1] for line in out.splitlines()[:-1]]
    assert parts == [line.split(" ", 1)[1] for line in listed.splitlines()[:-1]] and len(parts) == 9


@pytest.mark.parametrize("flag", ["-m", "--multirun"])
def test_hydras_multirun_flag_is_accepted_and_changes_nothing(cli, flag):
    code, listed, _ = cli("--list", "model=small,large", "+lr=range(0.5,step=0.25)")
    assert code == 0 and listed.splitlines()[-1].startswith("12 experiments")
    assert cli(flag, "--list", "model=small,large", "+lr=range(0.5,step=0.25)") == (0, listed, "")
    assert cli("--list", "model=small,large", flag, "+lr=range(0.5,step=0.25)") == (0, listed, "")


def test_list_names_the_dimensions_in_the_order_the_grid_varies_them(cli):
    code, out, _ = cli("--list", "+a=p,q", "model=small,large")
    lines = out.splitlines()
    assert lines[-1] == "12 experiments: the whole grid of 12 configurations over a, model, x"
    assert [json.loads(line.split(" ", 1)[1]) for line in lines[:4]] == [
        {"model": {"size": 1}, "x": 1, "a": "p"}, {"model": {"size": 1}, "x": 2, "a": "p"},
        {"model": {"size": 1}, "x": 3, "a": "p"}, {"model": {"size": 100}, "x": 1, "a": "p"},
    ]


def test_list_names_the_dimensions_of_each_option_when_the_options_vary_different_ones(cli, tmp_path):
    files = {**GROUP_OPTIONS, "model/large.yaml": "size: 100\ndepth: ${variation:1,2}\n"}
    write_project(tmp_path, files=files)
    code, out, _ = cli("--list", "model=small,large", "+a=p,q")
    lines = out.splitlines()
    assert lines[-1] == ("18 experiments: the whole grid of 18 configurations over model, then for model=small: "
                         "a, x; for model=large: a, model.depth, x")
    assert [json.loads(line.split(" ", 1)[1]) for line in lines[6:9]] == [
        {"model": {"size": 100, "depth": 1}, "x": 1, "a": "p"}, {"model": {"size": 100, "depth": 1}, "x": 2, "a": "p"},
        {"model": {"size": 100, "depth": 1}, "x": 3, "a": "p"},
    ]


def test_list_counts_one_experiment_and_a_sample_larger_than_the_sweep_in_plain_words(cli):
    code, out, _ = cli("--list", "x=1")
    assert (code, out.splitlines()[-1]) == (0, "1 experiment: the whole grid of 1 configuration")
    code, out, _ = cli("--list", "n_configs=100", "seed=1")
    assert (code, out.splitlines()[-1]) == (
        0, "3 experiments: all 3 configurations over x, shuffled with seed 1 (n_configs=100 is more than the sweep has)")


def test_list_prints_each_experiment_and_the_count(cli, tmp_path):
    code, out, _ = cli("--list", "+y=a,b")
    lines = out.splitlines()
    assert code == 0
    assert [json.loads(line.split(" ", 1)[1]) for line in lines[:-1]] == [
        {"model": {"size": 1}, "x": x, "y": y} for y in ("a", "b") for x in (1, 2, 3)
    ]
    assert lines[-1] == "6 experiments: the whole grid of 6 configurations over y, x"
    code, out, _ = cli("-l", "n_configs=2", "seed=3")
    assert out.splitlines()[-1] == "2 experiments: 2 sampled (seed 3) of 3 configurations over x"
    assert runs(tmp_path) == []


def test_help_shows_the_config_groups_with_their_options_and_the_config(cli):
    code, out, _ = cli("--help", "model=large")
    assert code == 0
    assert "usage: experiment-runner" in out and "--config-dir" in out and "+key=value" in out
    assert "-m, --multirun" in out and "-r, --run" in out  # Hydra's pair: both listed
    backends = ", ".join(sorted(available_launchers()))  # the built-in ones and any installed plugin (CI's dask)
    assert {"malocher", "multiprocessing", "ray", "single", "slurm"} <= set(available_launchers())
    assert f"== Config groups (conf) ==\n  backend: {backends}\n  model: large, small\n" in out
    assert "== Config (conf/config.yaml, with the overrides given) ==\nmodel:\n  size: 100\n" in out


def test_help_lists_the_backends_settings_with_their_defaults_and_docs(cli):
    code, out, _ = cli("--help", "backend=slurm")
    assert code == 0
    heading = "== Settings of backend=slurm (set one with backend.KEY=VALUE) =="
    assert f"{heading}\n  # Experiments as Slurm job arrays" in out
    assert "  slurm_array_size: 1000" in out and "# experiments per job array (one sbatch each)" in out


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
    pytest.param(["fit=nowhere.module:fit"], "cannot import fit 'nowhere.module:fit': No module named 'nowhere'; "
                 "Python finds no nowhere.py or nowhere/ on its path: run from the folder that holds it, or add that "
                 "folder to PYTHONPATH", id="missing-stage-module"),
    pytest.param(["+backend=nope"], "override '+backend=nope': config group 'backend' has no option 'nope'",
                 id="unknown-backend"),
    pytest.param(["backend=slurmm"], "override 'backend=slurmm': config group 'backend' has no option 'slurmm'; "
                 "did you mean slurm?", id="unknown-backend-without-defaults-entry"),
    pytest.param(["repetitions=0"], "repetitions must be a whole number >= 1, got 0", id="bad-setting"),
    pytest.param(["--cfgg"], "unrecognized arguments: --cfgg (see experiment-runner --help)", id="unknown-flag"),
    pytest.param(["-r", "-m"], "-r/--run and -m/--multirun ask for opposite things: give one of them, as Hydra "
                 "requires", id="run-and-multirun"),
    pytest.param(["--api-token=S3CRET", "--max-tokens=5"],
                 "unrecognized arguments: --api-token=*** --max-tokens=5 (see experiment-runner --help)",
                 id="unknown-secret-flag-masked"),
    pytest.param(["--resume", "nowhere"], "cannot resume 'nowhere': there is no such folder; give the out_path of "
                 "the run to finish", id="resume-no-folder"),
    pytest.param(["--resume", "conf"], "cannot resume 'conf': it holds no run.yaml, so it is not a run",
                 id="resume-not-a-run"),
    pytest.param(["k" * 300 + "=1"], f"override '{'k' * 300}=1': the config has no key '{'k' * 300}'",
                 id="key-longer-than-a-file-name"),
    pytest.param(["model=" + "m" * 300], f"config group 'model' has no option '{'m' * 300}'",
                 id="option-longer-than-a-file-name"),
    pytest.param(["--config-name", "c" * 300], f"no primary config conf/{'c' * 300}.yaml", id="config-name-too-long"),
    pytest.param(["--resume", "r" * 300], f"cannot resume '{'r' * 300}': File name too long",
                 id="resume-path-too-long"),
    pytest.param(["--resume", "conf/config.yaml"], "cannot resume 'conf/config.yaml': it is a file, not a folder; give "
                 "the out_path of the run to finish", id="resume-a-file"),
    pytest.param(["out_path=" + "o" * 300], f"cannot create out_path '{'o' * 300}': File name too long",
                 id="out-path-too-long"),
    pytest.param(["+a=${b}", "+b=${a}"], "cannot resolve the config: 'a' refers to itself: its interpolation leads "
                 "back to it", id="interpolation-cycle"),
    pytest.param(["+a={b: ${a}}"], "'a.b' refers to itself", id="interpolation-of-its-own-parent"),
    pytest.param(["x=choice()"], "bad override 'x=choice()': empty choice is not legal", id="empty-choice"),
    pytest.param(["+y=choice( )"], "bad override '+y=choice( )': empty choice is not legal", id="empty-added-choice"),
    pytest.param(["x=range(1,1)"], "bad override 'x=range(1,1)': the range is empty", id="empty-range"),
    pytest.param(["out_path=.", "if_exists=new"], "out_path '.' names no folder of its own for if_exists=new",
                 id="new-next-to-the-working-directory"),
    pytest.param(["out_path=results/..", "if_exists=new"], "out_path 'results/..' names no folder of its own",
                 id="new-next-to-a-parent-folder"),
]


@pytest.mark.parametrize("argv, message", ERRORS)
def test_bad_input_is_one_line_exit_2_and_runs_nothing(cli, tmp_path, argv, message):
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert err == f"experiment-runner: error: {err.split('error: ', 1)[1]}"
    assert err.count("\n") == 1 and message in err
    assert runs(tmp_path) == []


def test_a_stage_module_whose_own_import_is_missing_is_named_without_advice_about_the_path(cli, tmp_path):
    (tmp_path / "needs_more.py").write_text("import not_installed_anywhere\ndef fit(cfg): pass\n")
    code, _, err = cli("--list", "fit=needs_more:fit")
    assert (code, err) == (2, "experiment-runner: error: cannot import fit 'needs_more:fit': No module named "
                              "'not_installed_anywhere'\n")


@pytest.mark.parametrize("text, message", [
    ("size: 1\nlayers: [1, 2\nname: x\n", "line 3: bad YAML: did not find expected ',' or ']' "
                                          "(while parsing a flow sequence)"),
    ("layers: [1, 2\n", "at the end of the file: bad YAML: did not find expected ',' or ']' "
                        "(while parsing a flow sequence that starts on line 1)"),
    ("size: 1\na: 2\nb: 3\nc: 4\nname: 'open\n", "at the end of the file: bad YAML: found unexpected end of stream "
                                                "(while scanning a quoted scalar that starts on line 5)"),
], ids=["in-the-file", "1-line-file", "5-line-file"])
def test_bad_yaml_names_the_file_and_line(cli, tmp_path, text, message):
    (tmp_path / "conf" / "model" / "small.yaml").write_text(text)
    code, _, err = cli("--cfg")
    assert code == 2
    assert err == f"experiment-runner: error: conf/model/small.yaml, {message}\n"


def test_debug_shows_the_traceback(cli):
    code, _, err = cli("--debug", "xx=1")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.endswith("experiment-runner: error: override 'xx=1': the config has no key 'xx'; did you mean x? "
                        "(to add a new key, use +xx=1)\n")


# ---------------------------------------------------------------- running


def test_a_run_writes_the_tree_and_a_run_yaml_to_rerun_it(cli, tmp_path):
    code, _, _ = cli("model=large", "x=1,2", "+secret_token=abc", "out_path=out", "+secret_keys=[secret_token]")
    assert code == 0
    lines = jsonl(tmp_path / "out" / "results.jsonl")
    assert [(line["x"], line["model"], line["scores"]["y"]) for line in lines] == [
        (1, {"size": 100}, 2), (2, {"size": 100}, 4)
    ]
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["command"] == ("experiment-runner model=large x=1,2 '+secret_token=***' out_path=out "
                                 "'+secret_keys=[secret_token]'")
    assert record["overrides"] == ["model=large", "x=1,2", "+secret_token=***", "out_path=out",
                                   "+secret_keys=[secret_token]"]
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


def test_overwrite_refuses_a_project_folder_with_another_tools_run_yaml(cli, tmp_path):
    project = {"run.yaml": "name: nightly\nsteps: [build, test]\n", "src/main.py": "print('hi')\n", "data.csv": "a,b\n"}
    for name, text in project.items():
        (tmp_path / "project" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "project" / name).write_text(text)
    code, _, err = cli("out_path=project", "if_exists=overwrite")
    assert code == 2
    assert err == ("experiment-runner: error: out_path 'project' is not a run of experiment-runner: its run.yaml has "
                   "no 'format: experiment-runner/...' line; refusing to overwrite it: choose another out_path\n")
    assert {name: (tmp_path / "project" / name).read_text() for name in project} == project


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
    resumed = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert resumed["command"] == record["command"] == "experiment-runner out_path=out 'x=range(100)' n_configs=4"
    assert resumed["resumed"] == ["experiment-runner --resume out verbose=true"]


def test_resume_keeps_a_seed_given_only_for_sampling_out_of_the_experiments(cli, tmp_path):
    assert cli("out_path=out", "x=range(100)", "n_configs=4", "seed=5")[0] == 0
    assert all(set(e["config"]) == {"model", "x"} for e in jsonl(tmp_path / "out" / "experiments.jsonl"))
    (tmp_path / "out" / "results.jsonl").write_text(
        "".join(line + "\n" for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()[:2])
    )
    code, _, err = cli("--resume", "out", "verbose=true")
    assert code == 0 and "4 of 4 experiments finished (2 in earlier runs)" in err


@pytest.mark.parametrize("seed_line", ["seed: null\n", "seed: 7\n"], ids=["null", "seven"])
def test_resume_samples_again_with_the_seed_of_the_first_run_without_changing_the_seed_parameter(cli, tmp_path,
                                                                                                  seed_line):
    write_project(tmp_path, CONFIG + seed_line)
    assert cli("out_path=out", "x=range(100)", "n_configs=4")[0] == 0
    listed = jsonl(tmp_path / "out" / "experiments.jsonl")
    assert {e["config"]["seed"] for e in listed} == {yaml.safe_load(seed_line)["seed"]}
    (tmp_path / "out" / "results.jsonl").write_text(
        "".join(line + "\n" for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()[:2])
    )
    code, _, err = cli("--resume", "out", "verbose=true")
    assert code == 0 and "4 of 4 experiments finished (2 in earlier runs)" in err, err
    assert jsonl(tmp_path / "out" / "experiments.jsonl") == listed


def test_resume_of_a_finished_run_says_nothing_is_left_to_run(cli, tmp_path):
    assert cli("out_path=out")[0] == 0
    before = (tmp_path / "out" / "results.jsonl").read_text()
    for verbose in ("false", "true"):
        assert cli("--resume", "out", f"verbose={verbose}") == (
            0, "", "experiment-runner: nothing left to run: 3 of 3 experiments finished; results: out/results.jsonl\n"
        )
    assert (tmp_path / "out" / "results.jsonl").read_text() == before


def test_without_config_yaml_the_command_line_builds_the_config_and_resumes_it(cli, tmp_path):
    (tmp_path / "conf" / "config.yaml").unlink()
    stages = ["+pre=stages:pre", "+fit=stages:fit", "+post=stages:post", "+verbose=false"]
    assert cli("+model=large", *stages, "+x=1,2", "out_path=out")[0] == 0
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["config_name"] is None and record["choices"] == {"model": "large"}
    assert [line["model"] for line in jsonl(tmp_path / "out" / "results.jsonl")] == [{"size": 100}] * 2
    code, _, err = cli("--resume", "out")
    assert code == 0 and "nothing left to run: 2 of 2 experiments finished" in err


def test_without_config_yaml_nor_an_added_key_the_missing_primary_config_is_the_error(cli, tmp_path):
    (tmp_path / "conf" / "config.yaml").unlink()
    code, _, err = cli("model=large")
    assert code == 2
    assert err == ("experiment-runner: error: no primary config conf/config.yaml: create it, or choose one with "
                   "--config-dir DIR and --config-name NAME\n")


@pytest.mark.parametrize("config, argv, message", [
    pytest.param("defaults:\n  - model: ???\n", [],
                 "conf/config.yaml: You must specify 'model': choose its option with model=OPTION "
                 "(options: large, small)", id="option-to-specify"),
    pytest.param(CONFIG, ["++model=large"], "override '++model=large': '++' does not apply to config group 'model'",
                 id="force-add-group"),
    pytest.param(CONFIG, ["model=null"], "override 'model=null': config group 'model' takes an option name, not "
                 "null; to drop the group, use ~model", id="group-null"),
    pytest.param("defaults: [_self_, {model: small}, _self_]\n", [],
                 "conf/config.yaml: _self_ is listed twice in its defaults list; keep one", id="duplicate-self"),
])
def test_a_defaults_list_refusal_is_one_line_with_the_fix(cli, tmp_path, config, argv, message):
    write_project(tmp_path, config)
    code, _, err = cli("--cfg", *argv)
    assert code == 2 and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, typed", [
    pytest.param(["out_path=out", "seed=1,2,3"], "seed=1,2,3", id="run"),
    pytest.param(["--list", "out_path=out", "seed=1,2", "x=3,4"], "seed=1,2", id="list-with-a-second-sweep"),
    pytest.param(["out_path=out", "seed=range(3)"], "seed=range(3)", id="range"),
    pytest.param(["out_path=out", "seed=choice(4,5)", "n_configs=1"], "seed=choice(4,5)", id="sampling"),
    pytest.param(["--list", "out_path=out", "seed=${variation:1,2}"], "seed=${variation:1,2}", id="variation"),
    pytest.param(["out_path=out", "seed=${variation:1,2}", "x=1"], "seed=${variation:1,2}", id="variation-run"),
    pytest.param(["out_path=out", "seed=${x}"], "seed=${x}", id="interpolation-of-a-swept-key"),
])
def test_a_swept_seed_on_a_config_without_one_is_refused_with_the_override_to_write(cli, tmp_path, argv, typed):
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert err == (f"experiment-runner: error: override {typed!r}: seed without a seed key in the config seeds the "
                   "sampling (n_configs) and takes one whole number; to sweep a parameter named seed, "
                   f"write +{typed}\n")
    assert not (tmp_path / "out").exists() and runs(tmp_path) == []


@pytest.mark.parametrize("typed", ["seed=abc", "seed=1.5", "seed=true"])
@pytest.mark.parametrize("sampled", [[], ["n_configs=2"]], ids=["whole-grid", "sampled"])
def test_a_seed_that_is_no_whole_number_on_a_config_without_one_is_refused(cli, tmp_path, typed, sampled):
    code, out, err = cli("out_path=out", typed, *sampled)
    assert (code, out) == (2, "")
    assert err == (f"experiment-runner: error: override {typed!r}: seed without a seed key in the config seeds the "
                   "sampling (n_configs) and takes one whole number; to give the experiments a parameter seed, "
                   f"write +{typed}\n")
    assert not (tmp_path / "out").exists()


def test_a_seed_in_the_config_or_added_is_a_parameter_to_sweep(cli, tmp_path):
    assert cli("--list", "+seed=1,2,3")[1].splitlines()[-1] == "9 experiments: the whole grid of 9 configurations " \
        "over seed, x"
    write_project(tmp_path, CONFIG + "seed: 0\n")
    assert cli("out_path=out", "seed=1,2", "x=1")[0] == 0
    assert [e["seed"] for e in jsonl(tmp_path / "out" / "results.jsonl")] == [1, 2]
    write_project(tmp_path, CONFIG.replace("x: ${variation:1,2,3}", "seed: ${variation:5,6}"))
    assert cli("out_path=out2")[0] == 0
    assert [e["seed"] for e in jsonl(tmp_path / "out2" / "results.jsonl")] == [5, 6]


@pytest.mark.parametrize("argv", [["--resume", "out"], ["report", "out"]], ids=["resume", "report"])
def test_a_corrupt_record_before_the_last_line_is_one_line_naming_it(cli, tmp_path, argv):
    assert cli("out_path=out")[0] == 0
    results = tmp_path / "out" / "results.jsonl"
    first, *rest = results.read_text().splitlines(keepends=True)
    results.write_text(first + '{"experiment_id": 1, "x": 2, "sco\n' + "".join(rest))
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "error: out/results.jsonl, line 2: not JSON (" in err


SECRET_IN_ERROR_LINES = [
    pytest.param(["+secret_keys=[db_password]", "db_password=S3CRET"],
                 "override 'db_password=***': the config has no key 'db_password' "
                 "(to add a new key, use +db_password=***)", id="declared-parameter"),
    pytest.param(["backend=ray", "backend.redis_pasword=S3CRET"],
                 "override 'backend.redis_pasword=***': the config has no key 'backend.redis_pasword'; "
                 "did you mean backend.redis_password, backend.address? (to add a new key, use "
                 "+backend.redis_pasword=***)", id="backend-secret"),
    pytest.param(["+secret_keys=[api_key]", "+api_key=k", "api_kye=NEWSEC1"],
                 "override 'api_kye=***': the config has no key 'api_kye'; did you mean api_key? "
                 "(to add a new key, use +api_kye=***)", id="misspelt-secret"),
    pytest.param(["+secret_keys=[db.password]", "+db={password: k, host: h}", "db.pasword=NEWSEC5"],
                 "override 'db.pasword=***': the config has no key 'db.pasword'; did you mean db.password? "
                 "(to add a new key, use +db.pasword=***)", id="misspelt-nested-secret"),
    pytest.param(["+secret_keys=[db.password]", "+db={password: k, host: h}", "db.hots=h2"],
                 "override 'db.hots=h2': the config has no key 'db.hots'; did you mean db.host? "
                 "(to add a new key, use +db.hots=h2)", id="misspelt-parameter-beside-a-secret"),
]


@pytest.mark.parametrize("argv, message", SECRET_IN_ERROR_LINES)
def test_an_error_line_never_echoes_a_secret_override(cli, argv, message):
    assert cli(*argv) == (2, "", f"experiment-runner: error: {message}\n")


@pytest.mark.parametrize("argv, message", [
    (["num_workers=2"], "override 'num_workers=2': num_workers is a setting of backend=multiprocessing, set under "
                        "backend: write backend=multiprocessing backend.num_workers=2"),
    (["backend=multiprocessing", "num_workers=2"], "override 'num_workers=2': num_workers is a setting of "
                                                   "backend=multiprocessing, set under backend: write "
                                                   "backend.num_workers=2"),
    (["redis_password=S3CRET"], "override 'redis_password=***': redis_password is a setting of backend=ray, set "
                                "under backend: write backend=ray backend.redis_password=***"),
], ids=["another-backend", "this-backend", "a-secret-setting"])
def test_a_backend_setting_given_at_the_top_says_where_it_goes(cli, argv, message):
    assert cli(*argv) == (2, "", f"experiment-runner: error: {message}\n")


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
    done = subprocess.run([*command(), "model=large", "repetitions=2", "+db_password=pw", "+secret_keys=[db_password]"],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (folder,) = runs(tmp_path)
    lines = jsonl(folder / "results.jsonl")
    assert sorted(line["x"] for line in lines) == [1, 2, 3]
    assert all(line["scores"]["y"] == [line["x"] * 2, line["x"] * 2 + 1] for line in lines)
    assert all((folder / str(i) / "1" / "config.json").exists() for i in range(3))
    text = (folder / "run.yaml").read_text()
    record = yaml.safe_load(text)
    assert record["overrides"] == ["model=large", "repetitions=2", "+db_password=***", "+secret_keys=[db_password]"]
    assert record["settings"]["repetitions"] == 2 and record["config"]["db_password"] == "***"
    assert "pw" not in text.replace("password", "")


def test_progress_written_to_a_log_file_has_no_carriage_returns(tmp_path):
    write_project(tmp_path)
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        done = subprocess.run([*command(), "verbose=true", "+action=raise,ok"], cwd=tmp_path, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=60)
    text = log.read_bytes()
    assert done.returncode == 1, text
    assert b"\r" not in text and b"3 of 6 experiments finished, 3 failed" in text


def test_run_yaml_and_environment_json_mask_the_same_command_line(tmp_path):
    write_project(tmp_path)
    argv = ["+secret_keys=[api_key,db.password]", "+api_key=S3CRET", "+max_tokens=5", "backend=single",
            "+db.password=S3CRET", "out_path=out"]
    done = subprocess.run([*command(), *argv], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    masked = ["+secret_keys=[api_key,db.password]", "+api_key=***", "+max_tokens=5", "backend=single",
              "+db.password=***", "out_path=out"]
    assert json.loads((tmp_path / "out" / "environment.json").read_text())["argv"][1:] == masked
    assert shlex.split(yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())["command"])[-6:] == masked
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and b"S3CRET" in p.read_bytes()]


ARGV_SCRIPT = """\
from experiment_runner import run_experiments

def fit(cfg, _):
    return 1

run_experiments({"out_path": "out", "fit": fit, "verbose": False}, [{"x": 1}])
"""


def test_a_scripts_own_secret_flags_are_masked_in_environment_json(tmp_path):
    (tmp_path / "experiment.py").write_text(ARGV_SCRIPT)
    argv = ["--token", "S1", "--api-key=S2", "--db-password", "S3", "-p", "8080", "--max-tokens", "5", "--lr=0.1",
            "max_tokens=5", "--hf_token", "S4", "--tokenizer", "bpe"]
    done = subprocess.run([sys.executable, "experiment.py", *argv], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "environment.json").read_text())["argv"] == [
        "experiment.py", "--token", "***", "--api-key=***", "--db-password", "***", "-p", "8080",
        "--max-tokens", "5", "--lr=0.1", "max_tokens=5", "--hf_token", "***", "--tokenizer", "bpe"]


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


#: Six experiments of 0.3 s each: a run to interrupt.
SLOW_CONFIG = CONFIG.replace("x: ${variation:1,2,3}\n",
                             "x: ${variation:1,2,3,4,5,6}\n    action: sleep\n    seconds: 0.3\n")
#: How the command names itself (see command()).
PROG = "experiment-runner" if len(command()) == 1 else "python -m experiment_runner"


def interrupted(argv, cwd, results, finished=1):
    """Run the command with ``argv`` in ``cwd``, Ctrl-C it once ``results`` holds ``finished`` lines: its stderr."""
    process = subprocess.Popen([*command(), *argv], cwd=cwd, env=subprocess_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (results() and results().exists()
                                               and len(results().read_text().splitlines()) >= finished):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    return err


def test_ctrl_c_pressed_again_and_again_still_prints_the_summary_and_the_resume_command(tmp_path):
    write_project(tmp_path, SLOW_CONFIG)
    process = subprocess.Popen([*command(), "verbose=true"], cwd=tmp_path, env=subprocess_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (runs(tmp_path) and (runs(tmp_path)[0] / "results.jsonl").exists()
                                               and (runs(tmp_path)[0] / "results.jsonl").read_text()):
        time.sleep(0.02)
    for _ in range(3):  # as an impatient finger does: the second and third land while the run stops
        process.send_signal(signal.SIGINT)
        time.sleep(0.005)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    (folder,) = runs(tmp_path)
    assert "interrupted: stopped the experiments in flight; finished results are kept" in err
    assert f"to finish it, run: {PROG} --resume results/{folder.name}\n" in err


def typed_in_a_shell(command_line, cwd):
    """Run a command line that the runner printed for its user, with this Python's scripts first on PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(command_line, shell=True, cwd=cwd, env={**subprocess_env(), "PATH": path},
                          capture_output=True, text=True, timeout=60)


def test_ctrl_c_exits_130_and_prints_the_exact_resume_command(tmp_path):
    write_project(tmp_path, SLOW_CONFIG)
    err = interrupted(["verbose=true"], tmp_path, lambda: runs(tmp_path) and runs(tmp_path)[0] / "results.jsonl")
    (folder,) = runs(tmp_path)
    assert f"to finish it, run: {PROG} --resume results/{folder.name}\n" in err
    assert 1 <= len(jsonl(folder / "results.jsonl")) < 6
    done = subprocess.run([*command(), "--resume", f"results/{folder.name}"], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(line["x"] for line in jsonl(folder / "results.jsonl")) == [1, 2, 3, 4, 5, 6]


def test_a_run_resumed_from_another_folder_says_to_resume_it_from_where_it_started(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_project(project, SLOW_CONFIG)
    elsewhere.mkdir()
    results = project / "out" / "results.jsonl"
    interrupted(["out_path=out"], project, lambda: results)
    done = len(jsonl(results))
    err = interrupted(["--resume", str(project / "out")], elsewhere, lambda: results, finished=done + 1)
    resume = f"cd {project} && {PROG} --resume out"
    assert f"to finish it, run: {resume}\n" in err
    finished = typed_in_a_shell(resume, elsewhere)
    assert finished.returncode == 0, finished.stderr
    assert sorted(line["x"] for line in jsonl(results)) == [1, 2, 3, 4, 5, 6]


def test_stages_that_import_only_where_the_run_started_name_that_folder_on_resume(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_project(project, CONFIG.replace("fit: stages:fit", "fit: project_stages:fit"))
    (project / "project_stages.py").write_text("from stages import fit\n")
    elsewhere.mkdir()
    assert subprocess.run([*command(), "out_path=out"], cwd=project, env=subprocess_env(), timeout=60).returncode == 0
    results = project / "out" / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:1]))  # as if stopped after one
    done = subprocess.run([*command(), "--resume", str(project / "out")], cwd=elsewhere, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    resume = f"cd {project} && {PROG} --resume out"
    assert done.returncode == 2
    assert done.stderr == (f"{PROG}: error: cannot import fit 'project_stages:fit': No module named 'project_stages'; "
                           f"the run started in '{project}', where its stages import: resume it from there: {resume}\n")
    finished = typed_in_a_shell(resume, elsewhere)
    assert finished.returncode == 0, finished.stderr
    assert sorted(line["x"] for line in jsonl(results)) == [1, 2, 3]


def closed_pipe():
    """The write end of a pipe whose reader has left, as ``| head -1`` leaves it once it has its line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize("gone", ["stderr", "stdout"])
def test_a_run_whose_output_nobody_reads_any_more_finishes_and_records_everything(tmp_path, gone):
    write_project(tmp_path)
    pipe = closed_pipe()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, gone: pipe}
    try:
        done = subprocess.run([*command(), "out_path=out", "verbose=true", "x=range(0,10)", "+action=raise,print"],
                              cwd=tmp_path, env=subprocess_env(), text=True, timeout=60, **streams)
    finally:
        os.close(pipe)
    assert done.returncode == 1  # some experiments failed: as if everything had been read
    assert "BrokenPipeError" not in (done.stdout or "") + (done.stderr or "")
    results, failures = jsonl(tmp_path / "out" / "results.jsonl"), jsonl(tmp_path / "out" / "failures.jsonl")
    assert (len(results), len(failures)) == (10, 10)
    assert {line["action"] for line in results} == {"print"} and {line["config"]["action"] for line in failures} == {"raise"}
    assert all((tmp_path / "out" / str(line["experiment_id"]) / "stdout.log").read_text().startswith("hello from")
               for line in results)


PRINTING_COMMANDS = [
    pytest.param(["--list", "x=range(0,5000)"], id="list"),
    pytest.param(["--cfg"], id="cfg"),
    pytest.param(["--help"], id="help"),
    pytest.param(["report", "out"], id="report"),
]


@pytest.mark.parametrize("argv", PRINTING_COMMANDS)
def test_a_command_whose_output_nobody_reads_any_more_ends_quietly_with_141(tmp_path, argv):
    write_project(tmp_path)
    assert subprocess.run([*command(), "out_path=out"], cwd=tmp_path, env=subprocess_env(), timeout=60).returncode == 0
    pipe = closed_pipe()
    try:
        done = subprocess.run([*command(), *argv], cwd=tmp_path, env=subprocess_env(), stdout=pipe,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(pipe)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.parametrize("backend", ["single", "multiprocessing", "ray", "malocher"])
def test_the_repository_conf_composes_with_every_backend_option(monkeypatch, capsys, backend):
    monkeypatch.chdir(TESTS.parent)
    assert guarded(["--list", f"backend={backend}"], App(["experiment-runner"])) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "4 experiments: the whole grid of 4 configurations over model.alpha"
    from experiment_runner.config import compose

    assert plan_sweep(compose("conf", "config", [f"backend={backend}"])).basecfg["backend"] == backend


def test_the_repository_conf_runs_the_example(monkeypatch, tmp_path, capsys):
    pytest.importorskip("numpy")
    monkeypatch.chdir(TESTS.parent)
    monkeypatch.setattr(sys, "path", list(sys.path))
    out_path = tmp_path / "run"
    assert guarded(["repetitions=1", "verbose=false", f"out_path={out_path}"], App(["experiment-runner"])) == 0
    lines = jsonl(out_path / "results.jsonl")
    assert sorted(line["model"]["alpha"] for line in lines) == [0.01, 0.1, 1.0, 10.0]
    assert all(line["scores"]["test_mse"] < 1 for line in lines)


# ---------------------------------------------------------------- resuming from run.yaml


def test_resume_rebuilds_the_sweep_from_run_yaml_not_from_the_conf_files_now(cli, tmp_path):
    assert cli("out_path=out", "model=large", "+lr=0.1,0.2")[0] == 0
    results = tmp_path / "out" / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")
    conf = tmp_path / "conf"
    (conf / "model" / "large.yaml").write_text("size: 5\nextra: 1\n")
    (conf / "config.yaml").write_text(textwrap.dedent(CONFIG).replace("${variation:1,2,3}", "${variation:7,8}"))
    code, _, err = cli("--resume", "out", "verbose=true")
    assert code == 0, err
    assert "6 of 6 experiments finished (1 in earlier runs)" in err
    lines = jsonl(results)
    assert sorted((line["x"], line["lr"]) for line in lines) == [(x, lr) for x in (1, 2, 3) for lr in (0.1, 0.2)]
    assert all(line["model"] == {"size": 100} for line in lines)


def test_resume_gets_a_secret_again_from_the_command_line_or_the_files(cli, tmp_path):
    assert cli("out_path=out", "+db_password=pw", "+secret_keys=[db_password]")[0] == 0
    results = tmp_path / "out" / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")
    code, _, err = cli("--resume", "out")
    assert code == 2 and "the secret db_password was typed on the command line" in err
    assert cli("--resume", "out", "+db_password=pw")[0] == 0
    assert len(jsonl(results)) == 3
    assert [line["db_password"] for line in jsonl(results)] == ["***"] * 3, "secrets are masked in the tree"
    (tmp_path / "conf" / "config.yaml").write_text(
        textwrap.dedent(CONFIG) + "api_token: from-the-file\nsecret_keys: [api_token]\n")
    assert cli("out_path=out2")[0] == 0
    results = tmp_path / "out2" / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")
    assert cli("--resume", "out2")[0] == 0 and len(jsonl(results)) == 3


DERIVED_SECRET_CONFIG = """\
    fit: bearer_stages:fit
    post: bearer_stages:post
    verbose: false
    secret_keys: [api_key]
    api_key: ${oc.env:MY_API_KEY}
    derived: "Bearer ${api_key}"
    auth: {relative: "${..api_key}", selected: "${oc.select:api_key,none}", twice: "${derived}", x: "${x}"}
    x: ${variation:1,2}
    """
BEARER_STAGES = """\
def fit(cfg, returned_by_pre):
    return [cfg["derived"], *(cfg["auth"][key] for key in ("relative", "selected", "twice"))]

def post(cfg, returned_by_fit):
    return {"reached_in_clear": returned_by_fit == ["Bearer ENVSECRET", "ENVSECRET", "ENVSECRET", "Bearer ENVSECRET"]}
"""


def test_a_key_that_interpolates_a_secret_is_secret_too(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "ENVSECRET")
    write_project(tmp_path, DERIVED_SECRET_CONFIG)
    (tmp_path / "bearer_stages.py").write_text(BEARER_STAGES)
    printed = [cli("--cfg", "--resolve"), cli("--cfg"), cli("--list")]
    assert [code for code, _, _ in printed] == [0, 0, 0]
    assert not [out for _, out, err in printed if "ENVSECRET" in out + err]
    assert "derived: '***'" in printed[0][1] and "x: ${x}" in printed[0][1]
    code, _, err = cli("out_path=out")
    assert code == 0, err
    root = tmp_path / "out"
    lines = jsonl(root / "results.jsonl")
    assert [line["scores"]["reached_in_clear"] for line in lines] == [True, True]
    assert [(line["derived"], line["auth"]) for line in lines] == [
        ("***", {"relative": "***", "selected": "***", "twice": "***", "x": x}) for x in (1, 2)]
    assert not [path for path in root.rglob("*") if path.is_file() and b"ENVSECRET" in path.read_bytes()]
    results = root / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")
    code, _, err = cli("--resume", "out")
    assert code == 0, err
    assert [line["scores"]["reached_in_clear"] for line in jsonl(results)] == [True, True]


SECRET_RESUME_CONFIG = """\
    fit: stages:fit_digest
    post: stages:post_value
    verbose: false
    secret_keys: [api.key]
    api: {key: FILEKEY}
    n: ${variation:1,2,3}
    """


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def stop_after_the_first_result(root):
    """The run as Ctrl-C after its first experiment would leave it."""
    results = root / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")
    return results


def test_a_secret_typed_on_the_command_line_must_be_typed_again_to_resume_whatever_the_files_hold(cli, tmp_path):
    write_project(tmp_path, SECRET_RESUME_CONFIG)
    assert cli("out_path=out", "api.key=TYPEDSECRET")[0] == 0
    results = stop_after_the_first_result(tmp_path / "out")
    assert cli("--resume", "out") == (
        2, "", "experiment-runner: error: cannot resume 'out': the secret api.key was typed on the command line, "
               "and run.yaml keeps no secret: type it again, with the same value: "
               "experiment-runner --resume out api.key=...\n")
    code, _, err = cli("--resume", "out", "api.key=OTHERSECRET")
    assert (code, err) == (2, "experiment-runner: error: cannot resume 'out': this sweep's experiments and the "
                              "recorded ones differ only in their secret values (api.key): resume with the same "
                              "secrets as the recorded run, or start a new out_path\n")
    assert len(jsonl(results)) == 1, "nothing ran"
    assert cli("--resume", "out", "api.key=TYPEDSECRET")[0] == 0
    assert [line["scores"]["value"] for line in jsonl(results)] == [digest("TYPEDSECRET")] * 3
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and b"TYPEDSECRET" in p.read_bytes()]


def test_a_sweep_of_secrets_resumes_each_experiment_with_its_own_secret(cli, tmp_path):
    write_project(tmp_path, SECRET_RESUME_CONFIG)
    assert cli("out_path=out", "api.key=KA,KB")[0] == 0
    results = stop_after_the_first_result(tmp_path / "out")
    [first] = jsonl(results)
    assert cli("--resume", "out") == (
        2, "", "experiment-runner: error: cannot resume 'out': the secret api.key (a sweep) was typed on the command "
               "line, and run.yaml keeps no secret: type it again, with the same values: "
               "experiment-runner --resume out api.key=...,...\n")
    sweep_again = ("; the recorded run swept the secret api.key on the command line: type that sweep again after "
                   "--resume, with the same values\n")
    code, _, err = cli("--resume", "out", "api.key=KB")
    assert code == 2 and "3 of its 6 recorded experiments are not in this sweep" in err and err.endswith(sweep_again)
    code, _, err = cli("--resume", "out", "api.key=KB,KC")
    assert code == 2 and "differ only in their secret values (api.key)" in err and err.endswith(sweep_again)
    assert cli("--resume", "out", "api.key=KB,KA")[0] == 0
    ran = sorted((line["n"], line["scores"]["value"]) for line in jsonl(results))
    assert ran == sorted((n, digest(key)) for key in ("KA", "KB") for n in (1, 2, 3)), "each one once, own secret"
    assert jsonl(results)[0] == first


SCRIPT = """\
import experiment_runner
from stages import fit

@experiment_runner.main(config_path="conf", config_name="config")
def main(summary):
    print("finished", summary.finished)

if __name__ == "__main__":
    main()
"""


def test_a_decorated_scripts_run_is_resumed_with_that_script(cli, tmp_path):
    write_project(tmp_path, CONFIG.replace("    fit: stages:fit\n", ""))
    (tmp_path / "my_exp.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "my_exp.py", "out_path=out"], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    results = tmp_path / "out" / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")
    code, _, err = cli("--resume", "out")
    assert code == 2
    assert "was started by the script my_exp.py" in err and "resume it with that script: python my_exp.py --resume out" in err
    done = subprocess.run([sys.executable, "my_exp.py", "--resume", "out"], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "finished 2" in done.stdout and len(jsonl(results)) == 3


def run_script_with_version_base(project, version_base):
    """A decorated script as pasted from a Hydra app, ``version_base`` given, run in ``project``."""
    write_project(project, CONFIG.replace("    fit: stages:fit\n", ""))
    (project / "my_exp.py").write_text(SCRIPT.replace("main(config_path=", f"main(version_base={version_base}, "
                                                      "config_path="))
    return subprocess.run([sys.executable, "my_exp.py", "out_path=out"], cwd=project, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("version_base", ["None", "'1.3'", "'1.2'"])
def test_a_script_decorated_as_for_hydra_with_a_version_base_runs(tmp_path, version_base):
    done = run_script_with_version_base(tmp_path, version_base)
    assert (done.returncode, done.stdout) == (0, "finished 3\n"), done.stderr


@pytest.mark.parametrize("version_base", ["'1.1'", "'1.0'"])
def test_an_older_version_base_is_one_line_before_anything_runs(tmp_path, version_base):
    done = run_script_with_version_base(tmp_path, version_base)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"python my_exp.py: error: version_base={version_base}: configs are composed with the "
                           "defaults of Hydra 1.2 and later; give version_base=None (or \"1.2\", \"1.3\") and set "
                           "what differs (hydra.job.chdir=true) in the config\n")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- run settings: typos, backends, --list checks


def test_a_typo_in_the_backend_node_names_the_backend_file(cli, tmp_path):
    (tmp_path / "conf" / "backend").mkdir()
    (tmp_path / "conf" / "backend" / "multiprocessing.yaml").write_text("name: multiprocessing\nnum_workrs: 2\n")
    code, _, err = cli("--list", "+backend=multiprocessing")
    assert code == 2
    assert ("unknown key 'num_workrs' in the backend node (backend.num_workrs, from "
            "conf/backend/multiprocessing.yaml); did you mean num_workers?") in err
    assert "basecfg" not in err


@pytest.mark.parametrize("backend", ["single", "multiprocessing", "ray", "malocher", "slurm"])
def test_a_project_without_backend_files_selects_the_backends_complete_declared_node(cli, backend):
    from experiment_runner.config import compose
    from experiment_runner.launchers import get_launcher_class, options_class
    from experiment_runner.launchers.options import node_yaml

    shipped = yaml.safe_load(node_yaml(backend, options_class(backend)))
    launcher_keys = get_launcher_class(backend).option_names
    assert shipped["name"] == backend and launcher_keys <= set(shipped)
    overrides = [f"backend={backend}", *(f"backend.{key}={key}" for key in sorted(launcher_keys)[:1])]
    plan = plan_sweep(compose("conf", "config", overrides))
    assert plan.basecfg["backend"] == backend
    assert set(shipped) - {"name"} <= set(plan.basecfg)
    assert all(plan.basecfg[key] == key for key in sorted(launcher_keys)[:1])


def test_backend_multiprocessing_with_its_settings_runs_without_backend_files(cli, tmp_path):
    code, out, err = cli("--list", "backend=multiprocessing", "backend.num_workers=4", "num_cpus=2")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "3 experiments: the whole grid of 3 configurations over x"
    assert cli("backend=multiprocessing", "backend.num_workers=2", "out_path=out")[0] == 0
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["backend"] == "multiprocessing" and record["settings"]["num_workers"] == 2


def test_a_backend_written_as_a_plain_key_is_chosen_like_its_option(cli, tmp_path):
    write_project(tmp_path, CONFIG + "backend: multiprocessing\n")
    code, out, err = cli("--cfg")
    assert yaml.safe_load(out)["backend"]["name"] == "multiprocessing" and "num_workers" in yaml.safe_load(out)["backend"]
    assert cli("backend.num_workers=1", "out_path=out")[0] == 0
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["backend"] == "multiprocessing" and record["settings"]["num_workers"] == 1
    code, _, err = cli("--list", "+backend.num_cpus=1")
    assert code == 2 and "use backend.num_cpus=1 to change it" in err
    code, _, err = cli("--list", "backend.num_workrs=1")
    assert code == 2 and "did you mean backend.num_workers" in err
    assert cli("--list", "backend=single")[0] == 0
    assert cli("--list", "backend=single", "backend.num_workers=1")[0] == 2, "single has no workers"


def test_a_backend_name_that_is_no_option_file_gets_a_hint_that_works(cli, tmp_path):
    write_project(tmp_path, CONFIG + "backend: ${oc.env:NO_SUCH_VARIABLE_SET,multiprocessing}\n")
    code, _, err = cli("--list", "backend.num_workers=1")
    assert code == 2 and err.endswith("choose its option with backend=NAME, then set backend.num_workers=1\n")
    assert cli("--list", "backend=multiprocessing", "backend.num_workers=1")[0] == 0


def test_a_backends_node_is_its_declared_settings_with_their_docs(cli, tmp_path):
    from experiment_runner.launchers.options import SlurmOptions, node_yaml

    text = node_yaml("slurm", SlurmOptions)
    assert text.startswith("# Experiments as Slurm job arrays")
    assert "slurm_array_size: 1000" in text and "# experiments per job array (one sbatch each)" in text
    code, out, _ = cli("--cfg", "backend=slurm")
    assert code == 0 and yaml.safe_load(out)["backend"] == yaml.safe_load(text)
    assert not (TESTS.parent / "conf" / "backend").exists(), "no copy of the declarations to keep in step"


def test_a_declaration_without_a_docstring_has_no_comment_made_of_its_fields():
    """dataclasses writes a docstring of the fields' signature for a class without one: not a description."""
    import dataclasses

    from experiment_runner.launchers.options import BackendOptions, node_yaml, option

    @dataclasses.dataclass
    class PlainOptions(BackendOptions):
        plain_workers: int = option(2, "how many")

    assert node_yaml("plain", PlainOptions) == f"name: plain\n{'plain_workers: 2':<32} # how many\n"


LIST_ERRORS = [
    pytest.param(["backend=slurmm"], "config group 'backend' has no option 'slurmm'", id="unknown-backend"),
    pytest.param(["timeout=abc"], "timeout must be a number >= 0, got 'abc'", id="bad-timeout"),
    pytest.param(["if_exists=foo"], "if_exists='foo' is not one of", id="bad-if-exists"),
    pytest.param(["fit=stages:fitt"], "'stages' has no attribute 'fitt'", id="unimportable-stage"),
    pytest.param(["max_memory=4XB"], "max_memory must be bytes or a size like", id="bad-max-memory"),
    pytest.param(["num_cpus=0"], "num_cpus must be a number > 0, got 0", id="zero-cpus"),
    pytest.param(["+backend=single", "+backend.num_workrs=2"],
                 "unknown key 'num_workrs' in the backend node", id="backend-typo"),
    pytest.param(["+backend=single", "+backend.address=x"],
                 "address is a setting of backend=ray, not of backend=single", id="other-backends-setting"),
    pytest.param(["+run_id=3"], "override '+run_id=3' sets run_id, which the runner sets", id="reserved-key"),
    pytest.param(["n_configs=0"], "n_configs must be a whole number >= 1", id="zero-n-configs"),
    pytest.param(["+repetitons=5"], "override '+repetitons=5': top-level key 'repetitons' looks like the run "
                 "setting 'repetitions' misspelt", id="typo-override"),
]


@pytest.mark.parametrize("argv", [pytest.param([], id="run"), pytest.param(["--list"], id="list")])
@pytest.mark.parametrize("overrides, message", LIST_ERRORS)
def test_list_and_a_run_check_the_same_and_exit_2_without_a_banner(cli, tmp_path, argv, overrides, message):
    code, out, err = cli(*argv, *overrides, "verbose=true")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err, err
    assert runs(tmp_path) == []


SINGLE_BY_DEFAULT = CONFIG.replace("- model: small\n", "- backend: single\n      - model: small\n")


def other_backends_setting(override, owner, setting):
    return (f"experiment-runner: error: override '{override}': {setting.split('=')[0]} is a setting of "
            f"backend={owner}, not of backend=single; choose backend={owner} (backend={owner} backend.{setting})\n")


@pytest.mark.parametrize("override, owner", [
    pytest.param("backend.num_workers=4", "multiprocessing", id="without-plus"),
    pytest.param("+backend.num_workers=4", "multiprocessing", id="num_workers"),
    pytest.param("++backend.num_workers=4", "multiprocessing", id="force-add"),
    pytest.param("+backend.address=auto", "ray", id="address"),
    pytest.param("+backend.malocher_machines=[node1]", "malocher", id="malocher_machines"),
    pytest.param("+backend.gpus=[0]", "multiprocessing", id="gpus"),
    pytest.param("+backend.slurm_partition=debug", "slurm", id="slurm_partition"),
])
@pytest.mark.parametrize("argv", [pytest.param([], id="run"), pytest.param(["--list"], id="list")])
def test_a_setting_of_another_backend_is_an_error_naming_its_backend(cli, tmp_path, argv, override, owner):
    write_project(tmp_path, SINGLE_BY_DEFAULT)
    code, out, err = cli(*argv, override, "out_path=out")
    setting = override.lstrip("+").partition(".")[2]
    assert (code, out, err) == (2, "", other_backends_setting(override, owner, setting))
    assert not (tmp_path / "out").exists()
    choose = err.rstrip().rpartition("(")[2].rstrip(")").split()
    assert cli("--list", *choose)[0] == 0, "the hint works"


def test_a_secret_setting_of_another_backend_is_refused_without_showing_it(cli, tmp_path):
    write_project(tmp_path, SINGLE_BY_DEFAULT)
    code, out, err = cli("+backend.redis_password=S3CRET", "out_path=out")
    assert (code, out) == (2, "")
    assert err == other_backends_setting("+backend.redis_password=***", "ray", "redis_password=***")


def test_a_setting_of_another_backend_in_a_config_file_names_the_file(cli, tmp_path):
    (tmp_path / "conf" / "backend").mkdir()
    (tmp_path / "conf" / "backend" / "single.yaml").write_text("name: single\nnum_workers: 4\n")
    code, out, err = cli("--list", "backend=single")
    assert (code, out) == (2, "")
    assert err == ("experiment-runner: error: conf/backend/single.yaml: num_workers is a setting of "
                   "backend=multiprocessing, not of backend=single; choose backend=multiprocessing or remove it there\n")


BACKEND_SETTING_ERRORS = [
    pytest.param(["backend=multiprocessing", "backend.num_workers=0"], "num_workers must be a whole number >= 1, got 0",
                 id="multiprocessing-no-workers"),
    pytest.param(["backend=multiprocessing", "num_gpus=1"],
                 "num_gpus=1 but no GPUs are known: set gpus (e.g. gpus=[0,1]) or CUDA_VISIBLE_DEVICES",
                 id="multiprocessing-no-gpus"),
    pytest.param(["backend=multiprocessing", "backend.max_experiments_per_worker=-1"],
                 "max_experiments_per_worker must be a whole number >= 0, got -1", id="multiprocessing-per-worker"),
    pytest.param(["backend=multiprocessing", "backend.gpus=1.5"],
                 "gpus must be a list of device ids like [0, 1] or a string like '0,1', got 1.5",
                 id="multiprocessing-gpus"),
    pytest.param(["backend=ray", "backend.ray_max_in_flight=0"], "ray_max_in_flight must be a whole number >= 1, got 0",
                 id="ray-in-flight"),
    pytest.param(["backend=ray", "backend.ray_resources={CPU: 2}"],
                 "ray_resources must not set 'CPU': use num_cpus instead", id="ray-resources"),
    pytest.param(["backend=malocher", "backend.malocher_port=0"],
                 "malocher_port: the port must be a whole number from 1 to 65535, got 0", id="malocher-port"),
    pytest.param(["backend=malocher", "backend.malocher_machines=[]"],
                 "backend=malocher needs malocher_machines", id="malocher-machines"),
    pytest.param(["backend=slurm", "backend.slurm_array_size=0"], "slurm_array_size must be a whole number >= 1, got 0",
                 id="slurm-array-size"),
    pytest.param(["backend=slurm", "backend.slurm_time_limit=1", "timeout=120"],
                 "slurm_time_limit='1' would stop experiments before their timeout of 120 s", id="slurm-time-limit"),
]


@pytest.mark.parametrize("overrides, message", BACKEND_SETTING_ERRORS)
def test_list_refuses_a_bad_backend_setting_with_the_line_of_a_run(cli, tmp_path, monkeypatch, overrides, message):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    listed = cli("--list", *overrides)
    ran = cli(*overrides, "out_path=out")
    assert listed == ran == (2, "", ran[2])
    assert ran[2].startswith(f"experiment-runner: error: {message}") and ran[2].count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_list_says_that_a_run_without_seed_samples_anew(cli):
    code, out, err = cli("--list", "n_configs=2")
    seed = int(out.splitlines()[-1].split("seed ")[1].split(")")[0])
    assert code == 0
    assert err == f"note: no seed given, so a run samples anew; add seed={seed} to run these experiments\n"
    assert cli("--list", "n_configs=2", "seed=1")[2] == ""


def test_an_out_path_holding_a_run_is_refused_before_the_banner_with_the_resume_command(cli, tmp_path):
    assert cli("out_path=out")[0] == 0
    code, _, err = cli("out_path=out", "verbose=true")
    assert code == 2
    assert err == ("experiment-runner: error: out_path 'out' already holds files: choose another out_path=..., "
                   "finish that run with 'experiment-runner --resume out', or replace it with if_exists=overwrite\n")


@pytest.mark.parametrize("backend", ["single", "multiprocessing"])
def test_values_json_lacks_reach_the_stages_as_composed_and_stay_apart(cli, tmp_path, backend):
    """inf, nan and int dict keys, as Hydra composes them: the files hold JSON's null and text keys."""
    write_project(tmp_path, "fit: stages:fit_only\npost: stages:post_reprs\nweights: {0: 1, 1: 10}\na: 0.0\n", {})
    assert cli("out_path=out", f"backend={backend}", "a=inf,nan,-inf,null")[0] == 0
    scores = {line["experiment_id"]: line["scores"] for line in jsonl(tmp_path / "out" / "results.jsonl")}
    assert [scores[i]["a"] for i in range(4)] == ["inf", "nan", "-inf", "None"]
    assert scores[0]["weights"] == "{0: 1, 1: 10}"
    recorded = jsonl(tmp_path / "out" / "experiments.jsonl")
    assert len({line["hash"] for line in recorded}) == 4
    assert json.loads((tmp_path / "out" / "0" / "config.json").read_text())["weights"] == {"0": 1, "1": 10}
    assert cli("--resume", "out")[0] == 0  # the same hashes again: nothing left to run


def test_a_sweep_listing_a_value_twice_says_equal_configurations_run_once(cli, tmp_path):
    code, out, err = cli("--list", "+y=a,a,b")
    assert code == 0 and out.splitlines()[-1] == "6 experiments: the whole grid of 6 configurations over y, x"
    assert err == ("note: y lists a value twice: equal configurations run once (Hydra would launch each; "
                   "repetitions=N repeats an experiment)\n")
    code, _, err = cli("out_path=out", "+y=a,a")
    assert code == 0 and "note: y lists a value twice" in err
    assert cli("--list", "+y=a,b")[2] == ""


# ---------------------------------------------------------------- one plan step for --list, a run and --resume


def listed(out):
    """--list's experiments: one (id, config) per line before the last."""
    return [(int(line.split(" ", 1)[0]), json.loads(line.split(" ", 1)[1])) for line in out.splitlines()[:-1]]


@pytest.mark.parametrize("overrides", [["x=range(50)", "n_configs=5", "seed=3"], ["model=small,large", "+lr=0.1,1"]],
                         ids=["sampled", "grid"])
def test_list_shows_the_experiments_that_a_run_of_the_same_command_line_runs(cli, tmp_path, overrides):
    code, out, _ = cli("--list", *overrides)
    assert code == 0
    assert cli("out_path=out", *overrides)[0] == 0
    ran = [(line["experiment_id"], line["config"]) for line in jsonl(tmp_path / "out" / "experiments.jsonl")]
    assert listed(out) == ran and len(ran) >= 4


def test_resume_reads_back_what_the_store_recorded(cli, tmp_path):
    assert cli("out_path=out", "x=range(50)", "n_configs=3", "+lr=0.5")[0] == 0
    recorded = read_recorded_run("out")
    assert recorded.from_command_line and recorded.backend == "single"
    assert recorded.command == "experiment-runner out_path=out 'x=range(50)' n_configs=3 +lr=0.5"
    assert recorded.overrides == ["out_path=out", "x=range(50)", "n_configs=3", "+lr=0.5"]
    assert recorded.config_dirs == [str((tmp_path / "conf").resolve())]
    assert recorded.started_in == tmp_path and isinstance(recorded.seed, int)
    assert recorded.branches[0]["choices"] == {"model": "small"}
    (tmp_path / "out" / "results.jsonl").write_text("")
    assert cli("--resume", "out")[0] == 0
    assert read_recorded_run("out").resumed == ["experiment-runner --resume out"]
    assert len(jsonl(tmp_path / "out" / "results.jsonl")) == 3


@pytest.mark.parametrize("text, problem", [
    ("format: experiment-runner/1\nconfig: [unclosed\n", "its run.yaml cannot be read (line 3: "),
    ("name: nightly\nsteps: [build, test]\n", "its run.yaml is not a run's record"),
    (b"\xff\xfe not text", "its run.yaml cannot be read ("),
], ids=["not-yaml", "another-tools", "not-utf8"])
def test_resume_of_a_corrupt_run_yaml_is_one_line_and_exit_2(cli, tmp_path, text, problem):
    assert cli("out_path=out")[0] == 0
    run_yaml = tmp_path / "out" / "run.yaml"
    run_yaml.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, out, err = cli("--resume", "out")
    assert (code, out) == (2, "")
    assert err.startswith(f"experiment-runner: error: cannot resume 'out': {problem}") and err.count("\n") == 1


def test_resume_of_a_run_started_from_python_says_where_to_resume_it(cli, tmp_path):
    experiment_runner.run_experiments({"fit": "stages:fit", "out_path": str(tmp_path / "py"), "verbose": False},
                                      [{"x": 1}])
    assert yaml.safe_load((tmp_path / "py" / "run.yaml").read_text())["format"] == "experiment-runner/1"
    code, _, err = cli("--resume", "py")
    assert code == 2 and "(it was started from Python); run it again there with if_exists='resume'" in err
