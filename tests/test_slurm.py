"""backend=slurm beyond the contract suite, against the real single-node cluster of slurm_cluster.py.

The contract suite (test_contract.py) runs on slurm too; here: job arrays in
batches, resources and time limits as Slurm sees them, a job that Slurm stops
(time limit, scancel) recorded with Slurm's reason, Ctrl-C cancelling the
run's jobs, logs in the tree, and the errors raised before anything runs.
"""
import hashlib
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import stages
from conftest import read_lines
from experiment_runner import run_experiments
from experiment_runner.errors import ConfigError, UsageError, WorkerStartError
from experiment_runner.launchers.options import time_limit_minutes
from slurm_cluster import wait_until

ENVIRONMENT = ["SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NAME", "SLURM_MEM_PER_NODE"]


def squeue(cluster, name_prefix, *options):
    """(job id, name, state, reason) of every job whose name starts with ``name_prefix``."""
    out = cluster.run("squeue", "--noheader", "--array", *options, "--Format=JobArrayID:|,Name:|,State:|,Reason:|")
    rows = [line.split("|")[:4] for line in out.splitlines() if line.strip()]
    return [tuple(part.strip() for part in row) for row in rows if row[1].strip().startswith(name_prefix)]


def states(cluster, name_prefix, *options):
    """Job (or array task) id -> state, for the jobs whose name starts with ``name_prefix``."""
    return {job_id: state for job_id, _, state, _ in squeue(cluster, name_prefix, *options)}


def scontrol_show(cluster, job_id):
    return cluster.run("scontrol", "show", "job", "--oneliner", job_id)


def test_the_jobs_that_fit_at_once_are_counted_from_the_idle_cpus_of_the_partition_each_node_once():
    from experiment_runner.launchers.slurm_capacity import count_free_slots

    lines = ["n1|2/6/0/8|debug*", "n1|2/6/0/8|long", "n2|0/5/3/8|debug*", "n3|0/16/0/16|long"]
    assert count_free_slots(lines, cpus_per_task=1, default_only=True) == 11
    assert count_free_slots(lines, cpus_per_task=2, default_only=True) == 3 + 2  # a job's CPUs on one node
    assert count_free_slots(lines, cpus_per_task=4, default_only=False) == 1 + 1 + 4
    assert count_free_slots(["n1|8/0/0/8|debug*"], cpus_per_task=1, default_only=True) == 0
    assert count_free_slots(["n1|2/6/0/8|long"], cpus_per_task=1, default_only=True) is None


def test_a_session_runs_as_many_jobs_at_once_as_the_partition_has_idle_cpus_at_most_the_array_parallelism(
        basecfg, slurm_backend, slurm_cluster):
    from experiment_runner.launchers import get_launcher_class
    from experiment_runner.settings import RunSettings

    def slots(**more):
        settings = RunSettings.from_basecfg({**basecfg, **slurm_backend, **more})
        with get_launcher_class("slurm")(settings).session(settings.stages) as session:
            return session.slots

    assert slots() >= 2 and slots(slurm_array_parallelism=2) == 2 and slots(num_cpus=2) == slots() // 2


def test_experiments_run_as_job_arrays_in_batches(basecfg, slurm_backend, slurm_cluster):
    settings = {**slurm_backend, "fit": stages.fit_report, "post": stages.post_report, "slurm_job_name": "batches",
                "slurm_array_size": 2, "slurm_array_parallelism": 1, "max_memory": "100MiB", "timeout": 30}
    summary = run_experiments({**basecfg, **settings}, [{"variables": ENVIRONMENT, "i": i} for i in range(5)])
    assert summary.finished == 5
    scores = {line["experiment_id"]: line["scores"] for line in read_lines(Path(basecfg["out_path"]) / "results.jsonl")}
    arrays = [scores[i]["SLURM_ARRAY_JOB_ID"] for i in range(5)]
    assert arrays[0] == arrays[1] and arrays[2] == arrays[3] and len({arrays[0], arrays[2]}) == 2
    assert [scores[i]["SLURM_ARRAY_TASK_ID"] for i in range(4)] == ["0", "1", "0", "1"]
    assert arrays[4] is None, "a batch of one experiment is a plain job"
    assert len({s["SLURM_JOB_ID"] for s in scores.values()}) == 5
    assert all(s["SLURM_JOB_NAME"].startswith("batches-") for s in scores.values())
    assert all(s["SLURM_MEM_PER_NODE"] == "100" for s in scores.values()), "max_memory in MiB"
    array = scontrol_show(slurm_cluster, arrays[0])
    assert "ArrayTaskThrottle=1" in array, "slurm_array_parallelism is the array's %N"
    assert "TimeLimit=00:03:00" in array, "timeout=30 s: ceil(30 / 60) + 2 minutes of margin"
    assert not (Path(basecfg["out_path"]) / ".slurm").exists()


def test_secrets_travel_to_the_jobs_in_their_environment_never_in_a_job_file(basecfg, slurm_backend):
    key = "S3CRET-for-slurm"
    settings = {**slurm_backend, "fit": stages.fit_looks_for_its_secret, "post": stages.post_value,
                "secret_keys": ["api.key"], "slurm_array_size": 2}
    summary = run_experiments({**basecfg, **settings}, [{"api": {"key": key}, "i": i} for i in range(3)])
    assert summary.finished == 3
    for line in read_lines(Path(basecfg["out_path"]) / "results.jsonl"):
        found = line["scores"]["value"]
        assert found["digest"] == hashlib.sha256(key.encode()).hexdigest(), "the stage got the secret in clear"
        assert found["files"] == [], "no job file (pickle, batch script) holds the secret while the job runs"
        assert found["variables"] == [], "the variable that carried it is gone before the stages run"
        assert line["api"] == {"key": "***"}


def test_a_job_that_receives_no_environment_stops_the_run_naming_the_missing_secrets(basecfg, slurm_backend):
    settings = {**slurm_backend, "fit": stages.fit_looks_for_its_secret, "post": stages.post_value,
                "secret_keys": ["api.key"], "slurm_additional_parameters": {"export": "NONE"}}
    with pytest.raises(WorkerStartError, match=r"the job did not receive the experiment's secrets \(api.key\): they "
                                               r"travel in the environment variable EXPERIMENT_RUNNER_SECRETS, so "
                                               r"sbatch's --export must pass the environment \(ALL\)"):
        run_experiments({**basecfg, **settings}, [{"api": {"key": "k"}, "i": 0}])


def test_everything_the_job_prints_lands_in_the_experiments_logs(basecfg, slurm_backend):
    run_experiments({**basecfg, **slurm_backend, "fit": stages.fit_c_output, "post": None}, [{"x": 1}])
    folder = Path(basecfg["out_path"]) / "0"
    out, err = (folder / "stdout.log").read_text(), (folder / "stderr.log").read_text()
    assert "from descriptor 1" in out and "from a child process" in out
    assert "from descriptor 2" in err


def test_a_job_slurm_cancels_is_recorded_with_slurms_reason(basecfg, slurm_backend, slurm_cluster, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("block")
    sweep = [{"action": "sleep_while_flag", "flag": str(flag)}, {"x": 2}]
    run = threading.Thread(target=run_experiments, args=({**basecfg, **slurm_backend, "slurm_job_name": "cancel"},
                                                         sweep))
    run.start()
    try:
        pre = Path(basecfg["out_path"]) / "0" / "pre.txt"
        wait_until(pre.exists, 30, "experiment 0 never started")
        [job] = [job_id for job_id in states(slurm_cluster, "cancel") if job_id.endswith("_0")]
        slurm_cluster.run("scancel", job)
        run.join(60)  # the flag stays until the run ends: removed earlier, the job could finish before scancel
    finally:
        flag.unlink(missing_ok=True)
        run.join(60)
    root = Path(basecfg["out_path"])
    [failure] = read_lines(root / "failures.jsonl")
    assert failure["status"] == "cancelled" and failure["experiment_id"] == 0
    assert f"job {job}: state CANCELLED" in failure["message"] and "SIGTERM" in failure["message"]
    assert "CANCELLED AT" in (root / "0" / "stderr.log").read_text(), "Slurm's own message, in the tree"
    assert [line["experiment_id"] for line in read_lines(root / "results.jsonl")] == [1]


@pytest.mark.parametrize("line, said", [
    ("7_0|CANCELLED|None|36608|1:00|node1", "(job 7_0: state CANCELLED, exit code 143 (128 + SIGTERM: the job's "
                                             "process was killed by SIGTERM))"),
    ("7_0|CANCELLED|JobHeldUser|15|1:00|node1", "(job 7_0: state CANCELLED, reason JobHeldUser, killed by SIGTERM)"),
])
def test_a_cancelled_jobs_message_says_slurms_reason_and_the_signal_however_slurm_reports_it(line, said):
    from experiment_runner.experiment import Experiment
    from experiment_runner.launchers.slurm_squeue import parse_squeue_line, slurm_failure

    outcome = slurm_failure(Experiment(0, {}, "run"), *parse_squeue_line(line))
    assert outcome.status == "cancelled" and outcome.message == f"cancelled in Slurm {said}"
    assert outcome.host == "node1"


def test_a_failed_experiment_is_retried_while_a_long_one_of_the_run_still_runs(basecfg, slurm_backend, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("block")
    report = {"variables": ["SLURM_JOB_NAME"]}
    sweep = [{**report, "flag": str(flag)}, {**report, "crash_once": True}]
    settings = {**basecfg, **slurm_backend, "fit": stages.fit_report, "post": stages.post_report, "retries": 1,
                "slurm_job_name": "sooner"}
    root = Path(basecfg["out_path"])
    run = threading.Thread(target=run_experiments, args=(settings, sweep))
    run.start()

    def only_the_retry_finished():
        results = root / "results.jsonl"
        return results.exists() and [line["experiment_id"] for line in read_lines(results)] == [1]

    try:
        wait_until(only_the_retry_finished, 40, "experiment 1's retry did not finish while experiment 0 ran")
        job_folders = sorted(path.name for path in (root / ".slurm").iterdir())
    finally:
        flag.unlink()
        run.join(90)
    [failure] = read_lines(root / "failures.jsonl")
    assert failure["experiment_id"] == 1 and failure["status"] == "crashed"
    names = {line["experiment_id"]: line["scores"]["SLURM_JOB_NAME"] for line in read_lines(root / "results.jsonl")}
    assert sorted(names) == [0, 1]
    assert names[0] == names[1] and job_folders == [names[0]], "the retry went out in the run's own session"
    assert not (root / ".slurm").exists()


def test_slurms_time_limit_stops_an_experiment_and_its_reason_is_recorded(slurm_time_limited_run):
    """Slurm enforces time limits in whole minutes, checked every 30 s: the run takes 60 to 90 s, so it started
    with the cluster (slurm_cluster.TimeLimitedRun: ``slurm_time_limit=1``, experiment 0 sleeps 300 s)."""
    summary = slurm_time_limited_run.summary()
    root = slurm_time_limited_run.out_path
    assert summary["failed_ids"] == [0] and summary["finished"] == 1
    [failure] = read_lines(root / "failures.jsonl")
    assert failure["status"] == "timeout" and failure["error_type"] == "SlurmTimeLimit"
    assert "time limit of 1:00" in failure["message"] and "reason TimeLimit" in failure["message"]
    assert "DUE TO TIME LIMIT" in (root / "0" / "stderr.log").read_text()


DRIVER = textwrap.dedent(
    """
    import sys
    from experiment_runner import run_experiments
    import stages
    from test_slurm import cfgs
    run_experiments({"out_path": sys.argv[1], "fit": stages.fit, "pre": stages.pre, "post": stages.post,
                     "verbose": False, "backend": "slurm", "slurm_job_name": sys.argv[3],
                     "slurm_poll_interval": 0.5}, cfgs(sys.argv[2]))
    """
)


def cfgs(flag):
    """Four experiments; the third blocks while the file ``flag`` exists."""
    return [{"x": 1}, {"x": 2}, {"action": "sleep_while_flag", "flag": str(flag)}, {"x": 4}]


def start_driver(tmp_path, cluster, job_name):
    """A script running cfgs() on slurm; returns once 0, 1 and 3 finished and 2 runs (blocked by tmp_path/flag)."""
    out_path, flag = tmp_path / "run", tmp_path / "flag"
    flag.write_text("block")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**cluster.env, "PYTHONPATH": path}
    driver = subprocess.Popen([sys.executable, str(script), str(out_path), str(flag), job_name], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (out_path / "2" / "pre.txt").exists() and _lines(out_path / "results.jsonl") == 3, 60,
                   "experiments 0, 1 and 3 never finished while 2 runs")
    except BaseException:
        driver.kill()
        flag.unlink()
        raise
    return driver


def test_ctrl_c_cancels_the_runs_jobs_and_keeps_what_finished(tmp_path, slurm_cluster):
    out_path, flag = tmp_path / "run", tmp_path / "flag"
    driver = start_driver(tmp_path, slurm_cluster, "interrupted")
    try:
        [running] = [job_id for job_id in states(slurm_cluster, "interrupted") if job_id.endswith("_2")]
        assert states(slurm_cluster, "interrupted")[running] == "RUNNING"
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=60)
    finally:
        flag.unlink(missing_ok=True)
        driver.kill()
    assert driver.returncode != 0 and "interrupted" in err and "3 of 4 experiments finished" in err
    wait_until(lambda: not squeue(slurm_cluster, "interrupted"), 30, "the run's jobs are still in the queue")
    assert states(slurm_cluster, "interrupted", "--states=all")[running] == "CANCELLED"
    assert sorted(line["experiment_id"] for line in read_lines(out_path / "results.jsonl")) == [0, 1, 3]
    assert not (out_path / ".slurm").exists()


def test_resume_after_kill_9_first_cancels_the_dead_drivers_jobs(tmp_path, slurm_cluster, basecfg, slurm_backend):
    out_path, flag = tmp_path / "run", tmp_path / "flag"
    driver = start_driver(tmp_path, slurm_cluster, "killed")
    driver.kill()
    driver.communicate(timeout=30)
    [orphan] = [job_id for job_id in states(slurm_cluster, "killed") if job_id.endswith("_2")]
    settings = {**basecfg, **slurm_backend, "out_path": str(out_path), "if_exists": "resume"}
    resumed = threading.Thread(target=run_experiments, args=(settings, cfgs(flag)))
    resumed.start()
    try:
        wait_until(lambda: states(slurm_cluster, "killed", "--states=all")[orphan] == "CANCELLED", 30,
                   "the dead driver's job still runs")
    finally:
        flag.unlink()
        resumed.join(60)
    assert sorted(line["experiment_id"] for line in read_lines(out_path / "results.jsonl")) == [0, 1, 2, 3]
    assert not (out_path / ".slurm").exists()


def _lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


STAGE_MODULE = textwrap.dedent(
    """
    import os
    if "SLURM_JOB_ID" in os.environ:
        raise ImportError("this module is not installed on the compute nodes")

    def fit(cfg, _):
        return 1
    """
)


def test_stages_that_cannot_load_in_the_job_stop_the_run_with_a_clear_error(basecfg, slurm_backend, tmp_path,
                                                                              monkeypatch):
    (tmp_path / "driver_only_stages.py").write_text(STAGE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import driver_only_stages

    settings = {**basecfg, **slurm_backend, "pre": None, "post": None, "fit": driver_only_stages.fit}
    with pytest.raises(WorkerStartError, match="cannot load the stage functions: ImportError: this module is not"):
        run_experiments(settings, [{"x": 1}, {"x": 2}])
    assert not (Path(basecfg["out_path"]) / ".slurm").exists()


def test_a_job_that_fails_around_the_experiment_is_recorded_as_crashed(basecfg, slurm_backend):
    # submitit in the job cannot set up its signal handlers: it fails before calling the experiment
    settings = {**basecfg, **slurm_backend, "slurm_setup": ["export SUBMITIT_PREEMPT_SIGNAL=NOSUCHSIGNAL"]}
    summary = run_experiments(settings, [{"x": 1}])
    [failure] = read_lines(Path(basecfg["out_path"]) / "failures.jsonl")
    assert summary.failed_ids == [0] and failure["status"] == "crashed"
    assert failure["message"].startswith("the Slurm job failed before running the experiment: RuntimeError: ")
    assert "SIGNOSUCHSIGNAL" in failure["message"] and "Traceback" in failure["traceback"]


@pytest.mark.parametrize("settings, answer", [
    pytest.param({"slurm_partition": "nosuchpartition"}, "partition", id="partition"),
    pytest.param({"num_cpus": 64}, "Requested node configuration is not available", id="too-many-cpus"),
    pytest.param({"slurm_additional_parameters": {"constraint": "nosuchfeature"}}, "feature", id="extra-option"),
])
def test_jobs_slurm_would_refuse_stop_the_run_before_anything_runs(basecfg, slurm_backend, settings, answer):
    with pytest.raises(UsageError, match=rf"Slurm refuses the run's jobs \(sbatch --test-only: .*{answer}"):
        run_experiments({**basecfg, **slurm_backend, **settings}, [{"x": 1}, {"x": 2}])
    assert not Path(basecfg["out_path"]).exists()


def test_missing_sbatch_is_a_usage_error_saying_how_to_install_or_point_to_it(basecfg, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError) as caught:
        run_experiments({**basecfg, "backend": "slurm"}, [{"x": 1}])
    message = str(caught.value)
    assert "sbatch" in message and "not on PATH" in message
    assert "apt-get install slurm-client" in message and "export PATH=" in message
    assert not Path(basecfg["out_path"]).exists()


@pytest.mark.parametrize("settings, message", [
    pytest.param({"slurm_additional_parameters": {"output": "x.log"}}, "sets output, which backend=slurm sets",
                 id="reserved-sbatch-option"),
    pytest.param({"slurm_additional_parameters": ["--constraint=a100"]}, "must be a dict of sbatch options",
                 id="extra-options-not-a-dict"),
    pytest.param({"slurm_time_limit": 1, "timeout": 120}, "would stop experiments before their timeout of 120 s",
                 id="time-limit-below-timeout"),
    pytest.param({"slurm_time_limit": "an hour"}, "is not a Slurm time limit", id="time-limit-unreadable"),
    pytest.param({"slurm_array_size": 0}, "slurm_array_size must be a whole number >= 1", id="array-size"),
    pytest.param({"slurm_setup": "module load x"}, "slurm_setup must be a list of shell lines", id="setup"),
    pytest.param({"slurm_partiton": "gpu"}, "did you mean slurm_partition", id="typo"),
    pytest.param({"slurm_job_name": "my run"}, "slurm_job_name may hold letters", id="job-name"),
])
def test_bad_slurm_settings_are_config_errors(basecfg, settings, message):
    with pytest.raises(ConfigError, match=message):
        run_experiments({**basecfg, "backend": "slurm", **settings}, [{"x": 1}])


@pytest.mark.parametrize("text, minutes", [
    ("90", 90), ("1:30", 1.5), ("2:00:00", 120), ("1-0", 1440), ("1-2:30", 1590), ("0-00:00:30", 0.5),
    ("0", math.inf), ("UNLIMITED", math.inf),
])
def test_slurm_time_limits_are_read_as_slurm_reads_them(text, minutes):
    assert time_limit_minutes(text) == minutes


def test_submitit_is_imported_only_when_the_backend_runs():
    code = ("import sys, experiment_runner\n"
            "from experiment_runner.launchers import get_launcher_class\n"
            "get_launcher_class('slurm')\n"
            "print('submitit' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
