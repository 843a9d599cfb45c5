"""Fixtures shared by the test suite.

Each backend has a fixture named ``<name>_backend`` that returns the basecfg
settings selecting it, starting whatever it needs (a Ray cluster, SSH
servers, Slurm); test_contract.py runs the public contract suite
(experiment_runner.testing) on each with them.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Keep every Ray process of the tests on loopback (see ray_cluster.py); must precede importing ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import stages  # noqa: E402
from experiment_runner.testing.kit import (  # noqa: F401,E402  (shared with the tests)
    DISK_FULL_PAD, DISK_FULL_STOP, filling, read_lines, small_tmpfs)
from ray_cluster import ray_cluster  # noqa: F401,E402  (a session fixture: a real two-node Ray cluster)
from slurm_cluster import slurm_cluster  # noqa: F401  (a session fixture: a real single-node Slurm)
from slurm_cluster import slurm_time_limited_run  # noqa: F401  (a run Slurm's time limit stops, started early)
from sshd import ssh_cluster  # noqa: F401  (a session fixture: two OpenSSH servers on loopback)


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


@pytest.fixture
def basecfg(tmp_path):
    """A quiet basecfg with the test stages, writing to a fresh out_path."""
    return {"out_path": str(tmp_path / "run"), "pre": stages.pre, "fit": stages.fit, "post": stages.post,
            "verbose": False}


@pytest.fixture
def small_disk(tmp_path):
    """A real 512 KiB disk (a tmpfs, unmounted afterwards) for the full-disk tests; mounting it needs root."""
    with small_tmpfs(tmp_path, lambda why: pytest.fail(f"the full-disk tests {why}")) as disk:
        yield disk


def pytest_collection_finish(session):
    """When the Hydra parity tests are to run, start working out Hydra's answers now (see test_hydra_parity)."""
    modules = {item.module for item in session.items if item.module.__name__ == "test_hydra_parity"}
    if not modules:
        return
    root = Path(tempfile.mkdtemp(prefix="hydra-parity-"))
    session.config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
    modules.pop().prepare_hydra_answers(root)



#: With pytest-xdist (``-n 2 --dist loadgroup``, as the README's test command runs), the tests that share a
#: session fixture starting real servers run on one worker, so that each server starts once; so do the tests of a
#: backend's own file. Every other file's tests stay together too: a module's fixtures (a run to read, a browser)
#: are made once, and the Hydra venv test_hydra_parity.py builds on first use is built by one worker.
_SERVER_GROUPS = {"ray_cluster": "ray", "slurm_cluster": "slurm", "ssh_cluster": "ssh"}
_FILE_GROUPS = {"test_ray.py": "ray", "test_slurm.py": "slurm", "test_ssh.py": "ssh"}


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("xdist"):  # one process: nothing to group (and no such marker)
        return
    for item in items:
        group = next((name for fixture, name in _SERVER_GROUPS.items() if fixture in item.fixturenames),
                     _FILE_GROUPS.get(item.path.name, item.path.name))
        item.add_marker(pytest.mark.xdist_group(group))
