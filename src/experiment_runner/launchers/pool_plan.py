"""Planning backend=multiprocessing's pool from the settings, apart from running it (process_pool.py).

How many workers, each worker's thread limit (OMP_NUM_THREADS and the like)
and GPU slot (CUDA_VISIBLE_DEVICES), the limits per experiment, and the
FewerCPUsWarning when num_cpus asks for more CPUs than this machine has.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError, ExperimentRunnerWarning, stacklevel_of_the_caller
from ..settings import RunSettings, whole_number
from .isolation import usable_cpus

#: Environment variables that cap the thread pools of BLAS and OpenMP libraries.
THREAD_LIMIT_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)


class FewerCPUsWarning(ExperimentRunnerWarning):
    """num_cpus asks for more CPUs than this machine can give one experiment; the run goes on with fewer."""


@dataclass(frozen=True)
class PoolPlan:
    """The pool a run gets: its size, each worker's thread limit and GPU slot, the limits per experiment."""

    num_workers: int
    threads: int
    #: CUDA_VISIBLE_DEVICES of each worker slot; empty when experiments use no GPU.
    gpu_slots: Tuple[str, ...] = ()
    max_memory: Optional[int] = None
    #: Experiments a worker runs before it is replaced by a fresh process; 0 = no limit.
    max_experiments_per_worker: int = 0

    def environment(self, slot: int) -> Dict[str, str]:
        """The environment of the worker in ``slot``: the driver's, plus thread limits and its GPUs."""
        env = {**os.environ, **{name: str(self.threads) for name in THREAD_LIMIT_VARIABLES}}
        if self.gpu_slots:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu_slots[slot]
        return env


def plan_pool(settings: RunSettings) -> PoolPlan:
    """The pool ``settings`` ask for; a ConfigError for options that cannot be honoured."""
    options = settings.options
    per_worker = whole_number(options.get("max_experiments_per_worker", 0), "max_experiments_per_worker", 0)
    gpus = parse_gpus(options.get("gpus"), os.environ)
    slots = tuple(gpu_slots(gpus, settings.num_gpus))
    return PoolPlan(
        num_workers=count_workers(options.get("num_workers"), settings.num_cpus, slots, settings.num_gpus),
        threads=thread_limit(settings.num_cpus),
        gpu_slots=slots,
        max_memory=settings.max_memory,
        max_experiments_per_worker=per_worker,
    )


def thread_limit(num_cpus: float) -> int:
    """Threads per thread pool in each worker: num_cpus, at least 1, at most the usable CPUs (more oversubscribe)."""
    return max(1, min(int(num_cpus), usable_cpus()))


def warn_of_fewer_cpus(num_cpus: float, plan: PoolPlan) -> None:
    """Say what the run does when num_cpus asks for more CPUs than there are: a FewerCPUsWarning, before it starts."""
    usable = usable_cpus()
    if num_cpus <= usable:
        return
    warnings.warn(
        f"num_cpus={num_cpus:g} but this machine has {_count(usable, 'usable CPU')}: running "
        f"{_count(plan.num_workers, 'experiment')} at a time with thread pools of {plan.threads} "
        f"(OMP_NUM_THREADS={plan.threads}, ...)",
        FewerCPUsWarning, stacklevel=stacklevel_of_the_caller(),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def count_workers(given: Any, num_cpus: float, slots: Sequence[str], num_gpus: float) -> int:
    """num_workers as given, else usable CPUs // num_cpus; never more than there are GPU slots."""
    if given is None:
        workers = max(1, int(usable_cpus() // num_cpus))
        return min(workers, len(slots)) if slots else workers
    workers = whole_number(given, "num_workers", 1)
    if slots and workers > len(slots):
        raise ConfigError(
            f"num_workers={workers} with num_gpus={num_gpus:g} needs more GPUs than the {len(slots)} worker "
            f"slot(s) that gpus={','.join(_slot_ids(slots))} makes; lower num_workers or list more gpus"
        )
    return workers


def _slot_ids(slots: Sequence[str]) -> List[str]:
    return list(dict.fromkeys(gpu for slot in slots for gpu in slot.split(",")))


def parse_gpus(value: Any, environ: Mapping[str, str]) -> List[str]:
    """The device ids of option ``gpus`` (a list, or ``"0,1"``); by default those of CUDA_VISIBLE_DEVICES."""
    if value is None:
        value = environ.get("CUDA_VISIBLE_DEVICES", "")
    if isinstance(value, str):
        ids = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        ids = [str(value)]
    elif isinstance(value, SequenceABC) and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
        ids = [str(v).strip() for v in value]
    else:
        raise ConfigError(f"gpus must be a list of device ids like [0, 1] or a string like '0,1', got {value!r}")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"gpus lists a device twice: {value!r}")
    return ids


def gpu_slots(gpus: Sequence[str], num_gpus: float) -> List[str]:
    """CUDA_VISIBLE_DEVICES per worker slot: disjoint groups of ``num_gpus`` devices.

    A fraction below 1 shares a device: ``num_gpus=0.5`` puts two slots on each.
    """
    if not num_gpus:
        return []
    if not gpus:
        raise ConfigError(
            f"num_gpus={num_gpus:g} but no GPUs are known: set gpus (e.g. gpus=[0,1]) or CUDA_VISIBLE_DEVICES"
        )
    if num_gpus < 1:
        return [gpu for _ in range(int(1 / num_gpus)) for gpu in gpus]
    if num_gpus != int(num_gpus):
        raise ConfigError(f"num_gpus must be a whole number, or a fraction below 1 to share a GPU; got {num_gpus:g}")
    size = int(num_gpus)
    if size > len(gpus):
        raise ConfigError(f"num_gpus={size} but gpus has only {len(gpus)} device(s): {','.join(gpus)}")
    return [",".join(gpus[i * size:(i + 1) * size]) for i in range(len(gpus) // size)]
