"""Stopping early: should_prune() and Pruned, how a pruned experiment is recorded, summarised, reported and resumed.

That the driver's request reaches a running experiment on every backend is a
contract case (experiment_runner.testing); here what does not depend on the
backend, on backend single, and the driver's side of ray and slurm (following
metrics files, the marker) without a cluster.
"""
import json

import pytest

from experiment_runner import Pruned, run_experiments, should_prune
from experiment_runner.channel import running
from experiment_runner.experiment import Experiment
from experiment_runner.launchers.metrics_follower import MetricsFollower
from experiment_runner.metrics import METRICS, PRUNE_MARKER, PRUNED, ask_to_prune, stopped_early
from experiment_runner.metrics import watching_prune_marker
from experiment_runner.report_records import RunRecords
from experiment_runner.testing.processes import wait_until
from conftest import read_lines


def fit(cfg, _):
    if cfg.get("prune"):
        raise Pruned(f"stopped at x={cfg['x']}")
    return cfg["x"]


def post(cfg, x):
    return {"y": x}


def run(out_path, cfgs, **settings):
    basecfg = {"out_path": str(out_path), "fit": fit, "post": post, "verbose": False, **settings}
    return run_experiments(basecfg, cfgs)


@pytest.fixture(autouse=True)
def nothing_asked():
    yield
    ask_to_prune(None)


def test_should_prune_answers_for_the_running_experiment_only():
    assert should_prune() is False, "outside any experiment"
    ask_to_prune(3)
    assert should_prune() is False, "asked, but no experiment runs"
    with running(4):
        assert should_prune() is False, "another experiment was asked"
        ask_to_prune(4)
        assert should_prune() is True
    assert should_prune() is False


def test_pruned_and_optunas_trial_pruned_stop_early_other_errors_do_not():
    optuna = pytest.importorskip("optuna")

    class MyPruned(Pruned):
        pass

    assert stopped_early(Pruned()) and stopped_early(MyPruned("x"))
    assert stopped_early(optuna.TrialPruned("pruned at step 3"))
    assert not stopped_early(ValueError("bad")) and not stopped_early(KeyboardInterrupt())


def test_the_marker_is_seen_and_a_stale_one_is_removed_on_entry(tmp_path):
    marker = tmp_path / PRUNE_MARKER
    marker.write_text("")
    with running(0), watching_prune_marker(str(tmp_path)):
        assert not marker.exists(), "a marker an earlier attempt left is no request to this one"
        assert should_prune() is False
        marker.write_text("")
        wait_until(should_prune, "should_prune() sees the marker", timeout=5)
        assert should_prune() is True
    assert should_prune() is False, "outside the watch"


def test_a_pruned_experiment_is_counted_apart_never_retried_and_not_rerun_by_resume(tmp_path, capsys):
    cfgs = [{"x": 1}, {"x": 2, "prune": True}, {"x": 3}]
    summary = run(tmp_path / "run", cfgs, retries=3, verbose=True)
    assert (summary.finished, summary.pruned, summary.failed) == (2, 1, 0)
    err = capsys.readouterr().err
    assert "2 of 3 experiments finished, 1 pruned, in " in err
    assert "Traceback" not in err and "failed" not in err, "a pruned experiment is no failure to show"
    failures = read_lines(tmp_path / "run" / "failures.jsonl")
    assert [(line["experiment_id"], line["status"], line["attempt"], line["message"]) for line in failures] == [
        (1, PRUNED, 0, "stopped at x=2")]
    assert (tmp_path / "run" / "1" / "stderr.log").read_text() == "pruned: stopped early (Pruned: stopped at x=2)\n"
    records = RunRecords.load(tmp_path / "run")
    assert (records.pruned_ids, records.failed_ids, records.missing) == ({1}, set(), 0)
    assert records.status_line().endswith("2 of 3 experiments finished, 1 pruned")

    resumed = run(tmp_path / "run", cfgs, if_exists="resume")
    assert (resumed.skipped, resumed.finished, resumed.pruned, resumed.pruned_before) == (3, 0, 0, 1), "none to run"
    assert resumed.lines()[0].startswith("2 of 3 experiments finished (2 in earlier runs), 1 pruned, in ")
    assert len(read_lines(tmp_path / "run" / "failures.jsonl")) == 1


def test_the_follower_yields_new_whole_lines_only_and_removes_its_markers(tmp_path):
    experiment = Experiment(0, {}, str(tmp_path), repetitions=2)
    for run_id in (0, 1):
        (tmp_path / "0" / str(run_id)).mkdir(parents=True)
    earlier = tmp_path / "0" / "0" / "metrics.jsonl"
    earlier.write_text('{"step": 0, "time": 0.1, "loss": 9}\n')  # an earlier attempt's: no news
    (tmp_path / "0" / PRUNE_MARKER).write_text("")  # left by a driver that died: not for this attempt
    follower = MetricsFollower()
    follower.follow(experiment)
    assert not earlier.exists() and not (tmp_path / "0" / PRUNE_MARKER).exists(), "the new attempt begins afresh"
    with open(earlier, "a") as metrics:
        metrics.write('{"step": 0, "time": 0.2, "loss": 1}\n{"step": 1, "ti')
    (tmp_path / "0" / "1" / "metrics.jsonl").write_text('{"step": 0, "time": 0.3, "loss": 2}\n')
    messages = list(follower.messages())
    assert [(m.experiment_id, m.kind, m.data) for m in messages] == [
        (0, METRICS, {"step": 0, "time": 0.2, "loss": 1, "run_id": 0}),
        (0, METRICS, {"step": 0, "time": 0.3, "loss": 2, "run_id": 1})]
    with open(earlier, "a") as metrics:
        metrics.write('me": 0.4, "loss": 0.5}\n')
    follower._next_look = 0.0  # the next look, without waiting for it
    assert [m.data for m in follower.messages()] == [{"step": 1, "time": 0.4, "loss": 0.5, "run_id": 0}]

    follower.prune(0)
    follower.prune(5)  # not in flight: nothing
    assert sorted(p.name for p in (tmp_path / "0").iterdir()) == [PRUNE_MARKER, "0", "1"]
    follower.forget(0)
    assert not (tmp_path / "0" / PRUNE_MARKER).exists()
    assert json.loads(earlier.read_text().splitlines()[-1])["loss"] == 0.5
