"""What one experiment asks of a Ray node, and whether (and how often at once) the cluster can give it."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List

import ray

from ..errors import UsageError
from ..settings import RunSettings
from .isolation import format_bytes
from .ray_options import BUILTIN_RESOURCES, RayOptions

__all__ = ["resource_request", "remote_options", "alive_nodes", "count_slots", "check_schedulable"]


def resource_request(settings: RunSettings, options: RayOptions) -> Dict[str, float]:
    """What one experiment asks of a node, in Ray's resource names."""
    request = {"CPU": float(settings.num_cpus)}
    if settings.num_gpus:
        request["GPU"] = float(settings.num_gpus)
    if settings.max_memory:
        request["memory"] = float(settings.max_memory)
    request.update(options.resources)
    return request


def remote_options(request: Dict[str, float], task: Any) -> Dict[str, Any]:
    """``.options()`` arguments for the experiment tasks; Ray's own rules on amounts become UsageErrors."""
    custom = {name: amount for name, amount in request.items() if name not in BUILTIN_RESOURCES}
    arguments: Dict[str, Any] = {"num_cpus": request["CPU"], "num_gpus": request.get("GPU", 0), "resources": custom}
    if "memory" in request:
        arguments["memory"] = int(request["memory"])
    try:
        task.options(**arguments)
    except ValueError as error:
        raise UsageError(f"Ray refuses the resources asked per experiment: {error}") from error
    return arguments


def alive_nodes() -> List[Dict[str, float]]:
    """The total resources of each live node of the cluster."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def count_slots(request: Dict[str, float], nodes: Iterable[Dict[str, float]]) -> int:
    """How many experiments asking ``request`` the cluster can run at the same time."""
    return sum(_slots_on(request, node) for node in nodes)


def _slots_on(request: Dict[str, float], node: Dict[str, float]) -> int:
    # A small epsilon: Ray stores amounts in 1/10000 units, so 1.0 / 0.1 must give 10, not 9.
    return min(math.floor(node.get(name, 0.0) / amount + 1e-6) for name, amount in request.items() if amount > 0)


def check_schedulable(request: Dict[str, float], nodes: List[Dict[str, float]]) -> None:
    """A UsageError unless at least one node has everything one experiment asks for."""
    if any(_slots_on(request, node) > 0 for node in nodes):
        return
    largest = {name: max((node.get(name, 0.0) for node in nodes), default=0.0) for name in request}
    short = [name for name in request if largest[name] < request[name]]
    asked = ", ".join(f"{_setting_name(name)}={_amount(name, request[name])}" for name in request)
    offered = ", ".join(f"{_setting_name(name)}={_amount(name, largest[name])}" for name in short)
    detail = f"the most any node has: {offered}" if short else "some node has each, but none has all of them"
    raise UsageError(
        f"no node of the Ray cluster ({len(nodes)} nodes) can run an experiment that asks for {asked}; "
        f"{detail}. Ask for less, or add a node that has it"
    )


def _setting_name(resource: str) -> str:
    return BUILTIN_RESOURCES.get(resource, f"ray_resources.{resource}")


def _amount(resource: str, amount: float) -> str:
    return format_bytes(int(amount)) if resource == "memory" else f"{amount:g}"
