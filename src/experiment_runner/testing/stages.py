"""Stage functions of the contract suite.

They live in the package, not in a test file, so that wherever a backend runs
its experiments (a worker process, a Ray node, an SSH machine, a Slurm job, a
Dask worker) they import by name like any installed code. What ``fit`` does is
chosen by the experiment's config: ``action`` is one of ok, raise, interrupt
(a KeyboardInterrupt of the stage's own), sleep, exit, segfault, kill, print,
flaky, fail_if_flag, sleep_while_flag, block, wait_for_result, report_metrics,
until_pruned (reports metrics until told to stop early), pruned and optuna_pruned (stop early at once),
count_at_once (a rendezvous that counts the experiments running at once).
"""
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

#: How long a blocked experiment waits at most, so that a case that fails never leaves one running for good.
BLOCK_SECONDS = 60


def pre(cfg: Dict[str, Any]) -> Dict[str, Any]:
    folder = Path(cfg["out_path"])
    (folder / "pre.txt").write_text(f"{cfg['experiment_id']} {cfg['run_id']}\n")
    return {"x": cfg.get("x", 0), "folder_existed": folder.is_dir()}


def fit(cfg: Dict[str, Any], returned_by_pre: Dict[str, Any]) -> Dict[str, Any]:
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
        if cfg.get("report"):  # each attempt reports its steps first
            report_steps(cfg)
        marker = Path(cfg["out_path"]) / "attempted"
        if not marker.exists():
            marker.write_text("1")
            raise RuntimeError("first attempt fails")
    if action == "sleep_while_flag":
        _wait_while(lambda: Path(cfg["flag"]).exists())
    if action == "block":
        block(Path(cfg["out_path"]), Path(cfg["flag"]), cfg.get("child", False))
    if action == "wait_for_result":
        wait_for_result(Path(cfg["out_path"]).parent / "results.jsonl", cfg["of"])
    if action == "report_metrics":
        report_steps(cfg)
    if action == "until_pruned":
        report_until_pruned()
    if action == "pruned":
        from .. import Pruned

        raise Pruned("the stage stopped early")
    if action == "optuna_pruned":
        raise OptunaTrialPruned("Trial was pruned at step 3.")
    if action == "count_at_once":
        count_at_once(Path(cfg["ledger"]), cfg["experiment_id"], cfg["slots"], cfg["total"])
    if action == "fail_if_flag" and Path(cfg["flag"]).exists():
        raise RuntimeError("flag file present")
    return {**returned_by_pre, "y": cfg.get("x", 0) * 2 + cfg["run_id"]}


def post(cfg: Dict[str, Any], returned_by_fit: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "y": returned_by_fit["y"],
        "folder_existed": returned_by_fit["folder_existed"],
        "run_id": cfg["run_id"],
    }


#: The steps at which the report_metrics action reports its metrics.
REPORTED_STEPS = 3


def report_steps(cfg: Dict[str, Any]) -> None:
    """Report ``loss`` = x / (step + 1) and the repetition's ``rep`` at each of the first REPORTED_STEPS steps."""
    from .. import report_metrics

    for step in range(REPORTED_STEPS):
        report_metrics(step, loss=cfg.get("x", 0) / (step + 1), rep=cfg["run_id"])


def report_until_pruned() -> None:
    """Report ``loss`` every 20 ms until should_prune() says stop (then raise Pruned), at most BLOCK_SECONDS."""
    from .. import Pruned, report_metrics, should_prune

    deadline = time.monotonic() + BLOCK_SECONDS
    step = 0
    while time.monotonic() < deadline:
        report_metrics(step, loss=1 / (step + 1))
        if should_prune():
            raise Pruned(f"pruned at step {step}")
        time.sleep(0.02)
        step += 1


class OptunaTrialPruned(Exception):
    """Stands for ``optuna.TrialPruned`` (told by its module and name), which this package does not import."""


OptunaTrialPruned.__name__ = OptunaTrialPruned.__qualname__ = "TrialPruned"
OptunaTrialPruned.__module__ = "optuna.exceptions"


def count_at_once(ledger: Path, experiment_id: int, slots: int, total: int) -> None:
    """Wait until ``slots`` experiments run at once, or all ``total`` have started; write the most seen running.

    Each experiment marks itself in ``ledger``/started and, while it runs
    here, in ``ledger``/running; ``ledger``/seen/<id> gets the most marks it
    saw in running. An experiment ends only once ``slots`` ran together (or
    none is left to start), so a backend that runs fewer at once makes the
    first ones wait, at most BLOCK_SECONDS, and write fewer than ``slots``.
    """
    running, started, seen = ledger / "running", ledger / "started", ledger / "seen"
    for folder in (running, started, seen):
        folder.mkdir(parents=True, exist_ok=True)
    (started / str(experiment_id)).touch()
    mark = running / str(experiment_id)
    mark.touch()
    most = 0

    def waiting() -> bool:
        nonlocal most
        most = max(most, len(os.listdir(running)))
        return most < slots and len(os.listdir(started)) < total

    _wait_while(waiting)
    mark.unlink()
    (seen / str(experiment_id)).write_text(str(most))


def block(folder: Path, flag: Path, child: bool) -> None:
    """Write this process's pid to ``folder``/pid, then add a beat to ``folder``/beats every 20 ms while ``flag`` is.

    With ``child``, first start ``sleep 1000`` (pid in child.pid), as a
    simulator would: what an experiment starts must stop with it.
    """
    started = subprocess.Popen(["sleep", "1000"]) if child else None
    if started is not None:
        (folder / "child.pid").write_text(str(started.pid))
    (folder / "pid").write_text(str(os.getpid()))

    def beat() -> bool:
        with open(folder / "beats", "a") as beats:
            beats.write(".")
        time.sleep(0.02)
        return flag.exists()

    try:
        _wait_while(beat)
    finally:
        if started is not None:
            started.kill()
            started.wait()


def wait_for_result(results: Path, experiment_id: int) -> None:
    """Return once ``results`` holds a line of ``experiment_id``; fail if it does not within 30 s."""
    if not _wait_while(lambda: experiment_id not in _finished(results), seconds=30):
        raise RuntimeError(f"experiment {experiment_id} did not finish while this one ran")


def _finished(results: Path) -> List[int]:
    """The experiment ids of the complete lines of ``results`` (the driver may be writing the last one)."""
    if not results.exists():
        return []
    lines = results.read_text().split("\n")[:-1]
    return [json.loads(line)["experiment_id"] for line in lines]


def _wait_while(condition: Any, seconds: float = BLOCK_SECONDS) -> bool:
    """Poll ``condition`` until it is false (True) or ``seconds`` have passed (False)."""
    deadline = time.monotonic() + seconds
    while condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def post_value(cfg: Dict[str, Any], returned_by_fit: Any) -> Dict[str, Any]:
    return {"value": returned_by_fit}


def post_report(cfg: Dict[str, Any], returned_by_fit: Any) -> Any:
    return returned_by_fit


def fit_digest(cfg: Dict[str, Any], returned_by_pre: Any) -> str:
    """The SHA-256 of cfg["api"]["key"], a secret that must reach the stage in clear; with ``fail``, in an error
    that quotes the key too (as a library's error may quote a URL holding it)."""
    digest = hashlib.sha256(cfg["api"]["key"].encode()).hexdigest()
    if cfg.get("fail"):
        raise RuntimeError(f"failing on purpose with key {cfg['api']['key']}; the key's digest is {digest}")
    return digest


def fit_only(cfg: Dict[str, Any], returned_by_pre: Any) -> int:
    assert returned_by_pre is None
    return 42


def fit_cwd(cfg: Dict[str, Any], returned_by_pre: Any) -> Tuple[str, str]:
    """The working directory the stages run in, and the out_path they are given."""
    open("written-here.txt", "w").close()
    return os.getcwd(), cfg["out_path"]


def post_cwd(cfg: Dict[str, Any], returned_by_fit: Tuple[str, str]) -> Dict[str, str]:
    cwd, out_path = returned_by_fit
    return {"cwd": cwd, "out_path": out_path}


def fit_disk_filler(cfg: Dict[str, Any], returned_by_pre: Any) -> Dict[str, Any]:
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
        _wait_while(lambda: Path(cfg["block"]).exists())
    return {"y": cfg.get("x")}


def fill_disk(ballast: str) -> None:
    """Write zeros to the file ``ballast`` until its disk has no byte left."""
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def _wait_for_file(path: Optional[str]) -> None:
    if path:
        _wait_while(lambda: not Path(path).exists(), seconds=30)
