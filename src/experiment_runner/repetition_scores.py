"""The scores of an experiment's repetitions, made into one record (a list per metric, its mean and deviation)."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional


def aggregate_scores(per_repetition: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One repetition: its scores. Several: a list per metric, then mean_<M> and std_<M>.

    The mean and (population) standard deviation are computed for every metric
    whose values are all numbers; a NaN or missing value makes them None.
    """
    if len(per_repetition) == 1:
        return per_repetition[0]
    import statistics  # here: only experiments with repetitions need it, and a worker starts faster without it

    names: Dict[str, None] = {}
    for scores in per_repetition:
        names.update(dict.fromkeys(scores))
    lists = {name: [scores.get(name) for scores in per_repetition] for name in names}
    summary: Dict[str, Any] = dict(lists)
    numeric = {name: values for name, values in lists.items() if _all_numbers_or_none(values)}
    for name, values in numeric.items():
        summary[f"mean_{name}"] = _finite_or_none(statistics.fmean, values)
    for name, values in numeric.items():
        summary[f"std_{name}"] = _finite_or_none(statistics.pstdev, values)
    return summary


def _all_numbers_or_none(values: List[Any]) -> bool:
    numbers = [v for v in values if v is not None]
    return bool(numbers) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)


def _finite_or_none(function: Callable[[List[float]], float], values: List[Any]) -> Optional[float]:
    if any(v is None for v in values):
        return None
    result = float(function([float(v) for v in values]))
    return result if math.isfinite(result) else None
