"""Start-up stays light: heavy libraries are imported only when a feature needs them."""
import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from experiment_runner.launchers import ENTRY_POINT_GROUP
from test_registry import TYPED_PLUGIN, install as install_plugin

HEAVY = ["ray", "pandas", "matplotlib", "asyncssh", "paramiko", "numpy", "tqdm"]
SRC = Path(__file__).resolve().parent.parent / "src"

#: What neither importing the package nor its API imports: the libraries of a run's or a report's parts,
#: and the standard library's slow readers of installed distributions.
NOT_ON_IMPORT = {
    "yaml", "omegaconf", "tqdm", "cloudpickle", "pandas", "matplotlib", "numpy", "ray", "asyncssh", "paramiko",
    "submitit", "optuna", "importlib.metadata", "email", "experiment_runner.report", "experiment_runner.report_records",
    "experiment_runner.report_plot", "experiment_runner.report_cli", "experiment_runner.config",
    "experiment_runner.serve",
}
#: What ``--help`` and ``--cfg`` import neither: they compose the config and run nothing.
NOT_ON_HELP = {
    "tqdm", "cloudpickle", "pandas", "matplotlib", "numpy", "ray", "asyncssh", "paramiko", "submitit", "optuna",
    "importlib.metadata", "email", "experiment_runner.report", "experiment_runner.report_records",
    "experiment_runner.report_plot", "experiment_runner.report_cli", "experiment_runner.runner",
    "experiment_runner.store", "experiment_runner.experiment", "experiment_runner.launchers.base",
    "experiment_runner.launchers.single", "experiment_runner.progress",
    "attr",  # OmegaConf's import of attrs is put off until something needs it (omegaconf_import.py)
    "shutil", "hashlib", "secrets", "random",  # argparse's terminal width, a run's secrets, shuffle(): not here
    "experiment_runner.serve", "http.server",
    # nor plan the sweep: its experiments, the run's checks (which import the stages' modules), a resumed run
    "experiment_runner.expand", "experiment_runner.sweep", "experiment_runner.plan", "experiment_runner.settings",
    "experiment_runner.cli_checks", "experiment_runner.cli_resume",
}
#: What a command line without overrides does without: the override grammar's functions and value types.
NOT_WITHOUT_OVERRIDES = {"experiment_runner.config.sweep_functions"}


def run_fresh(code, *argv, cwd=None, path=()):
    """``code`` (given ``argv``) in a fresh interpreter with ``path`` and this package first on its path:
    (exit code, stdout, stderr, the modules it held at exit, sys.exit included)."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
        f"{code}"
    )
    search = [*map(str, path), str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(search)})
    err, _, modules = done.stderr.rpartition("\nMODULES ")
    assert modules, done.stderr
    return done.returncode, done.stdout, err, set(json.loads(modules))


def imported_after(code, *argv, cwd=None):
    """The modules a fresh interpreter holds once ``code`` (given ``argv``) has run."""
    return run_fresh(code, *argv, cwd=cwd)[3]


def test_importing_the_package_imports_nothing_heavy():
    modules = imported_after("import experiment_runner")
    assert not modules & set(HEAVY)
    assert not modules & NOT_ON_IMPORT


def test_importing_the_api_imports_neither_yaml_nor_the_progress_bar_nor_the_report():
    modules = imported_after("from experiment_runner import run_experiments, Variation, generate_configs")
    assert "experiment_runner.runner" in modules
    assert sorted(modules & NOT_ON_IMPORT) == []


def test_the_compatibility_shim_imports_as_little_as_the_package():
    modules = imported_after("from experiment_runner.experiment_runner import run_experiments, Variation")
    assert sorted(modules & NOT_ON_IMPORT) == []


@pytest.fixture
def project(tmp_path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(
        "defaults:\n  - backend: single\n  - model: small\n  - _self_\n"
        "fit: stages:fit\nout_path: results/${now:%Y-%m-%d}\nlr: ${variation:0.1,0.01}\n"
    )
    (tmp_path / "conf" / "model" / "small.yaml").write_text("size: 10\n")
    return tmp_path


@pytest.mark.parametrize("flags", [["--help"], ["--cfg"], ["--help", "backend=multiprocessing"]])
def test_help_and_cfg_compose_without_importing_a_backend_the_runner_or_the_report(project, flags):
    modules = imported_after("from experiment_runner.cli import console_main; console_main()", *flags, cwd=project)
    assert {"omegaconf", "experiment_runner.config"} <= modules  # they do compose the config
    assert sorted(modules & NOT_ON_HELP) == []
    overrides = [flag for flag in flags if not flag.startswith("-")]
    assert bool(modules & NOT_WITHOUT_OVERRIDES) == bool(overrides)


ATTRS_CLASSES = """
import attr
from omegaconf import OmegaConf
from omegaconf.errors import ReadonlyConfigError

@attr.s(auto_attribs=True)
class Model:
    name: str = "ridge"
    alpha: float = 0.1

@attr.s(auto_attribs=True, frozen=True)
class Frozen:
    size: int = 1

assert OmegaConf.to_container(OmegaConf.structured(Model)) == {"name": "ridge", "alpha": 0.1}
config = OmegaConf.create({"model": Model(alpha=2.0)})
assert OmegaConf.to_container(config) == {"model": {"name": "ridge", "alpha": 2.0}}
try:
    config.model.alpha = "not a number"
    raise AssertionError("a typed attrs field took a string")
except Exception as error:
    assert "alpha" in str(error), error
frozen = OmegaConf.structured(Frozen)
try:
    frozen.size = 2
    raise AssertionError("a frozen attrs class was written to")
except ReadonlyConfigError:
    pass
"""


def test_composing_imports_omegaconf_without_attrs_and_attrs_classes_still_work_once_imported():
    """A stage that imports attrs after the package composed (backend=single runs it in the same process) gets it,
    and OmegaConf takes its attrs classes as structured configs, frozen ones included, as it always did."""
    code = (
        "import sys\n"
        "import experiment_runner.config\n"
        "from omegaconf import OmegaConf\n"
        "config = OmegaConf.create({'a': {'b': [1, '${a.c}'], 'c': 2}})\n"
        "assert OmegaConf.to_container(config, resolve=True) == {'a': {'b': [1, 2], 'c': 2}}\n"
        "assert 'attr' not in sys.modules, 'OmegaConf imported attrs'\n"
        + ATTRS_CLASSES
    )
    returncode, _, err, modules = run_fresh(code)
    assert returncode == 0, err
    assert {"omegaconf", "attr"} <= modules


@pytest.mark.parametrize("first", ["import attr", "import threading; threading.Thread(target=done.wait).start()"])
def test_omegaconf_is_imported_as_usual_where_attrs_is_imported_already_or_other_threads_run(first):
    code = (
        "import sys, threading\n"
        "done = threading.Event()\n"
        f"{first}\n"
        "import experiment_runner.config, omegaconf._utils\n"
        "assert omegaconf._utils.attr is sys.modules['attr']\n"
        + ATTRS_CLASSES
        + "done.set()\n"
    )
    returncode, _, err, _ = run_fresh(code)
    assert returncode == 0, err


def test_an_omegaconf_that_cannot_import_without_attrs_is_imported_as_usual(tmp_path):
    (tmp_path / "omegaconf").mkdir()
    (tmp_path / "omegaconf" / "__init__.py").write_text("import attr\nfrom . import _utils\n")
    (tmp_path / "omegaconf" / "_utils.py").write_text("")
    code = ("import sys\nfrom experiment_runner.omegaconf_import import omegaconf_without_attrs\n"
            "assert omegaconf_without_attrs().attr is sys.modules['attr']")
    returncode, _, err, _ = run_fresh(code, path=[tmp_path])
    assert returncode == 0, err


def test_running_a_sweep_imports_the_progress_bar_when_it_starts(tmp_path):
    code = (
        "from experiment_runner import run_experiments\n"
        "def fit(cfg, _): return 1\n"
        f"run_experiments({{'out_path': {str(tmp_path / 'run')!r}, 'fit': fit}}, [{{'x': 1}}])"
    )
    assert "tqdm" in imported_after(code)


def test_a_single_backend_run_does_not_import_pandas_or_any_other_backend(tmp_path):
    code = (
        "from experiment_runner import run_experiments\n"
        "def fit(cfg, _): return 1\n"
        f"run_experiments({{'out_path': {str(tmp_path / 'run')!r}, 'fit': fit, 'verbose': False}}, [{{'x': 1}}])"
    )
    modules = imported_after(code)
    assert not modules & {"ray", "pandas", "matplotlib", "asyncssh", "paramiko"}
    assert "tqdm" not in modules  # a quiet run shows no bar


def test_a_run_with_backend_settings_of_plain_types_does_not_import_omegaconf(tmp_path):
    """Settings of the type they declare (num_workers=2) need no checker: OmegaConf is a tenth of a second."""
    code = (
        "from experiment_runner import run_experiments\n"
        "def fit(cfg, _): return 1\n"
        f"s = run_experiments({{'out_path': {str(tmp_path / 'run')!r}, 'fit': fit, 'verbose': False, "
        "'backend': 'multiprocessing', 'num_workers': 2, 'max_experiments_per_worker': 100, 'gpus': None}, "
        "[{'x': 1}])\n"
        "assert s.finished == 1"
    )
    exit_code, _, err, modules = run_fresh(code)
    assert exit_code == 0, err
    assert "omegaconf" not in modules


def test_a_pool_worker_imports_neither_the_backend_registry_nor_the_settings_declarations():
    """Each worker of backend=multiprocessing is a fresh interpreter, started for every run: what it imports is
    start-up time of every run, twice over on two workers."""
    modules = imported_after("from experiment_runner.launchers._pool_worker import main")
    assert "experiment_runner.launchers.isolation" in modules
    assert sorted(modules & {"experiment_runner.launchers.registry", "experiment_runner.launchers.options",
                             "experiment_runner.launchers.plugin_points", "omegaconf", "yaml"}) == []


def install(root, folder, entry_points):
    (root / folder).mkdir()
    name = folder.partition("-")[0]
    (root / folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (root / folder / "entry_points.txt").write_text(entry_points)


COMPARE = f"""
import importlib.metadata, json, sys
from experiment_runner.launchers.plugin_points import _plain_folders, entry_points_in

def described(points):
    return sorted([point.name, point.value, point.group, point.dist.name] for point in points)

ours = entry_points_in({ENTRY_POINT_GROUP!r}, tuple(sys.path))
theirs = importlib.metadata.entry_points().select(group={ENTRY_POINT_GROUP!r})
print(json.dumps([_plain_folders(sys.path), described(ours), described(theirs)]))
"""


def entry_points_both_ways(*path):
    """In a fresh interpreter with ``path`` first on sys.path: whether the registry read the entry points itself,
    and the launchers' entry points as it found them and as importlib.metadata does."""
    code, out, err, _ = run_fresh(COMPARE, path=path)
    assert code == 0, err
    return json.loads(out)


def test_the_plugins_entry_points_are_those_importlib_metadata_finds(tmp_path):
    """The registry reads entry_points.txt itself (importing importlib.metadata costs every start-up):
    the same entry points, the first distribution of a name on sys.path winning, comments and other groups aside."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    install(first, "Flavour_Backend-2.0.dist-info",
            f"# a comment\n[console_scripts]\nflavour = flavour:main\n\n[{ENTRY_POINT_GROUP}]\n"
            "flavoured = flavour_backend : FlavourLauncher\nsalty=salty_backend:Launcher.Inner [extra]\n")
    install(second, "flavour.backend-1.0.dist-info", f"[{ENTRY_POINT_GROUP}]\nold = flavour_backend:Old\n")
    install(second, "other_backend-1.0.egg-info", f"[{ENTRY_POINT_GROUP}]\nother = other_backend:Other\n")
    read_here, ours, theirs = entry_points_both_ways(first, second)
    assert read_here, "a fresh interpreter reads the entry points without importlib.metadata"
    assert ours == theirs
    assert {"flavoured", "salty", "other"} <= {name for name, *_ in ours}
    assert "old" not in {name for name, *_ in ours}


def test_a_zip_file_on_sys_path_is_read_by_importlib_metadata(tmp_path):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_backend-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped-backend\n")
        zipped.writestr("zipped_backend-1.0.dist-info/entry_points.txt",
                        f"[{ENTRY_POINT_GROUP}]\nzipped = zipped_backend:Launcher\n")
    read_here, ours, theirs = entry_points_both_ways(archive)
    assert not read_here and ours == theirs and "zipped" in {name for name, *_ in ours}


def test_a_plugin_backend_is_found_and_loaded_as_before_in_a_fresh_interpreter(project, tmp_path):
    """Where nothing imported importlib.metadata before (the command, not a test process): --help lists a plugin's
    settings, a broken entry point and a plugin named like a built-in backend are reported as they always were."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    install_plugin(plugins, "flavour_backend", TYPED_PLUGIN,
                   "flavoured = flavour_backend:FlavourLauncher\nunflavoured = flavour_backend:FlavourOptions\n"
                   "ray = flavour_backend:FlavourLauncher")
    cli = "from experiment_runner.cli import console_main; console_main()"

    code, out, _, modules = run_fresh(cli, "--help", "backend=flavoured", cwd=project, path=[plugins])
    assert code == 0 and "== Settings of backend=flavoured" in out and "flavour: plain" in out
    assert "  backend: flavoured, malocher, multiprocessing, ray, single, slurm" in out.replace("dask, ", "")
    assert "importlib.metadata" not in modules
    code, _, err, _ = run_fresh(cli, "--list", "backend=unflavoured", cwd=project, path=[plugins])
    assert code == 2 and ("the entry point 'unflavoured = flavour_backend:FlavourOptions' (group "
                          "experiment_runner.launchers) of the distribution flavour-backend is not a backend") in err
    stages = Path(__file__).resolve().parent  # the project's fit, tests/stages.py
    code, _, err, _ = run_fresh(cli, "--list", "backend=ray", cwd=project, path=[plugins, stages])
    assert code == 0 and ("warning: the entry point 'ray = flavour_backend:FlavourLauncher' (group "
                          "experiment_runner.launchers) of the distribution flavour-backend registers backend 'ray', "
                          "the name of a built-in backend") in err, err


PACKAGE = Path(__file__).resolve().parent.parent / "src" / "experiment_runner"


#: What a worker of backend=multiprocessing does without, up to and while running an experiment whose stages are an
#: importable module's functions (pickled by reference): each worker is a fresh interpreter started for every run.
NOT_IN_A_POOL_WORKER = {
    "cloudpickle",  # stages pickled by value import it themselves
    "traceback",  # formatted on a failure only
    "hashlib",  # config hashes are the driver's
    "statistics",  # the scores of repetitions only
    "socket",  # the worker's end of its socket is a descriptor
    "pathlib",  # folders are named as text
    "experiment_runner.launchers.registry", "experiment_runner.launchers.options", "omegaconf", "yaml",
}

#: A stage module that writes the modules its worker holds while it runs into its out_path (it imports only sys).
MODULES_STAGE = (
    "import sys\n"
    "def fit(cfg, _):\n"
    "    with open(cfg['out_path'] + '/modules.txt', 'w') as f:\n"
    "        f.write('\\n'.join(sorted(sys.modules)))\n"
    "    return {'x': cfg['x']}\n"
)


def modules_of_a_pool_worker(tmp_path, fit):
    """The modules the worker of a one-experiment run holds while ``fit`` (code defining it, in the driver's
    ``__main__``) runs; the run itself must succeed."""
    code = (
        "from experiment_runner import run_experiments\n"
        f"{fit}\n"
        f"s = run_experiments({{'out_path': {str(tmp_path / 'run')!r}, 'fit': fit, 'verbose': False, "
        "'backend': 'multiprocessing', 'num_workers': 1}, [{'x': 1}])\n"
        "assert s.finished == 1 and s.failed == 0, s"
    )
    exit_code, _, err, _ = run_fresh(code, path=[tmp_path])
    assert exit_code == 0, err
    return set((tmp_path / "run" / "0" / "modules.txt").read_text().split("\n"))


def test_a_pool_worker_running_stages_of_a_module_imports_neither_cloudpickle_nor_what_only_failures_need(tmp_path):
    """Beyond what a bare interpreter holds here already (site may import pathlib, for one)."""
    (tmp_path / "stage_module.py").write_text(MODULES_STAGE)
    bare = run_fresh("pass")[3]
    modules = modules_of_a_pool_worker(tmp_path, "from stage_module import fit")
    assert "experiment_runner.launchers._pool_worker" in modules and "stage_module" in modules
    assert sorted((modules - bare) & NOT_IN_A_POOL_WORKER) == []


def test_a_pool_worker_runs_stages_of_the_drivers_main_which_travel_by_value_with_cloudpickle(tmp_path):
    fit = MODULES_STAGE.replace("import sys\n", "").replace("    with", "    import sys\n    with")
    modules = modules_of_a_pool_worker(tmp_path, fit)
    assert "cloudpickle" in modules and "stage_module" not in modules


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path, modules):
    """The package's modules that ``path`` imports anywhere (in functions too), except under TYPE_CHECKING.

    Importing ``a.b.c`` runs ``a.b``'s ``__init__`` first: that counts as an import of ``a.b``.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    guarded = [node for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)]
    skipped = {id(child) for node in guarded for statement in node.body for child in ast.walk(statement)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            found.update(submodules if len(submodules) == len(node.names) else {base, *submodules})
    found |= {ancestor for module in found for ancestor in ancestors(module) if not name.startswith(f"{ancestor}.")}
    return {module for module in found if module in modules and module != name}


def ancestors(module):
    """The packages that importing ``module`` imports first, the root package's lazy ``__init__`` apart."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(2, len(parts))]


def import_cycles():
    """The strongly connected components of more than one module in the package's import graph (Tarjan)."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {module: imported_modules(path, paths) for module, path in paths.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while module not in component:
                component.add(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_nothing_outside_the_serve_package_imports_it():
    """``experiment-runner serve`` loads it by name when asked for; no other module imports it, even lazily."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    importers = {module for module, path in paths.items() if not module.startswith("experiment_runner.serve")
                 and any(name.startswith("experiment_runner.serve") for name in imported_modules(path, paths))}
    assert importers == set()


def test_no_import_cycles():
    cycles = [sorted(cycle) for cycle in import_cycles()]
    assert cycles == [], "modules that import each other (a function's import counts too)"
