"""Start-up stays light: heavy libraries are imported only when a feature needs them."""
import ast
import json
import subprocess
import sys
from pathlib import Path

HEAVY = ["ray", "pandas", "matplotlib", "asyncssh", "paramiko", "numpy", "tqdm"]


def imported_after(code):
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_package_imports_nothing_heavy():
    modules = imported_after("import experiment_runner")
    assert not modules & set(HEAVY)


def test_a_single_backend_run_does_not_import_pandas_or_any_other_backend(tmp_path):
    code = (
        "from experiment_runner import run_experiments\n"
        "def fit(cfg, _): return 1\n"
        f"run_experiments({{'out_path': {str(tmp_path / 'run')!r}, 'fit': fit, 'verbose': False}}, [{{'x': 1}}])"
    )
    modules = imported_after(code)
    assert not modules & {"ray", "pandas", "matplotlib", "asyncssh", "paramiko"}


PACKAGE = Path(__file__).resolve().parent.parent / "src" / "experiment_runner"

#: Cycles being removed on other branches (ray_launcher <-> _ray_core, ssh_launcher <-> ssh_machines).
KNOWN_CYCLES = [
    {"experiment_runner.launchers.ray_launcher", "experiment_runner.launchers._ray_core"},
    {"experiment_runner.launchers.ssh_launcher", "experiment_runner.launchers.ssh_machines"},
]


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


def test_no_import_cycles():
    cycles = [sorted(cycle) for cycle in import_cycles() if cycle not in KNOWN_CYCLES]
    assert cycles == [], "modules that import each other (a function's import counts too)"
