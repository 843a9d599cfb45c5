"""The example plugin examples/dask_backend passes the public contract suite on a real distributed.LocalCluster.

CI installs it (``pip install -e examples/dask_backend``), as a plugin author would.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from experiment_runner import run_experiments
from experiment_runner.launchers import available_launchers
from experiment_runner.testing import BackendContract, Capabilities, read_lines

pytest.importorskip("distributed", reason="the Dask example backend needs distributed: pip install 'dask[distributed]'")


#: A LocalCluster in a process of its own, as a cluster a plugin's users run: until its stdin closes.
CLUSTER = """
import sys
from distributed import LocalCluster

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        print(cluster.scheduler_address, flush=True)
        sys.stdin.read()
"""


@pytest.fixture(scope="module")
def dask_scheduler():
    """The address of a LocalCluster of two single-threaded worker processes, shared by the module's runs."""
    if "dask" not in available_launchers():
        pytest.fail("the Dask example plugin is not installed: pip install -e examples/dask_backend", pytrace=False)
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        address = cluster.stdout.readline().strip()
        assert address.startswith("tcp://"), "the LocalCluster did not start"
        yield address
    finally:
        cluster.stdout.close()
        cluster.stdin.close()
        try:
            cluster.wait(30)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()


class TestDaskExample(BackendContract):
    #: Experiments run in worker threads: no timeout, no isolation from a crash; closing restarts busy workers.
    capabilities = Capabilities(concurrent=True)

    @pytest.fixture
    def backend(self, dask_scheduler):
        return {"backend": "dask", "dask_scheduler": dask_scheduler}


def test_without_a_scheduler_address_the_run_starts_and_closes_a_local_cluster_of_its_own(basecfg):
    summary = run_experiments({**basecfg, "backend": "dask", "dask_workers": 1}, [{"x": 1}, {"x": 2}])
    assert summary.finished == 2
    assert [line["scores"]["y"] for line in read_lines(Path(basecfg["out_path"]) / "results.jsonl")] in ([2, 4], [4, 2])


def test_its_settings_are_declared_so_a_wrong_one_is_one_line_before_anything_runs(basecfg):
    """The example shows the declared way: typed settings, checked by the plan step, listed by --help."""
    from experiment_runner.errors import ConfigError
    from experiment_runner.launchers import get_launcher_class

    with pytest.raises(ConfigError, match=r"^dask_workers must be a whole number >= 1, got 'four'$"):
        run_experiments({**basecfg, "backend": "dask", "dask_workers": "four"}, [{"x": 1}])
    assert not Path(basecfg["out_path"]).exists()
    fields = get_launcher_class("dask").Options.__dataclass_fields__
    assert fields["dask_workers"].metadata["doc"] and fields["dask_scheduler"].metadata["doc"]
