"""backend=ray: experiments as Ray tasks, on an embedded local Ray or on a cluster.

This module only reads the options; everything that needs Ray lives in
``_ray_core`` and is imported when the backend checks or launches, so that
selecting another backend never imports ray.

The connection to Ray (a session) is opened by :meth:`RayLauncher.check` and
kept across the driver's retry rounds; it is closed when a round ends with
nothing left to retry, when the run is interrupted, or at the latest when the
launcher is garbage collected.
"""
from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional, Sequence

from ..errors import MissingDependencyError
from ..experiment import Experiment, Outcome, Stages
from ..settings import RunSettings
from . import options as declared
from .base import Launcher
from .options import typed_options

if TYPE_CHECKING:
    from . import _ray_core


@dataclass(frozen=True)
class RayOptions:
    """The Ray settings as the backend uses them. Secrets stay out of ``repr``."""

    #: None: start an embedded local Ray; ``"auto"`` or ``"host:port"``: connect to a cluster.
    address: Optional[str] = None
    redis_password: Optional[str] = field(default=None, repr=False)
    auth_token: Optional[str] = field(default=None, repr=False)
    #: Custom resources each experiment asks for, e.g. ``{"special_node": 1}``.
    resources: Dict[str, float] = field(default_factory=dict)
    #: Experiments submitted to Ray at once; None: twice the experiments the cluster can run at once.
    max_in_flight: Optional[int] = None
    runtime_env: Optional[Dict[str, Any]] = None

    @property
    def embedded(self) -> bool:
        return self.address is None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "RayOptions":
        """The Ray settings of basecfg, typed and checked by their declaration (launchers/options.py)."""
        given = typed_options(declared.RayOptions, options)
        return cls(
            address=None if given.address in ("", "local") else given.address,
            redis_password=given.redis_password or None,
            auth_token=given.ray_auth_token or None,
            resources=dict(given.ray_resources or {}),
            max_in_flight=given.ray_max_in_flight,
            runtime_env=given.ray_runtime_env,
        )


def _ray_initialized() -> bool:
    """Whether this process is connected to Ray already, without importing ray when it is not even imported."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _import_core() -> Any:
    try:
        from . import _ray_core
    except ImportError as error:
        if error.name is None or not error.name.startswith("ray"):
            raise
        raise MissingDependencyError(
            "backend=ray needs Ray, which is not installed: pip install 'experiment-runner[ray]'"
        ) from error
    return _ray_core


class RayLauncher(Launcher):
    """Runs each experiment as one Ray task; see the README section "Running on Ray"."""

    name = "ray"
    Options = declared.RayOptions

    def __init__(self, settings: RunSettings):
        super().__init__(settings)
        self.options = RayOptions.from_options(settings.options)
        self._session: "Optional[_ray_core.RaySession]" = None
        self._rounds_left = settings.retries + 1

    def start_notice(self) -> Optional[str]:
        """Starting the embedded Ray takes seconds (more on a busy machine): say so rather than stay silent."""
        if self.options.embedded and self._session is None and not _ray_initialized():
            return "starting Ray ..."
        return None

    def check(self, experiments: Sequence[Experiment]) -> None:
        """Connect (or start the embedded Ray) and refuse what the cluster can never run."""
        session = self._open_session()
        try:
            session.check(self.settings)
        except BaseException:
            self._close_session()
            raise

    def launch(self, experiments: Sequence[Experiment], stages: Stages) -> Iterator[Outcome]:
        """Yield outcomes as tasks finish; the session stays open only for a retry round to come."""
        self._rounds_left -= 1
        ended, failed = False, False
        try:
            session = self._open_session()
            for outcome in session.run(experiments, stages, self.settings):
                failed = failed or not outcome.ok
                yield outcome
            ended = True
        finally:
            if not (ended and failed and self._rounds_left > 0):
                self._close_session()

    def _open_session(self) -> "_ray_core.RaySession":
        if self._session is None:
            self._session = _import_core().RaySession(self.options)
            weakref.finalize(self, self._session.close)
        self._session.open()
        return self._session

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
