"""The child-process core every process backend shares: an experiment in a forked child, and how its end reads."""
import os
import time
from pathlib import Path

import stages
from experiment_runner.experiment import Experiment, Stages
from experiment_runner.launchers.isolation import exit_code_of, run_in_child
from test_process_pool import assert_gone


def experiment(tmp_path, timeout=0.0, **config):
    return Experiment(0, config, str(tmp_path), timeout=timeout)


def test_an_experiment_runs_in_a_child_with_its_output_in_the_log_files(tmp_path):
    outcome = run_in_child(experiment(tmp_path), Stages(stages.fit_c_output))
    assert outcome.ok
    stdout = (tmp_path / "0" / "stdout.log").read_text()
    assert "from descriptor 1" in stdout and "from a child process" in stdout


def test_a_child_that_dies_is_a_crashed_outcome_with_its_exit_code(tmp_path):
    outcome = run_in_child(experiment(tmp_path, crash_once=True), Stages(stages.fit_report))
    assert (outcome.status, outcome.exit_code, outcome.error_type) == ("crashed", 3, "ExperimentCrashed")
    assert outcome.message == "the process running the experiment died: exit code 3"


def test_a_timeout_kills_the_child_and_what_it_started(tmp_path):
    started = time.monotonic()
    outcome = run_in_child(experiment(tmp_path, timeout=1, how="c-call-ignoring-signals"), Stages(stages.fit_hang))
    assert time.monotonic() - started < 20
    assert outcome.status == "timeout"
    assert outcome.message == "stopped after the timeout of 1 s (its process was killed)"
    assert_gone(int(Path(tmp_path, "0", "child.pid").read_text()))


def test_wait_statuses_read_as_return_codes():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert exit_code_of(status) == 7
    assert exit_code_of(9) == -9  # a status as squeue reports a job killed by SIGKILL
