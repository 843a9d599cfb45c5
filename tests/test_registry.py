"""The backend registry: built-in names, unknown names, third-party launchers by entry point."""
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from experiment_runner import run_experiments
from experiment_runner.config import compose
from experiment_runner.errors import UnknownBackendError
from experiment_runner.launchers import available_launchers, get_launcher_class
from experiment_runner.launchers.single import SingleLauncher

PLUGIN = textwrap.dedent(
    '''
    from experiment_runner.launchers.single import SingleLauncher, SingleSession

    class ReversedSession(SingleSession):
        def events(self):
            self.waiting.reverse()
            yield from super().events()

    class ReversedLauncher(SingleLauncher):
        """Runs experiments last to first: a stand-in for a third-party backend."""
        name = "reversed"
        option_names = frozenset({"reversed_flavour", "reversed_key"})
        secret_options = frozenset({"reversed_key"})

        def session(self, stages):
            return ReversedSession(stages)
    '''
)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path that declares a launcher in the entry point group."""
    (tmp_path / "reversed_backend.py").write_text(PLUGIN)
    dist_info = tmp_path / "reversed_backend-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: reversed-backend\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[experiment_runner.launchers]\nreversed = reversed_backend:ReversedLauncher\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("reversed_backend", None)


def test_single_is_built_in():
    assert get_launcher_class("single") is SingleLauncher
    assert "single" in available_launchers()


def test_unknown_backend_names_the_valid_ones_and_the_closest():
    with pytest.raises(UnknownBackendError, match=r"unknown backend 'singel' \(did you mean 'single'\?\)"):
        get_launcher_class("singel")


def test_third_party_launcher_registers_by_entry_point_and_runs(installed_plugin, basecfg):
    assert "reversed" in available_launchers()
    assert "reversed_backend" not in sys.modules, "listing backends must not import them"
    run_experiments({**basecfg, "backend": "reversed", "reversed_flavour": "mild"}, [{"x": 1}, {"x": 2}])
    lines = (Path(basecfg["out_path"]) / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["experiment_id"] for line in lines] == [1, 0]


def test_a_plugins_secret_options_are_masked_like_the_built_in_ones(installed_plugin, basecfg, tmp_path):
    run_experiments({**basecfg, "backend": "reversed", "reversed_key": "S3CRET"}, [{"x": 1}])
    root = Path(basecfg["out_path"])
    assert yaml.safe_load((root / "run.yaml").read_text())["settings"]["reversed_key"] == "***"
    assert not [p for p in root.rglob("*") if p.is_file() and b"S3CRET" in p.read_bytes()]
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("fit: stages:fit\n")
    composition = compose(tmp_path / "conf", "config", ["backend=reversed", "+backend.reversed_key=S3CRET"])
    assert "S3CRET" not in composition.to_yaml() and "reversed_key: '***'" in composition.to_yaml()
