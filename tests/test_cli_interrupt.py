"""Ctrl-C while the command composes and plans a sweep: one line, exit code 130, nothing written.

The stage module named by the config is imported while the run is planned;
here its import waits, so the Ctrl-C lands there, and it does to the
interrupt what libraries do: lets it through, turns it into an error of its
own, or catches it and goes on.
"""
import pytest

from test_cli import interrupted, write_project

SLOW_IMPORT = """\
import pathlib, time
pathlib.Path("importing").write_text("")
try:
    time.sleep(30)
except KeyboardInterrupt:
    {handling}
def fit(cfg):
    return None
"""

HANDLINGS = {
    "let-through": "raise",
    "turned-into-an-error": "raise ValueError('a library error caused by the interrupt')",
    "caught-and-ignored": "pass",
}


MESSAGE = "interrupted: stopped while the sweep was composed and planned, before anything was written\n"


def ctrl_c_while_importing(project, argv):
    """Run the command with ``argv``, Ctrl-C it while it imports the stage module: its stderr (exit code 130)."""
    return interrupted(argv, project, lambda: project / "importing", finished=0)


def slow_project(root, handling):
    write_project(root, "fit: slow_stages:fit\nverbose: false\nx: ${variation:1,2,3}\n", files={})
    (root / "slow_stages.py").write_text(SLOW_IMPORT.format(handling=handling))


@pytest.mark.parametrize("handling", HANDLINGS.values(), ids=HANDLINGS.keys())
def test_ctrl_c_while_the_sweep_is_planned_says_so_exits_130_and_writes_nothing(tmp_path, handling):
    slow_project(tmp_path, handling)
    assert ctrl_c_while_importing(tmp_path, ["out_path=out"]) == MESSAGE
    assert not (tmp_path / "out").exists()


def test_ctrl_c_while_a_list_is_planned_says_so_too(tmp_path):
    slow_project(tmp_path, HANDLINGS["let-through"])
    assert ctrl_c_while_importing(tmp_path, ["--list"]) == MESSAGE
