"""What survives kill -9 of the driver, a torn last line, Ctrl-C while the session is made (backend single).

Ctrl-C and SIGTERM of a run are contract cases (experiment_runner.testing), run on every backend.
"""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import read_lines
from experiment_runner import run_experiments

DRIVER = textwrap.dedent(
    """
    import sys
    from experiment_runner import run_experiments
    import stages
    cfgs = [{"x": 1}, {"x": 2}, {"action": "sleep_while_flag", "flag": sys.argv[3]}, {"x": 4}]
    run_experiments({"out_path": sys.argv[1], "fit": stages.fit, "pre": stages.pre, "post": stages.post,
                     "verbose": False, "if_exists": sys.argv[2]}, cfgs)
    """
)


def start_driver(tmp_path, out_path, if_exists="error"):
    """A script running 4 experiments; the third blocks while tmp_path/flag exists."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                     os.environ.get("PYTHONPATH")]))}
    flag = tmp_path / "flag"
    return subprocess.Popen([sys.executable, str(script), str(out_path), if_exists, str(flag)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(path, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never had {count} lines")


def test_kill_9_leaves_parseable_results_and_resume_finishes_the_rest(tmp_path):
    out_path = tmp_path / "run"
    (tmp_path / "flag").write_text("block")
    driver = start_driver(tmp_path, out_path)
    wait_for_lines(out_path / "results.jsonl", 2)
    driver.kill()
    driver.communicate(timeout=30)
    assert [line["experiment_id"] for line in read_lines(out_path / "results.jsonl")] == [0, 1]
    (tmp_path / "flag").unlink()
    (out_path / "0" / "pre.txt").unlink()
    resumed = start_driver(tmp_path, out_path, "resume")
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert [line["experiment_id"] for line in read_lines(out_path / "results.jsonl")] == [0, 1, 2, 3]
    assert not (out_path / "0" / "pre.txt").exists(), "a finished experiment ran again"


def test_resume_drops_a_torn_last_line_and_reruns_that_experiment(basecfg):

    cfgs = [{"x": 1}, {"x": 2}]
    run_experiments(basecfg, cfgs)
    results = Path(basecfg["out_path"]) / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text(lines[0] + lines[1][: len(lines[1]) // 2])
    summary = run_experiments({**basecfg, "if_exists": "resume"}, cfgs)
    assert summary.skipped == 1 and summary.finished == 1
    assert [line["experiment_id"] for line in read_lines(results)] == [0, 1]
    assert json.loads(results.read_text().splitlines()[1])["scores"]["y"] == 4


def test_ctrl_c_while_the_backend_makes_its_session_says_so_and_writes_nothing(basecfg, capfd, monkeypatch):
    """Making the session may be slow too (the Ray backend imports ray there): Ctrl-C then is the same one line."""
    from experiment_runner.launchers.single import SingleLauncher

    def interrupted(self, stages):
        raise KeyboardInterrupt

    monkeypatch.setattr(SingleLauncher, "start_notice", lambda self: "starting the backend ...")
    monkeypatch.setattr(SingleLauncher, "session", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiments(basecfg, [{"x": 1}])
    err = capfd.readouterr().err
    assert "interrupted: stopped while backend single was starting, before any experiment ran" in err
    assert not Path(basecfg["out_path"]).exists()


def test_ctrl_c_while_the_run_writes_its_records_says_how_to_go_on(basecfg, capfd, monkeypatch):
    """After the out_path is prepared and before the first experiment starts (run.yaml, environment.json)."""
    from experiment_runner.store import RunStore

    def interrupted(self, record, environment):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "write_run_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiments(basecfg, [{"x": 1}, {"x": 2}])
    err = capfd.readouterr().err
    out_path = basecfg["out_path"]
    assert err == ("interrupted: stopped while the run's records were written, before any experiment ran\n"
                   f"to finish it, run again with out_path='{out_path}' and if_exists='resume'\n")
    monkeypatch.undo()
    summary = run_experiments({**basecfg, "if_exists": "resume"}, [{"x": 1}, {"x": 2}])
    assert summary.finished == 2
