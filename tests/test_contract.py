"""The public contract suite (experiment_runner.testing) on every built-in backend.

Each class points the suite at one backend, with the fixtures of conftest.py
that start what it needs (a Ray cluster, SSH servers, Slurm), and declares
everything that backend does: a built-in skips a case only for what its
engine cannot do (single runs in the driver's process; Ray takes a stage's
KeyboardInterrupt for its own cancelling of the task), said where it is declared.
"""
import pytest

from experiment_runner.testing import BackendContract, Capabilities

#: Everything the backends that run each experiment in a process of their own do.
ISOLATING = Capabilities(timeout=True, isolation=True, stage_interrupt_is_failure=True, concurrent=True, prune=True)


class TestSingle(BackendContract):
    #: One experiment after the other in the driver's own process: a KeyboardInterrupt there is the user's Ctrl-C.
    capabilities = Capabilities(timeout=True, prune=True)

    @pytest.fixture
    def backend(self, single_backend):
        return single_backend


class TestMultiprocessing(BackendContract):
    capabilities = ISOLATING

    @pytest.fixture
    def backend(self, multiprocessing_backend):
        return multiprocessing_backend


class TestSlurm(BackendContract):
    capabilities = ISOLATING

    @pytest.fixture
    def backend(self, slurm_backend):
        return slurm_backend


class TestMalocher(BackendContract):
    capabilities = ISOLATING

    @pytest.fixture
    def backend(self, malocher_backend):
        return malocher_backend


class TestRay(BackendContract):
    #: Ray takes a KeyboardInterrupt in a task for its own cancelling of the task.
    capabilities = Capabilities(timeout=True, isolation=True, concurrent=True, prune=True)

    def crash_cause(self, cause):
        """Ray reports neither the exit code nor the signal of a worker that died (a segfault it names from
        Python's faulthandler report in the log): its message says so instead."""
        return cause if cause == "SIGSEGV" else "Ray does not report how"

    @pytest.fixture
    def backend(self, ray_backend):
        return ray_backend
