"""An adaptive search's best trial (or, with several metrics, its Pareto front), read back from the out_path tree
(run.yaml and results.jsonl), without Optuna.

The run's summary and ``experiment-runner report`` show it; the study file
holds the same, for Optuna's own tools.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional

from ..report_records import RECORD_KEYS, format_stat
from ..serialization import ABSENT, dumps, lookup
from ..run_files import RunPaths, read_jsonl, read_yaml
from .pareto import Trial, pareto_front

__all__ = ["objective_values", "best_trial_lines", "completed_trials", "Completed", "SHOWN"]

#: How many trials of a Pareto front the summary and the report list.
SHOWN = 10
#: How much of a searched value a trial line shows (a dict choice, a group's composed option).
SHOWN_CHARACTERS = 60


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

    metrics: List[str]
    #: Per metric: whether it is maximised.
    maximize: List[bool]
    #: In the order the trials finished.
    trials: List[Trial]
    #: The dotted names of the search's dimensions.
    dimensions: List[str]

    @property
    def goals(self) -> str:
        """``minimize loss and maximize accuracy``."""
        return " and ".join(f"{'maximize' if up else 'minimize'} {metric}"
                            for metric, up in zip(self.metrics, self.maximize))


def completed_trials(out_path: Path) -> Optional[Completed]:
    """The completed trials of the search in ``out_path``; None for a run that is none."""
    paths = RunPaths(Path(out_path))
    record = read_yaml(paths.run_yaml) if paths.run_yaml.is_file() else None
    search = record.get("search") if isinstance(record, dict) else None
    if not isinstance(search, dict) or not isinstance(search.get("metric"), (str, list)):
        return None
    metrics = [search["metric"]] if isinstance(search["metric"], str) else list(search["metric"])
    directions = search.get("direction")
    directions = [directions] * len(metrics) if not isinstance(directions, list) else directions
    trials = []
    for line in read_jsonl(paths.results):
        trial = line.get("trial")
        values = objective_values(line.get("scores"), metrics)
        if isinstance(trial, dict) and trial.get("state") == "COMPLETE" and values is not None:
            trials.append((trial.get("number"), values, line))
    space = search.get("space")
    return Completed(metrics, [direction == "maximize" for direction in directions], trials,
                     list(space) if isinstance(space, dict) else [])


def best_trial_lines(out_path: Path) -> List[str]:
    """``best trial #7 (experiment 7): loss 0.0402  x=0.31 n=4``; with several metrics, the Pareto front (see
    :mod:`.pareto`); [] for a run that is no search (or has no completed trial yet)."""
    completed = completed_trials(out_path)
    if completed is None or not completed.trials:
        return []
    if len(completed.metrics) > 1:
        return pareto_front_lines(completed)
    pick = max if completed.maximize[0] else min
    best = pick(completed.trials, key=lambda trial: trial[1][0])  # ties: the first to finish
    return [f"best trial {trial_line(best, completed)}"]


def pareto_front_lines(completed: Completed) -> List[str]:
    """``Pareto front (minimize loss and minimize fit_time): 4 of 20 completed trials, by loss:`` and a line per
    trial on it, at most SHOWN, then how many more."""
    front = pareto_front(completed.trials, completed.maximize)
    lines = [f"Pareto front ({completed.goals}): {len(front)} of {len(completed.trials)} completed trials, "
             f"by {completed.metrics[0]}:"]
    lines += [f"  {trial_line(trial, completed)}" for trial in front[:SHOWN]]
    if len(front) > SHOWN:
        lines.append(f"  ... and {len(front) - SHOWN} more (all: experiment-runner report --plot draws them)")
    return lines


def trial_line(trial: Trial, completed: Completed) -> str:
    """``#7 (experiment 7): loss 0.0402 ± 0.001  x=0.31 n=4``: each metric's value (± its std over repetitions)
    and the trial's parameters."""
    number, values, line = trial
    scores = line["scores"]
    shown = "  ".join(f"{metric} {format_stat(value, _std(scores, metric))}"
                      for metric, value in zip(completed.metrics, values))
    values_of = ((name, lookup(line, name)) for name in completed.dimensions if name not in RECORD_KEYS)
    params = " ".join(f"{name}={_shown(value)}" for name, value in values_of if value is not ABSENT)
    return f"#{number} (experiment {line['experiment_id']}): {shown}  {params}".rstrip()


def _shown(value: Any) -> str:
    """A searched value as the trial line shows it: a choice that is a dict or a list (or a group's option) as
    its JSON, the way the study names it, cut at SHOWN_CHARACTERS; a float with 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"  # as the summary shows metrics: a searched float has all its digits in results.jsonl
    text = dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS - 3]}..."


def _std(scores: Dict[str, Any], metric: str) -> Optional[float]:
    std = scores.get(f"std_{metric}")
    return std if is_number(std) else None
