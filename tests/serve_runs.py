"""Real runs for the tests of ``experiment-runner serve``, and how to ask its server over HTTP.

A sweep over lr x depth with 2 repetitions whose accuracies are known, one
experiment that always fails, one that fails once and then finishes (it is
no failure), experiments that print and report intermediate metrics.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from experiment_runner import report_metrics, run_experiments

SRC = Path(__file__).resolve().parent.parent / "src"
TESTS = Path(__file__).resolve().parent
#: Accuracy of repetition 0 of each (lr, depth); repetition r adds 0.01 * r. lr=1.0, depth=2 diverges.
ACCURACY = {(0.001, 1): 0.50, (0.001, 2): 0.60, (0.01, 1): 0.70, (0.01, 2): 0.90, (0.1, 1): 0.65, (0.1, 2): 0.80,
            (1.0, 1): 0.30}
SWEEP = [{"lr": lr, "depth": depth, "model": {"name": "ridge"}} for lr in (0.001, 0.01, 0.1, 1.0) for depth in (1, 2)]
FAILING_ID = 7
BY_ACCURACY = [3, 5, 2, 4, 1, 0, 6]


def fit(cfg, _):
    print(f"fitting lr={cfg['lr']} depth={cfg['depth']} repetition {cfg['run_id']}")
    if (cfg["lr"], cfg["depth"]) not in ACCURACY:
        raise ValueError(f"diverged at lr={cfg['lr']}")
    for step in range(3):
        report_metrics(step, loss=cfg["lr"] / (step + 1))
    return ACCURACY[cfg["lr"], cfg["depth"]] + 0.01 * cfg["run_id"]


def post(cfg, accuracy):
    return {"acc": accuracy, "loss": cfg["lr"] * cfg["depth"]}


def make_sweep(out_path):
    """The sweep above, finished (backend single, 2 repetitions)."""
    run_experiments({"out_path": str(out_path), "fit": fit, "post": post, "repetitions": 2, "verbose": False},
                    SWEEP)
    return out_path


def fit_fails_once(cfg, _):
    marker = Path(cfg["out_path"]) / "attempted"
    if cfg["x"] == 1 and not marker.exists():
        marker.write_text("1")
        raise RuntimeError("first attempt fails")
    if cfg["x"] == 5:
        return 1 / 0
    if cfg["x"] >= 2:
        raise ValueError(f"cannot use {object()}")  # the same error but for the object's address
    return cfg["x"]


def make_failures(out_path):
    """Experiments 0 and 1 finish (1 after a failed attempt); 2, 3 and 4 fail for good with the same error but
    for a memory address in its message, 5 with another error."""
    run_experiments({"out_path": str(out_path), "fit": fit_fails_once, "post": lambda cfg, y: {"y": y},
                     "retries": 1, "verbose": False}, [{"x": x} for x in range(6)])
    return out_path


def start_blocked_run(out_path, flag, n=4, blocked=(2, 3)):
    """A run in another process whose experiments ``blocked`` wait while ``flag`` exists; returns the process
    once the run has recorded its first results."""
    flag.write_text("")
    cfgs = [{"x": x, "action": "sleep_while_flag" if x in blocked else "ok", "flag": str(flag)} for x in range(n)]
    code = ("import sys, json\nfrom experiment_runner import run_experiments\n"
            "stages = 'experiment_runner.testing.stages:'\n"
            "run_experiments({'out_path': sys.argv[1], 'pre': stages + 'pre', 'fit': stages + 'fit', "
            "'post': stages + 'post', 'verbose': False}, json.loads(sys.argv[2]))\n")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(errors_of(out_path), "wb") as errors:
        process = subprocess.Popen([sys.executable, "-c", code, str(out_path), json.dumps(cfgs)],
                                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])},
                                   stdout=subprocess.DEVNULL, stderr=errors)
    try:
        wait_for(lambda: lines(out_path / "results.jsonl") >= n - len(blocked), what="the first results")
    except AssertionError:
        process.kill()
        process.wait()
        raise AssertionError(errors_of(out_path).read_text()) from None
    return process


def errors_of(out_path):
    """Where the run's process writes its stderr (beside its out_path)."""
    return out_path.parent / f"{out_path.name}.stderr"


def lines(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for(condition, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def get(url, headers=None):
    """(status, JSON answer or bytes, headers) of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, body, got = answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as error:
        status, body, got = error.code, error.read(), error.headers
    if got.get("Content-Type", "").startswith("application/json"):
        return status, json.loads(body), got
    return status, body, got


def api(serving, path, **query):
    """The JSON answer of ``/api/<path>?<query>``, which must be 200."""
    status, answer, _ = get(serving.url + f"api/{path}?" + urllib.parse.urlencode(query, doseq=True))
    assert status == 200, answer
    return answer
