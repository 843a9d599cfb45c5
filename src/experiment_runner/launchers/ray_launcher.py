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

from ..errors import ConfigError, MissingDependencyError
from ..experiment import Experiment, Outcome, Stages
from ..settings import RunSettings, whole_number
from . import options as declared
from .base import Launcher

if TYPE_CHECKING:
    from . import _ray_core

#: Resource names that have their own basecfg key; ray_resources must not repeat them.
_BUILTIN_RESOURCES = declared.RAY_BUILTIN_RESOURCES


@dataclass(frozen=True)
class RayOptions:
    """The Ray-specific basecfg keys, checked. Secrets stay out of ``repr``."""

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
        return cls(
            address=_address(options.get("address")),
            redis_password=_secret(options, "redis_password"),
            auth_token=_secret(options, "ray_auth_token"),
            resources=_custom_resources(options.get("ray_resources")),
            max_in_flight=_max_in_flight(options.get("ray_max_in_flight")),
            runtime_env=_runtime_env(options.get("ray_runtime_env")),
        )


def _address(value: Any) -> Optional[str]:
    if value is None or value in ("", "local"):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"address must be 'auto' or 'host:port' of a Ray cluster, got {value!r}")
    return value


def _secret(options: Mapping[str, Any], key: str) -> Optional[str]:
    value = options.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got a {type(value).__name__}")
    return value


def _custom_resources(value: Any) -> Dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"ray_resources must be a dict of resource name -> amount, got {value!r}")
    resources = {}
    for name, amount in value.items():
        if name in _BUILTIN_RESOURCES:
            raise ConfigError(f"ray_resources must not set {name!r}: use {_BUILTIN_RESOURCES[name]} instead")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
            raise ConfigError(f"ray_resources.{name} must be a number > 0, got {amount!r}")
        resources[str(name)] = float(amount)
    return resources


def _max_in_flight(value: Any) -> Optional[int]:
    return None if value is None else whole_number(value, "ray_max_in_flight", minimum=1)


def _runtime_env(value: Any) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"ray_runtime_env must be a dict (Ray's runtime_env), got {value!r}")
    return dict(value)


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
