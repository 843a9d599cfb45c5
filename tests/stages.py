"""Stage functions of the tests beyond the contract suite's (experiment_runner.testing.stages).

They live in an importable module (not in a test file) so that worker
processes and remote hosts can import them by name. ``fit`` is the contract
suite's: what it does is chosen by the experiment's config (its ``action``).
"""
import hashlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from experiment_runner.testing import stages as contract
from experiment_runner.testing.stages import (  # noqa: F401  (the tests name them as stages.<name>)
    fill_disk, fit_cwd, fit_digest, fit_disk_filler, fit_only, post_cwd, post_report, post_value)

if TYPE_CHECKING:
    from omegaconf import DictConfig


# The contract suite's stages, under this module's name: run.yaml records them as stages:pre, stages:fit, ...


def pre(cfg):
    return contract.pre(cfg)


def fit(cfg, returned_by_pre):
    return contract.fit(cfg, returned_by_pre)


def post(cfg, returned_by_fit):
    return contract.post(cfg, returned_by_fit)


def fit_looks_for_its_secret(cfg, returned_by_pre):
    """While it runs: the run's files that hold cfg["api"]["key"] in clear, and the environment variables that do."""
    key = cfg["api"]["key"]
    root = Path(cfg["out_path"]).parent
    files = [str(p) for p in root.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    variables = [name for name, value in os.environ.items() if key in value]
    return {"digest": hashlib.sha256(key.encode()).hexdigest(), "files": files, "variables": variables}


# Stages for the process backends' own tests (test_process_pool.py).

#: OMP_NUM_THREADS as this module saw it when imported: a worker's thread limit
#: must be in place before user code (and the BLAS it loads) is imported.
OMP_AT_IMPORT = os.environ.get("OMP_NUM_THREADS")


def fit_report(cfg, returned_by_pre):
    """Record this process and its environment; optionally wait for company, a flag file, or crash once.

    cfg keys: ``variables`` (environment variables to report), ``rendezvous``
    (a folder: wait until ``parties`` experiments are in it at once, at most ``wait`` seconds; ``met`` in
    the scores says whether they came), ``flag``
    (block while this file exists, with a child process ``sleep 1000`` whose pid
    is in child.pid), ``crash_once`` (os._exit(3) on the first attempt),
    ``interrupt`` (raise KeyboardInterrupt, as a stage may itself).
    """
    folder = Path(cfg["out_path"])
    child = _start_sleeping_child(folder) if "flag" in cfg and Path(cfg["flag"]).exists() else None
    (folder / "pid").write_text(str(os.getpid()))
    with open(folder / "attempts", "a") as attempts:
        attempts.write("1\n")
    if cfg.get("crash_once") and len((folder / "attempts").read_text().splitlines()) == 1:
        os._exit(3)
    if cfg.get("interrupt"):
        raise KeyboardInterrupt("raised by the stage")
    met = _rendezvous(Path(cfg["rendezvous"]), cfg["experiment_id"], cfg.get("parties", 2),
                      cfg.get("wait", 30)) if "rendezvous" in cfg else None
    deadline = time.monotonic() + 60
    while "flag" in cfg and Path(cfg["flag"]).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if child is not None:
        child.kill()
        child.wait()
    report = {name: os.environ.get(name) for name in cfg.get("variables", [])}
    return {**report, "pid": os.getpid(), "omp_at_import": OMP_AT_IMPORT, "met": met}


def _start_sleeping_child(folder):
    """A process the experiment starts, as a simulator would; its pid goes to child.pid."""
    import subprocess

    child = subprocess.Popen(["sleep", "1000"])
    (folder / "child.pid").write_text(str(child.pid))
    return child


def _rendezvous(folder, experiment_id, parties, wait=30):
    """Wait (at most ``wait`` seconds) until ``parties`` experiments are here; whether they all came."""
    folder.mkdir(exist_ok=True)
    (folder / str(experiment_id)).write_text("here")
    deadline = time.monotonic() + wait
    while len(list(folder.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(list(folder.iterdir())) >= parties


def fit_payload(cfg, returned_by_pre):
    """Sleep cfg['sleep'] seconds; report the length of cfg['payload'] and reply with cfg['reply_bytes'] bytes."""
    time.sleep(cfg.get("sleep", 0))
    return {"payload": len(cfg.get("payload", "")), "reply": "r" * cfg.get("reply_bytes", 0)}


def fit_allocate(cfg, returned_by_pre):
    """Ask for cfg['bytes'] bytes (calloc: pages are not touched if the limit does not stop it)."""
    return len(bytes(cfg["bytes"]))


def fit_hang(cfg, returned_by_pre):
    """Start a child process, then hang: in time.sleep, or in a C call with every signal blocked."""
    import subprocess

    child = subprocess.Popen(["sleep", "120"])
    (Path(cfg["out_path"]) / "child.pid").write_text(str(child.pid))
    if cfg["how"] == "c-call-ignoring-signals":
        import ctypes

        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        ctypes.CDLL(None).sleep(120)
    time.sleep(120)


def fit_c_output(cfg, returned_by_pre):
    """Write below Python: straight to descriptors 1 and 2, and from a child process."""
    os.write(1, b"from descriptor 1\n")
    os.write(2, b"from descriptor 2\n")
    os.system("echo from a child process")
    return 1


def fit_chdir(cfg, returned_by_pre):
    """Move to another directory and stay there."""
    os.chdir(cfg["to"])
    return 1


def fit_with_child(cfg, returned_by_pre):
    """fit_report after starting ``sleep 1000``, whose pid goes to child.pid.

    cfg key ``own_session``: start it in a session (and process group) of its own, as daemons do.
    """
    import subprocess

    child = subprocess.Popen(["sleep", "1000"], start_new_session=cfg.get("own_session", False))
    (Path(cfg["out_path"]) / "child.pid").write_text(str(child.pid))
    return fit_report(cfg, returned_by_pre)


def post_reprs(cfg, returned_by_fit):
    """The repr of each of cfg's parameters, as the stage received them (a float NaN, an int key)."""
    return {key: repr(value) for key, value in cfg.items() if key not in ("experiment_id", "run_id", "out_path")}


def fit_writes_to_output_dir(cfg: "DictConfig"):
    """A Hydra task in the lightning-hydra-template's way: its files go to cfg.paths.output_dir."""
    with open(os.path.join(cfg.paths.output_dir, "checkpoint.txt"), "w") as checkpoint:
        checkpoint.write(str(cfg.lr))
    return cfg.paths.output_dir, cfg.paths.work_dir, cfg.paths.log_dir


def fit_fails_once_or_waits_for_a_retry(cfg, returned_by_pre):
    """Record this worker's pid in ``<shared>/pids``; then fail once or, ``waits``, wait for that retry.

    The first attempt of an experiment without ``waits`` raises once the
    other experiment runs too (two pids), its second attempt leaves
    ``<shared>/retried``. With ``waits`` the stage waits (at
    most 10 s) for that file: whether it saw it says whether the retry ran
    while this experiment was still running.
    """
    shared = Path(cfg["shared"])
    with open(shared / "pids", "a") as pids:
        pids.write(f"{os.getpid()}\n")
    if cfg.get("waits"):
        deadline = time.monotonic() + 10
        while not (shared / "retried").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return {"pid": os.getpid(), "saw_the_retry": (shared / "retried").exists()}
    attempts = Path(cfg["out_path"]) / "attempts"
    with open(attempts, "a") as record:
        record.write("1\n")
    if len(attempts.read_text().splitlines()) == 1:
        _wait_for_lines(shared / "pids", 2)
        raise RuntimeError("the first attempt fails")
    (shared / "retried").write_text(str(os.getpid()))
    return {"pid": os.getpid()}


def _wait_for_lines(path, count):
    deadline = time.monotonic() + 10
    while len(path.read_text().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def fit_tells_the_driver(cfg, returned_by_pre):
    """Send the driver a ``progress`` message for each of cfg's ``steps`` before returning."""
    from experiment_runner.channel import tell_driver

    for step in range(cfg["steps"]):
        tell_driver("progress", {"step": step, "loss": 1.0 / (step + 1)})
    return step


def fit_prints_then(cfg, returned_by_pre):
    """Print a line from Python (no flush) and one below it, then end as cfg['then'] says.

    ``then``: ``return``, ``raise``, ``exit`` (os._exit), ``segfault``, ``hang``, ``wait`` (while cfg['flag']
    exists), or ``crash_once`` (os._exit on the first attempt only). With ``cd``, it first moves to that folder.
    """
    then = cfg.get("then", "return")
    if "cd" in cfg:  # a stage that moves elsewhere before it prints
        os.chdir(cfg["cd"])
    print(f"python {cfg['experiment_id']}")
    os.write(2, f"descriptor {cfg['experiment_id']}\n".encode())
    if then == "crash_once":
        marker = Path(cfg["out_path"]) / "crashed"
        then = "return" if marker.exists() else "exit"
        marker.touch()
    if then == "raise":
        raise ValueError("failed after printing")
    if then == "exit":
        os._exit(3)
    if then == "segfault":
        import ctypes

        ctypes.string_at(0)
    if then == "hang":
        time.sleep(120)
    while then == "wait" and Path(cfg["flag"]).exists():
        time.sleep(0.02)
    return None


def fit_breaks_the_workers_reading(cfg, returned_by_pre):
    """At cfg['at'], make the pool worker's next read of the driver's messages fail, as a MemoryError would."""
    if cfg["i"] == cfg["at"]:
        from experiment_runner.launchers import _pool_worker

        def failing(sock):
            raise MemoryError("no memory for the next message")

        _pool_worker.receive_message = failing
        time.sleep(0.2)
    return cfg["i"]
