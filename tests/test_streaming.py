"""Experiments made as the run reads them: generators, a bounded submission window, --list and resume of large runs."""
import json
import sys
from pathlib import Path

import pytest

import stages
from experiment_runner import run_experiments
from experiment_runner.cli import App, guarded
from experiment_runner.errors import ReservedKeyError
from experiment_runner.experiment import Outcome
from experiment_runner.launchers.process_pool import PoolSession
from experiment_runner.launchers.single import SingleSession
from experiment_runner.plan import Experiments, plan_run


@pytest.fixture
def streamed(monkeypatch):
    """Every run makes its experiments as it reads them, however few: the plan step keeps none."""
    monkeypatch.setattr(Experiments, "keep_at_most", 0)


def jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def tree(root):
    """What a run wrote that does not depend on when it ran: its files, experiments.jsonl and results.jsonl."""
    root = Path(root)
    files = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.name not in ("run.yaml",))
    results = sorted(({**line, "out_path": Path(line["out_path"]).name,
                       "scores": {k: v for k, v in line["scores"].items() if k != "fit_time"}}
                      for line in jsonl(root / "results.jsonl")), key=lambda line: line["experiment_id"])
    return files, jsonl(root / "experiments.jsonl"), results


def test_a_run_over_a_generator_writes_the_tree_of_the_same_run_over_a_list(basecfg, tmp_path, monkeypatch):
    cfgs = [{"x": i, "tags": ["a", i]} for i in range(25)]
    kept = run_experiments({**basecfg, "out_path": str(tmp_path / "kept")}, cfgs)
    monkeypatch.setattr(Experiments, "keep_at_most", 0)
    streamed = run_experiments({**basecfg, "out_path": str(tmp_path / "streamed")}, (dict(c) for c in cfgs))
    assert (kept.finished, streamed.finished) == (25, 25)
    assert tree(tmp_path / "kept") == tree(tmp_path / "streamed")


def test_a_generator_is_listed_once_and_its_experiments_are_made_each_time_they_are_read(tmp_path, streamed):
    read = []

    def cfgs():
        for i in range(5):
            read.append(i)
            yield {"x": i}

    plan = plan_run({"fit": stages.fit, "out_path": str(tmp_path / "run")}, cfgs())
    assert read == [0, 1, 2, 3, 4] and len(plan.experiments) == 5
    assert [e.experiment_id for e in plan.experiments] == [0, 1, 2, 3, 4] == [e.experiment_id for e in plan.experiments]
    assert plan.experiments[3].config == {"x": 3} and plan.experiments[-1].experiment_id == 4
    assert plan.experiments[1] is not plan.experiments[1]  # made again: nothing holds them
    assert plan.in_folder(str(tmp_path / "other")).experiments[2].paths.root == tmp_path / "other" / "2"


def test_a_bad_cfg_late_in_a_streamed_sweep_stops_the_run_before_anything_runs(basecfg, tmp_path, streamed):
    cfgs = ({"x": i} if i < 40 else {"x": i, "run_id": 1} for i in range(41))
    with pytest.raises(ReservedKeyError, match=r"cfgs\[40\] sets run_id"):
        run_experiments(basecfg, cfgs)
    assert not (tmp_path / "run").exists()


def counting_in_flight(monkeypatch, session_class, window):
    """Count, on the real session class, the experiments submitted whose outcome it has not yielded yet."""
    seen = {"in_flight": 0, "most": 0}
    submit, events = session_class.submit, session_class.events

    def counted_submit(self, experiment, *, again=False):
        seen["in_flight"] += 1
        seen["most"] = max(seen["most"], seen["in_flight"])
        submit(self, experiment, again=again)

    def counted_events(self):
        for event in events(self):
            if isinstance(event, Outcome):
                seen["in_flight"] -= 1
            yield event

    monkeypatch.setattr(session_class, "window", window)
    monkeypatch.setattr(session_class, "submit", counted_submit)
    monkeypatch.setattr(session_class, "events", counted_events)
    return seen


@pytest.mark.parametrize("backend, session_class, window", [
    pytest.param({"backend": "single"}, SingleSession, 3, id="single"),
    pytest.param({"backend": "multiprocessing", "num_workers": 2}, PoolSession, 5, id="multiprocessing"),
])
def test_the_runner_never_has_more_than_window_experiments_submitted_and_unfinished(
        basecfg, monkeypatch, streamed, backend, session_class, window):
    seen = counting_in_flight(monkeypatch, session_class, window)
    cfgs = [{"x": i, "action": "flaky"} if i % 7 == 0 else {"x": i} for i in range(40)]  # flaky: a retry each
    summary = run_experiments({**basecfg, **backend, "retries": 1}, cfgs)
    assert (summary.finished, summary.failed) == (40, 0)
    assert seen["most"] == window and seen["in_flight"] == 0
    assert sorted(line["experiment_id"] for line in jsonl(summary.results_file)) == list(range(40))
    assert len(jsonl(summary.failures_file)) == 6  # each flaky experiment's first attempt


def test_a_streamed_run_resumes_what_did_not_finish_under_its_recorded_ids(basecfg, tmp_path, streamed):
    flag = tmp_path / "flag"
    flag.touch()
    cfgs = [{"x": i, "action": "fail_if_flag", "flag": str(flag)} if i % 3 == 0 else {"x": i} for i in range(30)]
    first = run_experiments(basecfg, cfgs)
    assert (first.finished, first.failed) == (20, 10)
    flag.unlink()
    resumed = run_experiments({**basecfg, "if_exists": "resume"}, list(reversed(cfgs)))  # the same sweep, reordered
    assert (resumed.total, resumed.skipped, resumed.finished, resumed.failed) == (30, 20, 10, 0)
    results = jsonl(resumed.results_file)
    assert sorted(line["experiment_id"] for line in results) == list(range(30))
    assert all(line["x"] == line["experiment_id"] for line in results)  # each kept the id it was recorded under
    again = run_experiments({**basecfg, "if_exists": "resume"}, cfgs)
    assert (again.skipped, again.finished) == (30, 0)


def test_list_of_a_large_grid_prints_every_experiment_and_the_count(tmp_path, monkeypatch, capsys):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("fit: stages:fit\nverbose: false\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = guarded(["--list", "+a=range(50)", "+b=range(50)", "+c=range(10)"], App(["experiment-runner"]))
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 25_001
    assert lines[0] == '0 {"a": 0, "b": 0, "c": 0}' and lines[1] == '1 {"a": 0, "b": 0, "c": 1}'
    assert lines[-2] == '24999 {"a": 49, "b": 49, "c": 9}'
    assert lines[-1] == "25000 experiments: the whole grid of 25000 configurations over a, b, c"
    assert not (tmp_path / "results").exists()
