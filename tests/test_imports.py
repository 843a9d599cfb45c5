"""Start-up stays light: heavy libraries are imported only when a feature needs them."""
import json
import subprocess
import sys

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
