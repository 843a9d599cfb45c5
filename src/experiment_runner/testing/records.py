"""Contract cases: the tree, results and failure records, retries, resume, secrets, a full disk."""
import hashlib
import json
import math
import re
from pathlib import Path

import pytest
import yaml

from ..errors import RecordWriteError, ResumeMismatchError
from . import stages
from .kit import DISK_FULL_STOP, ContractFixtures, filling, finished_ids, read_lines, run, skip_unless


class RecordCases(ContractFixtures):
    """What a run leaves in its out_path, whichever backend ran it."""

    def test_tree_for_single_repetition(self, basecfg, backend):
        summary = run(basecfg, backend, [{"x": 1}, {"x": 2, "action": "print"}])
        root = Path(basecfg["out_path"])
        assert summary.finished == 2 and summary.failed == 0
        assert sorted(p.name for p in root.iterdir()) == [
            "0", "1", "environment.json", "experiments.jsonl", "failures.jsonl", "results.jsonl", "run.yaml"]
        for experiment_id, x, logs in [(0, 1, []), (1, 2, ["stderr.log", "stdout.log"])]:
            folder = root / str(experiment_id)
            assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pre.txt", *logs], "logs only if printed"
            config = json.loads((folder / "config.json").read_text())
            assert config["x"] == x
            assert config["experiment_id"] == experiment_id
            assert config["out_path"] == str(folder)
            assert (folder / "pre.txt").read_text() == f"{experiment_id} 0\n"
        assert "hello from 1" in (root / "1" / "stdout.log").read_text()
        assert "warning from 1" in (root / "1" / "stderr.log").read_text()
        assert read_lines(root / "failures.jsonl") == []

    def test_results_hold_config_and_scores(self, basecfg, backend):
        run(basecfg, backend, [{"x": 1, "nested": {"a": [1, 2]}}, {"x": 5}])
        root = Path(basecfg["out_path"])
        lines = sorted(read_lines(root / "results.jsonl"), key=lambda line: line["experiment_id"])
        assert [line["experiment_id"] for line in lines] == [0, 1]
        first = lines[0]
        assert first["x"] == 1 and first["nested"] == {"a": [1, 2]}
        assert first["out_path"] == str(root / "0")
        assert set(first["scores"]) == {"y", "folder_existed", "run_id", "fit_time"}
        assert first["scores"]["y"] == 2 and lines[1]["scores"]["y"] == 10
        assert first["scores"]["folder_existed"] is True
        assert isinstance(first["scores"]["fit_time"], float) and first["scores"]["fit_time"] >= 0

    def test_repetitions_make_a_folder_each_and_aggregate(self, basecfg, backend):
        run(basecfg, backend, [{"x": 1}], repetitions=3)
        root = Path(basecfg["out_path"])
        folder = root / "0"
        assert json.loads((folder / "config.json").read_text()) == {
            "x": 1, "experiment_id": 0, "out_path": str(folder)}
        for run_id in range(3):
            rep = folder / str(run_id)
            assert json.loads((rep / "config.json").read_text()) == {
                "x": 1, "experiment_id": 0, "out_path": str(rep), "run_id": run_id}
            assert (rep / "pre.txt").read_text() == f"0 {run_id}\n"
            assert not (rep / "stdout.log").exists() and not (rep / "stderr.log").exists(), "nothing printed"
        [line] = read_lines(root / "results.jsonl")
        scores = line["scores"]
        assert scores["y"] == [2, 3, 4]
        assert scores["mean_y"] == 3.0
        assert math.isclose(scores["std_y"], math.sqrt(2 / 3))
        assert len(scores["fit_time"]) == 3 and "mean_fit_time" in scores and "std_fit_time" in scores
        assert "mean_folder_existed" not in scores

    def test_repetitions_can_be_set_per_config(self, basecfg, backend):
        run(basecfg, backend, [{"x": 1, "repetitions": 2}, {"x": 2}])
        root = Path(basecfg["out_path"])
        assert (root / "0" / "1" / "config.json").exists()
        assert not (root / "1" / "0").exists()
        lines = {line["experiment_id"]: line for line in read_lines(root / "results.jsonl")}
        assert lines[0]["scores"]["y"] == [2, 3] and lines[1]["scores"]["y"] == 4

    def test_reported_metrics_land_in_each_repetitions_folder(self, basecfg, backend):
        configs = [{"x": 1, "action": "report_metrics", "repetitions": 2}, {"x": 2, "action": "report_metrics"},
                   {"x": 3}]
        summary = run(basecfg, backend, configs)
        root = Path(basecfg["out_path"])
        assert summary.finished == 3 and summary.failed == 0
        for folder, x, run_id in [(root / "0" / "0", 1, 0), (root / "0" / "1", 1, 1), (root / "1", 2, 0)]:
            lines = read_lines(folder / "metrics.jsonl")
            assert [(line["step"], line["loss"], line["rep"]) for line in lines] == [
                (step, x / (step + 1), run_id) for step in range(stages.REPORTED_STEPS)], folder
            assert all(list(line) == ["step", "time", "loss", "rep"] for line in lines)
            times = [line["time"] for line in lines]
            assert all(isinstance(t, float) and t >= 0 for t in times) and times == sorted(times)
        assert not (root / "0" / "metrics.jsonl").exists(), "with repetitions, each repetition has its own"
        assert not (root / "2" / "metrics.jsonl").exists(), "only an experiment that reports has one"

    def test_failing_experiment_is_recorded_and_others_finish(self, basecfg, backend):
        summary = run(basecfg, backend, [{"x": 1}, {"x": 7, "action": "raise"}, {"x": 3}])
        root = Path(basecfg["out_path"])
        assert summary.finished == 2 and summary.failed_ids == [1]
        assert finished_ids(root) == [0, 2]
        [failure] = read_lines(root / "failures.jsonl")
        assert failure["experiment_id"] == 1 and failure["run_id"] == 0 and failure["attempt"] == 0
        assert failure["status"] == "error"
        assert failure["error_type"] == "ValueError" and failure["message"] == "bad x=7"
        assert failure["config"] == {"x": 7, "action": "raise", "experiment_id": 1, "out_path": str(root / "1")}
        assert "raise ValueError" in failure["traceback"] and "stages.py" in failure["traceback"]
        assert failure["stdout"] == str(root / "1" / "stdout.log")
        assert "ValueError: bad x=7" in (root / "1" / "stderr.log").read_text(), "the log the summary points to"

    def test_retries_rerun_failed_experiments(self, basecfg, backend):
        summary = run(basecfg, backend, [{"x": 1, "action": "flaky"}, {"x": 2}], retries=2)
        root = Path(basecfg["out_path"])
        assert summary.finished == 2 and summary.failed == 0
        [failure] = read_lines(root / "failures.jsonl")
        assert failure["experiment_id"] == 0 and failure["attempt"] == 0
        assert failure["message"] == "first attempt fails"
        stderr = (root / "0" / "stderr.log").read_text()
        assert stderr.index("first attempt fails") < stderr.index("a new attempt starts at"), "attempts told apart"
        assert finished_ids(root) == [0, 1]

    def test_a_retried_experiment_s_metrics_are_those_of_its_last_attempt(self, basecfg, backend):
        """An earlier attempt's steps would draw its learning curve twice, and mislead a pruner."""
        summary = run(basecfg, backend, [{"x": 2, "action": "flaky", "report": True}], retries=1)
        assert summary.finished == 1
        lines = read_lines(Path(basecfg["out_path"]) / "0" / "metrics.jsonl")
        assert [line["step"] for line in lines] == list(range(stages.REPORTED_STEPS))

    def test_a_failed_experiment_is_retried_while_the_others_still_run(self, basecfg, backend):
        skip_unless(self.capabilities, "concurrent", "a retry running while other experiments run needs")
        cfgs = [{"x": 1, "action": "flaky"}, {"x": 2, "action": "wait_for_result", "of": 0}]
        summary = run(basecfg, backend, cfgs, retries=1)
        root = Path(basecfg["out_path"])
        assert [line["message"] for line in read_lines(root / "failures.jsonl")] == ["first attempt fails"]
        assert summary.finished == 2, "experiment 1 waited for the retry of experiment 0 in vain"

    def test_retries_give_up_after_the_last_attempt(self, basecfg, backend):
        summary = run(basecfg, backend, [{"x": 1, "action": "raise"}], retries=2)
        root = Path(basecfg["out_path"])
        assert summary.failed_ids == [0]
        assert [line["attempt"] for line in read_lines(root / "failures.jsonl")] == [0, 1, 2]

    def test_resume_runs_only_what_did_not_finish(self, basecfg, backend, tmp_path):
        flag = tmp_path / "flag"
        flag.write_text("fail")
        cfgs = [{"x": 1}, {"x": 2, "action": "fail_if_flag", "flag": str(flag)}, {"x": 3}]
        first = run(basecfg, backend, cfgs)
        assert first.failed_ids == [1]
        root = Path(basecfg["out_path"])
        (root / "0" / "pre.txt").unlink()
        flag.unlink()
        second = run(basecfg, backend, cfgs, if_exists="resume")
        assert second.skipped == 2 and second.finished == 1 and second.failed == 0
        assert not (root / "0" / "pre.txt").exists(), "a finished experiment ran again"
        assert finished_ids(root) == [0, 1, 2]
        assert yaml.safe_load((root / "run.yaml").read_text())["experiments"] == 3

    def test_resume_refuses_a_different_sweep(self, basecfg, backend):
        run(basecfg, backend, [{"x": 1}, {"x": 2}])
        with pytest.raises(ResumeMismatchError, match="1 of this sweep's 2 experiments are not in the recorded run"):
            run(basecfg, backend, [{"x": 1}, {"x": 3}], if_exists="resume")

    def test_a_full_disk_stops_the_run_keeping_whole_records_and_resume_finishes_it(
            self, small_disk, tmp_path, backend):
        out = small_disk / "run"
        basecfg = {"out_path": str(out), "fit": stages.fit_disk_filler, "post": stages.post_report, "verbose": False}
        cfgs = [{"x": x, **filling(small_disk, tmp_path, fill_x=2)} for x in range(6)]
        with pytest.raises(RecordWriteError) as raised:
            run(basecfg, backend, cfgs)
        message = str(raised.value)
        assert raised.value.exit_code == 3 and "\n" not in message
        assert re.fullmatch(rf"no space left on device (writing )?.*'{out}.*: {DISK_FULL_STOP}", message)
        finished = [line["experiment_id"] for line in read_lines(out / "results.jsonl")]  # whole lines only
        assert len(finished) < 6
        if not self.capabilities.concurrent:  # one after the other: the record of the one that filled it fails
            assert finished == [0, 1] and f"writing '{out / 'results.jsonl'}'" in message
        assert read_lines(out / "failures.jsonl") == [], "a full disk is not a failure of the experiments"

        (small_disk / "ballast").unlink()
        summary = run(basecfg, backend, cfgs, if_exists="resume")
        assert (summary.skipped, summary.finished, summary.failed) == (len(finished), 6 - len(finished), 0)
        results = read_lines(out / "results.jsonl")
        assert sorted(line["experiment_id"] for line in results) == list(range(6)), "each experiment exactly once"
        assert all(line["scores"]["y"] == line["x"] for line in results)

    def test_declared_secrets_reach_the_stages_in_clear_and_the_tree_masked(self, basecfg, backend):
        key = "S3CRET-api-key"
        digest = hashlib.sha256(key.encode()).hexdigest()
        settings = {"pre": None, "fit": stages.fit_digest, "post": stages.post_value, "repetitions": 2,
                    "secret_keys": ["api.key"]}
        cfgs = [{"api": {"key": key}, "max_tokens": 512}, {"api": {"key": key}, "max_tokens": 256, "fail": True}]
        assert run(basecfg, backend, cfgs, **settings).failed_ids == [1]
        root = Path(basecfg["out_path"])
        [line] = read_lines(root / "results.jsonl")
        assert line["scores"]["value"] == [digest, digest] and line["api"] == {"key": "***"}
        assert line["max_tokens"] == 512
        [failure] = read_lines(root / "failures.jsonl")
        assert failure["message"] == f"failing on purpose with key ***; the key's digest is {digest}"
        assert "with key ***" in failure["traceback"]
        assert "with key ***" in (root / "1" / "0" / "stderr.log").read_text()
        assert json.loads((root / "0" / "1" / "config.json").read_text())["api"] == {"key": "***"}
        assert not [p for p in root.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
        assert run(basecfg, backend, cfgs, if_exists="resume", **settings).skipped == 1

    def test_a_resumed_sweep_of_secrets_runs_each_experiment_with_its_own_secret(self, basecfg, backend):
        settings = {"pre": None, "fit": stages.fit_digest, "post": stages.post_value, "secret_keys": ["api.key"]}
        cfgs = [{"n": n, "api": {"key": key}} for key in ("S3CRET-A", "S3CRET-B") for n in (1, 2)]
        run(basecfg, backend, cfgs, **settings)
        results = Path(basecfg["out_path"]) / "results.jsonl"
        first = results.read_text().splitlines()[0]
        results.write_text(first + "\n")  # as if stopped after one experiment
        summary = run(basecfg, backend, cfgs[2:] + cfgs[:2], if_exists="resume", **settings)
        assert (summary.skipped, summary.finished, summary.failed) == (1, 3, 0)
        ran = sorted((line["experiment_id"], line["n"], line["scores"]["value"]) for line in read_lines(results))
        digests = [hashlib.sha256(cfg["api"]["key"].encode()).hexdigest() for cfg in cfgs]
        assert ran == [(i, cfg["n"], digests[i]) for i, cfg in enumerate(cfgs)], "each once, with its own secret"
        rotated = [{**cfg, "api": {"key": "S3CRET-C"}} for cfg in cfgs]
        with pytest.raises(ResumeMismatchError, match=r"differ only in their secret values \(api.key\)"):
            run(basecfg, backend, rotated, if_exists="resume", **settings)

    def test_chdir_runs_each_repetition_in_its_own_folder(self, basecfg, backend, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        cfg = {**basecfg, "out_path": "run", "pre": None, "fit": stages.fit_cwd, "post": stages.post_cwd}
        run(cfg, backend, [{"x": 1}, {"x": 2}], repetitions=2, chdir=True)
        root = tmp_path / "run"
        for line in read_lines(root / "results.jsonl"):
            folders = [str(root / str(line["experiment_id"]) / str(rep)) for rep in (0, 1)]
            assert [Path(cwd).resolve() for cwd in line["scores"]["cwd"]] == [Path(f).resolve() for f in folders]
            assert line["scores"]["out_path"] == folders  # absolute: it holds from the new working directory too
            assert all((Path(folder) / "written-here.txt").exists() for folder in folders)
        assert Path.cwd() == tmp_path

    def test_pre_and_post_may_be_omitted(self, basecfg, backend):
        run({"out_path": basecfg["out_path"], "fit": stages.fit_only, "verbose": False}, backend, [{"x": 1}])
        [line] = read_lines(Path(basecfg["out_path"]) / "results.jsonl")
        assert set(line["scores"]) == {"fit_time"}
