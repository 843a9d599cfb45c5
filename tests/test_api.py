"""The Python API as users of the original package call it, and the errors it gives."""
import hashlib
import json
import os
import re
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import omegaconf
from omegaconf import DictConfig, OmegaConf

import stages
from conftest import read_lines
from experiment_runner import read_results, run_experiments
from experiment_runner.errors import (
    ConfigError,
    IgnoredSettingWarning,
    OutPathError,
    OutPathExistsError,
    ResumeMismatchError,
    RunInProgressError,
    StageImportError,
    UnknownBackendError,
    UsageError,
)


def test_compatibility_module_keeps_the_original_imports():
    from experiment_runner.experiment_runner import Variation, generate_configs, run_experiments as legacy_run

    assert legacy_run is run_experiments
    assert generate_configs({"a": Variation([1, 2])}) == [{"a": 1}, {"a": 2}]


def test_original_readme_example_runs_unchanged(tmp_path, monkeypatch):
    """The basecfg shape of the original README, with a script's own stages."""
    from experiment_runner.experiment_runner import Variation, generate_configs, run_experiments as legacy_run

    monkeypatch.chdir(tmp_path)

    def pre(cfg):
        return None

    def fit(cfg, returned_by_pre):
        return cfg["param_1"] * cfg["param_2"]

    def post(cfg, returned_by_fit):
        return {"accuracy": returned_by_fit}

    basecfg = {"out_path": "results/", "pre": pre, "post": post, "fit": fit, "backend": "single",
               "num_cpus": 8, "verbose": True}
    cfgs = generate_configs({"param_1": Variation([1, 2, 3, 4]), "param_2": Variation([1e-1, 1e-2, 1e-3])},
                            n_configs=3)
    legacy_run(basecfg, cfgs)
    lines = read_lines(tmp_path / "results" / "results.jsonl")
    assert len(lines) == 3
    for line in lines:
        assert line["scores"]["accuracy"] == pytest.approx(line["param_1"] * line["param_2"])
        assert (tmp_path / "results" / str(line["experiment_id"]) / "config.json").exists()


def test_settings_of_other_backends_are_ignored_with_one_warning_per_backend(basecfg):
    """A script of the original package keeps every backend's settings in one basecfg and switches with backend."""
    from experiment_runner.experiment_runner import run_experiments as legacy_run

    settings = {"backend": "single", "num_cpus": 2, "address": "auto", "redis_password": "hunter2",
                "num_workers": 4, "gpus": [0], "malocher_machines": ["node1"], "slurm_partition": "debug"}
    with pytest.warns(IgnoredSettingWarning) as warned:
        summary = legacy_run({**basecfg, **settings}, [{"x": 1}, {"x": 2}])
    assert [str(w.message) for w in warned] == [
        "address, redis_password are settings of backend=ray; backend=single ignores them",
        "num_workers, gpus are settings of backend=multiprocessing; backend=single ignores them",
        "malocher_machines is a setting of backend=malocher; backend=single ignores it",
        "slurm_partition is a setting of backend=slurm; backend=single ignores it",
    ]
    assert all(w.filename == __file__ for w in warned), "the warning points at the script's call"
    assert summary.finished == 2


def test_a_retry_runs_before_the_experiments_that_have_not_started(basecfg):
    """retries: a failed experiment runs again as soon as it failed, not after every other experiment."""
    summary = run_experiments({**basecfg, "retries": 1}, [{"x": 0, "action": "flaky"}, {"x": 1}, {"x": 2}])
    assert summary.finished == 3
    order = [line["experiment_id"] for line in read_lines(Path(basecfg["out_path"]) / "results.jsonl")]
    assert order == [0, 1, 2]


def test_read_results_flattens_like_json_normalize(basecfg):
    run_experiments({**basecfg, "repetitions": 2}, [{"x": 1, "model": {"depth": 3}}, {"x": 2, "model": {"depth": 4}}])
    df = read_results(basecfg["out_path"])
    assert len(df) == 2
    assert {"x", "model.depth", "experiment_id", "scores.mean_y", "scores.mean_fit_time"} <= set(df.columns)
    assert sorted(df["scores.mean_y"]) == [2.5, 4.5]
    failures = read_results(basecfg["out_path"], failures=True)
    assert len(failures) == 0


def test_read_results_of_a_run_without_failures_has_the_columns_of_failures(basecfg, tmp_path):
    from experiment_runner.report import FAILURE_COLUMNS

    def sweep(action):  # two options of a group sweep: the union of their keys, an empty dict without a column
        return [{"x": 1, "model": {"depth": 3, "opt": {}}, "action": action}, {"x": 2, "model": {"name": "m"},
                                                                              "action": action}]

    run_experiments({**basecfg, "out_path": str(tmp_path / "failed")}, sweep("raise"))
    failed = read_results(tmp_path / "failed", failures=True)
    run_experiments(basecfg, sweep("ok"))
    for empty in (read_results(basecfg["out_path"], failures=True),
                  read_results(Path(basecfg["out_path"]) / "failures.jsonl")):
        assert len(empty) == 0
        assert list(empty.columns) == list(failed.columns)
        assert list(empty.columns) == [*FAILURE_COLUMNS, "config.x", "config.model.depth", "config.action",
                                       "config.experiment_id", "config.out_path", "config.model.name"]


def test_read_results_of_failures(basecfg):
    run_experiments(basecfg, [{"x": 1, "action": "raise"}])
    failures = read_results(Path(basecfg["out_path"]) / "failures.jsonl")
    assert list(failures["status"]) == ["error"] and list(failures["config.x"]) == [1]


def numpy_post(cfg, returned_by_fit):
    return {"scalar": np.float32(0.5), "int": np.int64(3), "array": np.arange(3), "matrix": np.eye(2),
            "nan": float("nan"), "inf": np.inf, "flag": np.bool_(True)}


def test_numpy_scores_become_json_numbers_and_nan_becomes_null(basecfg):
    run_experiments({**basecfg, "post": numpy_post}, [{"x": 1}])
    [line] = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
    assert line["scores"] == {"scalar": 0.5, "int": 3, "array": [0, 1, 2], "matrix": [[1.0, 0.0], [0.0, 1.0]],
                              "nan": None, "inf": None, "flag": True, "fit_time": line["scores"]["fit_time"]}


def test_numpy_values_in_configs_are_stored_as_numbers(basecfg):
    run_experiments(basecfg, [{"x": np.int64(4), "grid": np.linspace(0, 1, 3)}])
    config = json.loads((Path(basecfg["out_path"]) / "0" / "config.json").read_text())
    assert config["x"] == 4 and config["grid"] == [0.0, 0.5, 1.0]


def unstorable_post(cfg, returned_by_fit):
    return {"model": object()}


def test_scores_that_cannot_be_stored_fail_the_experiment_with_the_key(basecfg):
    summary = run_experiments({**basecfg, "post": unstorable_post}, [{"x": 1}])
    assert summary.failed_ids == [0]
    [failure] = read_lines(Path(basecfg["out_path"]) / "failures.jsonl")
    assert "scores.model" in failure["message"]


def not_a_dict_post(cfg, returned_by_fit):
    return 0.9


def test_post_must_return_a_dict(basecfg):
    run_experiments({**basecfg, "post": not_a_dict_post}, [{"x": 1}])
    [failure] = read_lines(Path(basecfg["out_path"]) / "failures.jsonl")
    assert failure["error_type"] == "TypeError" and "post must return a dict" in failure["message"]


def test_stages_by_import_path(basecfg):
    run_experiments({**basecfg, "pre": "stages:pre", "fit": "stages:fit", "post": "stages.post"}, [{"x": 3}])
    [line] = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
    assert line["scores"]["y"] == 6


def test_summary_is_printed_and_a_repeated_traceback_shown_once(basecfg, capfd):
    run_experiments({**basecfg, "verbose": True},
                    [{"x": 1, "action": "raise"}, {"x": 1, "action": "raise"}, {"x": 2}])
    err = capfd.readouterr().err
    assert err.count("Traceback (most recent call last)") == 1
    assert err.count("experiment 0 error: ValueError: bad x=1") == 1
    assert err.count("experiment 1 error: ValueError: bad x=1") == 1
    assert "1 of 3 experiments finished, 2 failed" in err
    assert f"results: {Path(basecfg['out_path']) / 'results.jsonl'}" in err


def test_without_a_terminal_progress_is_plain_lines_at_intervals_not_a_bar(basecfg, capfd, monkeypatch):
    from experiment_runner.progress import Progress

    monkeypatch.setattr(Progress, "log_interval", 0)  # a line for every experiment, not every 5 s
    run_experiments({**basecfg, "verbose": True}, [{"x": 1}, {"x": 2, "action": "raise"}, {"x": 3}, {"x": 4}])
    err = capfd.readouterr().err
    assert "\r" not in err and "exp/s" not in err
    lines = [line for line in err.splitlines() if "/4 finished" in line]
    assert [line.split(", ETA ")[0] for line in lines] == [
        "1/4 finished", "1/4 finished, 1 failed", "2/4 finished, 1 failed", "3/4 finished, 1 failed"
    ]
    assert all(re.fullmatch(r"\d+s", line.split(", ETA ")[1]) for line in lines[:-1])


def test_the_wall_time_counts_from_the_start_of_the_run_not_from_the_first_experiment(basecfg):
    """Configs that take long to build, check and store (large ones) before anything runs are part of the run."""
    marks = {}

    def slow_configs():
        marks["run started"] = time.perf_counter()
        time.sleep(0.5)  # the work before the first experiment
        yield {"x": 1}

    def fit(cfg):
        marks["fit"] = time.perf_counter()

    summary = run_experiments({"out_path": basecfg["out_path"], "fit": fit, "verbose": False}, slow_configs())
    assert summary.wall_time >= marks["fit"] - marks["run started"] >= 0.5
    assert summary.lines()[0] == f"1 of 1 experiment finished, in {summary.wall_time:.1f} s"


def test_quiet_run_prints_nothing_when_all_finish(basecfg, capfd):
    run_experiments(basecfg, [{"x": 1}])
    assert capfd.readouterr().err == ""


def test_default_out_path_is_a_fresh_timestamped_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {"fit": stages.fit_only, "verbose": False}
    first = run_experiments(base, [{"x": 1}])
    second = run_experiments(base, [{"x": 1}])
    assert first.out_path != second.out_path
    assert Path(first.out_path).parent == Path("results")
    assert (tmp_path / first.out_path / "results.jsonl").exists()
    assert (tmp_path / second.out_path / "results.jsonl").exists()


def test_overwrite_replaces_a_previous_run(basecfg):
    run_experiments(basecfg, [{"x": 1}, {"x": 2}])
    run_experiments({**basecfg, "if_exists": "overwrite"}, [{"x": 5}])
    lines = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
    assert [line["x"] for line in lines] == [5]
    assert not (Path(basecfg["out_path"]) / "1").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(basecfg):
    Path(basecfg["out_path"]).mkdir()
    (Path(basecfg["out_path"]) / "thesis.tex").write_text("precious")
    with pytest.raises(OutPathExistsError, match="not a run of experiment-runner"):
        run_experiments({**basecfg, "if_exists": "overwrite"}, [{"x": 1}])
    assert (Path(basecfg["out_path"]) / "thesis.tex").read_text() == "precious"


def test_overwrite_removes_only_the_files_of_the_earlier_run(basecfg):
    root = Path(basecfg["out_path"])
    run_experiments(basecfg, [{"x": 1}, {"x": 2}, {"x": 3}])
    (root / "notes.txt").write_text("lr 0.1 diverged")
    (root / "data").mkdir()
    (root / "data" / "points.csv").write_text("a,b\n")
    (root / "\u00b2").mkdir()  # digits that are no number the run writes: kept, not read as an experiment id
    run_experiments({**basecfg, "if_exists": "overwrite"}, [{"x": 5}])
    assert [line["x"] for line in read_lines(root / "results.jsonl")] == [5]
    assert not (root / "1").exists() and not (root / "2").exists()
    assert (root / "\u00b2").is_dir()
    assert (root / "notes.txt").read_text() == "lr 0.1 diverged"
    assert (root / "data" / "points.csv").read_text() == "a,b\n"
    assert (root / "run.yaml").read_text().startswith("format: experiment-runner/1\n")


def test_overwrite_replaces_a_run_whose_run_yaml_has_no_format_line(basecfg):
    """A run written before run.yaml had its first line is still recognised, by its keys and experiments.jsonl."""
    root = Path(basecfg["out_path"])
    run_experiments(basecfg, [{"x": 1}, {"x": 2}])
    run_yaml = root / "run.yaml"
    run_yaml.write_text("".join(line for line in run_yaml.read_text().splitlines(True) if not line.startswith("format:")))
    run_experiments({**basecfg, "if_exists": "overwrite"}, [{"x": 5}])
    assert [line["x"] for line in read_lines(root / "results.jsonl")] == [5]
    assert not (root / "1").exists()


EXPERIMENTS_LINE = '{"experiment_id": 0, "hash": "0123456789abcdef", "config": {"x": 1}}\n'
NOT_A_RUN = [
    pytest.param({"run.yaml": "name: train\nsteps: [fetch, fit]\n", "src/main.py": "print(1)\n", "data.csv": "a\n"},
                 "its run.yaml has no 'format: experiment-runner/...' line", id="another-tools-run-yaml"),
    pytest.param({"run.yaml": "format: docker-compose/3\n", "experiments.jsonl": EXPERIMENTS_LINE},
                 "its run.yaml has no 'format: experiment-runner/...' line", id="another-format"),
    pytest.param({"run.yaml": ": not yaml [\n", "experiments.jsonl": EXPERIMENTS_LINE},
                 "its run.yaml has no 'format: experiment-runner/...' line", id="run-yaml-not-yaml"),
    pytest.param({"run.yaml": "format: experiment-runner/1\n", "data.csv": "a\n"}, "it holds no experiments.jsonl",
                 id="no-experiments-jsonl"),
    pytest.param({"run.yaml": "format: experiment-runner/1\n", "experiments.jsonl": '{"id": 0}\n'},
                 "its experiments.jsonl does not list experiments as a run writes them", id="foreign-experiments"),
    pytest.param({"run.yaml": "format: experiment-runner/1\n", "experiments.jsonl": EXPERIMENTS_LINE,
                  "1/model.pt": "weights"},
                 "holds '1', which is not an experiment folder of the run there", id="a-folder-the-run-would-use"),
]


@pytest.mark.parametrize("files, why", NOT_A_RUN)
def test_overwrite_refuses_a_folder_that_is_not_a_run_and_keeps_it(basecfg, files, why):
    root = Path(basecfg["out_path"])
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    with pytest.raises(OutPathExistsError, match="is not a run of experiment-runner|refusing to overwrite") as raised:
        run_experiments({**basecfg, "if_exists": "overwrite"}, [{"x": 1}, {"x": 2}])
    assert why in str(raised.value) and "\n" not in str(raised.value) and raised.value.exit_code == 2
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(files)
    assert all((root / name).read_text() == text for name, text in files.items())


def test_run_yaml_and_environment_record_the_run_without_secrets(basecfg):
    with pytest.warns(IgnoredSettingWarning, match="^redis_password is a setting of backend=ray; backend=single"):
        run_experiments({**basecfg, "redis_password": "hunter2", "repetitions": 2}, [{"x": 1}])
    root = Path(basecfg["out_path"])
    run_yaml = (root / "run.yaml").read_text()
    assert "hunter2" not in run_yaml and "redis_password: '***'" in run_yaml
    assert "fit: stages:fit" in run_yaml and "repetitions: 2" in run_yaml
    for path in root.rglob("*"):
        if path.is_file():
            assert "hunter2" not in path.read_text()
    environment = json.loads((root / "environment.json").read_text())
    assert {"python", "platform", "host", "packages", "git"} <= set(environment)
    assert "experiment-runner" in environment["packages"]


def test_environment_records_each_package_at_the_version_python_reports_for_it(basecfg):
    from importlib import metadata

    run_experiments(basecfg, [{"x": 1}])
    packages = json.loads((Path(basecfg["out_path"]) / "environment.json").read_text())["packages"]
    expected = {}
    for name in ["experiment-runner", "omegaconf", "PyYAML", "tqdm", "numpy", "pandas", "ray", "cloudpickle",
                 "scikit-learn", "torch"]:
        try:
            expected[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    assert packages == expected and "omegaconf" in packages


def test_every_installed_distribution_is_found_at_its_version():
    from importlib import metadata
    from experiment_runner.environment import _package_versions

    installed = {dist.metadata["Name"]: dist.version for dist in metadata.distributions()}
    assert _package_versions(sorted(installed)) == {name: metadata.version(name) for name in sorted(installed)}
    assert _package_versions(["no-such-distribution-here"]) == {}


def test_distributions_of_every_metadata_layout_are_found_as_python_finds_them(tmp_path, monkeypatch):
    from importlib import metadata
    from experiment_runner.environment import _package_versions

    headers = "Metadata-Version: 2.1\nName: {}\nVersion: {}\n\nVersion: not a header\n"
    (tmp_path / "Zope.Interface-5.4.dist-info").mkdir()
    (tmp_path / "Zope.Interface-5.4.dist-info" / "METADATA").write_text(headers.format("zope.interface", "5.4"))
    (tmp_path / "old_tool.egg-info").mkdir()  # a develop install: no version in the name
    (tmp_path / "old_tool.egg-info" / "PKG-INFO").write_text(headers.format("old-tool", "0.3.dev1"))
    (tmp_path / "distutils_made-1.0-py3.11.egg-info").write_text(
        headers.format("distutils-made", "1.0").replace("Version: 1.0", "version: 1.0"))
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["zope-interface", "Old_Tool", "distutils.made"]
    assert _package_versions(names) == {name: metadata.version(name) for name in names}
    assert _package_versions(names) == {"zope-interface": "5.4", "Old_Tool": "0.3.dev1", "distutils.made": "1.0"}


def lock_scores(cfg, returned_by_fit):
    return {"m": threading.Lock()}


def test_scores_that_are_no_json_fail_with_a_traceback_of_the_conversion_alone(basecfg):
    run_experiments({**basecfg, "post": lock_scores}, [{"x": 1}])
    failure, = read_lines(Path(basecfg["out_path"]) / "failures.jsonl")
    assert failure["message"].startswith("scores.m = <unlocked _thread.lock") and "cannot be stored as JSON" in \
        failure["message"]
    assert "During handling of the above exception" not in failure["traceback"]
    assert "_NotJSONData" not in failure["traceback"]


def password_fit(cfg, returned_by_pre):
    if cfg.get("action") == "raise":
        raise ValueError("failing on purpose")
    return cfg["db"]["password"]


def password_post(cfg, returned_by_fit):
    return {"password_reached_fit": returned_by_fit == "hunter2"}


def test_declared_secret_parameters_reach_the_stages_but_never_the_tree_and_resume_matches(basecfg, capfd):
    settings = {**basecfg, "fit": password_fit, "post": password_post, "repetitions": 2, "verbose": True,
                "secret_keys": ["db.password"]}
    cfgs = [{"x": 1, "db": {"password": "hunter2", "host": "h1"}},
            {"x": 2, "db": {"password": "hunter2", "host": "h2"}, "action": "raise"}]
    run_experiments(settings, cfgs)
    root = Path(basecfg["out_path"])
    [line] = read_lines(root / "results.jsonl")
    assert line["scores"]["password_reached_fit"] == [True, True]
    assert line["db"] == {"password": "***", "host": "h1"}
    assert read_lines(root / "failures.jsonl")[0]["config"]["db"] == {"password": "***", "host": "h2"}
    assert [line["config"]["db"]["password"] for line in read_lines(root / "experiments.jsonl")] == ["***", "***"]
    assert json.loads((root / "0" / "1" / "config.json").read_text())["db"]["password"] == "***"
    written = [path for path in root.rglob("*") if path.is_file()]
    assert written and not [path for path in written if b"hunter2" in path.read_bytes()]
    assert "hunter2" not in "".join(capfd.readouterr())
    summary = run_experiments({**settings, "if_exists": "resume"}, cfgs)
    assert (summary.skipped, summary.finished, summary.failed) == (1, 0, 1), "the same secrets resume the run"
    changed = [{**cfg, "db": {**cfg["db"], "password": "rotated"}} for cfg in cfgs]
    with pytest.raises(ResumeMismatchError) as raised:
        run_experiments({**settings, "if_exists": "resume"}, changed)
    assert str(raised.value) == (
        f"cannot resume '{root}': this sweep's experiments and the recorded ones differ only in their secret values "
        "(db.password): resume with the same secrets as the recorded run, or start a new out_path")
    assert raised.value.exit_code == 2


def test_a_run_recorded_without_secret_verifiers_resumes_as_before(basecfg):
    settings = {**basecfg, "secret_keys": ["db.password"]}
    run_experiments(settings, [{"x": x, "db": {"password": "old"}} for x in (1, 2)])
    experiments = Path(basecfg["out_path"]) / "experiments.jsonl"
    lines = read_lines(experiments)
    assert all(line["secret_verifier"].startswith("scrypt$") and "old" not in line["secret_verifier"] for line in lines)
    experiments.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "secret_verifier"}) + "\n"
                                   for line in lines))
    rotated = [{"x": x, "db": {"password": "new"}} for x in (1, 2)]
    assert run_experiments({**settings, "if_exists": "resume"}, rotated).skipped == 2


def test_resume_tells_experiments_apart_by_their_secret_values(basecfg):
    keys = {"A": "KEY-A-s3cret", "B": "KEY-B-s3cret"}
    settings = {**basecfg, "pre": None, "fit": stages.fit_digest, "post": stages.post_value,
                "secret_keys": ["api.key"]}
    cfgs = [{"n": n, "api": {"key": keys[name]}} for name in ("A", "B") for n in (1, 2, 3)]
    run_experiments(settings, cfgs)
    root = Path(basecfg["out_path"])
    results = root / "results.jsonl"
    results.write_text(results.read_text().splitlines()[0] + "\n")  # as if stopped after (n=1, A)
    summary = run_experiments({**settings, "if_exists": "resume"}, cfgs[3:] + cfgs[:3])
    assert (summary.skipped, summary.finished) == (1, 5)
    digest = {cfg["api"]["key"]: hashlib.sha256(cfg["api"]["key"].encode()).hexdigest() for cfg in cfgs}
    lines = sorted(read_lines(results), key=lambda line: line["experiment_id"])
    assert [(line["n"], line["scores"]["value"]) for line in lines] == [
        (cfg["n"], digest[cfg["api"]["key"]]) for cfg in cfgs], "each experiment ran once, with its own secret"
    assert not [p for p in root.rglob("*") if p.is_file() and b"s3cret" in p.read_bytes()]
    rotated = [{**cfg, "api": {"key": "KEY-C-s3cret"}} for cfg in cfgs[:3]] + cfgs[3:]
    with pytest.raises(ResumeMismatchError, match=r"differ only in their secret values \(api.key\)"):
        run_experiments({**settings, "if_exists": "resume"}, rotated)


def bearer_fit(cfg, returned_by_pre):
    return [cfg["header"], cfg["auth"]["relative"], cfg["auth"]["selected"]]


def bearer_post(cfg, returned_by_fit):
    return {"reached_in_clear": returned_by_fit == ["Bearer ENVSECRET", "ENVSECRET", "ENVSECRET"]}


def test_a_key_of_an_omegaconf_cfg_that_interpolates_a_secret_is_secret_too(basecfg, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "ENVSECRET")
    cfgs = [OmegaConf.create({"api_key": "${oc.env:MY_API_KEY}", "header": "Bearer ${api_key}", "x": x,
                              "auth": {"relative": "${..api_key}", "selected": "${oc.select:api_key,none}",
                                       "name": "user_${x}"}})
            for x in (1, 2)]
    settings = {**basecfg, "fit": bearer_fit, "post": bearer_post, "secret_keys": ["api_key"]}
    run_experiments(settings, cfgs)
    root = Path(basecfg["out_path"])
    lines = read_lines(root / "results.jsonl")
    assert [line["scores"]["reached_in_clear"] for line in lines] == [True, True]
    assert [(line["header"], line["auth"]) for line in lines] == [
        ("***", {"relative": "***", "selected": "***", "name": f"user_{x}"}) for x in (1, 2)]
    assert not [path for path in root.rglob("*") if path.is_file() and b"ENVSECRET" in path.read_bytes()]


def test_parameters_named_like_secrets_are_data_stored_as_given(basecfg):
    cfgs = [{"max_tokens": n, "tokenizer": "bpe", "secretary_n": n + 1, "password_length": 12} for n in (256, 512)]
    run_experiments(basecfg, cfgs)
    root = Path(basecfg["out_path"])
    for line in read_lines(root / "results.jsonl"):
        assert {k: line[k] for k in cfgs[0]} == cfgs[line["experiment_id"]]
    assert [line["config"] for line in read_lines(root / "experiments.jsonl")] == cfgs
    assert json.loads((root / "1" / "config.json").read_text())["max_tokens"] == 512


class NotJSON:
    pass


def holding_itself(key="me"):
    """A dict that contains itself, as only Python code can build one."""
    cfg = {"x": 1}
    cfg[key] = cfg
    return cfg


def list_holding_itself():
    values = [1]
    values.append(values)
    return {"x": 1, "values": values}


BAD_INPUT = [
    pytest.param({"backend": "rya"}, [{"x": 1}], UnknownBackendError,
                 r"unknown backend 'rya'.*expected one of .*single", id="unknown-backend"),
    pytest.param({"fit": None}, [{"x": 1}], ConfigError, "no 'fit' given", id="missing-fit"),
    pytest.param({"fit": 42}, [{"x": 1}], ConfigError, "fit must be a function, got 42", id="fit-not-callable"),
    pytest.param({"fit": "stages:fitt"}, [{"x": 1}], StageImportError,
                 "'stages' has no attribute 'fitt'; did you mean fit", id="stage-attribute-typo"),
    pytest.param({"fit": "no_such_module:fit"}, [{"x": 1}], StageImportError,
                 "cannot import fit 'no_such_module:fit'", id="stage-module-missing"),
    pytest.param({}, [{"x": NotJSON()}], ConfigError, r"cfgs\[0\].x = .*NotJSON.*cannot be stored as JSON",
                 id="config-not-json"),
    pytest.param({}, [{"x": 1}, {"deep": {"f": print}}], ConfigError, r"cfgs\[1\].deep.f", id="nested-not-json"),
    pytest.param({}, [{"x": 1, "run_id": 3}], ConfigError, "sets run_id", id="reserved-key"),
    pytest.param({}, ["x=1"], ConfigError, r"cfgs\[0\] must be a dict", id="config-not-dict"),
    pytest.param({"repetitions": 0}, [{"x": 1}], ConfigError, "repetitions must be a whole number >= 1",
                 id="zero-repetitions"),
    pytest.param({}, [{"x": 1, "repetitions": "3"}], ConfigError, r"cfgs\[0\].repetitions", id="bad-cfg-repetitions"),
    pytest.param({"timeout": -1}, [{"x": 1}], ConfigError, "timeout must be a number >= 0", id="negative-timeout"),
    pytest.param({"repetitons": 3}, [{"x": 1}], ConfigError, "unknown key 'repetitons'.*did you mean repetitions",
                 id="basecfg-typo"),
    pytest.param({"if_exists": "append"}, [{"x": 1}], ConfigError, "if_exists='append' is not one of",
                 id="bad-if-exists"),
    pytest.param({"max_memory": "lots"}, [{"x": 1}], ConfigError, "max_memory must be bytes", id="bad-memory"),
    pytest.param({"verbose": "no"}, [{"x": 1}], ConfigError, "verbose must be true or false, got 'no'",
                 id="verbose-not-bool"),
    pytest.param({}, [{"x": 1}, holding_itself()], ConfigError,
                 r"^cfgs\[1\].me refers back to cfgs\[1\], so the configuration contains itself", id="config-loop"),
    pytest.param({}, [list_holding_itself()], ConfigError,
                 r"^cfgs\[0\].values\[1\] refers back to cfgs\[0\].values,", id="config-list-loop"),
    pytest.param({"ray_runtime_env": holding_itself()}, [{"x": 1}], ConfigError,
                 r"^basecfg.ray_runtime_env.me refers back to basecfg.ray_runtime_env,", id="setting-loop"),
    pytest.param({}, [OmegaConf.create({"a": "${b}", "b": "${a}"})], ConfigError,
                 r"^cannot resolve cfgs\[0\]: 'a' refers to itself: its interpolation leads back to it",
                 id="omegaconf-interpolation-cycle"),
    pytest.param({}, {"x": 1}, ConfigError,
                 r"^cfgs must be a list of configurations \(dicts\), got dict: to run one configuration, pass \[cfg\]",
                 id="cfgs-one-dict"),
    pytest.param({}, None, ConfigError, r"^cfgs must be a list of configurations \(dicts\), got NoneType",
                 id="cfgs-none"),
    pytest.param({"secret_keys": "api_key"}, [{"api_key": "k"}], ConfigError,
                 r"secret_keys must be a list of parameter names .*, got 'api_key'", id="secret-keys-not-a-list"),
    pytest.param({"secret_keys": ["db..password"]}, [{"x": 1}], ConfigError, "secret_keys must be a list",
                 id="secret-key-malformed"),
    pytest.param({"secret_keys": ["api_kye"]}, [{"api_key": "k"}], ConfigError,
                 "unknown key 'api_kye' in secret_keys: no experiment has this parameter; did you mean api_key",
                 id="secret-key-misspelt"),
]


@pytest.mark.parametrize("settings, cfgs, error, message", BAD_INPUT)
def test_bad_input_stops_before_anything_runs(basecfg, settings, cfgs, error, message):
    with pytest.raises(error, match=message) as raised:
        run_experiments({**basecfg, **settings}, cfgs)
    assert isinstance(raised.value, UsageError) and raised.value.exit_code == 2
    assert "\n" not in str(raised.value)
    assert not os.path.exists(basecfg["out_path"])


def test_a_loop_in_a_config_is_one_short_error_not_a_recursion_traceback(basecfg):
    with pytest.raises(ConfigError) as raised:
        run_experiments(basecfg, [holding_itself()])
    shown = traceback.format_exception(raised.type, raised.value, raised.tb)
    assert len(shown) < 30 and "RecursionError" not in "".join(shown)


@pytest.mark.parametrize("basecfg_given", [[1], None, "fit"], ids=["list", "none", "text"])
def test_a_basecfg_that_is_not_a_dict_is_an_error_saying_what_it_must_be(basecfg_given):
    with pytest.raises(ConfigError, match=r"^basecfg must be a dict of settings like \{'fit': fit, 'out_path': "
                                          r"\.\.\.\}, got \w+: call run_experiments\(basecfg, cfgs\), settings first$"):
        run_experiments(basecfg_given, [{"x": 1}])


def test_generate_configs_names_a_loop_in_the_space():
    from experiment_runner import Variation, generate_configs

    with pytest.raises(ConfigError, match=r"^cfg.me refers back to cfg, so the configuration contains itself"):
        generate_configs(holding_itself())
    choice = {}
    choice["again"] = Variation([choice, 1])
    with pytest.raises(ConfigError, match=r"^cfg.lr.again refers back to cfg.lr,"):
        generate_configs({"lr": choice})


def test_an_out_path_that_is_a_file_is_a_usage_error(basecfg, tmp_path):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    with pytest.raises(OutPathError, match="cannot create out_path") as raised:
        run_experiments({**basecfg, "out_path": str(blocker / "run")}, [{"x": 1}])
    assert raised.value.exit_code == 2
    with pytest.raises(OutPathError, match="is a file, not a folder"):
        run_experiments({**basecfg, "out_path": str(blocker)}, [{"x": 1}])
    assert blocker.read_text() == "not a folder"


def test_a_second_run_cannot_write_into_a_run_that_is_still_going(basecfg, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("block")
    cfgs = [{"action": "sleep_while_flag", "flag": str(flag)}, {"x": 2}]
    first = threading.Thread(target=run_experiments, args=(basecfg, cfgs))
    first.start()
    try:
        pre = Path(basecfg["out_path"]) / "0" / "pre.txt"
        deadline = time.monotonic() + 30
        while not pre.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for if_exists in ("resume", "overwrite"):
            with pytest.raises(RunInProgressError, match="in use by a run that is still going"):
                run_experiments({**basecfg, "if_exists": if_exists}, cfgs)
    finally:
        flag.unlink()
        first.join(30)
    assert [line["experiment_id"] for line in read_lines(Path(basecfg["out_path"]) / "results.jsonl")] == [0, 1]
    summary = run_experiments({**basecfg, "if_exists": "resume"}, cfgs)
    assert summary.skipped == 2, "the lock is released when a run ends"


def test_written_files_follow_the_umask(basecfg):
    previous = os.umask(0o022)
    try:
        run_experiments(basecfg, [{"x": 1}])
    finally:
        os.umask(previous)
    root = Path(basecfg["out_path"])
    for path in [root / "run.yaml", root / "experiments.jsonl", root / "environment.json", root / "0" / "config.json"]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def one_argument_fit(cfg):
    return cfg["x"] + 1


def fit_time_post(cfg, returned_by_fit):
    return {"fit_time": 1.0}


def test_original_style_fit_with_one_parameter_and_settings_as_keywords(basecfg):
    run_experiments({"out_path": basecfg["out_path"], "fit": one_argument_fit, "post": stages.post_value},
                    [{"x": 1}], verbose=False, repetitions=2)
    [line] = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
    assert line["scores"]["value"] == [2, 2]


def hydra_task(cfg: DictConfig):
    return cfg.db.driver


def post_of_hydra_task(cfg: "omegaconf.DictConfig", driver):
    return {"driver": driver, "attribute_access": cfg.db.port, "a_dictconfig": isinstance(cfg, DictConfig)}


def post_with_a_plain_cfg(cfg: dict, driver):
    return {"a_dict": type(cfg) is dict}


@pytest.mark.parametrize("post, expected", [
    (post_of_hydra_task, {"driver": "mysql", "attribute_access": 3306, "a_dictconfig": True}),
    (post_with_a_plain_cfg, {"a_dict": True}),
], ids=["annotated-dictconfig", "plain"])
def test_a_stage_whose_cfg_is_annotated_dictconfig_gets_one_like_a_hydra_task(basecfg, post, expected):
    run_experiments({**basecfg, "pre": None, "fit": hydra_task, "post": post}, [{"db": {"driver": "mysql", "port": 3306}}])
    [line] = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
    assert {k: v for k, v in line["scores"].items() if k != "fit_time"} == expected


def post_checks_its_dictconfig(cfg: DictConfig, driver):
    try:
        cfg.db.nmae = 5  # a typo
        struct = False
    except omegaconf.errors.ConfigAttributeError:
        struct = True
    return {"struct": struct, "msg": cfg.msg, "path": cfg.path}


def test_a_stages_dictconfig_is_in_struct_mode_and_keeps_text_that_looks_like_an_interpolation(basecfg):
    config = {"db": {"driver": "mysql"}, "msg": "${lr} is literal", "path": "c:\\x\\${y}"}
    run_experiments({**basecfg, "pre": None, "fit": hydra_task, "post": post_checks_its_dictconfig}, [config])
    [line] = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
    assert {k: v for k, v in line["scores"].items() if k != "fit_time"} == {
        "struct": True, "msg": "${lr} is literal", "path": "c:\\x\\${y}"}


def test_post_may_not_return_the_reserved_fit_time(basecfg):
    run_experiments({**basecfg, "post": fit_time_post}, [{"x": 1}])
    [failure] = read_lines(Path(basecfg["out_path"]) / "failures.jsonl")
    assert "post returned 'fit_time'" in failure["message"]


def test_existing_out_path_is_refused_and_kept(basecfg):
    run_experiments(basecfg, [{"x": 1}])
    before = (Path(basecfg["out_path"]) / "results.jsonl").read_text()
    with pytest.raises(OutPathExistsError, match="already holds files.*if_exists=resume"):
        run_experiments(basecfg, [{"x": 2}])
    assert (Path(basecfg["out_path"]) / "results.jsonl").read_text() == before


@pytest.mark.parametrize("text, expected", [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1.5G", 1_500_000_000),
                                            (1024, 1024), ("2 kb", 2000), (None, None)])
def test_memory_sizes(text, expected):
    from experiment_runner.settings import parse_bytes

    assert parse_bytes(text) == expected


def test_stages_sent_by_value_keep_the_file_they_come_from(tmp_path, monkeypatch):
    """cloudpickle 3.1 names the code of functions sent by value '<dynamic-code>'; tracebacks need the file."""
    import cloudpickle

    from experiment_runner.experiment import Stages

    source = tmp_path / "my_stages.py"
    source.write_text("def helper(x):\n    raise ValueError(x)\n\n\ndef fit(cfg):\n    return helper(cfg)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_stages

    cloudpickle.register_pickle_by_value(my_stages)
    try:
        loaded = cloudpickle.loads(cloudpickle.dumps(Stages(my_stages.fit)))
    finally:
        cloudpickle.unregister_pickle_by_value(my_stages)
    assert loaded.fit is not my_stages.fit
    with pytest.raises(ValueError) as raised:
        loaded.fit("boom")
    files = [frame.filename for frame in traceback.extract_tb(raised.tb)][-2:]
    assert files == [str(source), str(source)]


STAGE_SHAPES = """\
import functools


class Model:
    def train(self, cfg):
        raise ValueError(cfg)

    @staticmethod
    def check(cfg):
        raise ValueError(cfg)

    @property
    def broken(self):
        raise ValueError("property")


def fit(cfg, extra):
    return Model().train(cfg)


class Fit:
    def __call__(self, cfg):
        return Model.check(cfg)


def via_property(cfg):
    return Model().broken


by_partial = functools.partial(fit, extra=1)
by_method = Model().train
by_object = Fit()
"""


@pytest.mark.parametrize("stage", ["by_partial", "by_method", "by_object", "via_property"])
def test_stages_of_every_shape_sent_by_value_keep_the_file_they_come_from(tmp_path, monkeypatch, stage):
    """A partial, a bound method, a callable object, and what they reach (methods, static methods, properties)."""
    import cloudpickle

    from experiment_runner.experiment import Stages

    source = tmp_path / "shaped_stages.py"
    source.write_text(STAGE_SHAPES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import shaped_stages

    cloudpickle.register_pickle_by_value(shaped_stages)
    try:
        if cloudpickle.loads(cloudpickle.dumps(shaped_stages.fit)).__code__.co_filename != "<dynamic-code>":
            pytest.skip(f"cloudpickle {cloudpickle.__version__} keeps the file names of code it sends by value")
        loaded = cloudpickle.loads(cloudpickle.dumps(Stages(getattr(shaped_stages, stage))))
    finally:
        cloudpickle.unregister_pickle_by_value(shaped_stages)
        sys.modules.pop("shaped_stages", None)
    with pytest.raises(ValueError) as raised:
        loaded.fit("boom")
    frames = traceback.extract_tb(raised.tb)[1:]  # the test's own frame first
    assert frames and all(frame.filename == str(source) for frame in frames)
    assert all(frame.line for frame in frames)  # its source lines are shown


def test_the_progress_bar_counts_the_experiments_a_session_says_are_running(monkeypatch, tmp_path):
    from experiment_runner import progress as progress_module
    from experiment_runner.channel import STARTED, Message
    from experiment_runner.experiment import OK, Experiment, Outcome

    monkeypatch.setattr(progress_module, "_is_terminal", lambda stream: True)
    experiments = [Experiment(i, {"x": i}, str(tmp_path)) for i in range(3)]
    with progress_module.Progress(total=3, initial=0, verbose=True) as bar:
        bar.note(Message(0, STARTED))
        bar.note(Message(1, STARTED))
        assert "running=2" in bar._bar.postfix
        bar.update(Outcome(0, OK, scores={}), experiments[0], final=True)
        assert "running=1" in bar._bar.postfix
        bar.update(Outcome(1, OK, scores={}), experiments[1], final=True)
        assert "running" not in (bar._bar.postfix or "")
