"""Stage functions the tests run on every backend.

They live in an importable module (not in a test file) so that worker
processes and remote hosts can import them by name. What ``fit`` does is
chosen by the experiment's config: ``action`` is one of ok, raise, sleep,
exit, segfault, kill, print, flaky,
fail_if_flag, sleep_while_flag.
"""
import os
import signal
import sys
import time
from pathlib import Path


def pre(cfg):
    folder = Path(cfg["out_path"])
    (folder / "pre.txt").write_text(f"{cfg['experiment_id']} {cfg['run_id']}\n")
    return {"x": cfg.get("x", 0), "folder_existed": folder.is_dir()}


def fit(cfg, returned_by_pre):
    action = cfg.get("action", "ok")
    if action == "raise":
        raise ValueError(f"bad x={cfg.get('x')}")
    if action == "sleep":
        time.sleep(cfg.get("seconds", 60))
    if action == "exit":
        os._exit(3)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "segfault":
        import ctypes

        ctypes.string_at(0)
    if action == "print":
        print(f"hello from {cfg['experiment_id']}")
        print(f"warning from {cfg['experiment_id']}", file=sys.stderr)
    if action == "flaky":
        marker = Path(cfg["out_path"]) / "attempted"
        if not marker.exists():
            marker.write_text("1")
            raise RuntimeError("first attempt fails")
    if action == "sleep_while_flag":
        deadline = time.monotonic() + 60
        while Path(cfg["flag"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    if action == "fail_if_flag" and Path(cfg["flag"]).exists():
        raise RuntimeError("flag file present")
    return {**returned_by_pre, "y": cfg.get("x", 0) * 2 + cfg["run_id"]}


def post(cfg, returned_by_fit):
    return {
        "y": returned_by_fit["y"],
        "folder_existed": returned_by_fit["folder_existed"],
        "run_id": cfg["run_id"],
    }


def fit_only(cfg, returned_by_pre):
    assert returned_by_pre is None
    return 42
