"""The backend contract as a test suite: run every case against your backend by subclassing one class.

In a test file of your plugin::

    import pytest
    from experiment_runner.testing import BackendContract, Capabilities

    class TestMyBackend(BackendContract):
        capabilities = Capabilities(timeout=True, isolation=True, stage_interrupt_is_failure=True,
                                    concurrent=True, prune=True)

        @pytest.fixture
        def backend(self):
            return {"backend": "mine", "mine_workers": 2}   # JSON-able settings selecting your backend

pytest then runs every contract case on it: the tree, results and failure
records, repetitions, retries, resume, secrets, a full disk, timeouts, crashes
(os._exit, a segfault, SIGKILL), closing a session with experiments in flight,
a run stopped by Ctrl-C or SIGTERM, experiments stopped early (pruned), and a search keeping as many
trials in flight as the backend says it runs at once (``Session.slots``; it needs Optuna). A case that needs what your
:class:`Capabilities` do not declare is skipped, saying which capability.
The stages the cases run are in :mod:`experiment_runner.testing.stages`,
importable wherever this package is installed.
"""
from .kit import Capabilities, filling, read_lines
from .pruning import PruningCases
from .records import RecordCases
from .slots import SlotsCases
from .stopping import StoppingCases

__all__ = ["BackendContract", "Capabilities", "read_lines", "filling"]


class BackendContract(RecordCases, StoppingCases, PruningCases, SlotsCases):
    """Every case of the backend contract; subclass it as ``Test<YourBackend>`` with a ``backend`` fixture."""
