"""Stage functions the tests run on every backend.

They live in an importable module (not in a test file) so that worker
processes and remote hosts can import them by name. What ``fit`` does is
chosen by the experiment's config: ``action`` is one of ok, raise, interrupt
(a KeyboardInterrupt of the stage's own), sleep, exit, segfault, kill, print,
flaky, fail_if_flag, sleep_while_flag.
"""
import hashlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig


def pre(cfg):
    folder = Path(cfg["out_path"])
    (folder / "pre.txt").write_text(f"{cfg['experiment_id']} {cfg['run_id']}\n")
    return {"x": cfg.get("x", 0), "folder_existed": folder.is_dir()}


def fit(cfg, returned_by_pre):
    action = cfg.get("action", "ok")
    if action == "raise":
        raise ValueError(f"bad x={cfg.get('x')}")
    if action == "interrupt":
        raise KeyboardInterrupt(f"raised by the stage at x={cfg.get('x')}")
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


def post_value(cfg, returned_by_fit):
    return {"value": returned_by_fit}


def fit_digest(cfg, returned_by_pre):
    """The SHA-256 of cfg["api"]["key"], a secret that must reach the stage in clear; with ``fail``, in an error."""
    digest = hashlib.sha256(cfg["api"]["key"].encode()).hexdigest()
    if cfg.get("fail"):
        raise RuntimeError(f"failing on purpose; the key's digest is {digest}")
    return digest


def fit_looks_for_its_secret(cfg, returned_by_pre):
    """While it runs: the run's files that hold cfg["api"]["key"] in clear, and the environment variables that do."""
    key = cfg["api"]["key"]
    root = Path(cfg["out_path"]).parent
    files = [str(p) for p in root.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    variables = [name for name, value in os.environ.items() if key in value]
    return {"digest": hashlib.sha256(key.encode()).hexdigest(), "files": files, "variables": variables}


def fit_only(cfg, returned_by_pre):
    assert returned_by_pre is None
    return 42


# Stages for the process backends' own tests (test_process_pool.py).

#: OMP_NUM_THREADS as this module saw it when imported: a worker's thread limit
#: must be in place before user code (and the BLAS it loads) is imported.
OMP_AT_IMPORT = os.environ.get("OMP_NUM_THREADS")


def fit_report(cfg, returned_by_pre):
    """Record this process and its environment; optionally wait for company, a flag file, or crash once.

    cfg keys: ``variables`` (environment variables to report), ``rendezvous``
    (a folder: wait until ``parties`` experiments are in it at once), ``flag``
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
    if "rendezvous" in cfg:
        _rendezvous(Path(cfg["rendezvous"]), cfg["experiment_id"], cfg.get("parties", 2))
    deadline = time.monotonic() + 60
    while "flag" in cfg and Path(cfg["flag"]).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if child is not None:
        child.kill()
        child.wait()
    report = {name: os.environ.get(name) for name in cfg.get("variables", [])}
    return {**report, "pid": os.getpid(), "omp_at_import": OMP_AT_IMPORT}


def _start_sleeping_child(folder):
    """A process the experiment starts, as a simulator would; its pid goes to child.pid."""
    import subprocess

    child = subprocess.Popen(["sleep", "1000"])
    (folder / "child.pid").write_text(str(child.pid))
    return child


def _rendezvous(folder, experiment_id, parties):
    folder.mkdir(exist_ok=True)
    (folder / str(experiment_id)).write_text("here")
    deadline = time.monotonic() + 30
    while len(list(folder.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.01)


def post_report(cfg, returned_by_fit):
    return returned_by_fit


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


def fit_cwd(cfg, returned_by_pre):
    """The working directory the stages run in, and the out_path they are given."""
    open("written-here.txt", "w").close()
    return os.getcwd(), cfg["out_path"]


def post_cwd(cfg, returned_by_fit):
    cwd, out_path = returned_by_fit
    return {"cwd": cwd, "out_path": out_path}


# Stages for the full-disk tests (test_disk_full.py).


def fit_disk_filler(cfg, returned_by_pre):
    """Fill a disk, or block, or just return x (as ``y``).

    cfg keys: ``fill_x`` (the experiment whose x it is fills the disk holding
    ``ballast`` to the last byte, once: ``marker``, on another disk, remembers
    it; first it waits for the file ``after``, if given), ``block`` (write this
    process's id to ``pid_file``, then wait while the file ``block`` exists).
    """
    if cfg.get("x") == cfg.get("fill_x") and not Path(cfg["marker"]).exists():
        Path(cfg["marker"]).write_text("filled")
        _wait_for_file(cfg.get("after"))
        fill_disk(cfg["ballast"])
    if "block" in cfg:
        Path(cfg["pid_file"]).write_text(str(os.getpid()))
        deadline = time.monotonic() + 60
        while Path(cfg["block"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return {"y": cfg.get("x")}


def fill_disk(ballast):
    """Write zeros to the file ``ballast`` until its disk has no byte left."""
    import errno

    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def _wait_for_file(path):
    deadline = time.monotonic() + 30
    while path and not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


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
