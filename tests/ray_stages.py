"""Stage functions for backend=ray's own tests (test_ray.py).

Like stages.py, this module is on the test process's sys.path only: the Ray
workers cannot import it, so these tests also prove that the launcher ships
such stage code to the workers.
"""
import os
import time
from pathlib import Path

import ray

from ray_cluster import NODE_VARIABLE


def fit_where(cfg, returned_by_pre):
    """Where the experiment ran: the test node's marker variable, Ray's node id, an optional variable."""
    return {
        "node": os.environ.get(NODE_VARIABLE),
        "node_id": ray.get_runtime_context().get_node_id(),
        "variable": os.environ.get(cfg.get("variable", ""), None),
    }


def fit_interval(cfg, returned_by_pre):
    """Sleep a moment and report when it started and ended (wall clock, comparable across processes)."""
    started = time.time()
    time.sleep(cfg.get("seconds", 0.2))
    return {"started": started, "ended": time.time()}


def fit_wait_for_flag(cfg, returned_by_pre):
    """Write this worker's pid, then block while cfg's flag file (if any) exists, a minute at most.

    cfg's ``poll`` (default 0.05 s) is how often it looks: a short one ends all experiments nearly at once.
    """
    written = Path(cfg["out_path"]) / "pid.part"  # renamed whole: a worker stopped while writing leaves no empty pid
    written.write_text(str(os.getpid()))
    os.replace(written, written.with_suffix(""))
    deadline = time.monotonic() + 60
    while "flag" in cfg and Path(cfg["flag"]).exists() and time.monotonic() < deadline:
        time.sleep(cfg.get("poll", 0.05))
    return {"waited": True}


def post_identity(cfg, returned_by_fit):
    return returned_by_fit


def fit_retry_race(cfg, returned_by_pre):
    """Two roles racing a retry.

    ``long``: wait while cfg's flag exists (``max_wait`` s at most); scores whether the flag was removed meanwhile.
    ``flaky``: the first attempt notes its Ray job in cfg's marker and raises; the retry removes the flag,
    releasing the long experiment, and scores both attempts' Ray jobs.
    """
    flag, job_id = Path(cfg["flag"]), ray.get_runtime_context().get_job_id()
    if cfg["role"] == "long":
        deadline = time.monotonic() + cfg["max_wait"]
        while flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"released": not flag.exists()}
    marker = Path(cfg["marker"])
    if not marker.exists():
        marker.write_text(job_id)
        raise RuntimeError("the first attempt fails")
    flag.unlink()
    return {"first_job": marker.read_text(), "retry_job": job_id}
