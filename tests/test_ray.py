"""backend=ray beyond the shared contract: embedded Ray, the cluster, resources, auth, Ctrl-C.

Most tests run on the session's two-node test cluster (ray_cluster.py); a few
start an embedded Ray in this process, as a user with nothing set up would.
"""
import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import read_lines
from experiment_runner import run_experiments
from experiment_runner.errors import OutPathExistsError, UsageError
from experiment_runner.testing.processes import children
from ray_cluster import SECOND_NODE_RESOURCE, free_port

ray = pytest.importorskip("ray")

import ray_stages  # noqa: E402  (it imports ray)

AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
TESTS = Path(__file__).parent
#: Set for one command run by a test: every process that command started inherits it, Ray's included.
RUN_MARKER = "EXPERIMENT_RUNNER_TEST_RUN"


def run(basecfg, cfgs, **settings):
    return run_experiments({**basecfg, **settings}, cfgs)


def where_cfg(tmp_path):
    return {"out_path": str(tmp_path / "run"), "fit": ray_stages.fit_where, "post": ray_stages.post_identity,
            "verbose": False}


def scores_by_id(out_path):
    return {line["experiment_id"]: line["scores"] for line in read_lines(Path(out_path) / "results.jsonl")}


# --------------------------------------------------------------------------- imports


def test_selecting_and_checking_the_ray_backend_imports_ray_only_when_it_runs(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from experiment_runner.launchers import get_launcher_class
        from experiment_runner.launchers.options import check_options
        from experiment_runner.settings import RunSettings
        settings = RunSettings.from_basecfg({{"out_path": {str(tmp_path)!r}, "fit": print, "backend": "ray"}})
        launcher = get_launcher_class("ray")(settings)
        check_options(launcher.Options, settings)
        launcher.check([])
        launcher.start_notice()
        print("ray" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --------------------------------------------------------------------------- embedded Ray


def test_without_address_an_embedded_ray_runs_the_sweep_and_is_shut_down(basecfg, monkeypatch, capfd):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    environment_before = {name: os.environ.get(name) for name in AUTH_VARIABLES}
    token_file = Path.home() / ".ray" / "auth_token"
    token_file_existed = token_file.exists()
    children_before = children(os.getpid())

    summary = run(basecfg, [{"x": 1}, {"x": 2, "action": "print"}, {"action": "raise"}], backend="ray", verbose=True)

    assert summary.finished == 2 and summary.failed_ids == [2]
    start_up, wall_time = start_up_and_wall_time(capfd.readouterr().err, "2 of 3 experiments finished, 1 failed")
    assert wall_time >= start_up
    root = Path(basecfg["out_path"])
    assert "hello from 1" in (root / "1" / "stdout.log").read_text()
    assert not ray.is_initialized()
    assert set(children(os.getpid())) <= set(children_before), "the embedded Ray's processes must be gone"
    assert {name: os.environ.get(name) for name in AUTH_VARIABLES} == environment_before
    assert token_file.exists() == token_file_existed, "the embedded Ray's token must not be saved to a file"


def test_a_ray_the_user_initialized_is_used_and_left_running(basecfg, monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        summary = run(basecfg, [{"x": 1}, {"x": 2}], backend="ray")
        assert summary.finished == 2
        assert ray.is_initialized()
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------- resources


def test_experiments_asking_for_a_custom_resource_run_on_the_node_that_has_it(tmp_path, ray_backend):
    cfg = where_cfg(tmp_path)
    run(cfg, [{"i": i} for i in range(4)], **ray_backend, ray_resources={SECOND_NODE_RESOURCE: 1})
    scores = scores_by_id(cfg["out_path"])
    assert sorted(scores) == [0, 1, 2, 3]
    assert {score["node"] for score in scores.values()} == {"second"}
    assert len({score["node_id"] for score in scores.values()}) == 1


IMPOSSIBLE = [
    pytest.param({"num_cpus": 3}, "num_cpus=3", id="more-cpus-than-any-node"),
    pytest.param({"num_gpus": 0.5}, "num_gpus=0.5", id="a-gpu-on-a-cluster-without"),
    pytest.param({"max_memory": "10TB"}, "max_memory=10TB", id="more-memory-than-any-node"),
    pytest.param({"ray_resources": {"tpu": 1}}, "ray_resources.tpu=1", id="an-unknown-resource"),
    pytest.param({"num_cpus": 2, "ray_resources": {SECOND_NODE_RESOURCE: 1}}, "none has all of them",
                 id="resources-only-two-nodes-have-together"),
    pytest.param({"num_cpus": 0.00001}, "Ray refuses", id="finer-than-ray-counts"),
]


@pytest.mark.parametrize("settings, message", IMPOSSIBLE)
def test_an_experiment_no_node_can_run_is_refused_before_anything_runs(basecfg, ray_backend, settings, message):
    with pytest.raises(UsageError) as raised:
        run(basecfg, [{"x": 1}], **ray_backend, **settings)
    assert message in str(raised.value)
    assert not Path(basecfg["out_path"]).exists()


def test_fractional_cpus_and_memory_as_text_are_granted(basecfg, ray_backend):
    summary = run(basecfg, [{"x": i} for i in range(4)], **ray_backend, num_cpus=0.5, max_memory="100MB")
    assert summary.finished == 4


def test_at_most_ray_max_in_flight_experiments_are_submitted_at_once(tmp_path, ray_backend):
    cfg = {"out_path": str(tmp_path / "run"), "fit": ray_stages.fit_interval, "post": ray_stages.post_identity,
           "verbose": False}
    run(cfg, [{"i": i} for i in range(4)], **ray_backend, ray_max_in_flight=1)
    intervals = sorted((s["started"], s["ended"]) for s in scores_by_id(cfg["out_path"]).values())
    assert len(intervals) == 4
    assert all(ended <= next_started for (_, ended), (next_started, _) in zip(intervals, intervals[1:]))


SLOTS = [
    pytest.param({"CPU": 1}, 3, id="one-cpu-each"),
    pytest.param({"CPU": 0.5}, 6, id="half-a-cpu-each"),
    pytest.param({"CPU": 1, "second_node": 1}, 1, id="a-resource-of-one-node"),
    pytest.param({"CPU": 0.1}, 30, id="tenths-count-exactly"),
    pytest.param({"CPU": 1, "memory": 3e9}, 2, id="memory-limits"),
]


@pytest.mark.parametrize("request_, slots", SLOTS)
def test_the_in_flight_bound_counts_what_the_cluster_can_run_at_once(request_, slots):
    from experiment_runner.launchers.ray_resources import count_slots

    nodes = [{"CPU": 2.0, "memory": 4e9}, {"CPU": 1.0, "memory": 4e9, "second_node": 1.0}]
    assert count_slots(request_, nodes) == slots


def test_the_default_in_flight_window_grows_only_while_experiments_are_short():
    from experiment_runner.launchers.ray_resources import InFlightWindow

    windows = {"long": (InFlightWindow(2), 60.0), "short": (InFlightWindow(2), 0.0005),
               "big cluster": (InFlightWindow(100), 0.0005), "given": (InFlightWindow(2, fixed=3), 0.0005)}
    assert {name: window.size for name, (window, _) in windows.items()} == {
        "long": 4, "short": 4, "big cluster": 200, "given": 3}
    for window, duration in windows.values():
        for _ in range(50):
            window.observe(duration)
    assert {name: window.size for name, (window, _) in windows.items()} == {
        "long": 4, "short": 64, "big cluster": 400, "given": 3}


# --------------------------------------------------------------------------- failures


def test_a_failed_experiment_is_retried_at_once_within_the_same_ray_connection(tmp_path, ray_backend):
    flag = tmp_path / "flag"
    flag.write_text("block")
    cfg = {"out_path": str(tmp_path / "run"), "fit": ray_stages.fit_retry_race, "post": ray_stages.post_identity,
           "verbose": False}
    cfgs = [{"role": "long", "flag": str(flag), "max_wait": 30},
            {"role": "flaky", "flag": str(flag), "marker": str(tmp_path / "marker")}]
    summary = run(cfg, cfgs, **ray_backend, retries=1)
    scores = scores_by_id(cfg["out_path"])
    assert summary.finished == 2
    assert [line["experiment_id"] for line in read_lines(Path(cfg["out_path"]) / "failures.jsonl")] == [1]
    assert scores[0]["released"] is True, "the retry waited for the long experiment to end"
    assert scores[1]["retry_job"] == scores[1]["first_job"], "the retry ran in another Ray job: Ray was reached anew"


def driver_environment(**variables):
    """The environment of a driver process the test starts: this package and the tests' modules importable."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0", **variables}


def wait_for(condition, process=None, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the driver ended early:\n{process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.1)


def is_alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --------------------------------------------------------------------------- stopping


STOPPED_AGAIN_AND_AGAIN = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from pathlib import Path
    import ray_stages
    from experiment_runner import run_experiments
    root, address, stops = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    def stop_as_tasks_finish(out_path, flag, signum):
        while len(list(out_path.glob("*/pid"))) < 6:
            time.sleep(0.01)
        flag.unlink()  # the experiments in flight end now, while the run stops
        os.kill(os.getpid(), signum)

    for stop in range(stops):
        out_path, flag = root / f"run{stop}", root / f"flag{stop}"
        flag.write_text("block")
        signum = (signal.SIGINT, signal.SIGTERM)[stop % 2]
        threading.Thread(target=stop_as_tasks_finish, args=(out_path, flag, signum), daemon=True).start()
        try:
            run_experiments({"backend": "ray", "address": address, "ray_auth_token": os.environ["TEST_RAY_TOKEN"],
                             "out_path": str(out_path), "verbose": False, "num_cpus": 0.25,
                             "fit": ray_stages.fit_wait_for_flag, "post": ray_stages.post_identity},
                            [{"i": i, "flag": str(flag), "poll": 0.002} for i in range(100)])
        except KeyboardInterrupt:
            print("stopped", stop, flush=True)
    """
)


def test_a_run_stopped_again_and_again_as_its_tasks_finish_always_stops_cleanly(tmp_path, ray_cluster):
    """Stopping once force-cancelled every task in flight, which crashed Ray's core worker in the driver now and
    then ("Check failed: ... Tried to complete task that was not pending") when a task was finishing."""
    stops = 8
    script = tmp_path / "driver.py"
    script.write_text(STOPPED_AGAIN_AND_AGAIN)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), ray_cluster.address, str(stops)],
                          env=driver_environment(TEST_RAY_TOKEN=ray_cluster.token), capture_output=True, text=True,
                          timeout=600)
    assert "Check failed" not in done.stderr
    assert (done.returncode, done.stdout.splitlines()) == (0, [f"stopped {stop}" for stop in range(stops)]), done.stderr
    assert done.stderr.count("interrupted: stopped the experiments in flight; finished results are kept") == stops
    assert done.stderr.count("to finish it, run again with out_path=") == stops
    worker_pids = [int(path.read_text()) for path in tmp_path.glob("run*/*/pid")]
    wait_for(lambda: not any(is_alive(pid) for pid in worker_pids))


EMBEDDED_PROJECT = """\
defaults:
  - backend: ray
  - _self_
fit: ray_stages:fit_wait_for_flag
post: ray_stages:post_identity
flag: {flag}
i: ${{variation:0,1,2,3,4,5,6,7}}
"""


def start_embedded_run(tmp_path):
    """``python -m experiment_runner`` on an embedded Ray, in its own session as a terminal starts it.

    Returns the process and the marker that every process of the run, Ray's included, has in its environment.
    Its stderr goes to a file that :func:`stderr_of` reads (a pipe nobody reads could fill and block it).
    """
    (tmp_path / "flag").write_text("block")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(EMBEDDED_PROJECT.format(flag=tmp_path / "flag"))
    marker = uuid.uuid4().hex
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "experiment_runner", "backend.num_cpus=0.5", "verbose=true"],
                                   cwd=tmp_path,
                                   env=driver_environment(**{RUN_MARKER: marker}), stdout=subprocess.DEVNULL,
                                   stderr=stderr, start_new_session=True)
    return process, marker


def stderr_of(tmp_path):
    return (tmp_path / "stderr.txt").read_text()


def experiments_started(tmp_path):
    return len(list(tmp_path.glob("results/*/*/pid")))


def processes_of_run(marker):
    """The live processes whose environment holds ``marker`` (zombies have none left)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"{RUN_MARKER}={marker}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def start_up_and_wall_time(stderr, summary_start):
    """The seconds of "starting Ray ... ready in N s" and the summary's wall time, checking that they come in order:
    "starting Ray ...", then that line with its time, then the summary line that starts with ``summary_start``."""
    starting = stderr.index("starting Ray ...\n")
    ready = re.compile(r"^starting Ray \.\.\. ready in ([0-9.]+) s$", re.MULTILINE).search(stderr)
    summary = re.compile(rf"^{re.escape(summary_start)}.* in ([0-9.]+) s$", re.MULTILINE).search(stderr)
    assert ready and summary, stderr
    assert starting < ready.start() < summary.start(), stderr
    return float(ready[1]), float(summary[1])


def wait_until_ray_starts(tmp_path, process):
    """Wait for "starting Ray ...", which must come before any experiment starts."""
    def starting():
        assert experiments_started(tmp_path) == 0, f"experiments ran before 'starting Ray ...':\n{stderr_of(tmp_path)}"
        return "starting Ray ..." in stderr_of(tmp_path)

    wait_for(starting, process)


def test_ctrl_c_while_ray_starts_stops_the_run_and_every_ray_process_it_started(tmp_path):
    process, marker = start_embedded_run(tmp_path)
    try:
        wait_until_ray_starts(tmp_path, process)
        wait_for(lambda: len(processes_of_run(marker)) > 1, process)  # Ray's first processes are up
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    lines = stderr_of(tmp_path).splitlines()
    assert process.returncode == 130, lines
    assert lines[0].startswith("python -m experiment_runner: 8 experiments, backend ray, out_path results/")
    assert lines[1:] == ["starting Ray ...", "interrupted: stopped while backend ray was starting, before any "
                         "experiment ran; nothing was written, so start the run again to run it"]
    assert not list(tmp_path.glob("results/*"))
    wait_for(lambda: processes_of_run(marker) == [])


def test_sigterm_stops_a_run_on_the_embedded_ray_and_every_ray_process_and_counts_the_start_up(tmp_path):
    process, marker = start_embedded_run(tmp_path)
    try:
        wait_until_ray_starts(tmp_path, process)
        starting_shown = time.monotonic()
        wait_for(lambda: experiments_started(tmp_path) >= 2, process)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = stderr_of(tmp_path)
    assert "Check failed" not in stderr
    assert process.returncode == 130, stderr
    assert "interrupted: stopped the experiments in flight; finished results are kept\n" in stderr
    assert re.search(r"to finish it, run: python -m experiment_runner --resume results/\S+\n", stderr)
    start_up, wall_time = start_up_and_wall_time(stderr, "0 of 8 experiments finished, 8 not run (interrupted)")
    assert wall_time + 0.05 >= signalled - starting_shown, "the wall time must count Ray's start-up"
    assert wall_time >= start_up
    wait_for(lambda: processes_of_run(marker) == [])


# --------------------------------------------------------------------------- connecting


def test_the_token_is_never_written_or_printed(basecfg, ray_cluster, ray_backend, capfd):
    run(basecfg, [{"x": 1, "action": "print"}, {"action": "raise"}], **ray_backend, verbose=True)
    output = capfd.readouterr()
    root = Path(basecfg["out_path"])
    assert ray_cluster.token not in output.out + output.err
    for path in root.rglob("*"):
        if path.is_file():
            assert ray_cluster.token not in path.read_text(errors="replace"), path
    assert yaml.safe_load((root / "run.yaml").read_text())["settings"]["ray_auth_token"] == "***"


def test_a_token_given_on_the_command_line_is_masked_in_environment_json(monkeypatch):
    from experiment_runner.launchers import secret_options
    from experiment_runner.serialization import secret_paths
    from experiment_runner.environment import describe_environment

    monkeypatch.setattr(sys, "argv", ["experiment-runner", "backend=ray", "backend.ray_auth_token=s3cret", "lr=0.1"])
    assert describe_environment(secret_paths((), secret_options()))["argv"] == [
        "experiment-runner", "backend=ray", "backend.ray_auth_token=***", "lr=0.1"]


def test_a_wrong_token_is_refused_up_front_without_showing_it(basecfg, ray_backend):
    with pytest.raises(UsageError, match="refused this driver's authentication") as raised:
        run(basecfg, [{"x": 1}], **{**ray_backend, "ray_auth_token": "not-the-token"})
    assert "not-the-token" not in str(raised.value)
    assert not Path(basecfg["out_path"]).exists()


def test_an_address_where_nothing_listens_is_refused_up_front(basecfg):
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(UsageError, match=f"cannot connect to the Ray cluster at address='{address}'"):
        run(basecfg, [{"x": 1}], backend="ray", address=address)


class SilentHandler(socketserver.BaseRequestHandler):
    """Takes the connection and never says a word."""

    def handle(self):
        while self.request.recv(4096):
            pass


class QuietHttpHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *arguments):
        pass


NOT_RAY = [
    pytest.param(socketserver.ThreadingTCPServer, SilentHandler, id="a-silent-tcp-server"),
    pytest.param(http.server.ThreadingHTTPServer, QuietHttpHandler, id="an-http-server"),
]


@pytest.mark.parametrize("server_class, handler", NOT_RAY)
def test_an_address_where_something_else_listens_is_refused_in_one_line(tmp_path, server_class, handler):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("fit: stages:fit\nx: 1\n")
    server = server_class(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        done = subprocess.run([sys.executable, "-m", "experiment_runner", "backend=ray", f"backend.address={address}"],
                              cwd=tmp_path, env=driver_environment(), capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"python -m experiment_runner: error: cannot connect to the Ray cluster at address='{address}': something "
        "listens there, but nothing Ray-like answers (")
    assert done.stderr.count("\n") == 1, done.stderr
    assert not list(tmp_path.glob("results/*"))


def test_address_auto_connects_to_the_cluster_named_by_ray_address(basecfg, ray_cluster, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    summary = run(basecfg, [{"x": 1}], **{**ray_cluster.settings(), "address": "auto"})
    assert summary.finished == 1


def test_a_run_stopped_after_reaching_ray_before_any_experiment_leaves_no_connection(basecfg, ray_backend, tmp_path):
    run(basecfg, [{"x": 1}], **ray_backend)
    with pytest.raises(OutPathExistsError) as stopped:
        run(basecfg, [{"x": 1}], **ray_backend)
    summary = run({**basecfg, "out_path": str(tmp_path / "next")}, [{"x": 1}], **ray_backend, num_cpus=0.5)
    assert summary.finished == 1 and stopped.value is not None
    assert not ray.is_initialized()


# --------------------------------------------------------------------------- the stages' code


def write_modules(folder, suffix):
    """A stage module and a helper module it imports, both importable only from ``folder``."""
    folder.mkdir()
    (folder / f"er_helper_{suffix}.py").write_text("def value():\n    return 7\n")
    (folder / f"er_stage_{suffix}.py").write_text(
        f"import er_helper_{suffix}\n\ndef fit(cfg, _):\n    return er_helper_{suffix}.value()\n"
    )


def test_stage_code_the_workers_cannot_load_is_refused_up_front_and_working_dir_ships_it(
    tmp_path, ray_backend, monkeypatch
):
    suffix = f"{os.getpid()}_{time.monotonic_ns()}"
    write_modules(tmp_path / "code", suffix)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    basecfg = {"out_path": str(tmp_path / "run"), "fit": f"er_stage_{suffix}:fit", "verbose": False}

    with pytest.raises(UsageError, match=f"No module named 'er_helper_{suffix}'.*working_dir"):
        run(basecfg, [{"x": 1}], **ray_backend)
    assert not (tmp_path / "run").exists()

    summary = run(basecfg, [{"x": 1}], **ray_backend, ray_runtime_env={"working_dir": str(tmp_path / "code")})
    assert summary.finished == 1


def test_ray_runtime_env_reaches_the_workers(tmp_path, ray_backend):
    cfg = where_cfg(tmp_path)
    variables = {"env_vars": {"EXPERIMENT_RUNNER_GREETING": "hello"}}
    run(cfg, [{"variable": "EXPERIMENT_RUNNER_GREETING"}], **ray_backend, ray_runtime_env=variables)
    assert scores_by_id(cfg["out_path"])[0]["variable"] == "hello"


def test_results_line_and_config_are_those_of_the_other_backends(basecfg, ray_backend):
    run(basecfg, [{"x": 1}], **ray_backend)
    root = Path(basecfg["out_path"])
    [line] = read_lines(root / "results.jsonl")
    assert json.loads((root / "0" / "config.json").read_text()) == {k: v for k, v in line.items() if k != "scores"}
