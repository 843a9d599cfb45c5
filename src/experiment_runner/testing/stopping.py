"""Contract cases: experiments that hang or crash, a session closed mid-run, a run stopped by Ctrl-C or SIGTERM."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

from ..errors import UsageError
from ..experiment import Outcome
from ..launchers import get_launcher_class
from ..launchers.base import Event
from ..runner import make_experiments
from ..settings import RunSettings
from .kit import ContractFixtures, finished_ids, read_lines, run, skip_unless
from .processes import assert_stopped, children, wait_until

CRASHES = [
    pytest.param({"action": "exit"}, "exit code 3", id="os-exit"),
    pytest.param({"action": "segfault"}, "SIGSEGV", id="segfault"),
    pytest.param({"action": "kill"}, "SIGKILL", id="sigkill"),
]


class StoppingCases(ContractFixtures):
    """What is stopped, and what is kept, when an experiment hangs or crashes or the run is stopped."""

    def crash_cause(self, cause: str) -> str:
        """What the failure message of a crash says about ``cause`` (override if your engine cannot tell)."""
        return cause

    def test_timeout_stops_a_hanging_experiment(self, basecfg, backend):
        skip_unless(self.capabilities, "timeout", "stopping an experiment after `timeout` seconds needs")
        summary = run(basecfg, backend, [{"action": "sleep", "seconds": 30}, {"x": 2}], timeout=1)
        root = Path(basecfg["out_path"])
        assert summary.failed_ids == [0] and summary.finished == 1
        assert summary.wall_time < 20
        [failure] = read_lines(root / "failures.jsonl")
        assert failure["status"] == "timeout" and "1 s" in failure["message"]
        assert finished_ids(root) == [1]

    def test_a_timeout_the_backend_cannot_enforce_is_refused_before_anything_runs(self, basecfg, backend):
        if self.capabilities.timeout:
            pytest.skip("the backend enforces timeouts (see test_timeout_stops_a_hanging_experiment)")
        with pytest.raises(UsageError, match="timeout"):
            run(basecfg, backend, [{"x": 1}], timeout=5)
        assert not Path(basecfg["out_path"]).exists()

    def test_a_keyboard_interrupt_that_a_stage_raises_is_its_error(self, basecfg, backend):
        skip_unless(self.capabilities, "stage_interrupt_is_failure",
                    "recording a KeyboardInterrupt raised by a stage as that experiment's failure needs")
        summary = run(basecfg, backend, [{"x": 1, "action": "interrupt"}, {"x": 2}, {"x": 3}])
        root = Path(basecfg["out_path"])
        assert summary.failed_ids == [0] and summary.finished == 2
        [failure] = read_lines(root / "failures.jsonl")
        assert (failure["status"], failure["error_type"], failure["exit_code"]) == ("error", "KeyboardInterrupt", None)
        assert failure["message"] == "raised by the stage at x=1"
        assert 'raise KeyboardInterrupt(f"raised by the stage' in failure["traceback"]
        assert failure["traceback"] in (root / "0" / "stderr.log").read_text()

    @pytest.mark.parametrize("cfg, cause", CRASHES)
    def test_crashing_experiment_is_recorded_and_the_run_goes_on(self, basecfg, backend, cfg, cause):
        skip_unless(self.capabilities, "isolation", "surviving an experiment's crash needs")
        summary = run(basecfg, backend, [cfg, {"x": 2}, {"x": 3}])
        root = Path(basecfg["out_path"])
        assert summary.failed_ids == [0] and summary.finished == 2
        [failure] = read_lines(root / "failures.jsonl")
        assert failure["status"] == "crashed"
        assert self.crash_cause(cause) in failure["message"]
        assert finished_ids(root) == [1, 2]

    def test_closing_a_session_stops_the_experiments_in_flight(self, basecfg, backend, tmp_path):
        """What the driver does however a run ends: leave the session's ``with`` block, with experiments running.

        A concurrent backend has a blocked experiment in flight, the others done; one that runs one experiment
        at a time has a blocked experiment queued, which must never start.
        """
        flag = tmp_path / "flag"
        flag.write_text("block")
        settings = RunSettings.from_basecfg({**basecfg, **backend})
        blocked = {"action": "block", "flag": str(flag), "child": self.capabilities.isolation}
        concurrent = self.capabilities.concurrent
        cfgs, quick = ([blocked, {"x": 1}, {"x": 2}], {1, 2}) if concurrent else ([{"x": 1}, blocked], {0})
        out = Path(settings.out_path)
        out.mkdir(parents=True)
        others = set(children(os.getpid()))  # processes of other fixtures (clusters) may be children too
        try:
            with get_launcher_class(settings.backend)(settings).session(settings.stages) as session:
                for experiment in make_experiments(cfgs, settings):
                    session.submit(experiment)
                events = session.events()  # held until the end: closing the session, not dropping it, must stop
                outcomes = _until_outcomes_of(events, quick)
                if concurrent:
                    wait_until(lambda: (out / "0" / "pid").exists(), "experiment 0 runs")
            assert all(outcome.ok for outcome in outcomes), outcomes
            assert_stopped([out / "0"] if concurrent else [], self.capabilities.isolation)
            wait_until(lambda: not set(children(os.getpid())) - others, "the session's processes have ended", 10)
            if not concurrent:
                assert not (out / "1" / "pid").exists(), "an experiment started after the session closed"
            del events
        finally:
            flag.unlink()

    def test_ctrl_c_stops_a_run_keeping_what_finished_and_resume_finishes_the_rest(self, basecfg, backend, tmp_path):
        out, cfgs = self._stop_a_run(backend, tmp_path, signal.SIGINT)
        finished = finished_ids(out)
        (out / "0" / "pre.txt").unlink()
        summary = run({**basecfg, "out_path": str(out)}, backend, cfgs, if_exists="resume")
        assert (summary.skipped, summary.finished, summary.failed) == (len(finished), 4 - len(finished), 0)
        assert finished_ids(out) == [0, 1, 2, 3]
        assert not (out / "0" / "pre.txt").exists(), "a finished experiment ran again"

    def test_sigterm_stops_a_run_keeping_what_finished(self, backend, tmp_path):
        self._stop_a_run(backend, tmp_path, signal.SIGTERM)

    def _stop_a_run(self, backend: Dict[str, Any], tmp_path: Path, signum: int) -> Tuple[Path, List[Dict[str, Any]]]:
        """Stop a driver with ``signum`` once two experiments finished and one blocks; check what it kept and left.

        Ctrl-C is sent as a terminal sends it, to the driver's whole process group. Returns out_path and the cfgs.
        """
        out, flag = tmp_path / "run", tmp_path / "flag"
        flag.write_text("block")
        cfgs = [{"x": 1}, {"x": 2}, {"action": "block", "flag": str(flag), "child": self.capabilities.isolation},
                {"x": 4}]
        driver = start_driver({**backend, "out_path": str(out)}, cfgs)
        try:
            wait_until(lambda: (out / "2" / "pid").exists() and len(_complete_lines(out / "results.jsonl")) >= 2,
                       "two experiments finished and one blocks", 120, driver)
            if signum == signal.SIGINT:
                os.killpg(driver.pid, signal.SIGINT)
            else:
                driver.send_signal(signum)
            left_running, err = driver.communicate(timeout=60)
            finished = finished_ids(out)
            assert driver.returncode == 130, err
            assert {0, 1} <= set(finished) and 2 not in finished
            assert "interrupted" in err and f"{len(finished)} of 4 experiments finished" in err
            assert f"out_path='{out}' and if_exists='resume'" in err
            assert json.loads(left_running) == [], "the driver's processes still running once the run stopped"
            assert_stopped([out / "2"], self.capabilities.isolation)
        finally:
            flag.unlink()
            if driver.poll() is None:
                driver.kill()
                driver.communicate()
        return out, cfgs


def _until_outcomes_of(events: Iterator[Event], ids: Set[int]) -> List[Outcome]:
    """Iterate a session's events until the outcomes of ``ids`` have come (then stop iterating)."""
    outcomes = []
    for event in events:
        if isinstance(event, Outcome):
            outcomes.append(event)
            if {outcome.experiment_id for outcome in outcomes} >= ids:
                return outcomes
    raise AssertionError(f"the events ended with the outcomes of {outcomes} only; expected those of {ids}")


def start_driver(settings: Dict[str, Any], cfgs: List[Dict[str, Any]]) -> "subprocess.Popen[str]":
    """The driver module in a process (and session) of its own, importing what this process imports."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    command = [sys.executable, "-m", "experiment_runner.testing.driver", json.dumps(settings), json.dumps(cfgs)]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _complete_lines(path: Path) -> List[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []
