"""What every contract case stands on: the capabilities a backend declares, the fixtures, reading the tree."""
import contextlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterable, Iterator, List, Mapping

import pytest

from .. import run_experiments
from ..progress import RunSummary
from . import stages


@dataclass(frozen=True)
class Capabilities:
    """What a backend honours. A contract case that needs what a backend does not declare is skipped, saying so.

    Declare everything your backend does: a capability left out hides its cases.
    """

    #: It stops an experiment that runs longer than ``timeout`` seconds (and without this, refuses a timeout).
    timeout: bool = False
    #: Each experiment runs in a process of its own that the backend can end: a crash (os._exit, a segfault,
    #: SIGKILL) fails that experiment only, and what is stopped (closing, Ctrl-C) is that process and its children.
    isolation: bool = False
    #: A KeyboardInterrupt that a stage raises itself fails that experiment only (its process is out of reach of
    #: the user's Ctrl-C, so it cannot be one).
    stage_interrupt_is_failure: bool = False
    #: It runs experiments while the driver waits for outcomes, several at once: a failed experiment is retried
    #: while others still run, and experiments are in flight when the session closes.
    concurrent: bool = False
    #: It carries ``Session.prune(experiment_id)`` to the running experiment, whose ``should_prune()`` then answers
    #: True, and yields the metrics messages a search decides by (or hands them to ``Session.listener``).
    prune: bool = False


def skip_unless(capabilities: Capabilities, name: str, needed_for: str) -> None:
    """Skip the calling case unless ``capabilities`` declares ``name``."""
    if not getattr(capabilities, name):
        pytest.skip(f"the backend does not declare Capabilities.{name}, which {needed_for}")


class ContractFixtures:
    """The fixtures of the contract cases; a subclass provides ``backend`` and ``capabilities``."""

    #: What the backend under test honours (see :class:`Capabilities`).
    capabilities: ClassVar[Capabilities] = Capabilities()

    @pytest.fixture
    def backend(self) -> Dict[str, Any]:
        """The settings selecting the backend under test (``backend`` and its options): override this fixture."""
        pytest.fail(f"{type(self).__name__} must define a fixture `backend` returning the settings that select "
                    "the backend under test, e.g. {'backend': 'mine', 'mine_workers': 2}", pytrace=False)

    @pytest.fixture
    def basecfg(self, tmp_path: Path) -> Dict[str, Any]:
        """A quiet basecfg with the suite's stages, writing to a fresh out_path."""
        return {"out_path": str(tmp_path / "run"), "pre": stages.pre, "fit": stages.fit, "post": stages.post,
                "verbose": False}

    @pytest.fixture
    def small_disk(self, tmp_path: Path) -> Iterator[Path]:
        """A real 512 KiB disk (a tmpfs, unmounted afterwards) for the full-disk case; mounting it needs root."""
        with small_tmpfs(tmp_path, lambda why: pytest.skip(f"the full-disk case {why}")) as disk:
            yield disk


@contextlib.contextmanager
def small_tmpfs(tmp_path: Path, cannot: Callable[[str], Any]) -> Iterator[Path]:
    """A 512 KiB tmpfs mounted at ``tmp_path``/disk while in use; ``cannot(why)`` (which raises) if it cannot be."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        cannot(f"mount a small tmpfs, which needs root: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def run(basecfg: Mapping[str, Any], backend: Mapping[str, Any], cfgs: Iterable[Mapping[str, Any]],
        **settings: Any) -> RunSummary:
    return run_experiments({**basecfg, **backend, **settings}, cfgs)


def read_lines(path: Path) -> List[Dict[str, Any]]:
    """The JSON lines of a file, asserting each line is complete."""
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def finished_ids(out_path: Path) -> List[int]:
    """The experiment ids of results.jsonl, sorted."""
    return sorted(line["experiment_id"] for line in read_lines(Path(out_path) / "results.jsonl"))


#: Longer than a 4 KiB page: the record that finds the disk full gets written in part (into what is left of
#: the file's last page) unless it is cut back.
DISK_FULL_PAD = "p" * 5000
DISK_FULL_STOP = "the run stopped, keeping what it recorded; free space on that disk, then resume it"


def filling(disk: Path, tmp_path: Path, fill_x: int, **more: Any) -> Dict[str, Any]:
    """cfg keys for stages.fit_disk_filler: the experiment with x == fill_x fills ``disk``, once."""
    return {"pad": DISK_FULL_PAD, "fill_x": fill_x, "ballast": str(disk / "ballast"),
            "marker": str(tmp_path / "filled"), **more}
