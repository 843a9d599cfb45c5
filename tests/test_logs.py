"""What an experiment printed, where it lands: stdout.log and stderr.log only when it printed something.

backend=single copies Python's prints to the logs; the pool's workers capture
descriptors 1 and 2 once, copy each repetition's output to its logs, keep a
running experiment's output readable under ``<out_path>/.live/``, and the
driver salvages what an experiment printed before its worker died. Real
processes throughout: workers that exit, segfault and hang past a timeout.
"""
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import stages
from experiment_runner import run_experiments
from experiment_runner.testing.kit import read_lines
from experiment_runner.testing.processes import wait_until


@pytest.fixture
def printing_cfg(basecfg):
    return {**basecfg, "pre": None, "post": None, "fit": stages.fit_prints_then}


def logs_in(folder):
    return sorted(path.name for path in Path(folder).iterdir() if path.suffix == ".log")


def failures_by_id(out_path):
    return {line["experiment_id"]: line for line in read_lines(Path(out_path) / "failures.jsonl")}


def test_single_writes_logs_only_for_what_was_printed(basecfg, capsys):
    run_experiments({**basecfg, "backend": "single"}, [{"x": 1}, {"x": 2, "action": "print"}], repetitions=2)
    root = Path(basecfg["out_path"])
    for run_id in (0, 1):
        assert logs_in(root / "0" / str(run_id)) == [], "a silent repetition has no logs"
        assert (root / "1" / str(run_id) / "stdout.log").read_text() == "hello from 1\n"
        assert (root / "1" / str(run_id) / "stderr.log").read_text() == "warning from 1\n"
    assert capsys.readouterr().out.count("hello from 1\n") == 2, "single still shows the prints"


def test_single_makes_a_log_at_the_first_print_in_the_experiments_folder_even_after_chdir(
        printing_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_experiments({**printing_cfg, "backend": "single", "out_path": "run", "chdir": True}, [{"then": "return"}])
    assert (tmp_path / "run" / "0" / "stdout.log").read_text() == "python 0\n"
    assert not (tmp_path / "run" / "0" / "run").exists()


def test_single_goes_back_to_the_runs_folder_after_a_stage_moved_elsewhere(printing_cfg, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    cfgs = [{"cd": str(elsewhere)}, {"then": "return"}, {"cd": str(elsewhere), "then": "raise"}, {"then": "return"}]
    summary = run_experiments({**printing_cfg, "backend": "single", "out_path": "run"}, cfgs)
    assert summary.finished == 3 and summary.failed_ids == [2]
    for experiment_id in range(4):
        assert (tmp_path / "run" / str(experiment_id) / "stdout.log").read_text() == f"python {experiment_id}\n"
    assert list(elsewhere.iterdir()) == [], "nothing is written where a stage moved to"
    assert Path.cwd() == tmp_path, "the caller is back where it called run_experiments"


def test_pool_logs_hold_exactly_what_each_experiment_printed(printing_cfg, multiprocessing_backend):
    run_experiments({**printing_cfg, **multiprocessing_backend}, [{"then": "return"}, {"then": "raise"}])
    root = Path(printing_cfg["out_path"])
    assert (root / "0" / "stdout.log").read_text() == "python 0\n"
    assert (root / "0" / "stderr.log").read_text() == "descriptor 0\n"
    stderr = (root / "1" / "stderr.log").read_text()
    assert stderr.startswith("descriptor 1\nTraceback") and "ValueError: failed after printing" in stderr
    failure = failures_by_id(root)[1]
    assert failure["stderr"] == str(root / "1" / "stderr.log") and failure["stdout"] == str(root / "1" / "stdout.log")


def test_pool_logs_land_in_the_experiments_folder_when_a_stage_moves_elsewhere(
        printing_cfg, multiprocessing_backend, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    cfgs = [{"cd": str(elsewhere)}, {"then": "return"}, {"cd": str(elsewhere), "then": "raise"}]
    summary = run_experiments({**printing_cfg, **multiprocessing_backend, "out_path": "run"}, cfgs)
    assert summary.finished == 2 and summary.failed_ids == [2]
    for experiment_id in range(3):
        assert (tmp_path / "run" / str(experiment_id) / "stdout.log").read_text() == f"python {experiment_id}\n"
    assert "ValueError: failed after printing" in (tmp_path / "run" / "2" / "stderr.log").read_text()
    assert list(elsewhere.iterdir()) == [], "nothing is written where the stage moved to"


def test_a_silent_pool_experiment_leaves_no_logs_and_no_capture_files(basecfg, multiprocessing_backend):
    run_experiments({**basecfg, **multiprocessing_backend}, [{"x": i} for i in range(6)])
    root = Path(basecfg["out_path"])
    assert all(logs_in(root / str(i)) == [] for i in range(6))
    assert not (root / ".live").exists(), "the workers' capture files go when the run ends"


@pytest.mark.parametrize("then, status", [("exit", "crashed"), ("segfault", "crashed"), ("hang", "timeout")])
def test_what_a_dying_experiment_printed_is_kept(printing_cfg, multiprocessing_backend, then, status, capsys):
    run_experiments({**printing_cfg, **multiprocessing_backend, "timeout": 2}, [{"then": then}, {"then": "return"}])
    root = Path(printing_cfg["out_path"])
    assert f"logs: {root / '0' / 'stdout.log'}, {root / '0' / 'stderr.log'}" in capsys.readouterr().err
    failure = failures_by_id(root)[0]
    assert failure["status"] == status and failure["run_id"] == 0, "one repetition: the one that ran"
    assert (root / "0" / "stdout.log").read_text() == "python 0\n", "Python's print, without a flush"
    assert (root / "0" / "stderr.log").read_text().startswith("descriptor 0\n")
    assert (root / "1" / "stdout.log").read_text() == "python 1\n", "the next experiment's output is its own"


def test_a_retry_after_a_crash_marks_its_start_after_the_salvaged_output(printing_cfg, multiprocessing_backend):
    run_experiments({**printing_cfg, **multiprocessing_backend, "retries": 1}, [{"then": "crash_once"}])
    stdout = (Path(printing_cfg["out_path"]) / "0" / "stdout.log").read_text()
    first, separator, second = stdout.splitlines(keepends=True)[0], stdout.splitlines()[2], stdout.splitlines()[3]
    assert (first, second) == ("python 0\n", "python 0")
    assert "a new attempt starts at" in separator


def test_a_running_experiment_is_readable_live_under_out_path(printing_cfg, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("wait")
    settings = {**printing_cfg, "backend": "multiprocessing", "num_workers": 1}
    run = threading.Thread(target=run_experiments, args=(settings, [{"then": "wait", "flag": str(flag)}]))
    run.start()
    live = Path(printing_cfg["out_path"]) / ".live"
    try:
        wait_until(lambda: (live / "0.stdout").exists() and (live / "0.stdout").read_text() == "python 0\n",
                   "the running experiment's print in its worker's capture file", 60)
        assert (live / "0.stderr").read_text() == "descriptor 0\n"
        record = json.loads((live / "0.json").read_text())
        root = Path(printing_cfg["out_path"]) / "0"
        assert record == {"experiment_id": 0, "run_id": 0, "stdout": str(root / "stdout.log"),
                          "stderr": str(root / "stderr.log")}
        assert not (root / "stdout.log").exists(), "the log is written when the repetition ends"
    finally:
        flag.unlink()
        run.join(60)
    assert (root / "stdout.log").read_text() == "python 0\n"
    assert not live.exists()


KILLED_DRIVER = textwrap.dedent(
    """
    import sys
    from experiment_runner import run_experiments
    import stages

    out_path, if_exists, flag = sys.argv[1:4]
    run_experiments({"out_path": out_path, "fit": stages.fit_prints_then, "backend": "multiprocessing",
                     "num_workers": 1, "verbose": False, "if_exists": if_exists}, [{"then": "wait", "flag": flag}])
    """
)


def test_what_a_run_killed_with_kill_9_was_printing_reaches_the_log_when_it_resumes(tmp_path):
    """The dead driver could not move its worker's capture into the log: the resumed run does, before it runs."""
    script, out_path, flag = tmp_path / "driver.py", tmp_path / "run", tmp_path / "flag"
    script.write_text(KILLED_DRIVER)
    flag.write_text("wait")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}

    def driver(if_exists):
        return subprocess.Popen([sys.executable, str(script), str(out_path), if_exists, str(flag)], env=env,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    killed = driver("error")
    live = out_path / ".live" / "0.stdout"
    wait_until(lambda: live.exists() and live.read_text() == "python 0\n", "the experiment's print captured", 60)
    killed.kill()
    killed.communicate(timeout=30)
    assert not (out_path / "0" / "stdout.log").exists(), "the killed driver moved nothing"
    flag.unlink()
    resumed = driver("resume")
    assert resumed.communicate(timeout=60)[1] == "" and resumed.returncode == 0
    log = (out_path / "0" / "stdout.log").read_text()
    assert log.startswith("python 0\n\n===== experiment-runner: a new attempt starts at ")
    assert log.endswith(" =====\npython 0\n") and log.count("python 0") == 2
    assert not (out_path / ".live").exists()


def test_chunked_short_experiments_keep_timeouts_and_crashes_to_themselves(printing_cfg, multiprocessing_backend):
    cfgs = [{"then": "return"} for _ in range(300)]
    cfgs[150], cfgs[200] = {"then": "exit"}, {"then": "hang"}
    run_experiments({**printing_cfg, **multiprocessing_backend, "timeout": 2}, cfgs)
    root = Path(printing_cfg["out_path"])
    failures = failures_by_id(root)
    assert {i: line["status"] for i, line in failures.items()} == {150: "crashed", 200: "timeout"}
    finished = {line["experiment_id"] for line in read_lines(root / "results.jsonl")}
    assert finished == set(range(300)) - {150, 200}
    assert all((root / str(i) / "stdout.log").read_text() == f"python {i}\n" for i in range(300))
