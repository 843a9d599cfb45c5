"""backend=ray: experiments as Ray tasks, on an embedded local Ray or on a cluster.

This module only reads the options; everything that needs Ray lives in
``ray_session`` (and the modules it uses) and is imported when a session is
made, so that selecting another backend, or checking this one, never imports ray.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from ..errors import MissingDependencyError
from ..experiment import Experiment, Stages
from ..settings import RunSettings
from . import options as declared
from .base import Launcher, Session, pickle_stages
from .ray_options import RayOptions

__all__ = ["RayLauncher", "RayOptions"]


def _ray_initialized() -> bool:
    """Whether this process is connected to Ray already, without importing ray when it is not even imported."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


class RayLauncher(Launcher):
    """Runs each experiment as one Ray task; see the README section "Running on Ray".

    Its session holds this process's connection to Ray for the whole run,
    retries included: it starts the embedded Ray or connects to the cluster
    when opened, and shuts down or disconnects what it started when closed.
    """

    name = "ray"
    Options = declared.RayOptions

    def __init__(self, settings: RunSettings):
        super().__init__(settings)
        self.options = RayOptions.from_options(settings.options)

    def start_notice(self) -> Optional[str]:
        """Starting the embedded Ray takes seconds (more on a busy machine): say so rather than stay silent."""
        if self.options.embedded and not _ray_initialized():
            return "starting Ray ..."
        return None

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Only what needs no Ray: stages that cannot be pickled. What the cluster cannot run is refused by open."""
        pickle_stages(self.settings.stages, self.name)

    def session(self, stages: Stages) -> Session:
        """A session on Ray; what the cluster cannot run is refused when it opens, before anything is written."""
        try:
            from .ray_session import RaySession
        except ImportError as error:
            if error.name is None or not error.name.startswith("ray"):
                raise
            raise MissingDependencyError(
                "backend=ray needs Ray, which is not installed: pip install 'experiment-runner[ray]'"
            ) from error
        return RaySession(stages, self.settings, self.options)
