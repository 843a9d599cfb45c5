"""An adaptive search as the runner's source of experiments: each trial its study asks is an experiment.

A trial gets the next experiment id (kept in the trial as the user attribute
``experiment_id``), its folder and its line in experiments.jsonl when it is
asked, not before. Its final outcome (after its retries) is told to the study:
the mean over repetitions of ``search.metric`` for a finished experiment,
FAIL for a failed, crashed or timed-out one (or one that returned no such
score), PRUNED for a pruned one. The first repetition's intermediate metrics
are reported to the trial as they arrive, and the pruner decides whether the
experiment should stop.

Resuming: trials still RUNNING in the study when the driver died (or was
interrupted) are failed there and, those that had become experiments,
enqueued again with the same parameters and the same experiment id, so they
run again in the same folder; one whose
outcome reached results.jsonl before the driver died is told from there
instead. The budget ``n_trials`` counts experiment ids, not Optuna's trials,
so a rerun is not counted twice.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ..experiment import OK, PRUNED, Experiment, Outcome
from ..launchers.base import Session
from ..progress import Progress
from ..errors import ConfigError, ResumeMismatchError
from ..run_files import read_jsonl, read_yaml
from ..sources import ExperimentSource
from ..store import RunStore
from .best import is_number, objective_values
from .settings import SearchSettings
from .space import Space
from .study import open_study, trial_budget

if TYPE_CHECKING:
    from ..plan import RunPlan

__all__ = ["TrialSource", "open_search"]

#: The user attribute of a trial that holds its experiment id.
EXPERIMENT_ID = "experiment_id"


def open_search(plan: "RunPlan", store: RunStore, session: Session) -> "TrialSource":
    """The search of ``plan``, its study opened (created, or loaded to resume) in the store's out_path;
    ``session``, open, says how many experiments its backend runs at once."""
    search = plan.search
    assert search is not None
    listed = store.prepare_search(plan.settings.if_exists, search.settings.n_trials)
    if listed or store.paths.study.exists():
        _check_same_search(store, plan.record["search"])
    study = open_study(store.paths.study, search.settings, search.space.distributions())
    in_flight = search.settings.max_in_flight or default_in_flight(session)
    return TrialSource(study, plan, store, listed, in_flight)


def _check_same_search(store: RunStore, search: Dict[str, Any]) -> None:
    """A resumed search must search the same space for the same goal (its budget and sampler may change)."""
    recorded = read_yaml(store.paths.run_yaml) if store.paths.run_yaml.is_file() else None
    before = recorded.get("search") if isinstance(recorded, dict) else None
    if not isinstance(before, dict):
        return  # a run.yaml lost or unreadable: the study is what there is to go on
    for key in ("space", "metric", "direction"):
        if before.get(key) != search.get(key):
            raise ResumeMismatchError(
                f"cannot resume '{store.root}': its search's {key} was {before.get(key)!r}, this one's is "
                f"{search.get(key)!r}; resume with the same space, metric and direction (n_trials, the sampler "
                "and the pruner may change), or start a new out_path"
            )


def default_in_flight(session: Session) -> int:
    """As many trials as the backend runs at once (``session.slots``); where it cannot say, the CPUs here."""
    slots = session.slots
    return slots if isinstance(slots, int) and slots > 0 else os.cpu_count() or 1


class TrialSource(ExperimentSource):
    """Asks the study for trials while fewer than ``max_in_flight`` run and the budget lasts; tells it outcomes."""

    def __init__(self, study: Any, plan: "RunPlan", store: RunStore, listed: Set[int], max_in_flight: int):
        from optuna.trial import TrialState

        self._state = TrialState
        search = plan.search
        assert search is not None
        self.study = study
        self.settings: SearchSettings = search.settings
        self.space: Space = search.space
        self._distributions = self.space.distributions()
        self._experiments = plan.experiments
        self._store = store
        self._listed = listed
        self.max_in_flight = max_in_flight
        self._trials: Dict[int, Any] = {}  # experiment id -> the running trial
        self._last_step: Dict[int, int] = {}
        self._verdicts: Dict[int, Tuple[Any, Optional[List[float]]]] = {}
        #: A trial completed with the metric among its scores: one without it from now on is a failed trial.
        self._metric_seen = bool(study.best_trials) if study.trials else False
        #: Set when the first experiment to finish has no score of the metric's name: the run then stops.
        self._misnamed: Optional[ConfigError] = None
        self._tell_recorded({line["experiment_id"]: line.get("scores") for line in read_jsonl(store.paths.results)})
        self._rerun_stale()
        self._count()

    def _tell_recorded(self, recorded: Dict[int, Any]) -> None:
        """Tell running trials whose experiment finished and was recorded before the driver died."""
        for trial in self._running_trials():
            experiment_id = trial.user_attrs.get(EXPERIMENT_ID)
            if experiment_id in recorded:
                values = objective_values(recorded[experiment_id], self.settings.metrics)
                if values is None:
                    self.study.tell(trial.number, state=self._state.FAIL)
                else:
                    self.study.tell(trial.number, values)

    def _rerun_stale(self) -> None:
        """Fail the trials the study still holds as running (their driver died) and enqueue again those that had
        become experiments. One the driver died with before it had its experiment id never ran, and may not even
        have all its parameters (they are suggested one by one): the budget, which counts experiments, asks anew."""
        for trial in self._running_trials():
            self.study.tell(trial.number, state=self._state.FAIL)
            if EXPERIMENT_ID in trial.user_attrs:
                self.study.enqueue_trial(trial.params, user_attrs={EXPERIMENT_ID: trial.user_attrs[EXPERIMENT_ID],
                                                                   "rerun_of": trial.number})

    def _running_trials(self) -> List[Any]:
        return self.study.get_trials(deepcopy=False, states=(self._state.RUNNING,))

    def _count(self) -> None:
        """How many experiments the search has used, finished, and still has to ask; the next experiment id."""
        trials = self.study.get_trials(deepcopy=False)
        waiting = {t.user_attrs[EXPERIMENT_ID] for t in trials
                   if t.state == self._state.WAITING and EXPERIMENT_ID in t.user_attrs}
        used = {t.user_attrs[EXPERIMENT_ID] for t in trials if EXPERIMENT_ID in t.user_attrs}
        budget = trial_budget(self.settings, self._distributions)
        self.skipped = len(used - waiting)
        self.total = max(budget, len(used))
        self._reruns = len(waiting)
        self._new = max(budget - len(used), 0)
        self._next_id = max([*used, *self._listed, -1]) + 1

    def next_experiment(self) -> Optional[Experiment]:
        if len(self._trials) >= self.max_in_flight or not (self._reruns or self._new):
            return None
        trial = self.study.ask()
        config = self.space.suggest(trial)  # define-by-run: a choice's own dimensions only when it is picked
        experiment_id = trial.user_attrs.get(EXPERIMENT_ID)
        if experiment_id is None:
            experiment_id, self._next_id = self._next_id, self._next_id + 1
            trial.set_user_attr(EXPERIMENT_ID, experiment_id)
            self._new -= 1
        else:
            self._reruns -= 1
        experiment = self._experiments.make(experiment_id, config)
        if experiment_id not in self._listed:
            self._store.add_experiment(experiment)
            self._listed.add(experiment_id)
        self._trials[experiment_id] = trial
        return experiment

    def annotation(self, outcome: Outcome, experiment: Experiment) -> Optional[Dict[str, Any]]:
        trial = self._trials[experiment.experiment_id]
        verdict = self._verdict(outcome, experiment)
        self._verdicts[experiment.experiment_id] = verdict
        return {"trial": {"number": trial.number, "state": verdict[0].name}}

    def _verdict(self, outcome: Outcome, experiment: Experiment) -> Tuple[Any, Optional[List[float]]]:
        if outcome.status == PRUNED:
            return self._state.PRUNED, None
        if outcome.status != OK:
            return self._state.FAIL, None
        values = objective_values(outcome.scores, self.settings.metrics)
        if values is None and not self._metric_seen:
            self._misnamed = _metric_not_scored(outcome.scores, self.settings.metrics, experiment)
        if values is None:
            Progress.write(f"search: experiment {experiment.experiment_id} returned no number for "
                           f"{', '.join(self.settings.metrics)} among its scores: its trial failed")
            return self._state.FAIL, None
        self._metric_seen = True
        return self._state.COMPLETE, values

    def finished(self, experiment: Experiment, outcome: Outcome) -> None:
        trial = self._trials.pop(experiment.experiment_id)
        self._last_step.pop(experiment.experiment_id, None)
        state, values = self._verdicts.pop(experiment.experiment_id, None) or self._verdict(outcome, experiment)
        std = _std(outcome.scores, self.settings.metrics[0]) if outcome.scores else None
        if std is not None:
            trial.set_user_attr("std", std)
        if state == self._state.COMPLETE:
            self.study.tell(trial, values)
        else:
            self.study.tell(trial, state=state)
        if self._misnamed is not None:  # recorded and told: the run stops with the tree whole
            raise self._misnamed

    def on_metrics(self, experiment_id: int, data: Dict[str, Any]) -> bool:
        """Report the first repetition's value of the search's metric to its trial; whether the pruner stops it."""
        trial = self._trials.get(experiment_id)
        if trial is None or len(self.settings.metrics) > 1 or data.get("run_id") != 0:
            return False
        value, step = data.get(self.settings.metrics[0]), data.get("step")
        if not is_number(value) or self._last_step.get(experiment_id, -1) >= step:
            return False  # Optuna keeps the first value of a step; a step reported again is ignored there too
        self._last_step[experiment_id] = step
        trial.report(value, step)
        return trial.should_prune()


def _metric_not_scored(scores: Any, metrics: List[str], experiment: Experiment) -> Optional[ConfigError]:
    """The error that stops a search whose first finished experiment has no score of the metric's name: every
    trial would fail alike (a score that is there but no number, NaN say, only fails its trial)."""
    keys = scores if isinstance(scores, dict) else {}
    names = [str(key) for key in keys if not str(key).startswith(("mean_", "std_"))]
    missing = [metric for metric in metrics if metric not in names]
    if not missing:
        return None
    return ConfigError(f"search.metric {missing[0]!r} is not among the scores of experiment "
                       f"{experiment.experiment_id} ({', '.join(names) or 'none'}): set search.metric to the score "
                       "the search optimises, and run it again")


def _std(scores: Dict[str, Any], metric: str) -> Optional[float]:
    value = scores.get(f"std_{metric}")
    return float(value) if is_number(value) else None
