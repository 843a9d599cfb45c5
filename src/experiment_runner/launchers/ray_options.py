"""The options of backend=ray, checked; read by the launcher and by the session without importing Ray."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from ..errors import ConfigError
from ..settings import whole_number

__all__ = ["RayOptions", "BUILTIN_RESOURCES"]

#: Resource names that have their own basecfg key; ray_resources must not repeat them.
BUILTIN_RESOURCES = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "max_memory"}


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
        if name in BUILTIN_RESOURCES:
            raise ConfigError(f"ray_resources must not set {name!r}: use {BUILTIN_RESOURCES[name]} instead")
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
