"""backend=multiprocessing beyond the shared contract: workers, resources, limits, crashes, signals.

Everything runs for real: worker processes that segfault, hang in C with
signals blocked, run out of address space, and drivers killed with ``kill -9``
in a subprocess (Ctrl-C, SIGTERM and closing are contract cases, in
experiment_runner.testing). Time bounds are generous on purpose.
"""
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import stages
from conftest import read_lines
from experiment_runner import run_experiments
from experiment_runner.errors import ConfigError, UsageError, WorkerStartError
from experiment_runner.channel import STARTED, Message
from experiment_runner.experiment import Outcome
from experiment_runner.launchers.pool_plan import (
    THREAD_LIMIT_VARIABLES, FewerCPUsWarning, gpu_slots, parse_gpus, plan_pool)
from experiment_runner.launchers.isolation import describe_exit
from experiment_runner.launchers.process_pool import WorkerLeftWarning
from experiment_runner.settings import RunSettings
from experiment_runner.testing.processes import children

TESTS = Path(__file__).parent


@pytest.fixture
def pool_cfg(basecfg):
    """basecfg for backend=multiprocessing with the reporting stages."""
    return {**basecfg, "backend": "multiprocessing", "num_workers": 2, "fit": stages.fit_report,
            "post": stages.post_report, "pre": None}


def results_by_id(out_path):
    return {line["experiment_id"]: line for line in read_lines(Path(out_path) / "results.jsonl")}


def script_env():
    """The environment of a script that imports the test stages (and this package, as the tests do)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def pool_workers_of(pid):
    """The worker processes of backend=multiprocessing that ``pid`` started (not its other children)."""
    def command(child):
        try:
            return Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            return b""
    return [child for child in children(pid) if b"_pool_worker" in command(child)]


def plan(**basecfg):
    return plan_pool(RunSettings.from_basecfg({"fit": stages.fit, "backend": "multiprocessing", **basecfg}))


# Sizing and options


def test_workers_default_to_usable_cpus_divided_by_num_cpus():
    usable = len(os.sched_getaffinity(0))
    assert plan().num_workers == usable
    assert plan(num_cpus=usable * 4).num_workers == 1
    assert plan(num_cpus=0.5).num_workers == usable * 2
    assert plan(num_workers=5).num_workers == 5
    assert plan(num_cpus=usable).threads == usable


def test_thread_pools_never_exceed_the_usable_cpus():
    usable = len(os.sched_getaffinity(0))
    with_more = plan(num_cpus=usable + 1)
    assert (with_more.num_workers, with_more.threads) == (1, usable)


def fewer_cpus_line(num_cpus):
    """What a run with num_cpus above this machine's usable CPUs says before it starts."""
    usable = len(os.sched_getaffinity(0))
    cpus = "1 usable CPU" if usable == 1 else f"{usable} usable CPUs"
    return (f"num_cpus={num_cpus} but this machine has {cpus}: running 1 experiment at a time "
            f"with thread pools of {usable} (OMP_NUM_THREADS={usable}, ...)")


def test_num_cpus_above_the_usable_cpus_warns_what_the_run_does(pool_cfg):
    usable = len(os.sched_getaffinity(0))
    cfg = {**pool_cfg, "num_workers": None, "num_cpus": 999}
    with pytest.warns(FewerCPUsWarning) as caught:
        summary = run_experiments(cfg, [{"variables": ["OMP_NUM_THREADS"]} for _ in range(3)])
    assert [str(warning.message) for warning in caught] == [fewer_cpus_line(999)]
    assert caught[0].filename == __file__, "the warning points at the script's call"
    assert summary.finished == 3
    scores = [line["scores"] for line in results_by_id(pool_cfg["out_path"]).values()]
    assert len({score["pid"] for score in scores}) == 1, "one experiment at a time"
    assert {score["OMP_NUM_THREADS"] for score in scores} == {str(usable)}


def test_the_command_line_shows_the_fewer_cpus_warning_as_one_line(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        "fit: stages:fit_report\npost: stages:post_report\nverbose: false\nx: ${variation:1,2}\n")
    done = subprocess.run([sys.executable, "-m", "experiment_runner", "backend=multiprocessing", "num_cpus=999",
                           "out_path=run"], cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stderr == f"python -m experiment_runner: warning: {fewer_cpus_line(999)}\n"
    assert sorted(results_by_id(tmp_path / "run")) == [0, 1]


def test_gpu_slots_are_disjoint_groups_and_fractions_share_a_device():
    assert gpu_slots(["0", "1", "2", "3"], 2) == ["0,1", "2,3"]
    assert gpu_slots(["0", "1", "2"], 2) == ["0,1"]
    assert gpu_slots(["0", "1"], 0.5) == ["0", "1", "0", "1"]
    assert gpu_slots(["0"], 0) == []


def test_gpus_default_to_cuda_visible_devices():
    assert parse_gpus(None, {"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert parse_gpus(None, {}) == []
    assert parse_gpus([0, "GPU-ab12"], {}) == ["0", "GPU-ab12"]
    assert plan(gpus="0,1,2,3", num_gpus=2).num_workers == 2


BAD_OPTIONS = [
    pytest.param({"num_workers": 0}, ConfigError, "num_workers must be a whole number >= 1", id="no-workers"),
    pytest.param({"num_workers": "2"}, ConfigError, "num_workers must be a whole number >= 1, got '2'", id="text"),
    pytest.param({"num_workers": True}, ConfigError, "num_workers must be a whole number >= 1, got True",
                 id="flag"),
    pytest.param({"num_workers": 2.5}, ConfigError, "num_workers must be a whole number >= 1, got 2.5",
                 id="fraction"),
    pytest.param({"num_worker": 2}, ConfigError, "unknown key 'num_worker'.*did you mean num_workers", id="typo"),
    pytest.param({"max_experiments_per_worker": -1}, ConfigError, "max_experiments_per_worker must be",
                 id="negative-recycling"),
    pytest.param({"num_gpus": 1, "gpus": []}, ConfigError, "num_gpus=1 but no GPUs are known", id="no-gpus"),
    pytest.param({"num_gpus": 3, "gpus": [0, 1]}, ConfigError, "gpus has only 2 device", id="too-few-gpus"),
    pytest.param({"num_gpus": 1.5, "gpus": [0, 1]}, ConfigError, "whole number, or a fraction below 1",
                 id="fractional-gpus"),
    pytest.param({"num_gpus": 2, "gpus": [0, 1, 2, 3], "num_workers": 3}, ConfigError,
                 "num_workers=3 with num_gpus=2 needs more GPUs", id="more-workers-than-gpu-slots"),
    pytest.param({"gpus": {"a": 1}}, ConfigError, "gpus must be a list of device ids", id="gpus-not-a-list"),
    pytest.param({"gpus": [0, 0]}, ConfigError, "gpus lists a device twice", id="duplicate-gpu"),
]


@pytest.mark.parametrize("options, error, message", BAD_OPTIONS)
def test_bad_options_stop_before_anything_runs(pool_cfg, options, error, message):
    with pytest.raises(error, match=message):
        run_experiments({**pool_cfg, **options}, [{"x": 1}])
    assert not Path(pool_cfg["out_path"]).exists()


def test_stages_that_cannot_be_pickled_stop_before_anything_runs(pool_cfg):
    lock = threading.Lock()

    def fit(cfg, returned_by_pre):
        with lock:
            return 1

    others = set(children(os.getpid(), zombies=True))  # processes of other fixtures may be children too
    with pytest.raises(UsageError, match="backend=multiprocessing cannot send the stage functions"):
        run_experiments({**pool_cfg, "fit": fit, "num_workers": 2}, [{"x": 1}, {"x": 2}])
    assert not Path(pool_cfg["out_path"]).exists()
    assert not set(children(os.getpid(), zombies=True)) - others  # the workers started first are killed and reaped


def test_a_driver_holding_descriptors_above_1023_runs_to_its_summary(tmp_path):
    """Waiting on descriptors numbered above what select() takes (a notebook or a service holding many files)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this machine allows at most {hard} open files per process")
    script = textwrap.dedent(f"""
        import os, resource
        import stages
        from experiment_runner import run_experiments
        resource.setrlimit(resource.RLIMIT_NOFILE, (max({soft}, 1200), {hard}))
        held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
        summary = run_experiments({{"out_path": {str(tmp_path / "run")!r}, "fit": stages.fit_report,
                                   "backend": "multiprocessing", "num_workers": 2, "verbose": False}},
                                  [{{"x": x}} for x in range(20)])
        print("finished", summary.finished, "highest descriptor", max(held))
    """)
    done = subprocess.run([sys.executable, "-c", script], env=script_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["finished", "20"] and int(done.stdout.split()[-1]) > 1023
    assert len(results_by_id(tmp_path / "run")) == 20


def test_stages_the_workers_cannot_import_are_one_clear_error(pool_cfg, tmp_path, monkeypatch):
    (tmp_path / "vanishing_stages.py").write_text("def fit(cfg, returned_by_pre):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanishing_stages

    (tmp_path / "vanishing_stages.py").unlink()
    try:
        with pytest.raises(WorkerStartError, match="(?s)cannot load the stage functions.*vanishing_stages"):
            run_experiments({**pool_cfg, "fit": vanishing_stages.fit}, [{"x": 1}, {"x": 2}])
    finally:
        sys.modules.pop("vanishing_stages", None)


@pytest.mark.parametrize("returncode, text", [
    (3, "exit code 3"), (-11, "killed by SIGSEGV (a segmentation fault"), (-9, "killed by SIGKILL"),
    (None, "an unknown cause")])
def test_exit_descriptions(returncode, text):
    assert describe_exit(returncode).startswith(text)


# Workers: reuse, replacement, environment


def test_workers_are_reused(pool_cfg):
    run_experiments({**pool_cfg, "num_workers": 1}, [{"x": i} for i in range(4)])
    pids = {line["scores"]["pid"] for line in results_by_id(pool_cfg["out_path"]).values()}
    assert len(pids) == 1 and os.getpid() not in pids


@pytest.mark.parametrize("experiments, workers", [(6, 2), (1, 3)])
def test_workers_start_before_the_run_writes_its_records_and_only_as_many_as_needed(
        pool_cfg, experiments, workers):
    """A worker interpreter takes a tenth of a second to be ready: it starts while the driver writes run.yaml
    and experiments.jsonl (on_start comes after those), not after; a run with fewer experiments than workers
    starts no more workers than experiments."""
    seen = []
    run_experiments({**pool_cfg, "num_workers": workers}, [{"x": i} for i in range(experiments)],
                    on_start=lambda summary: seen.append(pool_workers_of(os.getpid())))
    assert len(seen[0]) == min(experiments, workers)
    assert len({line["scores"]["pid"] for line in results_by_id(pool_cfg["out_path"]).values()}) <= len(seen[0])


def test_a_resumed_run_starts_no_worker_for_what_already_finished(pool_cfg):
    run_experiments({**pool_cfg, "num_workers": 3}, [{"x": i} for i in range(4)])
    seen = []
    summary = run_experiments({**pool_cfg, "num_workers": 3, "if_exists": "resume"}, [{"x": i} for i in range(4)],
                              on_start=lambda summary: seen.append(pool_workers_of(os.getpid())))
    assert (summary.skipped, seen) == (4, [[]])


def test_max_experiments_per_worker_1_gives_each_experiment_a_fresh_process(pool_cfg):
    run_experiments({**pool_cfg, "num_workers": 1, "max_experiments_per_worker": 1}, [{"x": i} for i in range(3)])
    pids = {line["scores"]["pid"] for line in results_by_id(pool_cfg["out_path"]).values()}
    assert len(pids) == 3


def test_a_crashed_worker_is_replaced_and_the_rest_run(pool_cfg):
    cfgs = [{"x": 0}, {"x": 1, "crash_once": True}, {"x": 2}, {"x": 3}]
    summary = run_experiments({**pool_cfg, "num_workers": 1}, cfgs)
    assert summary.failed_ids == [1] and summary.finished == 3
    results = results_by_id(pool_cfg["out_path"])
    assert results[0]["scores"]["pid"] != results[2]["scores"]["pid"] == results[3]["scores"]["pid"]
    [failure] = read_lines(Path(pool_cfg["out_path"]) / "failures.jsonl")
    assert failure["status"] == "crashed" and failure["exit_code"] == 3
    assert failure["error_type"] == "WorkerCrashed" and "exit code 3" in failure["message"]


def test_a_keyboard_interrupt_that_a_stage_raises_keeps_its_worker_and_stays_off_the_terminal(pool_cfg, capfd):
    summary = run_experiments({**pool_cfg, "num_workers": 1}, [{"x": 0}, {"x": 1, "interrupt": True}, {"x": 2}])
    assert summary.failed_ids == [1] and summary.finished == 2
    results = results_by_id(pool_cfg["out_path"])
    assert results[0]["scores"]["pid"] == results[2]["scores"]["pid"]
    [failure] = read_lines(Path(pool_cfg["out_path"]) / "failures.jsonl")
    assert (failure["status"], failure["error_type"]) == ("error", "KeyboardInterrupt")
    assert "_pool_worker.py" not in capfd.readouterr().err


def test_retries_rerun_a_crashed_experiment(pool_cfg):
    summary = run_experiments({**pool_cfg, "retries": 1}, [{"x": 0, "crash_once": True}, {"x": 1}])
    assert summary.finished == 2 and summary.failed == 0
    [failure] = read_lines(Path(pool_cfg["out_path"]) / "failures.jsonl")
    assert (failure["experiment_id"], failure["attempt"], failure["status"]) == (0, 0, "crashed")


def test_a_failed_experiment_is_retried_at_once_on_the_same_workers(pool_cfg, tmp_path):
    """The retry runs while the run's other experiment still runs, in one of the run's first workers."""
    summary = run_experiments(
        {**pool_cfg, "retries": 1, "fit": stages.fit_fails_once_or_waits_for_a_retry},
        [{"shared": str(tmp_path)}, {"shared": str(tmp_path), "waits": True}])
    assert summary.finished == 2 and summary.failed == 0
    results = results_by_id(pool_cfg["out_path"])
    assert results[1]["scores"]["saw_the_retry"] is True
    first_workers = set(read_pids(tmp_path)[:2])
    assert len(first_workers) == 2 and results[0]["scores"]["pid"] in first_workers


def test_a_retry_goes_before_the_experiments_still_waiting(pool_cfg):
    """With one worker and five experiments, experiment 0's retry is not left until the others have run."""
    cfgs = [{"x": 0, "crash_once": True}] + [{"x": x} for x in range(1, 5)]
    summary = run_experiments({**pool_cfg, "num_workers": 1, "retries": 1}, cfgs)
    assert summary.finished == 5
    order = [line["experiment_id"] for line in read_lines(Path(pool_cfg["out_path"]) / "results.jsonl")]
    assert order.index(0) < order.index(4), order


def read_pids(folder):
    return [int(line) for line in (folder / "pids").read_text().split()]


def test_what_an_experiment_tells_the_driver_reaches_the_session_as_messages(pool_cfg):
    from experiment_runner.launchers.process_pool import ProcessPoolLauncher
    from experiment_runner.runner import make_experiments

    settings = RunSettings.from_basecfg({**pool_cfg, "fit": stages.fit_tells_the_driver, "post": None})
    experiments = make_experiments([{"steps": 3}, {"steps": 2}], settings)
    Path(pool_cfg["out_path"]).mkdir()
    with ProcessPoolLauncher(settings).session(settings.stages) as session:
        for experiment in experiments:
            session.submit(experiment)
        events = list(session.events())
    for experiment_id, steps in [(0, 3), (1, 2)]:
        own = [event for event in events if event.experiment_id == experiment_id]
        assert own[0] == Message(experiment_id, STARTED)
        assert own[1:-1] == [Message(experiment_id, "progress", {"step": step, "loss": 1.0 / (step + 1)})
                             for step in range(steps)]
        assert isinstance(own[-1], Outcome) and own[-1].ok


def test_an_experiment_that_changes_directory_does_not_move_the_next_one(pool_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = {**pool_cfg, "out_path": "relative", "fit": stages.fit_chdir, "post": None, "num_workers": 1}
    summary = run_experiments(cfg, [{"to": str(elsewhere)} for _ in range(3)])
    assert summary.finished == 3
    assert sorted(results_by_id(tmp_path / "relative")) == [0, 1, 2]
    assert not any(elsewhere.iterdir())


def test_thread_limits_are_set_before_user_code_is_imported(pool_cfg):
    cpus = min(2, len(os.sched_getaffinity(0)))
    run_experiments({**pool_cfg, "num_cpus": cpus, "num_workers": 1}, [{"variables": list(THREAD_LIMIT_VARIABLES)}])
    [result] = results_by_id(pool_cfg["out_path"]).values()
    assert all(result["scores"][name] == str(cpus) for name in THREAD_LIMIT_VARIABLES)
    assert result["scores"]["omp_at_import"] == str(cpus)


def test_concurrent_experiments_see_disjoint_gpus(pool_cfg, tmp_path):
    """The two experiments wait for each other, so they provably run at the same time."""
    meeting = str(tmp_path / "meeting")
    cfgs = [{"variables": ["CUDA_VISIBLE_DEVICES"], "rendezvous": meeting, "parties": 2} for _ in range(2)]
    cfgs += [{"variables": ["CUDA_VISIBLE_DEVICES"]} for _ in range(4)]
    run_experiments({**pool_cfg, "gpus": [0, 1, 2, 3], "num_gpus": 2}, cfgs)
    seen = {i: line["scores"]["CUDA_VISIBLE_DEVICES"] for i, line in results_by_id(pool_cfg["out_path"]).items()}
    assert len(seen) == 6 and set(seen.values()) <= {"0,1", "2,3"}
    assert {seen[0], seen[1]} == {"0,1", "2,3"}


def test_an_experiment_queued_behind_a_long_one_moves_to_a_worker_that_went_idle(pool_cfg, tmp_path):
    """Quick experiments go to workers in chunks; two slow ones that land in one chunk still run at the same
    time: the worker gives back what waits behind the first once the other worker has nothing to do."""
    meeting = str(tmp_path / "meeting")
    slow = {"rendezvous": meeting, "parties": 2, "wait": 20}
    cfgs = [{"i": i} for i in range(60)] + [{"i": 60, **slow}, {"i": 61, **slow}] + [{"i": 62 + i} for i in range(4)]
    summary = run_experiments(pool_cfg, cfgs)
    results = results_by_id(pool_cfg["out_path"])
    assert summary.finished == 66 and summary.failed == 0
    assert results[60]["scores"]["met"] and results[61]["scores"]["met"], "the two slow ones ran at the same time"
    assert results[60]["scores"]["pid"] != results[61]["scores"]["pid"]


def test_a_worker_that_can_read_no_more_is_replaced_and_no_experiment_is_lost(pool_cfg):
    cfgs = [{"i": i, "at": 5} for i in range(200)]
    with pytest.warns(WorkerLeftWarning, match="(?s)worker 0 of backend=multiprocessing stopped reading.*MemoryError"):
        summary = run_experiments({**pool_cfg, "fit": stages.fit_breaks_the_workers_reading, "post": None,
                                   "num_workers": 1}, cfgs)
    assert summary.finished == 200 and summary.failed == 0
    assert sorted(results_by_id(pool_cfg["out_path"])) == list(range(200))


def test_without_num_gpus_the_environment_is_left_alone(pool_cfg, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    run_experiments(pool_cfg, [{"variables": ["CUDA_VISIBLE_DEVICES"]}])
    [result] = results_by_id(pool_cfg["out_path"]).values()
    assert result["scores"]["CUDA_VISIBLE_DEVICES"] == "7"


def test_output_below_python_lands_in_the_log_files(pool_cfg):
    run_experiments({**pool_cfg, "fit": stages.fit_c_output, "post": None}, [{"x": 1}])
    folder = Path(pool_cfg["out_path"]) / "0"
    assert (folder / "stdout.log").read_text().splitlines() == ["from descriptor 1", "from a child process"]
    assert (folder / "stderr.log").read_text() == "from descriptor 2\n"


def test_a_segfault_leaves_its_python_traceback_in_the_log(basecfg, multiprocessing_backend):
    run_experiments({**basecfg, **multiprocessing_backend}, [{"action": "segfault"}])
    log = (Path(basecfg["out_path"]) / "0" / "stderr.log").read_text()
    assert "Segmentation fault" in log and "stages.py" in log


# Limits: memory and time


@pytest.mark.parametrize("max_memory, shown", [("500MB", "500MB"), (600_000_000, "600MB")])
def test_max_memory_fails_the_experiment_with_a_memory_error_and_the_run_goes_on(pool_cfg, max_memory, shown):
    cfgs = [{"bytes": 4 * 10**9}, {"bytes": 10**6}]
    summary = run_experiments({**pool_cfg, "fit": stages.fit_allocate, "post": None, "num_workers": 1,
                               "max_memory": max_memory}, cfgs)
    assert summary.failed_ids == [0] and summary.finished == 1
    [failure] = read_lines(Path(pool_cfg["out_path"]) / "failures.jsonl")
    assert failure["status"] == "error" and failure["error_type"] == "MemoryError"
    assert failure["message"].startswith(f"out of memory: the experiment needed more than max_memory={shown}")


def test_max_memory_is_what_the_experiments_get_not_the_workers_own_reading_thread(pool_cfg):
    """The worker's interpreter and libraries count (some 30 MB), its thread that reads the driver's messages
    does not: 150 MB leaves an experiment room for 60 MB, several times over on one worker."""
    cfgs = [{"bytes": 60 * 2**20} for _ in range(3)]
    summary = run_experiments({**pool_cfg, "fit": stages.fit_allocate, "post": None, "num_workers": 1,
                               "max_memory": "150MB"}, cfgs)
    assert summary.finished == 3 and summary.failed == 0


@pytest.mark.parametrize("how", ["time-sleep", "c-call-ignoring-signals"])
def test_timeout_kills_the_hung_worker_and_what_it_started(pool_cfg, how):
    cfgs = [{"how": how}, {"x": 1}, {"x": 2}]
    started = time.monotonic()
    summary = run_experiments({**pool_cfg, "fit": stages.fit_hang, "post": None, "timeout": 1}, [cfgs[0]])
    assert time.monotonic() - started < 20
    root = Path(pool_cfg["out_path"])
    [failure] = read_lines(root / "failures.jsonl")
    assert summary.failed_ids == [0] and failure["status"] == "timeout"
    assert failure["message"].startswith("stopped after the timeout of 1 s")
    assert 1 <= failure["duration"] < 10
    assert_gone(int((root / "0" / "child.pid").read_text()))


def test_timeout_replaces_the_worker_and_the_rest_run(pool_cfg, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("hang")
    cfgs = [{"x": 0}, {"flag": str(flag)}, {"x": 2}, {"x": 3}]
    summary = run_experiments({**pool_cfg, "num_workers": 1, "timeout": 1}, cfgs)
    assert summary.failed_ids == [1] and summary.finished == 3
    results = results_by_id(pool_cfg["out_path"])
    assert results[0]["scores"]["pid"] != results[2]["scores"]["pid"]


def test_a_large_config_for_a_busy_worker_does_not_hold_up_a_timeout(pool_cfg):
    """The next experiment's 5 MB config waits in the driver, not in a send that blocks until the hang ends."""
    cfgs = [{"x": i} for i in range(4)] + [{"sleep": 60}] + [{"payload": "p" * 5_000_000} for _ in range(3)]
    summary = run_experiments({**pool_cfg, "fit": stages.fit_payload, "num_workers": 1, "timeout": 1}, cfgs)
    assert summary.failed_ids == [4] and summary.finished == 7
    [failure] = read_lines(Path(pool_cfg["out_path"]) / "failures.jsonl")
    assert failure["status"] == "timeout" and failure["duration"] < 10
    results = results_by_id(pool_cfg["out_path"])
    assert [results[i]["scores"]["payload"] for i in (5, 6, 7)] == [5_000_000] * 3


TRANSFERS = textwrap.dedent(
    """
    import sys
    from experiment_runner import run_experiments
    import stages

    big = 50 * 10**6
    quick = [{"x": i} for i in range(4)]
    cfgs = [{"sleep": 60}] + quick + [{"reply_bytes": big}, {"payload": "p" * big}] + quick
    run_experiments({"out_path": sys.argv[1], "fit": stages.fit_payload, "post": stages.post_report,
                     "backend": "multiprocessing", "num_workers": 2, "timeout": 5, "verbose": False}, cfgs)
    """
)


def test_50_mb_each_way_while_another_worker_hangs(tmp_path):
    """Neither a 50 MB config nor a 50 MB outcome holds up the driver, even when they cross.

    A worker sends a 50 MB outcome while the driver sends it the next
    experiment's 50 MB config, and the other worker's hang is still stopped at
    its timeout. It runs in a script because a deadlock would last forever.
    """
    script = tmp_path / "transfers.py"
    script.write_text(TRANSFERS)
    try:
        done = subprocess.run([sys.executable, str(script), str(tmp_path / "run")], env=script_env(),
                              capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("the driver did not finish: it blocked on a worker's socket")
    assert done.returncode == 0, done.stderr
    [failure] = read_lines(tmp_path / "run" / "failures.jsonl")
    assert (failure["experiment_id"], failure["status"]) == (0, "timeout") and failure["duration"] < 30
    results = results_by_id(tmp_path / "run")
    assert sorted(results) == list(range(1, 11))
    assert len(results[5]["scores"]["reply"]) == results[6]["scores"]["payload"] == 50 * 10**6


# The driver interrupted or killed


DRIVER = textwrap.dedent(
    """
    import sys
    from experiment_runner import run_experiments
    import stages

    out_path, if_exists, flag = sys.argv[1:4]
    cfgs = [{"x": 0}, {"x": 1}] + [{"x": i, "flag": flag} for i in range(2, 5)]
    try:
        run_experiments({"out_path": out_path, "fit": stages.fit_report, "post": stages.post_report,
                         "backend": "multiprocessing", "num_workers": 2, "verbose": False,
                         "if_exists": if_exists}, cfgs)
    except KeyboardInterrupt:
        sys.exit(130)
    """
)


def start_driver(tmp_path, if_exists="error"):
    """A script running 5 experiments on 2 workers; the last 3 block while tmp_path/flag exists."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    args = [sys.executable, str(script), str(tmp_path / "run"), if_exists, str(tmp_path / "flag")]
    return subprocess.Popen(args, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_until(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def blocked_and_two_finished(out_path):
    """Both workers block in an experiment (their pid files exist) after experiments 0 and 1 finished."""
    results = out_path / "results.jsonl"
    finished = results.exists() and len(results.read_text().splitlines()) == 2
    return finished and sum((out_path / str(i) / "pid").exists() for i in range(2, 5)) == 2


def alive(pid):
    """Whether ``pid`` runs (a zombie does not count: it has ended, only its parent has not reaped it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def assert_gone(*pids, timeout=10):
    wait_until(lambda: not any(alive(pid) for pid in pids), f"processes {pids} have ended", timeout)


def start_blocked_driver(tmp_path):
    """A driver script whose sweep has two experiments finished and two blocked; it and its workers' pids."""
    (tmp_path / "flag").write_text("block")
    driver = start_driver(tmp_path)
    wait_until(lambda: blocked_and_two_finished(tmp_path / "run"), "two experiments finished and two block")
    workers = children(driver.pid, zombies=True)
    assert len(workers) >= 2
    return driver, workers


def started_by_blocked_experiments(out_path):
    """The pids of the processes the two blocked experiments started (``sleep 1000``)."""
    blocked = [out_path / str(i) for i in range(2, 5) if (out_path / str(i) / "pid").exists()]
    return [int((folder / "child.pid").read_text()) for folder in blocked]


def test_closing_the_session_ends_the_workers_at_once(pool_cfg, tmp_path):
    """The driver leaves the session while an experiment runs (Ctrl-C, an error): no process, no descriptor left."""
    from experiment_runner.launchers.process_pool import ProcessPoolLauncher
    from experiment_runner.runner import make_experiments

    flag = tmp_path / "flag"
    flag.write_text("block")
    settings = RunSettings.from_basecfg(pool_cfg)
    experiments = make_experiments([{"flag": str(flag)}, {"x": 1}, {"x": 2}], settings)
    Path(pool_cfg["out_path"]).mkdir()
    others = set(children(os.getpid(), zombies=True))  # processes of other fixtures (clusters) may be children too
    descriptors = set(os.listdir("/proc/self/fd"))
    with ProcessPoolLauncher(settings).session(settings.stages) as session:
        for experiment in experiments:
            session.submit(experiment)
        outcomes = (event for event in session.events() if isinstance(event, Outcome))
        assert next(outcomes).experiment_id == 1
        wait_until(lambda: (Path(pool_cfg["out_path"]) / "0" / "pid").exists(), "experiment 0 blocks")
        workers = set(children(os.getpid(), zombies=True)) - others
        assert len(workers) == 2  # one busy, one idle
    assert not any(alive(pid) for pid in workers)
    assert not set(children(os.getpid(), zombies=True)) - others
    assert set(os.listdir("/proc/self/fd")) <= descriptors  # sockets, lifelines and pidfds closed


def test_kill_9_of_the_driver_leaves_no_process_behind_and_resume_runs_each_experiment_once(tmp_path):
    """Nothing an experiment started outlives the driver: its workers' process groups die with it."""
    out_path = tmp_path / "run"
    driver, workers = start_blocked_driver(tmp_path)
    started = started_by_blocked_experiments(out_path)
    assert len(started) == 2 and all(alive(pid) for pid in started)
    driver.kill()  # the driver alone, as the OOM killer would
    driver.communicate(timeout=30)
    assert_gone(*workers, *started)
    assert sorted(results_by_id(out_path)) == [0, 1]

    (tmp_path / "flag").unlink()
    resumed = start_driver(tmp_path, "resume")
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert sorted(line["experiment_id"] for line in read_lines(out_path / "results.jsonl")) == [0, 1, 2, 3, 4]
    attempts = {i: len((out_path / str(i) / "attempts").read_text().splitlines()) for i in range(5)}
    assert attempts[0] == attempts[1] == 1, "a finished experiment ran again"


# Stages defined in the user's script


def test_stages_defined_in_an_unguarded_main_script_work(tmp_path):
    """Workers never re-import __main__: the stages travel by value, and a script without a guard works."""
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(
        f"""
        from experiment_runner import run_experiments

        OFFSET = 100

        def fit(cfg, returned_by_pre):
            if cfg["x"] == 4:
                raise ValueError("four is out of range")
            return cfg["x"] + OFFSET

        def post(cfg, returned_by_fit):
            print("post of", cfg["x"])
            return {{"y": returned_by_fit}}

        summary = run_experiments({{"out_path": {str(tmp_path / 'run')!r}, "fit": fit, "post": post,
                                   "backend": "multiprocessing", "num_workers": 2, "verbose": False}},
                                  [{{"x": 1}}, {{"x": 2}}, {{"x": 3}}, {{"x": 4}}])
        print("finished", summary.finished)
        """
    ))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["finished 3"]
    results = results_by_id(tmp_path / "run")
    assert {i: line["scores"]["y"] for i, line in results.items()} == {0: 101, 1: 102, 2: 103}
    assert (tmp_path / "run" / "2" / "stdout.log").read_text() == "post of 3\n"
    [failure] = read_lines(tmp_path / "run" / "failures.jsonl")
    assert f'File "{script}", line' in failure["traceback"], "the script's own file, not <dynamic-code>"
    assert 'raise ValueError("four is out of range")' in failure["traceback"]
