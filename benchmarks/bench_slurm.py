"""Overhead of backend=slurm against raw submitit job arrays, on a real Slurm cluster.

    python benchmarks/bench_slurm.py [--experiments 40] [--repeat 2]

Without SLURM_CONF in the environment it starts the tests' single-node
cluster (tests/slurm_cluster.py: needs Debian's slurm-wlm and munge, and
root) in a temporary folder and stops it after; with SLURM_CONF it uses that
cluster (run it from a folder on the cluster's shared filesystem: the job files
go to a temporary folder in the working directory). Ours is the whole run_experiments call with a no-op fit: the
sbatch --test-only check, the arrays, the supervised child process in each
job, the out_path tree and results.jsonl. The baseline, in the same run, is
raw submitit: ``SlurmExecutor.map_array`` of the same no-op function over the
same number of tasks, looking for every result file as often as ours. Both run ``--repeat`` times,
interleaved; the best time counts. Prints throughput and the ratio ours /
raw; asserts nothing. On the two-core test machine both are bound by Slurm
starting one Python per job.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from experiment_runner import run_experiments

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def noop(cfg, returned_by_pre):
    return None


def noop_task(index):
    return index


def ours(n: int) -> float:
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as folder:
        started = time.perf_counter()
        summary = run_experiments({"out_path": str(Path(folder) / "run"), "fit": noop, "backend": "slurm",
                                   "verbose": False, "slurm_poll_interval": 1}, [{"i": i} for i in range(n)])
        elapsed = time.perf_counter() - started
    assert summary.finished == n, summary
    return elapsed


def raw(n: int) -> float:
    import submitit

    with tempfile.TemporaryDirectory(dir=os.getcwd()) as folder:
        started = time.perf_counter()
        executor = submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(time=5, use_srun=False)
        jobs = executor.map_array(noop_task, range(n))
        waiting = jobs
        while waiting:  # as often as backend=slurm looks (submitit's own wait polls sacct)
            time.sleep(0.2)
            waiting = [job for job in waiting if not job.paths.result_pickle.exists()]
        results = [job.result() for job in jobs]
        elapsed = time.perf_counter() - started
    assert results == list(range(n))
    return elapsed


def measure(n: int, repeat: int) -> None:
    times = {"raw submitit": [], "backend=slurm": []}
    for _ in range(repeat):
        times["raw submitit"].append(raw(n))
        times["backend=slurm"].append(ours(n))
    best = {name: min(values) for name, values in times.items()}
    for name, seconds in best.items():
        print(f"{name:>14}: {n} experiments in {seconds:6.2f} s ({n / seconds:6.1f}/s)")
    print(f"{'ratio':>14}: {best['backend=slurm'] / best['raw submitit']:.2f} (ours / raw), "
          f"{(best['backend=slurm'] - best['raw submitit']) / n * 1000:+.0f} ms per experiment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if os.environ.get("SLURM_CONF"):
        measure(args.experiments, args.repeat)
        return
    from slurm_cluster import start_cluster

    with tempfile.TemporaryDirectory() as root:
        cluster = start_cluster(Path(root) / "slurm")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            measure(args.experiments, args.repeat)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
