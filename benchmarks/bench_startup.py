"""How long the command and the package take to start, against `python -c pass` measured in the same run.

    python benchmarks/bench_startup.py [--rounds N]

Each command runs in a fresh interpreter, in the repository's root (so
conf/config.yaml is composed), with this checkout's package first on the path
and its .pyc compiled first (as an installed package has them). The rounds
interleave the commands, so a busy machine slows them alike; each line is the
best wall time over the rounds and its ratio to the bare interpreter. The
import lines time the import statement inside the interpreter (start-up
excluded) and count the modules it adds. The goals of issue 14 are printed
beside them; nothing is asserted: start-up is watched, not gated.
"""
import argparse
import compileall
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CLI = "from experiment_runner.cli import console_main; console_main()"
API = "from experiment_runner import run_experiments, Variation, generate_configs"

#: (label, argv after `python -c`, goal in seconds or None): whole processes. The first is no command of ours:
#: the libraries any composing of a config imports (OmegaConf, with PyYAML) and argparse, for scale.
PROCESSES = [
    ("python -c 'import argparse, omegaconf' (what composing needs)", ["import argparse, omegaconf"], None),
    ("experiment-runner --help", [CLI, "--help"], 0.15),
    ("experiment-runner --cfg", [CLI, "--cfg"], None),
    ("experiment-runner --list (1,000 experiments)", [CLI, "--list", "+a=range(100)", "+b=range(10)"], None),
    (API, [API], None),
]
#: (label, statement, goal in seconds or None): timed inside the interpreter.
IMPORTS = [
    ("import experiment_runner", "import experiment_runner", None),
    (API, API, 0.1),
]
INSIDE = "import sys, time, json\nbefore = len(sys.modules)\nstarted = time.perf_counter()\n{}\n" \
         "print(json.dumps([time.perf_counter() - started, len(sys.modules) - before]))"


def environment():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


def wall_time(argv, env):
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def import_time(statement, env):
    done = subprocess.run([sys.executable, "-c", INSIDE.format(statement)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def verdict(took, goal):
    if goal is None:
        return ""
    return f"  goal <= {goal * 1000:.0f} ms: {'met' if took <= goal else 'not met'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    compileall.compile_dir(str(SRC / "experiment_runner"), quiet=1)
    env = environment()
    baseline, processes = [], {label: [] for label, _, _ in PROCESSES}
    imports = {label: [] for label, _, _ in IMPORTS}
    for _ in range(rounds):
        baseline.append(wall_time(["pass"], env))
        for label, argv, _ in PROCESSES:
            processes[label].append(wall_time(argv, env))
        for label, statement, _ in IMPORTS:
            imports[label].append(import_time(statement, env))
    base = min(baseline)
    print(f"best of {rounds} rounds, interleaved")
    print(f"python -c pass (baseline): {base * 1000:.0f} ms")
    for label, _, goal in PROCESSES:
        took = min(processes[label])
        print(f"{label}: {took * 1000:.0f} ms, ratio {took / base:.1f}x{verdict(took, goal)}")
    for label, _, goal in IMPORTS:
        took, modules = min(imports[label])
        print(f"inside the import: {label}: {took * 1000:.1f} ms ({took / base:.1f}x python -c pass), "
              f"{modules} modules{verdict(took, goal)}")


if __name__ == "__main__":
    main()
