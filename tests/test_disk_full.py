"""A disk that fills up while a run writes: the run stops in one line with exit code 3, keeps whole records
only, and a resume (once there is space again) finishes it. The contract suite has the same for every backend.

The disk is a real one: a small tmpfs mounted for each test (conftest.small_disk), which needs root
(as the SSH and Slurm tests do); without it these tests fail and say so.
"""
import re
import time
from pathlib import Path

import pytest

import stages
from conftest import DISK_FULL_PAD, DISK_FULL_STOP, filling, read_lines
from experiment_runner import run_experiments
from experiment_runner.cli import App, guarded
from experiment_runner.errors import RecordWriteError


ONE_AT_A_TIME = [pytest.param({"backend": "single"}, id="single"),
                 pytest.param({"backend": "multiprocessing", "num_workers": 1}, id="multiprocessing")]


@pytest.mark.parametrize("backend", ONE_AT_A_TIME)
def test_an_experiment_that_cannot_write_its_folder_stops_the_run(small_disk, tmp_path, backend):
    """Short records still fit in results.jsonl's last page; the next experiment's config.json does not."""
    out = small_disk / "run"
    basecfg = {"out_path": str(out), "fit": stages.fit_disk_filler, "post": stages.post_report, "verbose": False,
               **backend}
    cfgs = [{"x": x, **filling(small_disk, tmp_path, fill_x=1, pad="")} for x in range(4)]
    with pytest.raises(RecordWriteError) as raised:
        run_experiments(basecfg, cfgs)
    assert str(raised.value) == (f"no space left on device writing '{out / '2' / 'config.json'}' "
                                 f"(experiment 2 in '{out / '2'}'): {DISK_FULL_STOP}")
    assert [line["experiment_id"] for line in read_lines(out / "results.jsonl")] == [0, 1]
    assert read_lines(out / "failures.jsonl") == [], "a full disk is not a failure of the experiments"

    (small_disk / "ballast").unlink()
    summary = run_experiments({**basecfg, "if_exists": "resume"}, cfgs)
    assert (summary.skipped, summary.finished, summary.failed) == (2, 2, 0)


def test_experiments_in_flight_are_stopped_when_the_disk_is_full(small_disk, tmp_path):
    out = small_disk / "run"
    flag, pid_file = tmp_path / "flag", tmp_path / "blocked.pid"
    flag.write_text("block")
    basecfg = {"out_path": str(out), "fit": stages.fit_disk_filler, "post": stages.post_report, "verbose": False,
               "backend": "multiprocessing", "num_workers": 2}
    cfgs = [{"x": 0, "block": str(flag), "pid_file": str(pid_file)},
            *({"x": x, **filling(small_disk, tmp_path, fill_x=1, after=str(pid_file))} for x in (1, 2, 3))]
    with pytest.raises(RecordWriteError, match=DISK_FULL_STOP):
        run_experiments(basecfg, cfgs)
    blocked = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(blocked) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(blocked), "the experiment in flight was not stopped"
    assert 0 not in [line["experiment_id"] for line in read_lines(out / "results.jsonl")]

    (small_disk / "ballast").unlink()
    flag.unlink()
    run_experiments({**basecfg, "if_exists": "resume"}, cfgs)
    assert sorted(line["experiment_id"] for line in read_lines(out / "results.jsonl")) == [0, 1, 2, 3]


def _alive(pid):
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_disk_full_before_the_first_experiment_leaves_the_out_path_empty(small_disk):
    out = small_disk / "run"
    out.mkdir()
    stages.fill_disk(small_disk / "ballast")
    basecfg = {"out_path": str(out), "fit": stages.fit_disk_filler, "verbose": False}
    with pytest.raises(RecordWriteError) as raised:
        run_experiments(basecfg, [{"x": 1}, {"x": 2}])
    assert str(raised.value) == (f"no space left on device writing '{out / 'experiments.jsonl'}': no experiment ran; "
                                 "free space on that disk, then run it again")
    assert list(out.iterdir()) == []
    (small_disk / "ballast").unlink()
    assert run_experiments(basecfg, [{"x": 1}, {"x": 2}]).finished == 2


CONFIG = """\
fit: stages:fit_disk_filler
post: stages:post_report
verbose: true
x: ${{variation:0,1,2,3}}
pad: {pad}
fill_x: 1
ballast: {ballast}
marker: {marker}
"""


def test_the_command_names_the_full_disk_exits_3_and_says_how_to_finish(small_disk, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(
        CONFIG.format(pad=DISK_FULL_PAD, ballast=small_disk / "ballast", marker=tmp_path / "filled"))
    out = small_disk / "run"
    code = guarded([f"out_path={out}"], App(["experiment-runner"]))
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert re.fullmatch(rf"experiment-runner: error: no space left on device .*'{out}.*: {DISK_FULL_STOP}", lines[-1])
    assert lines[-2] == f"to finish it, run: experiment-runner --resume {out.relative_to(tmp_path)}"  # below the cwd
    assert re.search(r"\n1 of 4 experiments finished, 3 not run \(stopped\), in ", err)

    (small_disk / "ballast").unlink()
    assert guarded(["--resume", str(out)], App(["experiment-runner"])) == 0
    assert sorted(line["x"] for line in read_lines(out / "results.jsonl")) == [0, 1, 2, 3]
