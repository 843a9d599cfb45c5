"""What one experiment asks of a Ray node, whether (and how often at once) the cluster can give it, and so
how many experiments to keep submitted to Ray."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional

import ray

from ..errors import UsageError
from ..settings import RunSettings
from .isolation import format_bytes
from .ray_options import BUILTIN_RESOURCES, RayOptions

__all__ = ["resource_request", "remote_options", "alive_nodes", "count_slots", "check_schedulable", "InFlightWindow"]

#: How long the driver takes to notice that a task ended and to hand Ray the next one (a ray.wait that gathers
#: for a few ms, recording the outcomes): a slot's queue must hold the experiments it runs meanwhile.
TURNAROUND_SECONDS = 0.05
#: The most experiments submitted at once by default: at least this many, or this many per slot.
MOST_IN_FLIGHT, MOST_IN_FLIGHT_PER_SLOT = 64, 4


def resource_request(settings: RunSettings, options: RayOptions) -> Dict[str, float]:
    """What one experiment asks of a node, in Ray's resource names."""
    request = {"CPU": float(settings.num_cpus)}
    if settings.num_gpus:
        request["GPU"] = float(settings.num_gpus)
    if settings.max_memory:
        request["memory"] = float(settings.max_memory)
    request.update(options.resources)
    return request


def remote_options(request: Dict[str, float]) -> Dict[str, Any]:
    """``ray.remote`` arguments for the experiment tasks."""
    custom = {name: amount for name, amount in request.items() if name not in BUILTIN_RESOURCES}
    arguments: Dict[str, Any] = {"num_cpus": request["CPU"], "num_gpus": request.get("GPU", 0), "resources": custom}
    if "memory" in request:
        arguments["memory"] = int(request["memory"])
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


class InFlightWindow:
    """How many experiments to keep submitted to Ray: ray_max_in_flight, or by default as many as keep it busy.

    The default starts at twice the slots (what the cluster runs at once),
    so that a retry waits behind few others when experiments are long, and
    grows, up to ``max(64, 4 x slots)``, when the experiments turn out short:
    Ray then needs a queue of ``slots x TURNAROUND_SECONDS / duration`` more
    to stay busy while the driver turns outcomes into new tasks. With the
    twice-the-slots bound alone, 2,000 no-ops on two CPUs took about twice as
    long as with 16 or more (benchmarks/README.md).
    """

    def __init__(self, slots: int, fixed: Optional[int] = None):
        self.slots = max(1, slots)
        self.fixed = fixed
        self.size = fixed or 2 * self.slots
        #: A moving average of the experiments' durations on their workers, in seconds.
        self._typical: Optional[float] = None

    def observe(self, duration: float) -> None:
        """An experiment took ``duration`` seconds on its worker: resize the default window."""
        if self.fixed is not None:
            return
        self._typical = duration if self._typical is None else 0.9 * self._typical + 0.1 * duration
        queued = math.ceil(self.slots * TURNAROUND_SECONDS / max(self._typical, 1e-6))
        most = max(MOST_IN_FLIGHT, MOST_IN_FLIGHT_PER_SLOT * self.slots)
        self.size = max(2 * self.slots, min(most, self.slots + queued))
