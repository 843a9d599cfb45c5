"""The settings of backend=ray as the backend uses them; read by the launcher and the session without importing Ray.

They are declared, typed and checked once in options.py (``options.RayOptions``); this is their runtime form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from . import options as declared
from .options import RAY_BUILTIN_RESOURCES as BUILTIN_RESOURCES
from .options import typed_options

__all__ = ["RayOptions", "BUILTIN_RESOURCES"]


@dataclass(frozen=True)
class RayOptions:
    """The Ray settings, checked. Secrets stay out of ``repr``."""

    #: None: start an embedded local Ray; ``"auto"`` or ``"host:port"``: connect to a cluster.
    address: Optional[str] = None
    redis_password: Optional[str] = field(default=None, repr=False)
    auth_token: Optional[str] = field(default=None, repr=False)
    #: Custom resources each experiment asks for, e.g. ``{"special_node": 1}``.
    resources: Dict[str, float] = field(default_factory=dict)
    #: Experiments submitted to Ray at once; None: as many as keep the cluster busy (ray_resources.InFlightWindow).
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
            resources={str(name): float(amount) for name, amount in (given.ray_resources or {}).items()},
            max_in_flight=given.ray_max_in_flight,
            runtime_env=dict(given.ray_runtime_env) if given.ray_runtime_env is not None else None,
        )
