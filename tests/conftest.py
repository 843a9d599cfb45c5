"""Fixtures shared by the test suite.

The contract suite (test_contract.py) runs over every backend listed in
CONTRACT_BACKENDS. Each backend has a fixture named ``<name>_backend`` that
returns the basecfg settings selecting it (starting whatever it needs: a Ray
cluster, SSH servers); a backend that runs experiments in processes it can
replace is also listed in ISOLATING_BACKENDS, which adds the crash tests.
"""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Keep every Ray process of the tests on loopback (see ray_cluster.py); must precede importing ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import stages  # noqa: E402
from ray_cluster import ray_cluster  # noqa: F401,E402  (a session fixture: a real two-node Ray cluster)
from slurm_cluster import slurm_cluster  # noqa: F401  (a session fixture: a real single-node Slurm)
from sshd import ssh_cluster  # noqa: F401  (a session fixture: two OpenSSH servers on loopback)

CONTRACT_BACKENDS = ["single", "multiprocessing", "slurm", "malocher", "ray"]
ISOLATING_BACKENDS = ["multiprocessing", "slurm", "malocher", "ray"]


@pytest.fixture
def single_backend():
    return {"backend": "single"}


@pytest.fixture
def multiprocessing_backend():
    return {"backend": "multiprocessing", "num_workers": 2}


@pytest.fixture
def slurm_backend(slurm_cluster):
    return {"backend": "slurm", "slurm_partition": slurm_cluster.partition, "slurm_poll_interval": 0.5}


@pytest.fixture
def malocher_backend(ssh_cluster, tmp_path):
    return ssh_cluster.settings(tmp_path / "jobs")


@pytest.fixture
def ray_backend(ray_cluster):
    return ray_cluster.settings()


@pytest.fixture(params=CONTRACT_BACKENDS)
def backend(request):
    """basecfg settings for each backend of the contract suite."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture(params=ISOLATING_BACKENDS or [pytest.param(None, marks=pytest.mark.skip(reason="no backend yet"))])
def isolating_backend(request):
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def basecfg(tmp_path):
    """A quiet basecfg with the test stages, writing to a fresh out_path."""
    return {"out_path": str(tmp_path / "run"), "pre": stages.pre, "fit": stages.fit, "post": stages.post,
            "verbose": False}


@pytest.fixture
def small_disk(tmp_path):
    """A real 512 KiB disk (a tmpfs, unmounted afterwards) for the full-disk tests; mounting it needs root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.fail(f"the full-disk tests mount a small tmpfs, which needs root: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


#: Longer than a 4 KiB page: the record that finds the disk full gets written in part (into what is left of
#: the file's last page) unless it is cut back.
DISK_FULL_PAD = "p" * 5000
DISK_FULL_STOP = "the run stopped, keeping what it recorded; free space on that disk, then resume it"


def filling(disk, tmp_path, fill_x, **more):
    """cfg keys for stages.fit_disk_filler: the experiment with x == fill_x fills ``disk``, once."""
    return {"pad": DISK_FULL_PAD, "fill_x": fill_x, "ballast": str(disk / "ballast"),
            "marker": str(tmp_path / "filled"), **more}


def read_lines(path):
    """The JSON lines of a file, asserting each line is complete."""
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def pytest_collection_finish(session):
    """When the Hydra parity tests are to run, start working out Hydra's answers now (see test_hydra_parity)."""
    modules = {item.module for item in session.items if item.module.__name__ == "test_hydra_parity"}
    if not modules:
        return
    root = Path(tempfile.mkdtemp(prefix="hydra-parity-"))
    session.config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
    modules.pop().prepare_hydra_answers(root)
