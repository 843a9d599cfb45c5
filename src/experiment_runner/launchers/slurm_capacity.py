"""backend=slurm: how many of the run's jobs the cluster can run at once, as ``sinfo`` sees it when the run starts.

An adaptive search keeps that many trials in flight (Session.slots). It is
counted from the CPUs idle on the responding nodes of the run's partition
(Slurm's default partition when none is given), ``cpus_per_task`` to a job,
and at most ``slurm_array_parallelism``: the jobs of a run that other users'
jobs leave room for, not the partition's size, so that a search on a busy
shared cluster does not queue more trials than can start (each one queued is a
trial the sampler asked without the outcomes of those before it).
"""
from __future__ import annotations

import subprocess
from typing import Iterable, Optional

__all__ = ["slots_free", "count_free_slots"]


def slots_free(partition: Optional[str], cpus_per_task: int, most: int) -> Optional[int]:
    """How many jobs of ``cpus_per_task`` CPUs can start now, at most ``most``; None when sinfo does not answer."""
    command = ["sinfo", "--noheader", "--Node", "--responding", "--format=%N|%C|%P"]
    if partition:
        command.append(f"--partition={partition}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    slots = count_free_slots(done.stdout.splitlines(), cpus_per_task, default_only=not partition)
    return None if slots is None else max(1, min(most, slots))


def count_free_slots(lines: Iterable[str], cpus_per_task: int, default_only: bool) -> Optional[int]:
    """The jobs that fit in the idle CPUs of ``sinfo --Node --format=%N|%C|%P`` lines (``node|A/I/O/T|partition``),
    each node once; ``default_only``: the nodes of the default partition (``debug*``). None: no such node."""
    idle = {}
    for line in lines:
        parts = line.strip().split("|")
        if len(parts) != 3 or (default_only and not parts[2].endswith("*")):
            continue
        counts = parts[1].split("/")
        if len(counts) == 4 and counts[1].isdigit():
            idle[parts[0]] = int(counts[1])
    if not idle:
        return None
    return sum(cpus // max(1, cpus_per_task) for cpus in idle.values())
