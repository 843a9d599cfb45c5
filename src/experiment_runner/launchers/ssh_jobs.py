"""backend=malocher's job folder in malocher_dir: what the machines read from the shared filesystem.

The driver writes the run's stages and its working context once, then one
job file per experiment it hands to a machine; the worker there
(:mod:`.ssh_worker`) reads them and writes each experiment's outcome next to
its job file.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Set

from ..experiment import Experiment, Stages
from ..serialization import write_atomic
from .base import pickle_stages
from .ssh_worker import LaunchFolder


def working_directory() -> str:
    """The working directory as the shell names it ($PWD), which may be a symlink that other machines share."""
    logical = os.environ.get("PWD", "")
    try:
        if os.path.isabs(logical) and os.path.samefile(logical, os.curdir):
            return logical
    except OSError:
        pass
    return os.getcwd()


def user_import_paths() -> List[str]:
    """The driver's import paths that hold the user's own code: not the standard library, not installed packages."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    cwd = working_directory()
    paths: List[str] = []
    for entry in sys.path:
        path = os.path.normpath(os.path.join(cwd, entry))
        real = Path(path).resolve()
        installed = {"site-packages", "dist-packages"} & set(real.parts)
        if real.is_dir() and not installed and not any(p == real or p in real.parents for p in prefixes):
            if path not in paths:
                paths.append(path)
    return paths


class Jobs:
    """The run's folder in malocher_dir: made race-free, kept afterwards only for what failed last."""

    def __init__(self, directory: str, stages: Stages):
        base = Path(working_directory(), Path(directory).expanduser())
        base.mkdir(parents=True, exist_ok=True)
        prefix = f"{socket.gethostname()}-{os.getpid()}-"
        self.folder = LaunchFolder(Path(tempfile.mkdtemp(prefix=prefix, dir=base)))
        self.failed: Set[int] = set()
        try:
            context = {"cwd": working_directory(), "sys_path": user_import_paths()}
            write_atomic(self.folder.context, json.dumps(context))
            self.folder.stages.write_bytes(pickle_stages(stages, "malocher"))
        except BaseException:
            shutil.rmtree(self.folder.root, ignore_errors=True)
            raise

    @property
    def root(self) -> Path:
        return self.folder.root

    def write(self, experiment: Experiment) -> None:
        """The experiment's job file, its secrets as ``***``: the worker receives them with the command to run it.

        A retry writes it again and removes the outcome of the attempt before.
        """
        self.folder.job(experiment.experiment_id).mkdir(exist_ok=True)
        self.folder.outcome_file(experiment.experiment_id).unlink(missing_ok=True)
        job = dataclasses.asdict(experiment.without_secret_values())
        write_atomic(self.folder.experiment_file(experiment.experiment_id), json.dumps(job))  # NaN stays NaN

    def note(self, experiment_id: int, ok: bool) -> None:
        """Remember whether the experiment's last attempt failed: its job folder is kept then."""
        if ok:
            self.failed.discard(experiment_id)
        else:
            self.failed.add(experiment_id)

    def clean(self, keep_all: bool) -> Optional[Path]:
        """Remove what is not kept; return the launch folder if anything in it is."""
        if keep_all:
            return self.root
        if not self.failed:
            shutil.rmtree(self.root, ignore_errors=True)
            return None
        for job in self.root.iterdir():
            if job.is_dir() and not (job.name.isdigit() and int(job.name) in self.failed):
                shutil.rmtree(job, ignore_errors=True)
        return self.root
