"""What an experiment writes: the JSON text of its records and its config hash, the same as json.dumps gives, so
earlier runs resume; its folder, made absolute as os.path.abspath does.

The encoders are made once and reused (see serialization.json_encoder); these
tests pin that their text is json.dumps's, and that what travels between
processes (an Outcome) arrives whole.
"""
import hashlib
import json
import math
import os
import pickle
from pathlib import Path

import pytest

from experiment_runner.experiment import Experiment, Outcome, Stages, config_hash, run_experiment
from experiment_runner.serialization import dumps, mask_secrets, secret_values
from experiment_runner.record_lines import results_line

SAMPLES = [
    {},
    {"i": 3},
    {"name": "é ü 漢字 \"quoted\" \\ back\nslash\t\u2028", "b": True, "n": None, "f": 0.1, "big": 10**30},
    {"nested": {"list": [1, 2.5, [3, {"deep": "x"}]], "empty": {}, "e": []}, "z": -0.0, "a": 1e-300},
    ["top", "level", 1],
    "a text",
    12.5,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_dumps_writes_what_json_dumps_writes(value):
    assert dumps(value) == json.dumps(value, ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("value", [math.nan, {"x": math.inf}, [-math.inf]])
def test_dumps_refuses_nan_and_infinities_as_json_dumps_does(value):
    with pytest.raises(ValueError):
        dumps(value)


WITH_NAN = {"nan": math.nan, "inf": [math.inf, -math.inf], "b": {"y": 1, "a": 2}}


@pytest.mark.parametrize("value", [*SAMPLES[:4], WITH_NAN])
def test_the_config_hash_is_of_the_sorted_compact_json_text(value):
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    assert config_hash(value) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def test_an_outcome_arrives_whole_through_a_pickle():
    outcome = Outcome(7, "error", scores={"a": [1, 2]}, run_id=1, error_type="ValueError", message="m",
                      traceback="t", exit_code=3, host="h", duration=0.5, disk_full="full", record='{"a": 1}')
    assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_secrets_are_masked_and_found_at_any_depth_and_in_lists():
    keys = ("api_key", "db.password", "hosts.1", "backend.redis_password")
    config = {"api_key": "K", "db": {"password": "P", "user": "u"}, "hosts": ["a", "b"], "x": 1, 3: "three"}
    assert mask_secrets(config, keys) == {"api_key": "***", "db": {"password": "***", "user": "u"},
                                          "hosts": ["a", "***"], "x": 1, 3: "three"}
    assert secret_values(config, keys) == {"api_key": "K", "db.password": "P", "hosts.1": "b"}
    plain = {"x": 1, "other": {"user": "u"}}
    assert mask_secrets(plain, keys) is plain
    assert secret_values(plain, keys) == {}
    assert secret_values({"backend": {"redis_password": "R"}}, keys) == {"backend.redis_password": "R"}


def test_config_json_holds_the_record_text():
    experiment = Experiment(4, {"lr": 0.1, "name": "ü"}, "out", secret_keys=("name",))
    assert json.loads(experiment.record_text()) == {"lr": 0.1, "name": "***", "experiment_id": 4, "out_path": "out/4"}


@pytest.mark.parametrize("out_path", ["/a/b", "/a/b/", "//a", "/", "/a/../b", "/a/./b//c", "rel", ".", "./x/../y"])
def test_the_absolute_folder_is_the_folder_made_absolute(out_path):
    for experiment_id in (0, 12):
        experiment = Experiment(experiment_id, {}, out_path)
        assert experiment.absolute_folder() == os.path.abspath(experiment.folder)


@pytest.mark.parametrize("out_path", ["", ".", "./", "a", "a/", "./a//b/.", "a/../b", "/", "//", "///", "//a", "///a/b",
                                      "/a/./b//c/", ". /x", "a/.b/..c"])
def test_the_folder_is_named_as_pathlib_names_it(out_path):
    for experiment_id in (0, 12):
        assert Experiment(experiment_id, {}, out_path).folder == str(Path(out_path) / str(experiment_id))


def test_an_experiment_travels_as_its_fields_and_computes_the_rest_again_where_it_arrives():
    experiment = Experiment(4, {"x": 1, "key": "K"}, "/out", repetitions=2, timeout=3.0, secret_keys=("key",))
    text = experiment.record_text()
    arrived = pickle.loads(pickle.dumps(experiment))
    assert arrived == experiment
    assert not [name for name in vars(arrived) if name.startswith("_")]
    assert arrived.record_text() == text


def test_the_results_line_is_config_jsons_text_with_the_scores_added(tmp_path):
    """A pool worker sends config.json's text back with the outcome: the driver's results line reuses it."""
    experiment = Experiment(2, {"lr": 0.5, "key": "secret"}, str(tmp_path), secret_keys=("key",))
    outcome = run_experiment(experiment, Stages(fit=lambda cfg, _: None, post=lambda cfg, _: {"acc": 1.0}))
    written = (tmp_path / "2" / "config.json").read_text()
    line = json.loads(results_line(experiment, outcome.scores))
    assert outcome.ok and line == {**json.loads(written), "scores": outcome.scores} and line["key"] == "***"
    assert results_line(experiment, outcome.scores, written) == results_line(experiment, outcome.scores)


def test_a_pool_worker_sends_config_jsons_text_with_a_finished_outcome(tmp_path):
    from experiment_runner import run_experiments

    summary = run_experiments({"out_path": str(tmp_path / "run"), "fit": _fit, "post": _post, "verbose": False,
                               "backend": "multiprocessing", "num_workers": 1}, [{"x": 1}, {"x": 2}])
    lines = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert summary.finished == 2
    for line in lines:
        config = json.loads((tmp_path / "run" / str(line["experiment_id"]) / "config.json").read_text())
        assert line == {**config, "scores": {"x": config["x"], "fit_time": line["scores"]["fit_time"]}}


def _fit(cfg, _):
    return cfg["x"]


def _post(cfg, x):
    return {"x": x}
