"""backend=malocher against real OpenSSH servers on loopback (sshd.py), beyond the contract suite.

Machines that are lost or unreachable, host key verification, timeouts and
Ctrl-C killing the remote processes, streaming, job folders and secrets.
The session's two machines (``ssh_cluster``) are shared; a test that kills a
machine starts machines of its own.
"""
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import stages
import sshd
from conftest import read_lines
from experiment_runner import run_experiments
from experiment_runner.channel import STARTED, Message
from experiment_runner.errors import ConfigError
from experiment_runner.experiment import Experiment, Outcome
from experiment_runner.launchers.ssh_launcher import MachineWarning, NoMachineError, SSHLauncher, parse_machine
from experiment_runner.settings import RunSettings

TESTS = Path(__file__).parent


@pytest.fixture
def malocher(ssh_cluster, basecfg, tmp_path):
    """basecfg for the session's machines, with job folders in tmp_path/jobs."""
    return {**basecfg, **ssh_cluster.settings(tmp_path / "jobs")}


@pytest.fixture
def no_leftovers(tmp_path):
    """A list for pids of ``sleep`` processes; after the test, those still alive are killed, with those of
    the child.pid files in tmp_path.

    A test that finds such a process alive fails; this keeps it from running on for 1000 s.
    """
    pids = []
    yield pids
    pids += [int(file.read_text()) for file in tmp_path.rglob("child.pid")]
    for pid in set(pids) & set(sshd.processes_mentioning("sleep 1000")):
        os.kill(pid, signal.SIGKILL)


def wait_until(condition, timeout=30.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def closed_port():
    """A loopback port that nothing listens on."""
    return sshd.free_port(["127.0.0.1"])


def flagged(n, flag):
    """n experiments that block while ``flag`` exists, for stages.fit_report."""
    return [{"x": i, "flag": str(flag)} for i in range(n)]


def pid_of(folder):
    """The pid stages.fit_report wrote into ``folder``, or None while it is not (completely) written."""
    try:
        text = (folder / "pid").read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def wait_for_pids(out, ids):
    """The pids of experiments ``ids`` once each has recorded its pid and its attempt (stages.fit_report)."""
    def started(folder):
        return pid_of(folder) and (folder / "attempts").exists() and (folder / "attempts").read_text()

    wait_until(lambda: all(started(out / str(i)) for i in ids), what=f"experiments {ids} running")
    return [pid_of(out / str(i)) for i in ids]


def report_stages(basecfg):
    return {**basecfg, "pre": None, "fit": stages.fit_report, "post": stages.post_report}


def worker_processes(jobs):
    return sshd.processes_mentioning(f"ssh_worker {jobs}")


@contextlib.contextmanager
def ssh_session(settings, experiments):
    """An open session of backend=malocher with ``experiments`` submitted, and its outcomes as they come."""
    with SSHLauncher(settings).session(settings.stages) as session:
        for experiment in experiments:
            session.submit(experiment)
        yield (event for event in session.events() if isinstance(event, Outcome))


# Streaming


def test_outcomes_stream_back_as_experiments_finish(malocher, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("block")
    settings = RunSettings.from_basecfg({**report_stages(malocher), "malocher_slots": 1})
    experiments = [Experiment(0, {"flag": str(flag)}, settings.out_path), Experiment(1, {}, settings.out_path)]
    with ssh_session(settings, experiments) as outcomes:
        first = next(outcomes)
        assert first.experiment_id == 1 and first.ok, "the quick experiment comes back while the other runs"
        flag.unlink()
        second = next(outcomes)
        assert second.experiment_id == 0 and second.ok
        assert list(outcomes) == []


# Retries


def test_a_failed_experiment_runs_again_at_once_on_the_same_worker(malocher, tmp_path):
    """The retry goes to the run's open connection and worker, while the long experiment started with it runs on."""
    flag = tmp_path / "flag"
    flag.write_text("block")
    out = Path(malocher["out_path"])
    cfg = {**malocher, "malocher_machines": malocher["malocher_machines"][:1], "malocher_slots": 2, "retries": 1,
           "pre": None, "fit": sshd.fit_note_worker, "post": None}
    summaries = []
    run = threading.Thread(target=lambda: summaries.append(
        run_experiments(cfg, [{"crash_once": True}, {"flag": str(flag)}])))
    run.start()
    try:
        wait_until(lambda: (out / "results.jsonl").exists() and read_lines(out / "results.jsonl"),
                   what="the retried experiment's result")
        assert [line["experiment_id"] for line in read_lines(out / "results.jsonl")] == [0]
        assert (out / "1" / "workers").read_text().count("\n") == 1, "the long experiment still runs"
    finally:
        flag.unlink()
        run.join(60)
    [summary] = summaries
    assert summary.finished == 2 and summary.failed == 0
    [crash] = read_lines(out / "failures.jsonl")
    assert crash["experiment_id"] == 0 and crash["status"] == "crashed"
    first, retried = (out / "0" / "workers").read_text().split()
    assert first == retried == (out / "1" / "workers").read_text().strip(), "one worker ran every attempt"


# The channel back


def test_what_a_remote_experiment_tells_the_driver_arrives_before_its_outcome(malocher):
    from fractions import Fraction

    settings = RunSettings.from_basecfg({**malocher, "pre": None, "fit": sshd.fit_tell_driver, "post": None})
    with SSHLauncher(settings).session(settings.stages) as session:
        session.submit(Experiment(0, {}, settings.out_path))
        events = list(session.events())
    assert events[:3] == [Message(0, STARTED), Message(0, "loss", {"step": 1, "loss": 0.5}),
                          Message(0, "ratio", Fraction(1, 3))]
    [outcome] = events[3:]
    assert outcome.experiment_id == 0 and outcome.ok


# Machines that cannot be reached or are lost


def test_unreachable_machine_is_left_out_and_the_run_goes_on(malocher):
    unreachable = f"127.0.0.1:{closed_port()}"
    machines = [*malocher["malocher_machines"], unreachable]
    with pytest.warns(MachineWarning, match=f"machine {unreachable} is left out: cannot connect: .*refused"):
        summary = run_experiments({**malocher, "malocher_machines": machines}, [{"x": 1}, {"x": 2}])
    assert summary.finished == 2


def test_no_reachable_machine_is_one_clear_error(malocher):
    machines = [f"127.0.0.1:{closed_port()}", f"127.0.0.2:{closed_port()}"]
    with pytest.raises(NoMachineError, match="cannot run on any machine of malocher_machines") as raised:
        run_experiments({**malocher, "malocher_machines": machines}, [{"x": 1}])
    for machine in machines:
        assert f"{machine}: cannot connect" in str(raised.value)
    assert raised.value.exit_code == 2
    assert not Path(malocher["out_path"]).exists(), "found as the session opened, before anything was written"


#: A name glibc refuses without asking a name server, so the test stays on loopback.
UNRESOLVABLE = "-no-such-host.invalid"
UNRESOLVABLE_REASON = (f"its host name {UNRESOLVABLE} does not resolve (Name or service not known): check it in "
                       "malocher_machines, or make it known here (DNS, /etc/hosts, or a Host entry in ~/.ssh/config)")


NAMES_WITHOUT_ADDRESS = [
    pytest.param(UNRESOLVABLE, UNRESOLVABLE_REASON, id="unresolvable"),
    pytest.param("node1..lab", "its host name node1..lab is not a valid host name (a part between dots is empty or "
                 "longer than 63 characters): check it in malocher_machines", id="invalid"),
]


@pytest.mark.parametrize("name, reason", NAMES_WITHOUT_ADDRESS)
def test_a_machine_whose_name_gives_no_address_is_left_out_with_what_to_do(malocher, name, reason):
    machines = [*malocher["malocher_machines"], name]
    with pytest.warns(MachineWarning) as warned:
        summary = run_experiments({**malocher, "malocher_machines": machines}, [{"x": 1}])
    assert summary.finished == 1
    assert [str(w.message) for w in warned] == [f"malocher: machine {name} is left out: {reason}"]


def test_the_command_shows_a_machine_left_out_as_one_warning_line(ssh_cluster, tmp_path, monkeypatch, capsys):
    from experiment_runner.cli import App, guarded

    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("fit: stages:fit_only\nx: 1\n")
    settings = ssh_cluster.settings(tmp_path / "jobs")
    machines = ",".join([*settings["malocher_machines"], UNRESOLVABLE])
    argv = ["backend=malocher", f"backend.malocher_machines=[{machines}]", "out_path=out", "verbose=false",
            *(f"backend.{key}={settings[key]}" for key in ("malocher_port", "malocher_key", "malocher_known_hosts",
                                                           "malocher_dir"))]
    assert guarded(argv, App(["experiment-runner"])) == 0
    assert capsys.readouterr().err == (
        f"experiment-runner: warning: malocher: machine {UNRESOLVABLE} is left out: {UNRESOLVABLE_REASON}\n")


def test_no_reachable_machine_is_one_line_exit_2_and_leaves_nothing_to_block_a_rerun(ssh_cluster, tmp_path,
                                                                                    monkeypatch, capsys):
    from experiment_runner.cli import App, guarded

    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("fit: stages:fit_only\nx: ${variation:1,2}\n")
    settings = ssh_cluster.settings(tmp_path / "jobs")
    argv = ["backend=malocher", f"backend.malocher_machines=[{UNRESOLVABLE}]", "out_path=out",
            *(f"backend.{key}={settings[key]}" for key in ("malocher_port", "malocher_key", "malocher_known_hosts",
                                                           "malocher_dir"))]
    for _ in range(2):  # the same command again meets the same error, not a half-made run in its out_path
        assert guarded(argv, App(["experiment-runner"])) == 2
        assert capsys.readouterr().err == (  # found as the session opens: before the run's header
            "experiment-runner: error: backend=malocher cannot run on any machine of malocher_machines: "
            f"{UNRESOLVABLE}: {UNRESOLVABLE_REASON}\n")
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_machine_whose_name_resolves_is_one_clear_error(malocher):
    closed = f"127.0.0.1:{closed_port()}"
    with pytest.raises(NoMachineError) as raised:
        run_experiments({**malocher, "malocher_machines": [UNRESOLVABLE, closed]}, [{"x": 1}])
    assert str(raised.value) == (
        "backend=malocher cannot run on any machine of malocher_machines: "
        f"{UNRESOLVABLE}: {UNRESOLVABLE_REASON}; {closed}: cannot connect: Connection refused")


def test_a_machine_killed_mid_run_hands_its_experiments_to_the_others(basecfg, tmp_path):
    sshd.require_ssh()
    cluster = sshd.Cluster(tmp_path / "machines")
    flag = tmp_path / "flag"
    flag.write_text("block")
    out = Path(basecfg["out_path"])
    victim = cluster.machines[1]

    def kill_the_machine_running_an_experiment():
        try:
            pids = dict(zip((0, 1), wait_for_pids(out, (0, 1))))
            victim_processes = set(sshd.descendants(victim.pid))
            [lost] = [i for i, pid in pids.items() if pid in victim_processes]
            victim.kill()
            killed.append(lost)
        finally:
            flag.unlink()

    killed = []
    killer = threading.Thread(target=kill_the_machine_running_an_experiment)
    try:
        killer.start()
        with pytest.warns(MachineWarning, match=f"lost machine {victim.address} .*run on the other machines"):
            summary = run_experiments({**report_stages(basecfg), **cluster.settings(tmp_path / "jobs"),
                                       "malocher_slots": 1}, flagged(4, flag))
        killer.join()
    finally:
        cluster.stop()
    assert summary.finished == 4 and summary.failed == 0
    assert read_lines(out / "failures.jsonl") == []
    assert sorted(line["experiment_id"] for line in read_lines(out / "results.jsonl")) == [0, 1, 2, 3]
    [moved] = killed
    assert (out / str(moved) / "attempts").read_text() == "1\n1\n", "the lost experiment ran again elsewhere"


def test_a_machine_whose_worker_cannot_start_says_why(malocher):
    with pytest.raises(NoMachineError, match="its worker did not start: exit status 127: .*/no/such/python"):
        run_experiments({**malocher, "malocher_python": "/no/such/python"}, [{"x": 1}])


def test_an_experiment_that_loses_two_machines_fails_instead_of_taking_down_more(malocher):
    cfg = {**malocher, "pre": None, "post": None, "fit": sshd.fit_drop_connection}
    with pytest.warns(MachineWarning, match="lost machine .* its 1 experiments in flight run on the other"):
        summary = run_experiments(cfg, [{"x": 1}])
    assert summary.failed_ids == [0]
    [failure] = read_lines(Path(malocher["out_path"]) / "failures.jsonl")
    assert failure["status"] == "crashed" and failure["error_type"] == "MachineLost"
    assert "its machine was lost 2 times while it ran" in failure["message"]


# Limits


def test_max_memory_fails_the_experiment_with_a_memory_error_and_the_run_goes_on(malocher):
    cfgs = [{"bytes": 4 * 10**9}, {"bytes": 10**6}]
    summary = run_experiments({**malocher, "pre": None, "fit": stages.fit_allocate, "post": None,
                               "max_memory": "500MB"}, cfgs)
    assert summary.failed_ids == [0] and summary.finished == 1
    [failure] = read_lines(Path(malocher["out_path"]) / "failures.jsonl")
    assert failure["status"] == "error" and failure["error_type"] == "MemoryError"
    assert failure["message"].startswith("out of memory: the experiment needed more than max_memory=500MB")


# Host keys


def test_unknown_host_key_is_refused_by_default(malocher, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(NoMachineError) as raised:
        run_experiments({**malocher, "malocher_known_hosts": str(empty)}, [{"x": 1}])
    message = str(raised.value)
    assert "127.0.0.1: its host key is unknown" in message and "127.0.0.2: its host key is unknown" in message
    assert "malocher_trust_on_first_use=true" in message
    assert empty.read_text() == ""


def test_trust_on_first_use_accepts_and_records_new_host_keys(malocher, ssh_cluster, tmp_path):
    known_hosts = tmp_path / "ssh" / "known_hosts"
    summary = run_experiments({**malocher, "malocher_known_hosts": str(known_hosts),
                               "malocher_trust_on_first_use": True}, [{"x": 1}])
    assert summary.finished == 1
    assert sorted(known_hosts.read_text().splitlines()) == sorted(ssh_cluster.known_hosts.read_text().splitlines())
    again = run_experiments({**malocher, "out_path": str(tmp_path / "again"),
                             "malocher_known_hosts": str(known_hosts)}, [{"x": 1}])
    assert again.finished == 1


def test_a_changed_host_key_is_refused_even_with_trust_on_first_use(malocher, ssh_cluster, tmp_path):
    impostor = sshd.ssh_keygen(tmp_path / "impostor")
    kind, key = Path(f"{impostor}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(f"[{address}]:{ssh_cluster.port} {kind} {key}\n"
                                   for address in ssh_cluster.addresses))
    with pytest.raises(NoMachineError, match="its host key differs from the one recorded") as raised:
        run_experiments({**malocher, "malocher_known_hosts": str(known_hosts),
                         "malocher_trust_on_first_use": True}, [{"x": 1}])
    assert "ssh-keygen" in str(raised.value) and "-R" in str(raised.value)


# Killing remote processes


def test_timeout_kills_the_remote_process_group(malocher):
    summary = run_experiments({**malocher, "fit": stages.fit_hang, "timeout": 2}, [{"how": "sleep"}])
    assert summary.failed_ids == [0]
    [failure] = read_lines(Path(malocher["out_path"]) / "failures.jsonl")
    assert failure["status"] == "timeout" and "2 s" in failure["message"]
    child = int((Path(malocher["out_path"]) / "0" / "child.pid").read_text())
    wait_until(lambda: not sshd.is_alive(child), timeout=10, what="the experiment's own child to die")


def child_pids(out, ids):
    """The pids of the ``sleep`` processes that experiments ``ids`` started (stages.fit_with_child)."""
    return [int((out / str(i) / "child.pid").read_text()) for i in ids]


def wait_until_ended(pids, what):
    wait_until(lambda: not any(sshd.is_alive(pid) for pid in pids), timeout=10, what=f"{what} to end")


def parent_of(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2:].split()[1])


def child_stages(malocher):
    return {**malocher, "pre": None, "fit": stages.fit_with_child, "post": stages.post_report}


def test_a_timeout_also_ends_what_the_experiment_started_in_a_session_of_its_own(malocher, tmp_path, no_leftovers):
    flag = tmp_path / "flag"
    flag.write_text("block")
    try:
        summary = run_experiments({**child_stages(malocher), "timeout": 2}, [{"flag": str(flag), "own_session": True}])
    finally:
        flag.unlink()
    assert summary.failed_ids == [0]
    [failure] = read_lines(Path(malocher["out_path"]) / "failures.jsonl")
    assert failure["status"] == "timeout"
    wait_until_ended(child_pids(Path(malocher["out_path"]), [0]), "the process the experiment started")


def test_what_a_finished_experiment_left_running_ends_with_it(malocher, no_leftovers):
    summary = run_experiments(child_stages(malocher), [{"x": 1}, {"x": 2, "own_session": True}])
    assert summary.finished == 2
    wait_until_ended(child_pids(Path(malocher["out_path"]), [0, 1]), "the processes the experiments left running")


def test_what_an_experiment_started_ends_when_its_worker_is_killed(malocher, tmp_path, no_leftovers):
    """kill -9 or the OOM killer may hit the worker itself: what its experiments started must not live on."""
    flag = tmp_path / "flag"
    flag.write_text("block")
    settings = RunSettings.from_basecfg({**child_stages(malocher), "malocher_slots": 1})
    out = Path(settings.out_path)
    experiments = [Experiment(0, {}, settings.out_path), Experiment(1, {"flag": str(flag)}, settings.out_path)]
    try:
        with ssh_session(settings, experiments) as outcomes:
            assert next(outcomes).experiment_id == 0
            [experiment] = wait_for_pids(out, [1])
            [child] = child_pids(out, [1])
            no_leftovers.append(child)  # its child.pid is overwritten when the experiment runs again
            os.kill(parent_of(experiment), signal.SIGKILL)
            wait_until_ended([experiment, child], "the experiment and the process it started")
            flag.unlink()
            with pytest.warns(MachineWarning, match="lost machine"):
                again = next(outcomes)
            assert again.experiment_id == 1 and again.ok, "the experiment ran again on the other machine"
            assert list(outcomes) == []
    finally:
        flag.unlink(missing_ok=True)


DRIVER = textwrap.dedent(
    """
    import json, sys
    import stages
    from experiment_runner import run_experiments
    settings = json.loads(sys.argv[1])
    flag = sys.argv[2]
    cfgs = [{"x": 1}, {"x": 2}, {"x": 3, "flag": flag}, {"x": 4, "flag": flag, "own_session": True}]
    run_experiments({**settings, "fit": stages.fit_with_child, "post": stages.post_report, "verbose": False}, cfgs)
    """
)


def test_closing_the_session_mid_run_kills_the_remote_experiments(malocher, tmp_path):
    flag = tmp_path / "flag"
    flag.write_text("block")
    settings = RunSettings.from_basecfg({**report_stages(malocher), "malocher_slots": 2})
    experiments = [Experiment(i, cfg, settings.out_path) for i, cfg in enumerate([{}, *flagged(3, flag)])]
    try:
        with ssh_session(settings, experiments) as outcomes:
            assert next(outcomes).experiment_id == 0
            running = wait_for_pids(Path(settings.out_path), (1, 2, 3))
    finally:
        flag.unlink()
    assert not [pid for pid in running if sshd.is_alive(pid)]
    assert worker_processes(tmp_path / "jobs") == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_stopping_the_driver_kills_every_remote_process_and_keeps_what_finished(ssh_cluster, tmp_path, signum,
                                                                               no_leftovers):
    out, jobs, flag = tmp_path / "run", tmp_path / "jobs", tmp_path / "flag"
    flag.write_text("block")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    settings = {"out_path": str(out), **ssh_cluster.settings(jobs), "malocher_slots": 2}
    driver = subprocess.Popen([sys.executable, str(script), json.dumps(settings), str(flag)],
                              env={**os.environ, "PYTHONPATH": str(TESTS)}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running = wait_for_pids(out, (2, 3))
        wait_until(lambda: (out / "results.jsonl").exists() and len(read_lines(out / "results.jsonl")) == 2,
                   what="two experiments finished")
        driver.send_signal(signum)
        _, err = driver.communicate(timeout=30)
        # After kill -9 nobody says goodbye: the workers notice their SSH channel closing.
        wait_until(lambda: not worker_processes(jobs), timeout=10, what="the remote workers to exit")
    finally:
        driver.kill()
        flag.unlink()
    assert driver.returncode != 0
    if signum != signal.SIGKILL:
        assert "interrupted" in err and "2 of 4 experiments finished" in err
    assert sorted(line["experiment_id"] for line in read_lines(out / "results.jsonl")) == [0, 1]
    assert not [pid for pid in running if sshd.is_alive(pid)], "a remote experiment survived"
    # What the experiments started, finished ones included, even in a session of its own.
    wait_until_ended(child_pids(out, range(4)), "the processes the experiments started")


# Job folders


def launch_folders(jobs):
    return sorted(jobs.iterdir()) if jobs.exists() else []


def test_job_folders_are_removed_after_success(malocher, tmp_path):
    run_experiments(malocher, [{"x": 1}, {"x": 2}])
    assert launch_folders(tmp_path / "jobs") == []


def test_job_folders_of_failed_experiments_are_kept_and_can_be_rerun(malocher, tmp_path):
    run_experiments(malocher, [{"x": 1}, {"x": 7, "action": "raise"}])
    [folder] = launch_folders(tmp_path / "jobs")
    assert sorted(p.name for p in folder.iterdir()) == ["1", "context.json", "stages.pkl"]
    rerun = subprocess.run(
        [sys.executable, "-m", "experiment_runner.launchers.ssh_worker", "--run", str(folder / "1")],
        capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 1
    assert json.loads(rerun.stdout)["message"] == "bad x=7"


def test_job_folders_are_kept_on_request(malocher, tmp_path):
    run_experiments({**malocher, "malocher_keep_jobs": True}, [{"x": 1}, {"x": 2}])
    [folder] = launch_folders(tmp_path / "jobs")
    assert sorted(p.name for p in folder.iterdir()) == ["0", "1", "context.json", "stages.pkl"]
    assert json.loads((folder / "0" / "outcome.json").read_text())["status"] == "ok"


def test_two_runs_sharing_malocher_dir_at_once_do_not_collide(malocher, tmp_path):
    summaries = {}

    def run(name):
        cfg = {**malocher, "out_path": str(tmp_path / name), "malocher_keep_jobs": True}
        summaries[name] = run_experiments(cfg, [{"x": i} for i in range(6)])

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [summaries[name].finished for name in ("a", "b")] == [6, 6]
    assert len(launch_folders(tmp_path / "jobs")) == 2
    for name in ("a", "b"):
        ys = sorted(line["scores"]["y"] for line in read_lines(tmp_path / name / "results.jsonl"))
        assert ys == [0, 2, 4, 6, 8, 10]


# Code and secrets


SCRIPT = textwrap.dedent(
    """
    import sys
    from experiment_runner import run_experiments
    from helper import double

    def fit(cfg, _):
        return double(cfg["x"])

    def post(cfg, returned_by_fit):
        return {"y": returned_by_fit}

    run_experiments({"out_path": "run", "fit": fit, "post": post, "verbose": False, "backend": "malocher",
                     "malocher_dir": "jobs", **eval(sys.argv[1])}, [{"x": 1}, {"x": 2}])
    """
)


def test_stages_of_a_user_script_and_its_modules_run_remotely(ssh_cluster, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "experiment.py").write_text(SCRIPT)
    (project / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    settings = {k: v for k, v in ssh_cluster.settings(Path("unused")).items() if k not in ("backend", "malocher_dir")}
    done = subprocess.run([sys.executable, "experiment.py", repr(settings)], cwd=project, capture_output=True,
                          text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    ys = sorted(line["scores"]["y"] for line in read_lines(project / "run" / "results.jsonl"))
    assert ys == [2, 4]


def test_stages_that_cannot_be_imported_remotely_fail_with_a_clear_message(malocher, tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "vanishing_stages.py").write_text("def fit(cfg, _):\n    return 1\n")
    monkeypatch.syspath_prepend(str(code))
    try:
        import vanishing_stages

        (code / "vanishing_stages.py").unlink()
        summary = run_experiments({**malocher, "pre": None, "post": None, "fit": vanishing_stages.fit}, [{"x": 1}])
    finally:
        sys.modules.pop("vanishing_stages", None)
    assert summary.failed_ids == [0]
    [failure] = read_lines(Path(malocher["out_path"]) / "failures.jsonl")
    assert failure["error_type"] == "ModuleNotFoundError"
    assert "cannot load the stages" in failure["message"] and "shared filesystem" in failure["message"]


def test_a_passphrase_protected_key_works_and_the_passphrase_stays_secret(malocher, ssh_cluster, tmp_path, capfd):
    cfg = {**malocher, "malocher_key": str(ssh_cluster.keys.encrypted), "malocher_passphrase": sshd.PASSPHRASE,
           "malocher_keep_jobs": True, "verbose": True}
    assert run_experiments(cfg, [{"x": 1}, {"x": 2, "action": "raise"}]).finished == 1
    run_yaml = (Path(cfg["out_path"]) / "run.yaml").read_text()
    assert "malocher_passphrase: '***'" in run_yaml
    written = [p for folder in (Path(cfg["out_path"]), tmp_path / "jobs") for p in folder.rglob("*") if p.is_file()]
    assert written and not [p for p in written if sshd.PASSPHRASE.encode() in p.read_bytes()]
    assert sshd.PASSPHRASE not in "".join(capfd.readouterr())


def test_secrets_never_reach_a_kept_job_folder_yet_the_remote_stages_get_them(malocher, ssh_cluster, tmp_path, capfd):
    key = "S3CRET-api-key"
    digest = hashlib.sha256(key.encode()).hexdigest()
    cfg = {**malocher, "pre": None, "fit": stages.fit_digest, "post": stages.post_value, "verbose": True,
           "secret_keys": ["api.key"], "malocher_key": str(ssh_cluster.keys.encrypted),
           "malocher_passphrase": sshd.PASSPHRASE}
    summary = run_experiments(cfg, [{"api": {"key": key}}, {"api": {"key": key}, "fail": True}])
    assert summary.failed_ids == [1]
    [line] = read_lines(Path(cfg["out_path"]) / "results.jsonl")
    assert line["scores"]["value"] == digest and line["api"] == {"key": "***"}, "the stage received the clear key"
    [failure] = read_lines(Path(cfg["out_path"]) / "failures.jsonl")
    assert digest in failure["message"]
    [folder] = launch_folders(tmp_path / "jobs")
    assert json.loads((folder / "1" / "experiment.json").read_text())["config"]["api"] == {"key": "***"}
    written = [p for root in (Path(cfg["out_path"]), tmp_path / "jobs") for p in root.rglob("*") if p.is_file()]
    leaked = [p for p in written for secret in (key, sshd.PASSPHRASE) if secret.encode() in p.read_bytes()]
    assert written and leaked == []
    assert not [secret for secret in (key, sshd.PASSPHRASE) if secret in "".join(capfd.readouterr())]
    rerun = subprocess.run(
        [sys.executable, "-m", "experiment_runner.launchers.ssh_worker", "--run", str(folder / "1")],
        input=key + "\n", capture_output=True, text=True, timeout=60, start_new_session=True)
    assert "api.key (a secret, not kept in the job folder)" in rerun.stderr, "a rerun asks for the secret"
    assert rerun.returncode == 1 and digest in json.loads(rerun.stdout)["message"]


def test_a_wrong_passphrase_stops_the_run_before_it_starts(malocher, ssh_cluster):
    cfg = {**malocher, "malocher_key": str(ssh_cluster.keys.encrypted), "malocher_passphrase": "wrong guess"}
    with pytest.raises(ConfigError, match="malocher_key: cannot load the private key") as raised:
        run_experiments(cfg, [{"x": 1}])
    assert "wrong guess" not in str(raised.value)
    assert not Path(malocher["out_path"]).exists()


def test_stages_that_cannot_be_pickled_stop_the_run_before_it_starts(malocher):
    lock = threading.Lock()

    def fit(cfg, _):
        with lock:
            return 1

    with pytest.raises(ConfigError, match="backend=malocher cannot send the stage functions.*lock"):
        run_experiments({**malocher, "fit": fit}, [{"x": 1}])
    assert not Path(malocher["out_path"]).exists()


MACHINES = [
    pytest.param("node1", ("node1", 22, "me"), id="host"),
    pytest.param("alice@node2:2222", ("node2", 2222, "alice"), id="user-host-port"),
    pytest.param("[::1]:2200", ("::1", 2200, "me"), id="ipv6"),
]


@pytest.mark.parametrize("text, expected", MACHINES)
def test_machines_are_given_as_user_at_host_colon_port(text, expected):
    machine = parse_machine(text, "me", 22)
    assert (machine.host, machine.port, machine.user) == expected and machine.name == text


BAD_SETTINGS = [
    pytest.param({"malocher_machines": []}, "needs malocher_machines", id="no-machines"),
    pytest.param({"malocher_machines": ["user@host:port"]}, "is not a machine like", id="bad-machine"),
    pytest.param({"malocher_port": 0}, "malocher_port: the port must be", id="bad-port"),
    pytest.param({"malocher_slots": 0}, "malocher_slots must be a whole number", id="no-slots"),
    pytest.param({"malocher_trust_on_first_use": "yes"}, "must be true or false", id="flag-not-bool"),
    pytest.param({"malocher_passphrase": 1234}, r"malocher_passphrase must be a string, got \*\*\*", id="secret"),
    pytest.param({"malocher_key": "/no/such/key"}, "cannot load the private key /no/such/key", id="no-key"),
]


@pytest.mark.parametrize("settings, message", BAD_SETTINGS)
def test_bad_settings_stop_the_run_before_it_starts(malocher, settings, message):
    with pytest.raises(ConfigError, match=message):
        run_experiments({**malocher, **settings}, [{"x": 1}])
    assert not Path(malocher["out_path"]).exists()
