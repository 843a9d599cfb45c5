"""The plan step: what the Python API, the command line's run, --list and --resume agree on before anything runs."""
import json
import os
from pathlib import Path

import pytest

import stages
from experiment_runner import run_experiments
from experiment_runner.errors import (
    ConfigError, IgnoredSettingWarning, StageImportError, UnknownBackendError, UsageError,
)
from experiment_runner.plan import plan_run


def children(pid):
    """The pids of the live children of process ``pid``."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return set(f.read().split())


@pytest.mark.parametrize("settings", [{}, {"out_path": None}, {"if_exists": "overwrite"},
                                      {"backend": "multiprocessing", "num_workers": 2}])
def test_planning_a_run_writes_nothing_and_starts_nothing(basecfg, tmp_path, settings):
    before = children(os.getpid())
    plan = plan_run({**basecfg, **settings}, [{"x": 1}, {"x": 2}])
    assert [(e.experiment_id, e.config) for e in plan.experiments] == [(0, {"x": 1}), (1, {"x": 2})]
    assert plan.record["experiments"] == 2 and plan.record["out_path"] == plan.settings.out_path
    assert list(tmp_path.iterdir()) == []
    assert not os.path.exists(plan.settings.out_path)
    assert children(os.getpid()) == before


def test_a_plan_keeps_secrets_out_of_the_run_record_and_gives_them_to_the_stages(basecfg):
    with pytest.warns(IgnoredSettingWarning, match="^redis_password is a setting of backend=ray") as warned:
        plan = plan_run({**basecfg, "secret_keys": ["token"], "redis_password": "swordfish"}, [{"token": "hunter2"}],
                        run_record={"note": "kept"})
    assert warned[0].filename == __file__, "the warning points at the caller of plan_run"
    assert {"token", "redis_password"} <= plan.secret_keys
    assert plan.record["settings"]["redis_password"] == "***" and plan.record["note"] == "kept"
    assert "swordfish" not in json.dumps(plan.record) and "hunter2" not in json.dumps(plan.record)
    assert plan.experiments[0].config == {"token": "hunter2"}
    assert plan.experiments[0].stored_config == {"token": "***"}


@pytest.mark.parametrize("settings, cfgs, error", [
    ({"repetitons": 2}, [{"x": 1}], ConfigError),
    ({"repetitions": 0}, [{"x": 1}], ConfigError),
    ({"backend": "nowhere"}, [{"x": 1}], UnknownBackendError),
    ({"fit": "stages:no_such_stage"}, [{"x": 1}], StageImportError),
    ({"secret_keys": ["tokn"]}, [{"token": 1}], ConfigError),
    ({}, [{"x": 1, "run_id": 3}], ConfigError),
    ({}, {"x": 1}, ConfigError),
    ({"backend": "multiprocessing", "num_workers": -1}, [{"x": 1}], ConfigError),
], ids=["typo", "repetitions", "backend", "stage", "secret-key", "reserved-key", "one-cfg", "backend-option"])
def test_bad_input_raises_the_same_error_planned_or_run_and_leaves_no_trace(basecfg, tmp_path, settings, cfgs, error):
    with pytest.raises(error) as planned:
        plan_run({**basecfg, **settings}, cfgs)
    with pytest.raises(error) as ran:
        run_experiments({**basecfg, **settings}, cfgs)
    assert type(planned.value) is type(ran.value) and str(planned.value) == str(ran.value)
    assert list(tmp_path.iterdir()) == []


def test_plan_run_takes_settings_as_keyword_arguments_like_run_experiments(basecfg):
    plan = plan_run({"fit": stages.fit}, [{"x": 1}], out_path=basecfg["out_path"], repetitions=3)
    assert plan.settings.repetitions == 3 and plan.experiments[0].repetitions == 3


def test_a_new_folder_claimed_for_a_run_whose_backend_cannot_start_is_removed_again(basecfg, tmp_path, monkeypatch):
    """if_exists=new claims its folder before the backend starts (so the header names it); nothing may stay."""
    monkeypatch.chdir(tmp_path)
    nowhere = {"backend": "malocher", "malocher_machines": ["127.0.0.1"], "malocher_port": 1}
    with pytest.raises(UsageError, match="cannot run on any machine"):
        run_experiments({**basecfg, **nowhere, "out_path": str(tmp_path / "runs" / "a"), "if_exists": "new"},
                        [{"x": 1}])
    assert list((tmp_path / "runs").iterdir()) == []
    summary = run_experiments({**basecfg, "out_path": str(tmp_path / "runs" / "a"), "if_exists": "new"}, [{"x": 1}])
    assert summary.out_path == str(tmp_path / "runs" / "a") and summary.finished == 1


CONVERSIONS = [
    pytest.param({"a": (1, 2), "b": {"c": [True, None, "x", 1.5]}}, {"a": [1, 2], "b": {"c": [True, None, "x", 1.5]}},
                 {"a": [1, 2], "b": {"c": [True, None, "x", 1.5]}}, id="json-data-tuples-as-lists"),
    pytest.param({"lr": float("inf")}, {"lr": float("inf")}, {"lr": None}, id="infinity"),
    pytest.param({"grid": {0: 1, 1: 10}}, {"grid": {0: 1, 1: 10}}, {"grid": {"0": 1, "1": 10}}, id="int-keys"),
    pytest.param({"deep": [{"x": (float("-inf"),)}]}, {"deep": [{"x": [float("-inf")]}]}, {"deep": [{"x": [None]}]},
                 id="nested-infinity"),
]


@pytest.mark.parametrize("cfg, given, stored", CONVERSIONS)
def test_the_stages_get_the_config_as_given_and_the_files_its_json_form(basecfg, cfg, given, stored):
    """JSON data is copied as it is; NaN, infinities and keys that are no text reach the stages unchanged."""
    experiment = plan_run(basecfg, [cfg]).experiments[0]
    assert experiment.config == given and experiment.stored_config == stored
    assert experiment.config is not cfg
    assert all(experiment.config[key] is not value for key, value in cfg.items() if isinstance(value, dict)), "copied"


def test_a_config_holding_nan_reaches_the_stages_as_nan_and_is_stored_as_null(basecfg):
    experiment = plan_run(basecfg, [{"x": {"y": float("nan")}}]).experiments[0]
    assert experiment.config["x"]["y"] != experiment.config["x"]["y"]  # NaN
    assert experiment.stored_config == {"x": {"y": None}} and experiment.holds_non_json


@pytest.mark.parametrize("value", [object(), b"bytes", {1.5}])
def test_a_config_value_json_cannot_hold_is_an_error_naming_its_key(basecfg, value):
    with pytest.raises(ConfigError, match=r"cfgs\[0\]\.a\.b = .* cannot be stored as JSON"):
        plan_run(basecfg, [{"a": {"b": value}}])


def test_a_config_holding_nan_and_int_keys_runs_with_repetitions_and_each_config_json_is_its_json_form(basecfg):
    seen = []
    summary = run_experiments({**basecfg, "pre": None, "fit": lambda cfg: seen.append(cfg["p"]), "post": None,
                               "repetitions": 2}, [{"p": {"lr": float("nan"), 0: 1}}])
    assert summary.finished == 1 and summary.failed == 0
    assert all(p["lr"] != p["lr"] and p[0] == 1 for p in seen) and len(seen) == 2  # NaN and the int key, as given
    for run_id in (0, 1):
        stored = json.loads((Path(basecfg["out_path"]) / "0" / str(run_id) / "config.json").read_text())
        assert stored["p"] == {"lr": None, "0": 1} and stored["run_id"] == run_id
