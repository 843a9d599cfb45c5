"""How long the command and the package take to start, against `python -c pass` measured in the same run.

    python benchmarks/bench_startup.py [--rounds N] [--against OTHER_CHECKOUT]

Each command runs in a fresh interpreter, in the repository's root (so
conf/config.yaml is composed), with this checkout's package first on the path
and its .pyc compiled first (as an installed package has them). The rounds
interleave the commands, so a busy machine slows them alike; each line is the
best wall time over the rounds and its ratio to the bare interpreter. The
import lines time the import statement inside the interpreter (start-up
excluded) and count the modules it adds. The goals of issue 14 are printed
beside them; nothing is asserted: start-up is watched, not gated.

--against takes another checkout of the package (a version before a change):
its src/ runs the same commands in the same rounds, interleaved with this
one's, and each line shows both and their ratio.
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


def environment(src):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}


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


def measure(env, baseline, processes, imports):
    """One round of every command in ``env``, each time added to the lists it goes to."""
    baseline.append(wall_time(["pass"], env))
    for label, argv, _ in PROCESSES:
        processes[label].append(wall_time(argv, env))
    for label, statement, _ in IMPORTS:
        imports[label].append(import_time(statement, env))


def empty_results():
    return [], {label: [] for label, _, _ in PROCESSES}, {label: [] for label, _, _ in IMPORTS}


def against_text(took, other):
    return "" if other is None else f"  [against: {other * 1000:.0f} ms, this / against {took / other:.2f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--against", type=Path, help="another checkout of the package, measured in the same rounds")
    options = parser.parse_args()
    sources = {"this": SRC}
    if options.against is not None:
        sources["against"] = options.against.resolve() / "src"
    for src in sources.values():
        compileall.compile_dir(str(src / "experiment_runner"), quiet=1)
    results = {name: empty_results() for name in sources}
    for _ in range(options.rounds):
        for name, src in sources.items():
            measure(environment(src), *results[name])
    (baseline, processes, imports), other = results["this"], results.get("against")
    base = min(baseline)
    print(f"best of {options.rounds} rounds, interleaved")
    print(f"python -c pass (baseline): {base * 1000:.0f} ms{against_text(base, other and min(other[0]))}")
    for label, _, goal in PROCESSES:
        took = min(processes[label])
        print(f"{label}: {took * 1000:.0f} ms, ratio {took / base:.1f}x{verdict(took, goal)}"
              f"{against_text(took, other and min(other[1][label]))}")
    for label, _, goal in IMPORTS:
        took, modules = min(imports[label])
        theirs = other and min(other[2][label])
        print(f"inside the import: {label}: {took * 1000:.1f} ms ({took / base:.1f}x python -c pass), "
              f"{modules} modules{verdict(took, goal)}"
              + ("" if theirs is None else f"  [against: {theirs[0] * 1000:.1f} ms, {theirs[1]} modules]"))


if __name__ == "__main__":
    main()
