"""The driver's peak memory on large sweeps, against a bare `import experiment_runner`.

    python benchmarks/bench_memory.py [--list 1000000] [--run 100000] [--workers 2] [--skip-run]

Each measurement runs in a fresh interpreter and reports that process's own
peak RSS (``ru_maxrss`` of the driver; the pool's workers are other processes):

(a) ``experiment-runner --list +a=range(100) +b=range(100) +c=range(100)``: a grid of 10^6 listed;
(b) ``experiment-runner --list`` of ``n_configs`` = 10^6 sampled from a space of 10^8;
(c) a real run of ``--run`` no-op experiments on backend=multiprocessing, out_path on /dev/shm when there is
    one, by the command line (a grid of 100 x run/100) and by ``run_experiments`` (its cfgs a generator).

The baseline, in the same run, is ``python -c "import experiment_runner"``.
Prints each peak in MB, its excess over the baseline and the issue's goal
(at most 150 MB at a million experiments); asserts nothing.
"""
import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_MB = 150
CONFIG = """\
    fit: workloads:noop
    backend: multiprocessing
    num_workers: {workers}
    verbose: false
    """


def peak_rss_mb(code, cwd):
    """The peak RSS of a fresh interpreter running ``code``, which must end by calling report()."""
    prelude = textwrap.dedent(f"""\
        import resource, sys
        sys.path.insert(0, {str(HERE)!r})

        def report():
            sys.__stderr__.write("peak_rss_kb=%d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """)
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd, check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = [line for line in done.stderr.splitlines() if line.startswith("peak_rss_kb=")][-1]
    return int(line.split("=")[1]) / 1024  # Linux reports kilobytes


def cli(argv):
    return f"""\
        from experiment_runner.cli import console_main
        sys.argv = ["experiment-runner", *{argv!r}]
        try:
            console_main()
        except SystemExit as exit:
            if exit.code:
                raise
        report()
        """


def api(out_path, n, workers):
    return f"""\
        from experiment_runner import run_experiments
        from workloads import noop
        run_experiments({{"fit": noop, "backend": "multiprocessing", "num_workers": {workers}, "verbose": False,
                          "out_path": {out_path!r}}}, ({{"x": i}} for i in range({n})))
        report()
        """


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=int, default=1_000_000, help="experiments listed in (a) and (b)")
    parser.add_argument("--run", type=int, default=100_000, help="no-op experiments run in (c)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-run", action="store_true", help="measure (a) and (b) only")
    args = parser.parse_args()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory() as project, tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) \
            as runs:
        (Path(project) / "conf").mkdir()
        (Path(project) / "conf" / "config.yaml").write_text(textwrap.dedent(CONFIG.format(workers=args.workers)))
        side = round(args.list ** (1 / 3))
        baseline = peak_rss_mb("import experiment_runner\nreport()", project)
        print(f"python -c 'import experiment_runner' (baseline): {baseline:.0f} MB")
        cases = [
            (f"(a) --list of a grid of {side ** 3:,}",
             cli(["--list", f"+a=range({side})", f"+b=range({side})", f"+c=range({side})"])),
            (f"(b) --list of {args.list:,} sampled of 10^8",
             cli(["--list", "+a=range(1000)", "+b=range(1000)", "+c=range(100)", f"n_configs={args.list}",
                  "seed=0"])),
        ]
        if not args.skip_run:
            cases += [
                (f"(c) a run of {args.run:,} no-ops, command line",
                 cli(["+a=range(100)", f"+b=range({args.run // 100})", f"out_path={runs}/cli"])),
                (f"(c) a run of {args.run:,} no-ops, run_experiments",
                 api(f"{runs}/api", args.run, args.workers)),
            ]
        for label, code in cases:
            peak = peak_rss_mb(code, project)
            verdict = "within" if peak <= GOAL_MB else "over"
            print(f"{label}: peak RSS {peak:.0f} MB  ({peak - baseline:+.0f} MB over the baseline; "
                  f"{verdict} the goal of {GOAL_MB} MB)")


if __name__ == "__main__":
    main()
