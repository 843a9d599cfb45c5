"""backend=slurm's settings as the backend uses them, and the sbatch parameters they make.

The settings are declared and checked in launchers/options.py; this module
only turns them into what the session hands submitit. Pure data: nothing here
reaches Slurm or imports submitit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..settings import RunSettings
from . import options as declared


@dataclass(frozen=True)
class SlurmOptions:
    """The ``slurm_*`` settings as the backend uses them."""

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
        """The slurm_* settings, typed and checked by their declaration (launchers/options.py)."""
        given = declared.check_options(declared.SlurmOptions, settings)
        defaults = cls()
        return cls(
            partition=given.slurm_partition,
            time_limit=None if given.slurm_time_limit is None else str(given.slurm_time_limit),
            account=given.slurm_account,
            qos=given.slurm_qos,
            additional_parameters=dict(given.slurm_additional_parameters or {}),
            setup=tuple(given.slurm_setup or ()),
            array_size=given.slurm_array_size or defaults.array_size,
            array_parallelism=given.slurm_array_parallelism or defaults.array_parallelism,
            poll_interval=float(given.slurm_poll_interval or defaults.poll_interval),
            job_name=given.slurm_job_name or defaults.job_name,
        )


def sbatch_parameters(settings: RunSettings, options: SlurmOptions) -> Dict[str, Any]:
    """submitit's SlurmExecutor parameters for every job of the run (log paths are set per array)."""
    parameters: Dict[str, Any] = {
        "time": declared.job_time_limit(options.time_limit, settings.timeout),
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
