"""The fixed start-up cost of backend=multiprocessing's workers, against a bare interpreter and a spawn Pool.

    python benchmarks/bench_worker_start.py [--rounds N] [--sweep N [--sweep-rounds R]] [--base DIR]
                                            [--against OTHER_CHECKOUT]

Each round measures, interleaved (a busy machine slows them alike), each in a
fresh process with this checkout's package first on the path:

- ``python -c pass``: the interpreter alone (the floor of any fresh worker);
- a worker's imports: a fresh interpreter imports ``_pool_worker`` and loads
  stages pickled by reference (the driver pickles them, as a run does), as a
  worker does before it says it is ready; printed with the modules it holds;
- a run of ONE no-op experiment: ``run_experiments(..., backend="multiprocessing",
  num_workers=1)`` on ``--base`` (default /dev/shm), timed inside the call, with
  the CPU of the driver and of its reaped children (the worker) during the call;
  the driver has run one experiment with backend=single first, so what the
  driver imports to write a run is not counted, the worker's whole start is;
- the baseline: ``multiprocessing.get_context("spawn").Pool(1)`` started, one
  no-op task applied, the pool closed (in the same kind of process).

Each line is the best of the rounds and its ratio. ``--sweep N`` then runs N
no-ops on 2 workers (ours) against a spawn Pool(2) mapping the same no-op, in
``--sweep-rounds`` interleaved rounds, and prints the best wall time and CPU
(self and children, resource.getrusage) per experiment. The stage
is this file's ``noop``, imported by module name (``bench_worker_start.noop``):
stages pickled by reference, as an importable module's functions are. Nothing
is asserted.

--against takes another checkout of the package (a version before a change):
its src/ runs the same measurements in the same rounds, and each line shows both.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def noop(cfg, returned_by_pre):
    """The stage: nothing (by reference from this module, which imports only json, os, sys and time)."""
    return None


#: A worker's own start: import its module, then load stages pickled by reference as it does (cf. _pool_worker.main).
WORKER_IMPORTS = (
    "import sys, time, json\n"
    "before = len(sys.modules)\n"
    "started = time.perf_counter()\n"
    "from experiment_runner.launchers import _pool_worker\n"
    "setup = _pool_worker.WorkerSetup(bytes.fromhex(sys.argv[1]), [sys.argv[2], *sys.path])\n"
    "_pool_worker.load_stages(setup, None)\n"
    "took = time.perf_counter() - started\n"
    "print(json.dumps([took, len(sys.modules) - before, 'cloudpickle' in sys.modules]))\n"
)


def environment(src):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, HERE, *filter(None, [os.environ.get("PYTHONPATH")])])}


def pickled_stages():
    """The stages as the driver pickles them (cloudpickle, as launchers.base.pickle_stages does)."""
    import cloudpickle
    from bench_worker_start import noop as stage  # by module name: pickled by reference
    from experiment_runner.experiment import Stages

    return cloudpickle.dumps(Stages(fit=stage), protocol=5).hex()


def run_child(mode, count, workers, base):
    """In a child: one measurement of ``mode`` ('ours' or 'raw'): [wall seconds, CPU seconds of self + children]."""
    import resource
    import tempfile

    from bench_worker_start import noop as stage

    if mode == "ours":
        from experiment_runner import run_experiments

    def cpu():
        return sum(usage.ru_utime + usage.ru_stime
                   for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))

    cfgs = [{"x": index} for index in range(count)]
    with tempfile.TemporaryDirectory(dir=base) as folder:
        if mode == "ours":  # the driver's first run imports what writing a run needs: not the workers' start
            run_experiments({"out_path": os.path.join(folder, "warm-up"), "fit": stage, "verbose": False}, cfgs[:1])
        cpu_before, started = cpu(), time.perf_counter()
        if mode == "ours":
            run_experiments({"out_path": os.path.join(folder, "run"), "fit": stage, "backend": "multiprocessing",
                             "num_workers": workers, "verbose": False}, cfgs)
        else:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                pool.starmap(stage, [(cfg, None) for cfg in cfgs], chunksize=max(1, count // (4 * workers)))
                pool.close()
                pool.join()
        print(json.dumps([time.perf_counter() - started, cpu() - cpu_before]))


def fresh(argv, env):
    """Wall seconds of a fresh ``python`` running ``argv``, and what it printed."""
    import subprocess

    started = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def measure_round(env, stages, base, results):
    results["pass"].append(fresh(["-c", "pass"], env)[0])
    wall, printed = fresh(["-c", WORKER_IMPORTS, stages, HERE], env)
    results["imports"].append((wall, *json.loads(printed)))
    for mode in ("ours", "raw"):
        results[mode].append(json.loads(fresh([__file__, "--child", mode, "1", "1", base], env)[1]))


def sweep(env, count, base):
    return {mode: json.loads(fresh([__file__, "--child", mode, str(count), "2", base], env)[1])
            for mode in ("ours", "raw")}


def best(rows, column=0):
    """The best (smallest) of one column of the rounds' rows."""
    return min(row[column] for row in rows)


def imports_text(rows):
    return (f"{best(rows) * 1000:.1f} ms, {best(rows, 1) * 1000:.1f} ms inside, {min(row[2] for row in rows)} modules, "
            f"cloudpickle {'imported' if rows[0][3] else 'not imported'}")


def run_text(rows):
    return f"{best(rows) * 1000:.1f} ms, CPU {best(rows, 1) * 1000:.1f} ms"


def sweep_text(rows, count):
    return f"{best(rows):.2f} s, CPU {best(rows, 1) / count * 1e6:.0f} us per experiment"


def report(results, other, rounds):
    def against(key, text):
        return "" if other is None else f"  [against: {text(other[key])}]"

    base, ours, raw = min(results["pass"]), results["ours"], results["raw"]
    print(f"best of {rounds} rounds, interleaved")
    print(f"python -c pass: {base * 1000:.1f} ms{against('pass', lambda rows: f'{min(rows) * 1000:.1f} ms')}")
    print(f"a worker's imports and its stages (fresh process): {imports_text(results['imports'])}, "
          f"{best(results['imports']) / base:.2f}x pass{against('imports', imports_text)}")
    print(f"run of 1 no-op, multiprocessing, 1 worker (inside the call): {run_text(ours)}{against('ours', run_text)}")
    print(f"spawn Pool(1), one no-op task, closed: {run_text(raw)}{against('raw', run_text)}")
    print(f"ratios: run of 1 / spawn Pool(1) {best(ours) / best(raw):.2f}x (CPU {best(ours, 1) / best(raw, 1):.2f}x); "
          f"run of 1 / python -c pass {best(ours) / base:.2f}x")
    if other is not None:
        print(f"this / against: run of 1 {best(ours) / best(other['ours']):.2f}x "
              f"(CPU {best(ours, 1) / best(other['ours'], 1):.2f}x), "
              f"a worker's imports {best(results['imports'], 1) / best(other['imports'], 1):.2f}x inside")


def main():
    import argparse
    import compileall

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sweep", type=int, default=0, help="then N no-ops on 2 workers: CPU per experiment")
    parser.add_argument("--sweep-rounds", type=int, default=3)
    parser.add_argument("--base", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the runs' out_paths go (default /dev/shm)")
    parser.add_argument("--against", help="another checkout of the package, measured in the same rounds")
    options = parser.parse_args()
    sources = {"this": os.path.join(ROOT, "src")}
    if options.against:
        sources["against"] = os.path.join(os.path.abspath(options.against), "src")
    for src in sources.values():
        compileall.compile_dir(os.path.join(src, "experiment_runner"), quiet=1)
    compileall.compile_file(__file__, quiet=1)  # the stage's module, with its .pyc as an installed module has
    stages = pickled_stages()
    results = {name: {key: [] for key in ("pass", "imports", "ours", "raw")} for name in sources}
    for _ in range(options.rounds):
        for name, src in sources.items():
            measure_round(environment(src), stages, options.base, results[name])
    report(results["this"], results.get("against"), options.rounds)
    if options.sweep:
        sweeps = {name: {"ours": [], "raw": []} for name in sources}
        for _ in range(options.sweep_rounds):
            for name, src in sources.items():
                for mode, row in sweep(environment(src), options.sweep, options.base).items():
                    sweeps[name][mode].append(row)
        print(f"{options.sweep:,} no-ops on 2 workers, best of {options.sweep_rounds} interleaved "
              "(CPU: the driver's and its reaped children's, resource.getrusage)")
        for name, runs in sweeps.items():
            print(f"  {name}: ours {sweep_text(runs['ours'], options.sweep)}; "
                  f"spawn Pool(2) {sweep_text(runs['raw'], options.sweep)}; "
                  f"CPU ratio {best(runs['ours'], 1) / best(runs['raw'], 1):.2f}x")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
