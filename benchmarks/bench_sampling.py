"""How fast generate_configs samples unique configurations.

    python benchmarks/bench_sampling.py [--rounds 5]

Samples 100,000 unique configurations from a space of 10^6 (six Variations of
ten choices and a fixed part) and, as the baseline in the same rounds, draws
100,000 unique integers with random.sample (the least any unique sampler must
do). The rounds interleave the two (and a sample of the whole space), so a
busy machine slows them alike; each line is the best over the rounds. Prints
both times and their ratio, and ours against the goal: 0.3 s inside the call.
The same seed samples the same configurations as every earlier version
(tests/test_sweep.py pins some): only the time changes.
"""
import argparse
import random
import time

from experiment_runner import Variation, generate_configs


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    space = {f"param_{i}": Variation(list(range(10))) for i in range(6)}
    space["fixed"] = {"name": "forest", "layers": [64, 64]}
    n = 100_000
    measures = {
        "ours": lambda: generate_configs(space, n_configs=n, seed=0),
        "raw": lambda: random.Random(0).sample(range(10**6), n),
        "exhaust": lambda: generate_configs(space, n_configs=10**6, seed=0),
    }
    times = {name: [] for name in measures}
    for _ in range(options.rounds):
        for name, function in measures.items():
            times[name].append(timed(function))
    ours, raw, exhaust = (min(times[name]) for name in measures)
    ratios = ", ".join(f"{a / b:.2f}x" for a, b in zip(times["ours"], times["raw"]))
    print(f"best of {options.rounds} rounds, interleaved")
    print(f"generate_configs: {n:,} unique of 10^6 in {ours:.3f} s (goal: at most 0.3 s: "
          f"{'met' if ours <= 0.3 else 'not met'})")
    print(f"random.sample of {n:,} integers (baseline): {raw:.3f} s  ratio {ours / raw:.2f}x (rounds: {ratios})")
    print(f"generate_configs: the whole space of 10^6 sampled in {exhaust:.3f} s (no slow-down near exhaustion)")


if __name__ == "__main__":
    main()
