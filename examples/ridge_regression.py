"""Ridge regression on synthetic data: the Python API end to end.

    python examples/ridge_regression.py [out_path]

Samples 6 unique configurations (alpha x noise x number of features), runs
each 3 times with a different data seed, and prints the best by test error.
Needs numpy only.
"""
import sys

import numpy as np

from experiment_runner import Variation, generate_configs, run_experiments


def pre(cfg):
    """Make a regression problem; the data seed is the repetition number."""
    rng = np.random.default_rng(cfg["run_id"])
    weights = rng.normal(size=cfg["n_features"])
    X = rng.normal(size=(cfg["n_samples"], cfg["n_features"]))
    y = X @ weights + rng.normal(scale=cfg["noise"], size=cfg["n_samples"])
    split = int(0.8 * cfg["n_samples"])
    return X[:split], y[:split], X[split:], y[split:]


def fit(cfg, data):
    X_train, y_train, X_test, y_test = data
    n_features = X_train.shape[1]
    coef = np.linalg.solve(X_train.T @ X_train + cfg["alpha"] * np.eye(n_features), X_train.T @ y_train)
    return coef, X_test, y_test


def post(cfg, fitted):
    coef, X_test, y_test = fitted
    residual = X_test @ coef - y_test
    return {"test_mse": float(np.mean(residual**2)), "coef_norm": np.linalg.norm(coef)}


def main(out_path=None):
    space = {
        "alpha": Variation([0.01, 0.1, 1.0, 10.0, 100.0]),
        "noise": Variation([0.1, 1.0]),
        "n_features": Variation([5, 50]),
        "n_samples": 200,
    }
    basecfg = {"out_path": out_path, "pre": pre, "fit": fit, "post": post, "repetitions": 3}
    summary = run_experiments(basecfg, generate_configs(space, n_configs=6, seed=0))
    best = min(
        (line for line in _results(summary.results_file)),
        key=lambda line: line["scores"]["mean_test_mse"],
    )
    print(f"best: alpha={best['alpha']} noise={best['noise']} n_features={best['n_features']} "
          f"test_mse={best['scores']['mean_test_mse']:.4f}")
    return summary


def _results(path):
    import json

    with open(path) as f:
        return [json.loads(line) for line in f]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
