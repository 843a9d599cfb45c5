"""An adaptive search's best trial, read back from the out_path tree (run.yaml and results.jsonl), without Optuna.

The run's summary and ``experiment-runner report`` show it; the study file
holds the same, for Optuna's own tools.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from ..report_records import RECORD_KEYS, flatten, format_stat
from ..run_files import RunPaths, read_jsonl, read_yaml

__all__ = ["objective_values", "best_trial_lines", "completed_trials", "Completed"]


def objective_values(scores: Any, metrics: Iterable[str]) -> Optional[List[float]]:
    """Each metric's value: the score, or its mean over repetitions (``mean_<metric>``, which several
    repetitions' scores hold beside the list of values); None if one is missing or no finite number."""
    values = []
    for metric in metrics:
        value = scores.get(metric) if isinstance(scores, dict) else None
        if isinstance(value, list):
            value = scores.get(f"mean_{metric}")
        if not is_number(value):
            return None
        values.append(float(value))
    return values


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Completed(NamedTuple):
    """A search's completed trials as results.jsonl records them, with what it optimised."""

    metric: str
    maximize: bool
    #: (trial number, value of the metric, results line), in the order the trials finished.
    trials: List[Tuple[int, float, Dict[str, Any]]]
    #: The dotted names of the search's dimensions.
    dimensions: List[str]


def completed_trials(out_path: Path) -> Optional[Completed]:
    """The completed trials of the single-objective search in ``out_path``; None for a run that is none."""
    paths = RunPaths(Path(out_path))
    record = read_yaml(paths.run_yaml) if paths.run_yaml.is_file() else None
    search = record.get("search") if isinstance(record, dict) else None
    if not isinstance(search, dict) or not isinstance(search.get("metric"), str):
        return None
    metric = search["metric"]
    trials = []
    for line in read_jsonl(paths.results):
        trial = line.get("trial")
        values = objective_values(line.get("scores"), [metric])
        if isinstance(trial, dict) and trial.get("state") == "COMPLETE" and values is not None:
            trials.append((trial.get("number"), values[0], line))
    space = search.get("space")
    return Completed(metric, search.get("direction") == "maximize", trials, list(space) if isinstance(space, dict)
                     else [])


def best_trial_lines(out_path: Path) -> List[str]:
    """``best trial #7 (experiment 7): loss 0.0402  x=0.31 n=4``; [] for a run that is no single-objective search
    (or has no completed trial yet)."""
    completed = completed_trials(out_path)
    if completed is None or not completed.trials:
        return []
    pick = max if completed.maximize else min
    number, value, line = pick(completed.trials, key=lambda trial: trial[1])  # ties: the first to finish
    std = line["scores"].get(f"std_{completed.metric}")
    config = flatten({key: value for key, value in line.items() if key not in RECORD_KEYS})
    params = " ".join(f"{name}={config[name]}" for name in completed.dimensions if name in config)
    shown = format_stat(value, std if is_number(std) else None)
    return [f"best trial #{number} (experiment {line['experiment_id']}): {completed.metric} {shown}  "
            f"{params}".rstrip()]
