"""``experiment-runner serve`` on a big run: its first page, its whole read, its memory, its start and its import.

    python benchmarks/bench_serve.py [--results 100000] [--repetitions 3] [--rounds 3] [--folder DIR]

A run of ``--results`` finished experiments (3 parameters, 3 metrics, each
over ``--repetitions``) is written straight into a tree as the store writes
it (run.yaml, experiments.jsonl, results.jsonl), then served on a loopback
port by a fresh interpreter (``serve(run)``). What each line compares, over
HTTP, interleaved over the rounds, the best counted:

- **cold first page**: a fresh server's first /api/run and first page of
  /api/results sorted by a metric. A run is read in the background a chunk
  at a time, and requests wait for it 0.5 s at most: a big run's first
  page shows what was read by then (``loading`` says how much), and fills in
  as the page asks again.
- **cold full read**: until that first page is the whole run's (read and
  parse every line of results.jsonl and experiments.jsonl, keep what the
  pages need, sort): /api/run asked every 50 ms until it says the run is
  read, then the first page, against **plain parse**:
  ``json.loads`` of each line of the same results.jsonl, and nothing else,
  in this process.
- **peak memory** of the server (its VmHWM) once that page is whole, and
  again after the page's two plots of the run (a metric over a parameter,
  the parallel coordinates), against a bare interpreter holding the
  ``json.loads`` of every line of results.jsonl in a list.
- **warm page after a new line**: one results line appended, then /api/run
  and the sorted first page again (the follower reads the new line; the
  order is sorted anew) against **bare round trip**: a 404 of the same
  server, the cost of HTTP alone.
- **start**: a fresh interpreter that starts serving the run and answers
  the page's address once (its runs are read when the page asks for them:
  that is the cold first page above), against ``python -c pass``; and the
  import of ``experiment_runner.serve`` inside the interpreter against
  ``import http.server`` (what any standard-library server imports).

Goals (issue 16): the first page of a 100,000-result run, whole and sorted
by a metric, under 1 s (its full read at most 1.5x the plain parse); start
under 1 s. They are printed beside the figures; nothing is asserted.
"""
import argparse
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"  # the servers run this checkout's package, not an installed one


INSIDE = "import sys, time, json\nstarted = time.perf_counter()\n{}\n" \
         "print(json.dumps(time.perf_counter() - started))"
SERVE_UNTIL_STDIN_CLOSES = ("import sys\nfrom experiment_runner.serve import serve\n"
                            "with serve(sys.argv[1]) as server:\n    print(server.url, flush=True)\n"
                            "    sys.stdin.read()\n")
HOLD_LINES = ("import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    lines = [json.loads(line) for line in f]\n"
              "print(open('/proc/self/status').read())")
#: How often the full read is asked about (the page itself asks every second).
FULL_READ_POLL = 0.05
SERVE_ONCE = ("import sys, urllib.error, urllib.request\nfrom experiment_runner.serve import serve\n"
              "with serve(sys.argv[1]) as server:\n    try:\n        urllib.request.urlopen(server.url).read()\n"
              "    except urllib.error.HTTPError as error:  # a checkout without the page: answered all the same\n"
              "        error.close()\n")


def write_run(folder, n, repetitions, seed=0):
    """A finished run of ``n`` experiments, as the store records it."""
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(f"format: experiment-runner/1\nout_path: {folder}\nbackend: multiprocessing\n"
                                     f"experiments: {n}\nsettings:\n  repetitions: {repetitions}\n")
    rng = random.Random(seed)
    with open(folder / "experiments.jsonl", "w") as experiments, open(folder / "results.jsonl", "w") as results:
        for experiment_id in range(n):
            config = {"lr": rng.choice([1e-4, 1e-3, 1e-2, 1e-1]), "depth": rng.randint(1, 12),
                      "model": {"name": rng.choice(["ridge", "forest", "mlp"])}}
            experiments.write(json.dumps({"experiment_id": experiment_id, "hash": f"{experiment_id:016x}",
                                          "config": config}) + "\n")
            results.write(json.dumps(result_line(experiment_id, config, folder, repetitions, rng)) + "\n")


def result_line(experiment_id, config, folder, repetitions, rng):
    scores = {}
    for name in ("accuracy", "loss", "fit_time"):
        values = [rng.random() for _ in range(repetitions)]
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        scores[name] = values if repetitions > 1 else values[0]
        if repetitions > 1:
            scores[f"mean_{name}"], scores[f"std_{name}"] = mean, std
    return {**config, "experiment_id": experiment_id, "out_path": f"{folder}/{experiment_id}", "scores": scores}


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def fetch(url):
    with urllib.request.urlopen(url) as answer:
        return answer.read()


def raw_parse(path):
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)


def first_page(server):
    fetch(server.url + "api/run?run=.")
    return json.loads(fetch(server.url + "api/results?run=.&sort=accuracy&order=desc&limit=50"))


def full_first_page(server):
    """Asks for /api/run every FULL_READ_POLL seconds until the run is read whole, then for the first page."""
    while json.loads(fetch(server.url + "api/run?run=."))["loading"] is not None:
        time.sleep(FULL_READ_POLL)
    first_page(server)


def plots(server):
    fetch(server.url + "api/plot?run=.&metric=accuracy&x=lr&hue=model.name")
    fetch(server.url + "api/parallel?run=.&metric=accuracy")


def peak_rss(status_text):
    """VmHWM of a /proc/PID/status text, in bytes."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no VmHWM in the status (not Linux?)")


class ServerProcess:
    """``serve(run)`` in a fresh interpreter, until it is closed: its address and its peak memory."""

    def __init__(self, run):
        self.process = subprocess.Popen([sys.executable, "-c", SERVE_UNTIL_STDIN_CLOSES, str(run)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(SRC)})
        self.url = self.process.stdout.readline().strip()

    def peak_rss(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return peak_rss(status.read())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.process.stdin.close()
        self.process.wait()
        self.process.stdout.close()


def bare_round_trip(server):
    try:
        fetch(server.url + "no-such-page")
    except urllib.error.HTTPError as error:
        error.read()
        error.close()


def in_fresh_interpreter(code, *argv):
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    return time.perf_counter() - started, done.stdout


def measure(run, rounds, line):
    figures = {key: [] for key in ("cold", "whole", "raw", "rss", "rss_plots", "rss_raw", "warm", "bare", "start",
                                   "pass", "import", "http")}
    for _ in range(rounds):
        figures["raw"].append(timed(lambda: raw_parse(run / "results.jsonl")))
        with ServerProcess(run) as server:
            started = time.perf_counter()
            figures["cold"].append(timed(lambda: first_page(server)))
            full_first_page(server)
            figures["whole"].append(time.perf_counter() - started)
            figures["rss"].append(server.peak_rss())
            plots(server)
            figures["rss_plots"].append(server.peak_rss())
            with open(run / "results.jsonl", "a") as f:
                f.write(line)
            figures["warm"].append(timed(lambda: first_page(server)))
            figures["bare"].append(timed(lambda: bare_round_trip(server)))
        figures["rss_raw"].append(peak_rss(in_fresh_interpreter(HOLD_LINES, str(run / "results.jsonl"))[1]))
        figures["start"].append(in_fresh_interpreter(SERVE_ONCE, str(run))[0])
        figures["pass"].append(in_fresh_interpreter("pass")[0])
        figures["import"].append(float(in_fresh_interpreter(INSIDE.format("import experiment_runner.serve"))[1]))
        figures["http"].append(float(in_fresh_interpreter(INSIDE.format("import http.server"))[1]))
    return {key: min(values) for key, values in figures.items()}


def verdict(took, goal):
    return f"  goal < {goal:g} s: {'met' if took < goal else 'not met'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, help="where to write the run (default: a temporary folder)")
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=options.folder))
    try:
        run = base / "run"
        started = time.perf_counter()
        write_run(run, options.results, options.repetitions)
        size = (run / "results.jsonl").stat().st_size
        print(f"a run of {options.results:,} results ({size / 1e6:.0f} MB of results.jsonl) written in "
              f"{time.perf_counter() - started:.1f} s; best of {options.rounds} rounds, interleaved")
        line = json.dumps(result_line(options.results, {"lr": 0.5, "depth": 3, "model": {"name": "mlp"}}, run,
                                      options.repetitions, random.Random(1))) + "\n"
        best = measure(run, options.rounds, line)
    finally:
        shutil.rmtree(base)
    print(f"cold first page (/api/run + sorted /api/results, of what is read by then): {best['cold']:.3f} s")
    print(f"cold full read (until the first page is the whole run's): {best['whole']:.3f} s; plain parse of "
          f"results.jsonl with the json module: {best['raw']:.3f} s; ratio {best['whole'] / best['raw']:.2f}x (goal at "
          f"most 1.5x){verdict(best['whole'], 1)}; the server parses with "
          f"{'orjson' if importlib.util.find_spec('orjson') else 'the json module (orjson is not installed)'}")
    print(f"server's peak memory: {best['rss'] / 2**20:.0f} MB with the whole first page, "
          f"{best['rss_plots'] / 2**20:.0f} MB after the plots; a bare interpreter holding the parsed lines: "
          f"{best['rss_raw'] / 2**20:.0f} MB; ratio {best['rss'] / best['rss_raw']:.2f}x and "
          f"{best['rss_plots'] / best['rss_raw']:.2f}x")
    print(f"warm page after a new line: {best['warm'] * 1000:.1f} ms; bare round trip: {best['bare'] * 1000:.2f} ms;"
          f" ratio {best['warm'] / best['bare']:.0f}x")
    print(f"start, answer the page's address, stop (fresh interpreter): {best['start'] * 1000:.0f} ms; python -c pass: "
          f"{best['pass'] * 1000:.0f} ms; ratio {best['start'] / best['pass']:.1f}x{verdict(best['start'], 1)}")
    print(f"inside the import: experiment_runner.serve {best['import'] * 1000:.1f} ms; import http.server "
          f"{best['http'] * 1000:.1f} ms; ratio {best['import'] / best['http']:.1f}x")


if __name__ == "__main__":
    main()
