"""The backend registry: built-in names, unknown names, third-party launchers by entry point."""
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from experiment_runner import run_experiments
from experiment_runner.config import compose
from experiment_runner.cli import App, guarded
from experiment_runner.errors import (
    BackendPluginError, ConfigError, IgnoredSettingWarning, ShadowedBackendWarning, UnknownBackendError,
)
from experiment_runner.launchers import available_launchers, get_launcher_class
from experiment_runner.launchers.ray_launcher import RayLauncher
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


TYPED_PLUGIN = textwrap.dedent(
    '''
    import dataclasses
    from pathlib import Path
    from typing import Optional

    from experiment_runner.errors import ConfigError
    from experiment_runner.launchers.options import BackendOptions, option
    from experiment_runner.launchers.single import SingleLauncher

    @dataclasses.dataclass
    class FlavourOptions(BackendOptions):
        """Runs experiments in this process, with a flavour: a stand-in for a third-party backend."""

        flavour: str = option("plain", "how the experiments taste")
        strength: float = option(1.0, "how strong it is", expect="a number > 0", above=0)
        flavour_token: Optional[str] = option(None, "the flavour service's token", secret=True)

        def validate(self, settings):
            if self.flavour == "bitter" and self.strength > 1:
                raise ConfigError(f"flavour=bitter is too much with strength={self.strength:g}: at most 1")

    class FlavourLauncher(SingleLauncher):
        name = "flavoured"
        Options = FlavourOptions

        def session(self, stages):
            seen = Path(self.settings.out_path).parent / "flavour.txt"
            seen.write_text(repr(dataclasses.asdict(self.typed_options)))
            return super().session(stages)
    '''
)


def install(root, module, source, entry_points):
    """A distribution ``<module>-1.0`` in root that declares ``entry_points`` in the launchers' group."""
    (root / f"{module}.py").write_text(source)
    dist_info = root / f"{module}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[experiment_runner.launchers]\n{entry_points}\n")


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path that declares a launcher in the entry point group."""
    install(tmp_path, "reversed_backend", PLUGIN, "reversed = reversed_backend:ReversedLauncher")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("reversed_backend", None)


@pytest.fixture
def typed_plugin(tmp_path, monkeypatch):
    """A plugin whose launcher declares its settings as a dataclass, and two broken entry points beside it."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    install(plugins, "flavour_backend", TYPED_PLUGIN,
            "flavoured = flavour_backend:FlavourLauncher\nunflavoured = flavour_backend:FlavourOptions\n"
            "ray = flavour_backend:FlavourLauncher")
    monkeypatch.syspath_prepend(str(plugins))
    yield
    sys.modules.pop("flavour_backend", None)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """The command in this process, in a project in tmp_path: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("pre: stages:pre\nfit: stages:fit\nverbose: false\nx: 1\n")

    def run(*argv):
        code = guarded(list(argv), App(["experiment-runner"]))
        return (code, *capsys.readouterr())

    return run


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


def test_a_plugins_settings_are_set_on_the_command_line_like_a_built_in_backends(typed_plugin, cli, tmp_path):
    code, out, err = cli("--cfg", "backend=flavoured")
    assert (code, err) == (0, "")
    assert yaml.safe_load(out)["backend"] == {"name": "flavoured", "flavour": "plain", "strength": 1.0,
                                              "flavour_token": None}
    assert cli("backend=flavoured", "backend.flavour=mild", "backend.strength=2", "out_path=out")[0] == 0
    assert (tmp_path / "flavour.txt").read_text() == "{'flavour': 'mild', 'strength': 2.0, 'flavour_token': None}"
    assert yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())["settings"]["flavour"] == "mild"
    code, _, err = cli("--list", "backend=flavoured", "backend.flavor=mild")
    assert code == 2 and "did you mean backend.flavour" in err
    code, _, err = cli("--list", "backend=flavoured", "backend.num_workers=2")
    assert code == 2 and "num_workers is a setting of backend=multiprocessing, not of backend=flavoured" in err


@pytest.mark.parametrize("argv", [pytest.param([], id="run"), pytest.param(["--list"], id="list")])
@pytest.mark.parametrize("override, message", [
    pytest.param("backend.strength=strong", "strength must be a number > 0, got 'strong'", id="type"),
    pytest.param("backend.strength=0", "strength must be a number > 0, got 0", id="bound"),
    pytest.param("backend.flavour=[a]", "flavour must be a string, got ['a']", id="list-for-a-string"),
    pytest.param("backend.strength=3", "flavour=bitter is too much with strength=3: at most 1", id="validate"),
])
def test_a_wrong_plugin_setting_is_one_line_and_exit_2(typed_plugin, cli, tmp_path, argv, override, message):
    overrides = ["backend.flavour=bitter", override] if override.startswith("backend.strength") else [override]
    code, out, err = cli(*argv, "backend=flavoured", *overrides, "out_path=out")
    assert (code, out, err) == (2, "", f"experiment-runner: error: {message}\n")
    assert not (tmp_path / "out").exists()


def test_a_plugins_secret_setting_is_masked_everywhere(typed_plugin, cli, tmp_path):
    assert cli("backend=flavoured", "backend.flavour_token=S3CRET", "out_path=out")[0] == 0
    assert yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())["settings"]["flavour_token"] == "***"
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and b"S3CRET" in p.read_bytes()]
    code, out, _ = cli("--cfg", "backend=flavoured", "backend.flavour_token=S3CRET")
    assert code == 0 and "S3CRET" not in out and "flavour_token: '***'" in out


def test_a_plugins_settings_in_a_basecfg_that_runs_another_backend_are_ignored_with_a_warning(typed_plugin, basecfg):
    """As for a built-in backend's: a script may keep every backend's settings, secret ones masked."""
    cfg = {**basecfg, "backend": "single", "flavour": "mild", "flavour_token": "S3CRET"}
    with pytest.warns(IgnoredSettingWarning, match=r"^flavour, flavour_token are settings of backend=flavoured; "
                      r"backend=single ignores them$"):
        summary = run_experiments(cfg, [{"x": 1}])
    assert summary.finished == 1
    root = Path(basecfg["out_path"])
    assert yaml.safe_load((root / "run.yaml").read_text())["settings"]["flavour_token"] == "***"
    assert not [p for p in root.rglob("*") if p.is_file() and b"S3CRET" in p.read_bytes()]
    with pytest.raises(ConfigError, match=r"unknown key 'flavor' in basecfg; did you mean flavour, flavour_token\?"):
        run_experiments({**basecfg, "backend": "single", "flavor": "mild"}, [{"x": 1}])


def test_a_plugins_setting_in_another_backends_node_says_whose_it_is(typed_plugin, cli):
    for override in ("backend.flavour=mild", "+backend.flavour=mild"):
        code, _, err = cli("--list", "backend=multiprocessing", override)
        assert code == 2 and "flavour is a setting of backend=flavoured, not of backend=multiprocessing" in err, err


def test_an_entry_point_that_is_no_launcher_is_refused_naming_it(typed_plugin, cli):
    with pytest.raises(BackendPluginError, match=r"the entry point 'unflavoured = flavour_backend:FlavourOptions' "
                       r"\(group experiment_runner.launchers\) of the distribution flavour-backend is not a backend"):
        get_launcher_class("unflavoured")
    code, out, err = cli("--list", "backend=unflavoured")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "not a subclass of" in err


def test_a_plugin_named_like_a_built_in_backend_is_ignored_with_a_warning(typed_plugin):
    with pytest.warns(ShadowedBackendWarning, match=r"'ray = flavour_backend:FlavourLauncher' .* registers backend "
                      r"'ray', the name of a built-in backend: it is ignored and backend=ray is the built-in one"):
        assert get_launcher_class("ray") is RayLauncher
    assert "flavour_backend" not in sys.modules


@pytest.mark.parametrize("value", ["???", "a${b", "${x}", "plain"])
def test_a_text_setting_is_taken_as_given_even_where_omegaconf_would_read_it_otherwise(value):
    """'???' is OmegaConf's missing value and '${...}' an interpolation: as a backend setting's value, text is text."""
    from experiment_runner.launchers.options import SlurmOptions, typed_options

    assert typed_options(SlurmOptions, {"slurm_job_name": value}).slurm_job_name == value


def test_the_launchers_package_reads_every_public_name_of_its_registry():
    """The package hands its registry's names on when first asked for (a pool worker imports the package without
    the registry): each public name defined in registry.py must be one it hands on."""
    import ast

    from experiment_runner import launchers
    from experiment_runner.launchers import registry

    tree = ast.parse(Path(registry.__file__).read_text())
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    names += [target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets]
    names += [node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)]
    defined = {name for name in names if not name.startswith("_")}
    assert defined == set(launchers._REGISTRY_NAMES)
    assert all(getattr(launchers, name) is getattr(registry, name) for name in defined)
