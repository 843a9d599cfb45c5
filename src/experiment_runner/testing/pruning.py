"""Contract cases: an experiment stopped early, by the driver's request (Session.prune) or by its own choice."""
from pathlib import Path
from typing import List

from ..channel import Message
from ..experiment import Outcome
from ..launchers import get_launcher_class
from ..metrics import METRICS, PRUNE_MARKER, PRUNED
from ..runner import make_experiments
from ..settings import RunSettings
from .kit import ContractFixtures, read_lines, run, skip_unless


class PruningCases(ContractFixtures):
    """Stopping early: the channel back to a running experiment, and how a pruned experiment is recorded."""

    def test_the_driver_stops_a_running_experiment_early(self, basecfg, backend):
        """The driver asks after the experiment's first metrics message, as a search's pruner would; the
        experiment sees should_prune() turn True and raises Pruned (it would give up after stages.BLOCK_SECONDS)."""
        skip_unless(self.capabilities, "prune", "asking a running experiment to stop early (Session.prune) needs")
        settings = RunSettings.from_basecfg({**basecfg, **backend})
        out = Path(settings.out_path)
        out.mkdir(parents=True)
        asked: List[Message] = []
        outcomes: List[Outcome] = []
        with get_launcher_class(settings.backend)(settings).session(settings.stages) as session:

            def on_message(message: Message) -> None:
                if message.kind == METRICS and not asked:
                    asked.append(message)
                    session.prune(message.experiment_id)

            session.listener = on_message
            for experiment in make_experiments([{"x": 1}, {"action": "until_pruned"}], settings):
                session.submit(experiment)
            for event in session.events():
                if isinstance(event, Message):
                    on_message(event)
                else:
                    outcomes.append(event)
        assert [message.experiment_id for message in asked] == [1], "the metrics message of the experiment that reports"
        by_id = {outcome.experiment_id: outcome for outcome in outcomes}
        assert by_id[0].ok and by_id[1].status == PRUNED, outcomes
        assert by_id[1].error_type == "Pruned" and by_id[1].message.startswith("pruned at step ")
        steps = [line["step"] for line in read_lines(out / "1" / "metrics.jsonl")]
        assert steps == list(range(len(steps))) and steps[0] == asked[0].data["step"] == 0
        assert not (out / "1" / PRUNE_MARKER).exists(), "no request left in the tree once the experiment ended"

    def test_an_experiment_that_stops_early_is_pruned_not_failed_and_never_retried(self, basecfg, backend):
        """Pruned, and Optuna's TrialPruned (told by name), whatever ``retries`` says."""
        summary = run(basecfg, backend, [{"x": 1}, {"action": "pruned"}, {"action": "optuna_pruned"}], retries=2)
        root = Path(basecfg["out_path"])
        assert (summary.finished, summary.pruned, summary.failed) == (1, 2, 0)
        failures = sorted(read_lines(root / "failures.jsonl"), key=lambda line: line["experiment_id"])
        assert [(line["experiment_id"], line["status"], line["attempt"]) for line in failures] == [
            (1, PRUNED, 0), (2, PRUNED, 0)], "recorded once each, as pruned: never retried"
        assert [line["error_type"] for line in failures] == ["Pruned", "TrialPruned"]
        assert "pruned: stopped early (Pruned: the stage stopped early)" in (root / "1" / "stderr.log").read_text()
