"""backend=slurm's settings: the ``slurm_*`` keys read and checked, and the sbatch parameters they make.

Pure data: nothing here reaches Slurm or imports submitit, so validating a
run's settings (``--list`` included) stays fast and side-effect free.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..settings import RunSettings, whole_number

#: Minutes added to ``ceil(timeout / 60)`` for the job's time limit: starting Python, saving the result.
TIME_LIMIT_MARGIN = 2

#: sbatch options the backend sets itself (log paths, the array, the name it cancels by, the directory).
RESERVED_SBATCH_OPTIONS = frozenset({"output", "error", "array", "open-mode", "job-name", "chdir"})


@dataclass(frozen=True)
class SlurmOptions:
    """The ``slurm_*`` settings, checked."""

    partition: Optional[str] = None
    time_limit: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    additional_parameters: Dict[str, Any] = field(default_factory=dict)
    setup: Tuple[str, ...] = ()
    array_size: int = 1000
    array_parallelism: int = 256
    poll_interval: float = 5.0
    job_name: str = "experiment-runner"

    @classmethod
    def from_settings(cls, settings: RunSettings) -> "SlurmOptions":
        options = {k: v for k, v in settings.options.items() if v is not None}
        defaults = cls()
        time_limit = options.get("slurm_time_limit")
        return cls(
            partition=_text(options, "slurm_partition"),
            time_limit=None if time_limit is None else str(time_limit),
            account=_text(options, "slurm_account"),
            qos=_text(options, "slurm_qos"),
            additional_parameters=_sbatch_options(options.get("slurm_additional_parameters")),
            setup=_lines(options.get("slurm_setup", [])),
            array_size=whole_number(options.get("slurm_array_size", defaults.array_size), "slurm_array_size", 1),
            array_parallelism=whole_number(
                options.get("slurm_array_parallelism", defaults.array_parallelism), "slurm_array_parallelism", 1),
            poll_interval=_positive(options.get("slurm_poll_interval", defaults.poll_interval), "slurm_poll_interval"),
            job_name=_job_name(options) or defaults.job_name,
        )


def _text(options: Mapping, key: str) -> Optional[str]:
    value = options.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _job_name(options: Mapping) -> Optional[str]:
    name = _text(options, "slurm_job_name")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"slurm_job_name may hold letters, digits, '_', '.' and '-' only, got {name!r}")
    return name


def _positive(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{key} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _lines(value: Any) -> Tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"slurm_setup must be a list of shell lines, got {value!r}")
    return tuple(value)


def _sbatch_options(value: Any) -> Dict[str, Any]:
    """``slurm_additional_parameters``: sbatch long options without the dashes, e.g. ``{"constraint": "a100"}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(
            "slurm_additional_parameters must be a dict of sbatch options, like {'constraint': 'a100'}, "
            f"got {value!r}"
        )
    reserved = sorted(k for k in value if k.replace("_", "-").lstrip("-") in RESERVED_SBATCH_OPTIONS)
    if reserved:
        raise ConfigError(
            f"slurm_additional_parameters sets {', '.join(reserved)}, which backend=slurm sets itself "
            "(logs go to each experiment's folder, jobs run in the driver's directory and are cancelled by name)"
        )
    return dict(value)


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_limit_minutes(text: str) -> float:
    """Minutes of a Slurm time limit: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.

    ``0``, ``UNLIMITED`` and ``INFINITE`` mean no limit (infinity).
    """
    if text.strip().upper() in ("UNLIMITED", "INFINITE"):
        return math.inf
    match = _TIME.match(text.strip())
    if not match:
        raise ConfigError(
            f"slurm_time_limit={text!r} is not a Slurm time limit: give minutes (90) or a time like "
            "'1:30:00' (hours:minutes:seconds) or '2-00:00:00' (days-hours:minutes:seconds)"
        )
    days, first, second, third = (int(part) if part else None for part in match.groups())
    if days is not None:
        minutes = days * 1440 + first * 60 + (second or 0) + (third or 0) / 60
    elif third is not None:
        minutes = first * 60 + second + third / 60
    else:
        minutes = first + (second or 0) / 60
    return minutes or math.inf


def job_time_limit(options: SlurmOptions, timeout: float) -> Optional[str]:
    """The ``--time`` of the jobs: slurm_time_limit as given, else derived from timeout, else none."""
    if options.time_limit is not None:
        minutes = time_limit_minutes(options.time_limit)
        if minutes * 60 < timeout:
            raise ConfigError(
                f"slurm_time_limit={options.time_limit!r} would stop experiments before their timeout of "
                f"{timeout:g} s: raise it, or leave it unset to derive it from timeout"
            )
        return options.time_limit
    if timeout:
        return str(math.ceil(timeout / 60) + TIME_LIMIT_MARGIN)
    return None


def sbatch_parameters(settings: RunSettings, options: SlurmOptions) -> Dict[str, Any]:
    """submitit's SlurmExecutor parameters for every job of the run (log paths are set per array)."""
    parameters: Dict[str, Any] = {
        "time": job_time_limit(options, settings.timeout),
        "cpus_per_task": max(1, math.ceil(settings.num_cpus)),
        "array_parallelism": options.array_parallelism,
        "use_srun": False,
        # submitit logs to stdout in the job: only its warnings, on stderr, belong in the experiment's logs.
        # SUBMITIT_LOG_LEVEL is submitit's own (commented, undocumented) switch; a submitit that ignores it
        # only adds its INFO lines to each experiment's stdout.log.
        "setup": ["export SUBMITIT_LOG_LEVEL=NOCONFIG", *options.setup],
    }
    optional = {
        "partition": options.partition,
        "account": options.account,
        "qos": options.qos,
        "gpus_per_node": math.ceil(settings.num_gpus) if settings.num_gpus else None,
        "mem": f"{math.ceil(settings.max_memory / 2**20)}M" if settings.max_memory else None,
    }
    parameters.update({k: v for k, v in optional.items() if v is not None})
    return parameters
