"""Contract case: how many experiments a backend runs at once (Session.slots), as an adaptive search uses it."""
from pathlib import Path

import pytest

from .. import interval, run_experiments
from ..launchers import get_launcher_class
from ..settings import RunSettings
from .kit import ContractFixtures


class SlotsCases(ContractFixtures):
    """Session.slots: what the backend says it runs at once, and a search that keeps that many trials in flight."""

    def test_a_search_keeps_as_many_trials_in_flight_as_the_session_runs_at_once(self, basecfg, backend, tmp_path):
        """Without search.max_in_flight, slots + 1 trials meet in a rendezvous (stages.count_at_once): the first
        slots run together, none beside them."""
        pytest.importorskip("optuna", reason="the search case needs Optuna (pip install 'experiment-runner[search]')")
        settings = RunSettings.from_basecfg({**basecfg, **backend})
        with get_launcher_class(settings.backend)(settings).session(settings.stages) as session:
            slots = session.slots
        if slots is None:
            pytest.skip("the backend does not say how many experiments it runs at once (Session.slots): a search "
                        "then keeps as many trials in flight as the driver machine has CPUs")
        ledger = tmp_path / "ledger"
        space = {"x": interval(0.0, 1.0), "action": "count_at_once", "ledger": str(ledger), "slots": slots,
                 "total": slots + 1}
        summary = run_experiments({**basecfg, **backend}, space,
                                  search={"name": "optuna", "n_trials": slots + 1, "metric": "y", "seed": 0})
        assert (summary.finished, summary.failed, summary.at_once) == (slots + 1, 0, slots)
        seen = [int(path.read_text()) for path in sorted(Path(ledger / "seen").iterdir())]
        assert len(seen) == slots + 1 and max(seen) == slots, f"{slots} slots, seen running at once: {seen}"
