"""backend=slurm: experiments as Slurm job arrays, submitted with submitit.

The ``slurm_*`` settings are declared in options.py (``SlurmOptions``) and
turned into sbatch parameters in slurm_options.py; the launcher opens one
:class:`~.slurm_session.SlurmSession` per run, which submits, watches and
cancels the run's jobs (slurm_session.py); what runs inside each job is in
slurm_job.py.

In the job, the experiment runs in a child process that the job watches:
the exact ``timeout`` (in seconds) is enforced there by killing the child.
Slurm's time limit (in minutes) is only the safety net: it is
``ceil(timeout / 60)`` plus ``TIME_LIMIT_MARGIN`` minutes unless
``slurm_time_limit`` is set.

Imports in the job. The job is a fresh interpreter (the driver's
``sys.executable``) started by slurmd in the driver's working directory and
environment. The stages travel pickled with cloudpickle (functions of
``__main__`` by value, others by reference) and the job puts the driver's
``sys.path`` in front of its own before loading them, so a stage module that
the driver imports from its script's folder, PYTHONPATH or pytest's
``pythonpath`` imports in the job too, as long as the path is on the shared
filesystem.
"""
from __future__ import annotations

from typing import Sequence

from ..experiment import Experiment, Stages
from ..settings import RunSettings
from . import options as declared
from .base import Launcher, Session
from .slurm_options import SlurmOptions, sbatch_parameters
from .slurm_session import SlurmSession


class SlurmLauncher(Launcher):
    name = "slurm"
    Options = declared.SlurmOptions

    def __init__(self, settings: RunSettings):
        super().__init__(settings)
        self.options = SlurmOptions.from_settings(settings)
        self.parameters = sbatch_parameters(settings, self.options)
        #: The size of the run's first array, which opening the session asks Slurm about.
        self.first_array_size = self.options.array_size

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Notes how large the first array will be (none without experiments), for the session to ask Slurm."""
        self.first_array_size = min(len(experiments), self.options.array_size)

    def session(self, stages: Stages) -> Session:
        return SlurmSession(self.settings, self.options, self.parameters, stages, self.first_array_size)
