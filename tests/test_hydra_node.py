"""Hydra's settings in a project: the hydra node kept apart, ${hydra:...}, and what maps to run settings.

How the same configs compose in real Hydra is checked in test_hydra_parity.py;
here, what this package does with them: out_path, backends, chdir, the warning
line, the errors.
"""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from experiment_runner.config import compose
from experiment_runner.expand import plan_sweep
from experiment_runner.errors import ConfigError, IgnoredSettingWarning
from test_cli import cli, jsonl, subprocess_env, write_project  # noqa: F401  (cli is a fixture)
from test_config import write
from test_hydra_parity import LIGHTNING_TEMPLATE

HYDRA_PROJECT = {
    "config.yaml": """\
        defaults:
          - db: mysql
          - _self_
        fit: stages:fit
        lr: 0.1
        hydra:
          run:
            dir: outputs/${hydra.job.name}
          sweeper:
            params:
              lr: 0.1,0.2
        """,
    "db/mysql.yaml": "driver: mysql\n",
    "db/postgresql.yaml": "driver: postgresql\n",
}


def composed(tmp_path, overrides=(), files=None, config_name="config", **options):
    write(tmp_path, HYDRA_PROJECT if files is None else files)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IgnoredSettingWarning)
        composition = compose(tmp_path, config_name, list(overrides), **options)
    return composition, [str(w.message) for w in caught]


def test_the_hydra_node_is_no_parameter_and_sweeper_params_are_dimensions(tmp_path):
    composition, _ = composed(tmp_path, multirun=True)
    plan = plan_sweep(composition)
    assert plan.experiments == [{"db": {"driver": "mysql"}, "lr": 0.1}, {"db": {"driver": "mysql"}, "lr": 0.2}]
    assert "hydra" not in composition.containers()[0]
    assert composition.branches[0].hydra.hydra.sweeper.params.lr == "0.1,0.2"


def test_sweeper_params_apply_with_multirun_only_as_in_hydra(tmp_path):
    composition, ignored = composed(tmp_path)
    assert plan_sweep(composition).experiments == [{"db": {"driver": "mysql"}, "lr": 0.1}]
    assert composition.written("out_path") == "outputs/${hydra:job.name}"
    assert ignored == ["Hydra settings without an equivalent here, ignored: "
                       "hydra.sweeper.params (they apply with -m/--multirun or hydra.mode=MULTIRUN, as in Hydra)"]
    files = {**HYDRA_PROJECT, "config.yaml": "fit: stages:fit\nlr: 0.1\nhydra:\n  sweep:\n    dir: multi\n"}
    composition, ignored = composed(tmp_path, files=files, multirun=True)
    assert composition.config.out_path == "multi" and ignored == []


@pytest.mark.parametrize("where", ["typed", "config"])
def test_hydra_mode_multirun_is_a_multirun_as_dash_m_is(tmp_path, where):
    files = {**HYDRA_PROJECT, "config.yaml": "fit: stages:fit\nlr: 0.1\nhydra:\n  sweep:\n    dir: multi\n"
             "  sweeper:\n    params:\n      lr: 0.1,0.2\n" + ("  mode: MULTIRUN\n" if where == "config" else "")}
    overrides = ["+a=1,2"] + (["hydra.mode=MULTIRUN"] if where == "typed" else [])
    composition, ignored = composed(tmp_path, overrides, files=files)
    assert [(e["lr"], e["a"]) for e in plan_sweep(composition).experiments] == [(0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]
    assert composition.config.out_path == "multi" and ignored == []
    single, ignored = composed(tmp_path, overrides[1:], files=files)
    assert single.config.out_path == "multi" and len(plan_sweep(single).experiments) == 2 and ignored == []


def test_hydra_mode_run_is_a_plain_run_and_dash_m_wins_over_it_as_in_hydra(tmp_path):
    composition, ignored = composed(tmp_path, ["hydra.mode=RUN"])
    assert len(plan_sweep(composition).experiments) == 1
    assert ignored == ["Hydra settings without an equivalent here, ignored: "
                       "hydra.sweeper.params (they apply with -m/--multirun or hydra.mode=MULTIRUN, as in Hydra)"]
    composition, ignored = composed(tmp_path, ["hydra.mode=RUN"], multirun=True)
    assert len(plan_sweep(composition).experiments) == 2
    assert ignored == ["Hydra settings without an equivalent here, ignored: "
                       "hydra.mode=RUN (-m/--multirun makes the run a multirun, as in Hydra)"]
    with pytest.raises(ConfigError, match=r"^hydra.mode is RUN or MULTIRUN \(or null\), as in Hydra, not 'multirun'$"):
        composed(tmp_path, ["hydra.mode=multirun"])


def test_hydra_mode_multirun_on_the_command_line_runs_every_job_into_the_sweep_dir(cli, tmp_path):
    config = "pre: stages:pre\nfit: stages:fit\nlr: 0.1\nhydra:\n  sweeper:\n    params:\n      lr: 0.1,0.2\n"
    write_project(tmp_path, config, {})
    code, _, err = cli("+a=1,2", "hydra.mode=MULTIRUN", "hydra.sweep.dir=multi")
    assert code == 0 and "Hydra settings" not in err
    assert sorted((e["lr"], e["a"]) for e in jsonl(tmp_path / "multi" / "results.jsonl")) == [
        (0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]


def test_a_command_line_override_of_a_sweeper_parameter_wins(tmp_path):
    composition, _ = composed(tmp_path, ["lr=0.5", "db=mysql,postgresql"], multirun=True)
    assert [(e["db"]["driver"], e["lr"]) for e in plan_sweep(composition).experiments] == [
        ("mysql", 0.5), ("postgresql", 0.5)]


def test_out_path_from_hydra_run_dir_or_sweep_dir_and_an_explicit_out_path_wins(tmp_path):
    files = {**HYDRA_PROJECT, "config.yaml": HYDRA_PROJECT["config.yaml"].replace("lr: 0.1,0.2", "{}")}
    composition, ignored = composed(tmp_path, files=files, job_name="train")
    assert composition.written("out_path") == "outputs/${hydra:job.name}"
    assert plan_sweep(composition).basecfg["out_path"] == "outputs/train"
    assert ignored == []
    sweep, _ = composed(tmp_path, ["lr=1,2", "hydra.sweep.dir=multi/${now:%Y}"], files=files)
    assert plan_sweep(sweep).basecfg["out_path"] == f"multi/{sweep.now:%Y}"
    given, ignored = composed(tmp_path, ["+out_path=mine"], files=files)
    assert plan_sweep(given).basecfg["out_path"] == "mine"
    assert ignored == ["Hydra settings without an equivalent here, ignored: hydra.run.dir (out_path is given)"]


def test_launchers_select_our_backends_with_their_settings(tmp_path):
    composition, _ = composed(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], multirun=True)
    assert plan_sweep(composition).basecfg["backend"] == "multiprocessing"
    assert plan_sweep(composition).basecfg["num_workers"] == 3
    slurm, ignored = composed(tmp_path, [
        "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90",
        "hydra.launcher.cpus_per_task=4", "hydra.launcher.mem_gb=8", "hydra.launcher.constraint=a100",
        "hydra.launcher.nodes=2"], multirun=True)
    basecfg = plan_sweep(slurm).basecfg
    assert (basecfg["backend"], basecfg["slurm_partition"], basecfg["slurm_time_limit"]) == ("slurm", "gpu", 90)
    assert (basecfg["num_cpus"], basecfg["max_memory"]) == (4, "8GiB")
    assert basecfg["slurm_additional_parameters"] == {"constraint": "a100"}
    assert ignored == ["Hydra settings without an equivalent here, ignored: hydra.launcher.nodes"]


def test_an_override_hydra_launcher_entry_of_a_defaults_list_selects_the_backend(tmp_path):
    files = {**HYDRA_PROJECT, "config.yaml": "defaults:\n  - db: mysql\n  - override hydra/launcher: joblib\n"}
    composition, _ = composed(tmp_path, files=files)
    assert composition.branches[0].choices["backend"] == "multiprocessing"
    assert composition.branches[0].hydra.hydra.runtime.choices["hydra/launcher"] == "joblib"


def test_our_backend_given_as_explicitly_wins_and_the_conflict_is_one_line(tmp_path):
    composition, ignored = composed(tmp_path, ["+backend=ray", "hydra/launcher=joblib"], multirun=True)
    assert composition.branches[0].choices["backend"] == "ray"
    assert ignored == ["Hydra settings without an equivalent here, ignored: "
                       "hydra/launcher=joblib (backend=ray is given)"]


def test_the_hydra_resolver_gives_choices_and_job_values(tmp_path):
    files = {**HYDRA_PROJECT, "config.yaml": "defaults:\n  - db: mysql\nfit: stages:fit\n"
                                             "dirname: ${hydra:job.override_dirname}\n"}
    composition, _ = composed(tmp_path, ["db=postgresql", "+choice=${hydra:runtime.choices.db}",
                                         "+name=${hydra:job.name}_x"], files=files, job_name="train")
    experiment = plan_sweep(composition).experiments[0]
    assert (experiment["choice"], experiment["name"]) == ("postgresql", "train_x")
    assert experiment["dirname"] == "+choice=postgresql,+name=train_x,db=postgresql"


def test_each_experiment_of_a_sweep_has_its_own_override_dirname(tmp_path):
    files = {**HYDRA_PROJECT, "config.yaml": "defaults:\n  - db: mysql\nfit: stages:fit\nlr: 0.1\n"
                                             "name: run_${hydra:job.override_dirname}\n"}
    composition, _ = composed(tmp_path, ["db=mysql,postgresql", "lr=1,3"], files=files)
    assert [e["name"] for e in plan_sweep(composition).experiments] == [
        "run_db=mysql,lr=1", "run_db=mysql,lr=3", "run_db=postgresql,lr=1", "run_db=postgresql,lr=3"]


def test_hydra_runtime_cwd_is_the_folder_the_run_started_in_and_a_resume_keeps_it(tmp_path, cli):
    write_project(tmp_path, CWD_PROJECT.replace("verbose: false", "verbose: false\n    work: ${hydra:runtime.cwd}"), {})
    code, _, err = cli()
    assert code == 0, err
    root = tmp_path / "swept" / "config"
    assert json.loads((root / "0" / "config.json").read_text())["work"] == str(tmp_path)
    (root / "results.jsonl").write_text("")
    (tmp_path / "elsewhere").mkdir()
    os.chdir(tmp_path / "elsewhere")
    code, _, err = cli("--resume", str(root))
    assert code == 0, err
    assert [line["work"] for line in jsonl(root / "results.jsonl")] == [str(tmp_path)] * 2


def test_a_run_setting_cannot_follow_the_override_dirname_of_a_sweep(tmp_path):
    files = {**HYDRA_PROJECT, "config.yaml": "fit: stages:fit\nlr: 0.1\nhydra:\n  sweep:\n"
                                             "    dir: out/${hydra.job.override_dirname}\n"}
    with pytest.raises(ConfigError, match="run setting 'out_path' cannot be swept"):
        plan_sweep(composed(tmp_path, ["lr=1,3"], files=files)[0])


@pytest.mark.parametrize("overrides, message", [
    (["+n=${hydra:job.num}"], "${hydra:job.num} has no value when the config is composed: each experiment's number"),
    (["hydra.nope=1"], "Hydra's settings have no key 'hydra.nope' (to add one, use +hydra.nope=1)"),
    (["hydra/launcher=rq"], "hydra/launcher=rq has no equivalent backend here"),
    (["hydra.run.dir=a,b"], "Hydra's settings cannot be swept"),
    (["+hydra.sweeper.params.x=1"], "override '+hydra.sweeper.params.x=1': hydra.sweeper.params is null"),
])
def test_hydra_settings_that_cannot_be_honoured_are_one_line_errors(tmp_path, overrides, message):
    files = {**HYDRA_PROJECT, "config.yaml": "defaults:\n  - db: mysql\n"}
    with pytest.raises(ConfigError) as error:
        plan_sweep(composed(tmp_path, overrides, files=files)[0])
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("overrides, defaults, message", [
    (["hydra/sweeper=optuna"], "",
     "override 'hydra/sweeper=optuna': Hydra's sweepers other than basic are not used here; for an adaptive "
     "search choose search=optuna"),
    ([], "  - override hydra/sweeper: nevergrad\n",
     "hydra/sweeper=nevergrad (in a defaults list): Hydra's sweepers other than basic are not used here"),
])
def test_a_sweeper_other_than_the_basic_one_is_refused(tmp_path, cli, overrides, defaults, message):
    write_project(tmp_path, f"defaults:\n  - _self_\n{defaults}fit: stages:fit\nlr: 0.1\n", {})
    code, out, err = cli("lr=1,2", *overrides)
    assert code == 2 and out == "" and err.strip().count("\n") == 0 and message in err
    assert not os.path.exists(tmp_path / "results")


@pytest.mark.parametrize("overrides", [
    ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=5", "hydra.sweeper.direction=maximize"],
    ["hydra.sweeper.n_trials=5", "hydra.sweeper.sampler.seed=1", "hydra/sweeper=optuna"],
])
def test_a_pasted_hydra_optuna_line_is_told_what_to_use_whatever_the_order_of_its_overrides(
        tmp_path, cli, overrides):
    """The sweeper's own settings are not called unknown keys: the one line says what they are here."""
    write_project(tmp_path, "defaults:\n  - _self_\nfit: stages:fit\nlr: 0.1\n", {})
    code, out, err = cli("lr=1,2", *overrides)
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert "choose search=optuna" in err and "hydra.sweeper.n_trials is search.n_trials" in err
    assert "have no key" not in err


def test_the_basic_sweeper_runs_the_grid(tmp_path):
    composition, ignored = composed(tmp_path, ["hydra/sweeper=basic", "lr=1,2"], multirun=True)
    assert [e["lr"] for e in plan_sweep(composition).experiments] == [1, 2] and "sweeper" not in "".join(ignored)


def test_a_hydra_group_without_override_in_a_defaults_list_is_an_error(tmp_path):
    files = {**HYDRA_PROJECT, "config.yaml": "defaults:\n  - hydra/launcher: joblib\n"}
    with pytest.raises(ConfigError, match="write 'override hydra/launcher: joblib'"):
        composed(tmp_path, files=files)


# ---------------------------------------------------------------- the command line

CWD_PROJECT = """\
    pre: null
    fit: stages:fit_cwd
    post: stages:post_cwd
    verbose: false
    x: ${variation:1,2}
    hydra:
      sweep:
        dir: swept/${hydra.job.name}
      job:
        chdir: true
      verbose: true
    """


def test_the_command_line_honours_hydra_dirs_chdir_and_names_what_it_ignores(tmp_path, cli):
    write_project(tmp_path, CWD_PROJECT, {})
    code, _, err = cli("hydra/job_logging=disabled", "hydra.sweep.subdir=x")
    assert code == 0, err
    root = tmp_path / "swept" / "config"
    results = sorted(jsonl(root / "results.jsonl"), key=lambda line: line["experiment_id"])
    assert [Path(line["scores"]["cwd"]) for line in results] == [root / "0", root / "1"]
    assert (root / "0" / "written-here.txt").exists()
    assert "hydra" not in json.loads((root / "0" / "config.json").read_text())
    assert err.count("warning") == 1
    assert ("warning: Hydra settings without an equivalent here, ignored: hydra.verbose, hydra/job_logging=disabled, "
            "hydra.sweep.subdir (the out_path tree's layout is fixed: <out_path>/<experiment_id>)") in err
    record = yaml.safe_load((root / "run.yaml").read_text())
    assert record["hydra"]["job"]["chdir"] is True and record["settings"]["chdir"] is True
    assert Path.cwd() == tmp_path


BASIC_SWEEP_PROJECT = """\
    defaults:
      - db: ???
      - _self_
    fit: stages:fit
    hydra:
      sweeper:
        params:
          db: glob(*)
          db.timeout: 5,10
    """
BASIC_SWEEP_OPTIONS = {"db/mysql.yaml": "driver: mysql\ntimeout: 5\n",
                       "db/postgresql.yaml": "driver: postgresql\ntimeout: 10\n"}


@pytest.mark.parametrize("override, driver", [
    ("hydra.sweeper.params.db=postgresql", "postgresql"),
    ("hydra.sweeper.params={db: mysql}", "mysql"),
])
def test_the_command_line_changes_the_sweeper_params_of_a_config_that_needs_them(tmp_path, cli, override, driver):
    write_project(tmp_path, BASIC_SWEEP_PROJECT, BASIC_SWEEP_OPTIONS)
    code, out, err = cli("-m", "--list", override)
    assert code == 0, err
    listed = [json.loads(line.partition(" ")[2]) for line in out.splitlines() if " {" in line]
    assert listed == [{"db": {"driver": driver, "timeout": timeout}} for timeout in (5, 10)]


@pytest.mark.parametrize("override, message", [
    ("hydra.sweeper.params.db.timeout=7", "hydra.sweeper.params.db holds the value 'glob(*)', which has no keys"),
    ("~hydra.sweeper.params", "hydra.sweeper.params is one of Hydra's own settings, which Hydra cannot delete"),
])
def test_what_hydra_refuses_of_the_sweeper_params_exits_2_with_one_line(tmp_path, cli, override, message):
    write_project(tmp_path, BASIC_SWEEP_PROJECT, BASIC_SWEEP_OPTIONS)
    code, out, err = cli("-m", "--list", override)
    assert code == 2 and out == "" and err.strip().count("\n") == 0 and message in err


def test_a_resumed_run_resolves_hydra_interpolations_again(tmp_path, cli):
    write_project(tmp_path, CWD_PROJECT.replace("verbose: false", "verbose: false\n    name: ${hydra:job.name}"), {})
    code, _, err = cli()
    assert code == 0, err
    (tmp_path / "swept" / "config" / "results.jsonl").write_text("")
    code, _, err = cli("--resume", "swept/config")
    assert code == 0, err
    assert [line["name"] for line in jsonl(tmp_path / "swept" / "config" / "results.jsonl")] == ["config"] * 2


def test_a_hydra_setting_that_cannot_be_honoured_exits_2_with_one_line(tmp_path, cli):
    code, out, err = cli("hydra/launcher=rq")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "hydra/launcher=rq has no equivalent backend here" in err
    assert not os.path.exists(tmp_path / "results")


@pytest.mark.parametrize("flags, has_config, has_hydra", [
    pytest.param(["--cfg"], True, False, id="cfg"),
    pytest.param(["--cfg", "job"], True, False, id="cfg-job"),
    pytest.param(["--cfg", "hydra"], False, True, id="cfg-hydra"),
    pytest.param(["--cfg=all"], True, True, id="cfg-all"),
    pytest.param(["-c", "all", "--resolve"], True, True, id="c-all-resolve"),
])
def test_hydras_cfg_parts_print_the_config_the_hydra_node_or_both(cli, tmp_path, flags, has_config, has_hydra):
    write_project(tmp_path, HYDRA_PROJECT["config.yaml"], {k: v for k, v in HYDRA_PROJECT.items() if "/" in k})
    code, out, err = cli(*flags, "lr=0.3")
    printed = yaml.safe_load(out)
    assert code == 0 and ("lr" in printed) == has_config and ("hydra" in printed) == has_hydra
    if has_config:
        assert printed["lr"] == 0.3 and printed["db"] == {"driver": "mysql"}
    if has_hydra:
        assert printed["hydra"]["sweeper"]["params"] == {"lr": "0.1,0.2"}


@pytest.mark.parametrize("argv, message", [
    pytest.param(["--resolve"], "--resolve works only with --cfg (or --help), as in Hydra", id="resolve-alone"),
    pytest.param(["--package", "db"], "--package works only with --cfg", id="package-alone"),
    pytest.param(["--cfg", "--package", "nope"], "--package nope: the config has no node 'nope'", id="no-such-package"),
    pytest.param(["--info"], "Hydra's --info is not supported here: --help shows the config groups", id="info"),
    pytest.param(["--info", "searchpath"], "Hydra's --info is not supported here", id="info-with-value"),
    pytest.param(["--hydra-help"], "Hydra's --hydra-help is not supported here", id="hydra-help"),
    pytest.param(["-sc"], "Hydra's --shell-completion is not supported here", id="shell-completion"),
    pytest.param(["--experimental-rerun", "x.pickle"], "--resume OUT_PATH runs a recorded run again", id="rerun"),
    pytest.param(["-cd", "nowhere", "--cfg"], "--config-dir nowhere: there is no directory nowhere", id="no-config-dir"),
    pytest.param(["-cp", "nowhere", "--cfg"], "--config-path nowhere: there is no directory nowhere", id="no-config-path"),
])
def test_hydras_flags_without_an_equivalent_are_one_line_naming_what_to_use(cli, tmp_path, argv, message):
    write_project(tmp_path, HYDRA_PROJECT["config.yaml"], {k: v for k, v in HYDRA_PROJECT.items() if "/" in k})
    code, out, err = cli(*argv)
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert (code, out) == (2, "") and len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "outputs").exists()


def test_hydras_package_config_name_and_run_flags_work_as_in_hydra(cli, tmp_path):
    write_project(tmp_path, HYDRA_PROJECT["config.yaml"], {k: v for k, v in HYDRA_PROJECT.items() if "/" in k})
    code, out, _ = cli("--cfg", "job", "-p", "db")
    assert (code, out) == (0, "# @package db\ndriver: mysql\n")
    assert cli("--cfg", "-p", "db.driver")[:2] == (0, "mysql\n")
    assert cli("--cfg", "-p", "_global_")[1] == cli("--cfg")[1]
    assert cli("-cn", "config.yaml", "--cfg")[1] == cli("--cfg")[1]
    code, out, _ = cli("-r", "--list")
    assert code == 0 and out.splitlines()[-1].startswith("1 experiment:")
    code, out, _ = cli("-m", "--list")
    assert code == 0 and out.splitlines()[-1].startswith("2 experiments")


SCRIPT_WITH_CONFIG_PATH = """\
import experiment_runner

def fit(cfg):
    return None

@experiment_runner.main(config_path="conf", config_name="config")
def main(summary):
    pass

if __name__ == "__main__":
    main()
"""


def test_hydras_config_path_is_relative_to_the_script(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "my_app.py").write_text(SCRIPT_WITH_CONFIG_PATH)
    (tmp_path / "app" / "other").mkdir()
    (tmp_path / "app" / "other" / "config.yaml").write_text("lr: 0.5\n")
    done = subprocess.run([sys.executable, str(tmp_path / "app" / "my_app.py"), "-cp", "other", "--cfg"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert (done.returncode, done.stdout) == (0, "lr: 0.5\n"), done.stderr


def test_a_scripts_config_dir_is_searched_after_its_config_path_as_in_hydra(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "my_app.py").write_text(SCRIPT_WITH_CONFIG_PATH)
    write(tmp_path / "app" / "conf", {"config.yaml": "defaults:\n  - db: mysql\n  - _self_\nlr: 0.1\n",
                                      "db/mysql.yaml": "driver: mysql\n"})
    write(tmp_path / "extra", {"db/sqlite.yaml": "driver: sqlite\n"})

    def run(*argv):
        return subprocess.run([sys.executable, str(tmp_path / "app" / "my_app.py"), *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, env=subprocess_env())

    done = run("-cd", "extra", "db=sqlite", "--cfg")
    assert (done.returncode, yaml.safe_load(done.stdout)) == (0, {"db": {"driver": "sqlite"}, "lr": 0.1}), done.stderr
    done = run("-cd", "nowhere", "--cfg")
    assert done.returncode == 2 and "the additional config directory" in done.stderr and "does not exist" in done.stderr
    done = run("-cd", "extra", "db=sqlite", "out_path=out", "+verbose=false")
    assert done.returncode == 0, done.stderr
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["config_search_path"] == [str((tmp_path / "extra").resolve())]
    (tmp_path / "out" / "results.jsonl").write_text("")
    done = run("--resume", "out", "db=sqlite")
    assert done.returncode == 0, done.stderr
    assert jsonl(tmp_path / "out" / "results.jsonl")[0]["db"] == {"driver": "sqlite"}


LIGHTNING_PATHS = {
    "config.yaml": """\
        defaults:
          - paths: default
          - _self_
        fit: stages:fit_writes_to_output_dir
        post: stages:post_reprs
        lr: 0.1
        """,
    # the lightning-hydra-template's configs/paths/default.yaml
    "paths/default.yaml": """\
        root_dir: ${oc.env:PROJECT_ROOT,.}
        data_dir: ${paths.root_dir}/data/
        log_dir: ${paths.root_dir}/logs/
        output_dir: ${hydra:runtime.output_dir}
        work_dir: ${hydra:runtime.cwd}
        """,
}


@pytest.mark.parametrize("sweep", [[], ["lr=0.1,0.2"]], ids=["one", "sweep"])
def test_hydra_runtime_output_dir_is_each_experiments_own_folder(cli, tmp_path, sweep):
    files = {"paths/default.yaml": LIGHTNING_PATHS["paths/default.yaml"]}
    write_project(tmp_path, LIGHTNING_PATHS["config.yaml"], files)
    code, out, err = cli("out_path=out", *sweep)
    assert code == 0, err
    results = jsonl(tmp_path / "out" / "results.jsonl")
    assert len(results) == max(1, len(sweep) * 2)
    for line in results:
        folder = tmp_path / "out" / str(line["experiment_id"])
        assert (folder / "checkpoint.txt").read_text() == str(line["lr"])
        assert line["paths"]["output_dir"] == str(folder.resolve())
        assert json.loads((folder / "config.json").read_text())["paths"]["output_dir"] == str(folder.resolve())
        assert line["paths"]["work_dir"] == str(tmp_path)
    hashes = [line["hash"] for line in jsonl(tmp_path / "out" / "experiments.jsonl")]
    code, listed, _ = cli("--list", *sweep)
    assert "${hydra:runtime.output_dir}" in listed
    assert cli("--resume", "out")[0] == 0
    assert hashes == [line["hash"] for line in jsonl(tmp_path / "out" / "experiments.jsonl")]


def test_a_multirun_of_sweeper_params_resumes_the_same_sweep(tmp_path, cli):
    write_project(tmp_path, "pre: null\nfit: stages:fit_cwd\npost: stages:post_cwd\nverbose: false\nx: 1\n"
                            "hydra:\n  sweep:\n    dir: multi\n  sweeper:\n    params:\n      x: 1,2\n", {})
    code, _, err = cli("-m")
    assert code == 0, err
    (tmp_path / "multi" / "results.jsonl").write_text("")
    code, _, err = cli("--resume", "multi")
    assert code == 0, err
    assert sorted(line["x"] for line in jsonl(tmp_path / "multi" / "results.jsonl")) == [1, 2]


@pytest.mark.parametrize("overrides, expected", [
    (["lr=0.1,0.2"], {0.1: "lr=0.1", 0.2: "lr=0.2"}),
    (["+same=${hydra:job.override_dirname}"], {0.1: "+same=${hydra:job.override_dirname}"}),
])
def test_a_run_gives_each_experiment_its_own_override_dirname(tmp_path, cli, overrides, expected):
    write_project(tmp_path, "pre: null\nfit: stages:fit_cwd\npost: stages:post_cwd\nverbose: false\nlr: 0.1\n"
                            "odn: ${hydra:job.override_dirname}\n", {})
    code, _, err = cli("out_path=o", *overrides)
    assert code == 0, err
    assert {line["lr"]: line["odn"] for line in jsonl(tmp_path / "o" / "results.jsonl")} == expected
    resolved = yaml.safe_load((tmp_path / "o" / "run.yaml").read_text())["resolved_config"]
    assert resolved["odn"] == (expected[0.1] if len(expected) == 1 else "${hydra:job.override_dirname}")


def test_the_launchers_backend_takes_the_command_lines_backend_settings(tmp_path, cli):
    write_project(tmp_path, "pre: null\nfit: stages:fit_cwd\npost: stages:post_cwd\nverbose: false\nlr: 0.1\n", {})
    code, out, err = cli("--list", "hydra/launcher=joblib", "backend.num_workers=2", "lr=1,2")
    assert code == 0 and out.splitlines()[-1].startswith("2 experiments"), err
    code, _, err = cli("out_path=o", "hydra/launcher=joblib", "backend.num_workers=2", "lr=1,2")
    assert code == 0, err
    settings = yaml.safe_load((tmp_path / "o" / "run.yaml").read_text())
    assert (settings["backend"], settings["settings"]["num_workers"]) == ("multiprocessing", 2)
    assert sorted(line["lr"] for line in jsonl(tmp_path / "o" / "results.jsonl")) == [1, 2]


@pytest.mark.parametrize("overrides", [[], ["-m"], ["model.lr=1,2"]])
def test_the_warning_line_names_only_what_the_project_set_and_is_ignored(tmp_path, overrides):
    """The template: the other kind of run's dir and Hydra's own sweep.subdir go unnamed; its logging is named."""
    multirun = overrides == ["-m"]
    composition, ignored = composed(tmp_path, [o for o in overrides if o != "-m"], files=LIGHTNING_TEMPLATE,
                                    config_name="train", multirun=multirun)
    assert ignored == ["Hydra settings without an equivalent here, ignored: hydra.job_logging.handlers.file.filename, "
                       "hydra/hydra_logging=colorlog, hydra/job_logging=colorlog"]
    kind = "multiruns" if overrides else "runs"
    assert composition.written("out_path").startswith(f"${{paths.log_dir}}/${{task_name}}/{kind}/")


def test_the_sweep_dir_is_resolved_once_without_the_sweeps_values_as_in_hydra(tmp_path):
    files = {**LIGHTNING_TEMPLATE, "train.yaml": LIGHTNING_TEMPLATE["train.yaml"] + "fit: stages:fit\n"}
    composition, _ = composed(tmp_path, ["task_name=a,b"], files=files, config_name="train")
    assert composition.written("out_path").startswith("./logs//train/multiruns/")
    assert [e["task_name"] for e in plan_sweep(composition).experiments] == ["a", "b"]
