"""``experiment-runner serve`` on the command line: the address it prints, Ctrl-C, and its errors in one line."""
import os
import signal
import socket
import subprocess
import sys

import pytest

from serve_runs import SRC, get, make_sweep
from test_imports import HEAVY, run_fresh

CLI = "from experiment_runner.cli import console_main; console_main()"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_sweep(root / "sweep")
    return root


def start(*argv, cwd=None):
    return subprocess.Popen([sys.executable, "-m", "experiment_runner", "serve", *argv], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(SRC)})


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_its_address_serves_and_stops_quietly(runs, stop):
    process = start(str(runs), "--port", "0")
    try:
        first = process.stdout.readline()
        assert first.startswith(f"serving {runs} at http://127.0.0.1:") and first.endswith("/\n")
        url = first.split(" at ")[1].strip()
        status, answer, _ = get(url + "api/runs")
        assert status == 200 and [run["run"] for run in answer["runs"]] == ["sweep"]
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert (process.returncode, out, err) == (0, "stopped\n", "")


def test_serve_defaults_to_the_results_folder(runs, tmp_path):
    (tmp_path / "results").symlink_to(runs)
    process = start("--port", "0", cwd=tmp_path)
    try:
        assert process.stdout.readline().startswith("serving results at http://127.0.0.1:")
    finally:
        process.kill()
        process.communicate()


def error_of(*argv, code=CLI):
    status, out, err, modules = run_fresh(code, "serve", *argv)
    return status, err.strip().splitlines(), modules


def test_a_path_that_is_no_folder_is_one_line_and_exit_2(runs, tmp_path):
    (tmp_path / "file").write_text("")
    for path, what in ((tmp_path / "missing", "no folder"), (tmp_path / "file", "a file, not a folder")):
        status, lines, _ = error_of(str(path))
        assert status == 2
        assert lines == [f"experiment-runner serve: error: '{path}' is {what}: give the out_path of a run, "
                         "or the folder that holds runs"]


def test_a_port_in_use_is_one_line_and_exit_2(runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, lines, _ = error_of(str(runs), "--port", str(port))
    assert status == 2
    assert lines == [f"experiment-runner serve: error: port {port} on 127.0.0.1 is in use: choose another with "
                     "--port (--port 0 picks a free one)"]


@pytest.mark.parametrize("port", ["http", "-1", "70000"])
def test_a_bad_port_is_refused_with_exit_2(runs, port):
    status, lines, _ = error_of(str(runs), "--port", port)
    assert status == 2 and "expected a port from 0 to 65535" in lines[-1]


def test_without_plotly_serve_says_which_extra_to_install(runs):
    hidden = "import sys; sys.modules['plotly'] = None\n" + CLI
    status, lines, modules = error_of(str(runs), code=hidden)
    assert status == 2
    assert lines == ["experiment-runner serve: error: needs the serve extra: pip install 'experiment-runner[serve]'"]


def test_serving_imports_nothing_heavy_nor_the_runner_nor_plotly(runs):
    code = ("import sys, urllib.request\nfrom experiment_runner.serve import serve\n"
            "with serve(sys.argv[1]) as server:\n"
            "    for path in ('api/runs', 'api/run?run=sweep', 'api/results?run=sweep&sort=acc',\n"
            "                 'api/experiment?run=sweep&id=1', 'api/failures?run=sweep', 'static/plotly.min.js'):\n"
            "        urllib.request.urlopen(server.url + path).read()\n")
    status, _, err, modules = run_fresh(code, str(runs))
    assert status == 0, err
    assert not modules & {*HEAVY, "plotly", "omegaconf", "experiment_runner.runner", "experiment_runner.store",
                          "experiment_runner.report", "experiment_runner.launchers"}


def test_serve_help_lists_its_flags():
    status, out, _, _ = run_fresh(CLI, "serve", "--help")
    assert status == 0
    for flag in ("--host", "--port", "--token", "--open", "PATH"):
        assert flag in out
