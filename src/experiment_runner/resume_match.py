"""Resume: which experiment of this sweep is which recorded one, held compactly.

A resumed run matches its sweep against experiments.jsonl by config hash (and,
for a run with secret parameters, the verifier of their values). The recorded
experiments are read once into a dict of hashes (as 64-bit integers) to ids;
the sweep's experiments are not kept: :class:`Renumbered` makes each again, with
its recorded id, when the run reads it.
"""
from __future__ import annotations

import bisect
import dataclasses
import re
from array import array
from collections.abc import Sequence as SequenceABC
from typing import AbstractSet, Any, Dict, Iterable, Iterator, List, Optional, Sequence

from .experiment import Experiment

__all__ = ["SECRET_VERIFIER", "RecordedExperiments", "Renumbered"]

#: The key of an experiments.jsonl line that holds the verifier of the experiment's secret values, if it has any.
SECRET_VERIFIER = "secret_verifier"

_IS_CONFIG_HASH = re.compile("[0-9a-f]{16}").fullmatch


def _key(config_hash: str, verified: Optional[str]) -> Any:
    """A config hash as a dict key: an int (less memory than the text), or with the verifier, a pair."""
    if verified is None and isinstance(config_hash, str) and _IS_CONFIG_HASH(config_hash):
        return int(config_hash, 16)
    return config_hash, verified


class RecordedExperiments:
    """The ids of the recorded experiments by config hash (and verifier); each is taken once, in the file's order."""

    def __init__(self, lines: Iterable[Dict[str, Any]], with_verifier: bool):
        self._first: Dict[Any, int] = {}
        self._more: Dict[Any, List[int]] = {}  # the ids of equal configurations after the first: rare
        self.count = 0
        for line in lines:
            key = _key(line["hash"], line.get(SECRET_VERIFIER) if with_verifier else None)
            if key in self._first:
                self._more.setdefault(key, []).append(line["experiment_id"])
            else:
                self._first[key] = line["experiment_id"]
            self.count += 1
        #: How many recorded experiments no experiment of the sweep has taken yet.
        self.left = self.count

    def take(self, config_hash: str, verified: Optional[str]) -> Optional[int]:
        """The id of the first recorded experiment of this hash not taken yet, or None."""
        key = _key(config_hash, verified)
        recorded_id = self._first.pop(key, None)
        if recorded_id is None:
            return None
        more = self._more.get(key)
        if more:
            self._first[key] = more.pop(0)
        self.left -= 1
        return recorded_id


class Renumbered(SequenceABC):
    """A sweep's experiments with the ids they were recorded under, in the order of those ids.

    ``recorded_ids[position]`` is the id of the sweep's experiment at
    ``position``. In the usual resume (the same sweep) that is the position
    itself, and nothing more is held.
    """

    def __init__(self, experiments: Sequence[Experiment], recorded_ids: "array[int]"):
        self._experiments = experiments
        n = len(recorded_ids)
        self._same_order = recorded_ids == array("q", range(n))
        if self._same_order:
            self._positions: Sequence[int] = range(n)
            self.ids: Sequence[int] = range(n)
        else:
            self._positions = array("q", sorted(range(n), key=recorded_ids.__getitem__))
            self.ids = array("q", (recorded_ids[position] for position in self._positions))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Experiment:  # type: ignore[override]
        return self._renumbered(self._experiments[self._positions[index]], self.ids[index])

    def __iter__(self) -> Iterator[Experiment]:
        if self._same_order:
            return iter(self._experiments)
        return (self._renumbered(self._experiments[position], recorded_id)
                for position, recorded_id in zip(self._positions, self.ids))

    @staticmethod
    def _renumbered(experiment: Experiment, recorded_id: int) -> Experiment:
        if experiment.experiment_id == recorded_id:
            return experiment
        return dataclasses.replace(experiment, experiment_id=recorded_id)

    def without(self, finished: AbstractSet[int]) -> "Unfinished":
        """Those of these experiments whose id is not in ``finished``."""
        return Unfinished(self, finished)


class Unfinished:
    """The experiments of a resumed run still to run, made as they are read; ``len`` counts them."""

    def __init__(self, resumed: Renumbered, finished: AbstractSet[int]):
        self._resumed = resumed
        self._finished = finished
        ids = resumed.ids
        self._count = len(ids) - sum(1 for i in finished if _holds(ids, i))

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Experiment]:
        """Only the unfinished ones are made (a resume of a long run that got far makes few)."""
        finished, resumed = self._finished, self._resumed
        return (resumed[index] for index, recorded_id in enumerate(resumed.ids) if recorded_id not in finished)


def _holds(sorted_ids: Sequence[int], value: int) -> bool:
    at = bisect.bisect_left(sorted_ids, value)
    return at < len(sorted_ids) and sorted_ids[at] == value
