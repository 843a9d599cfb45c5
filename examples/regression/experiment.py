"""Regression on synthetic data, as a script with config groups (model/ and dataset/).

    python examples/regression/experiment.py                         # ridge on sine, 4 alphas x 2 repetitions
    python examples/regression/experiment.py model=knn dataset=linear
    python examples/regression/experiment.py 'model=ridge,knn' backend=multiprocessing repetitions=5
    python examples/regression/experiment.py --cfg                   # the composed config
    python examples/regression/experiment.py --list n_configs=3      # the experiments, without running them

The configs are in conf/ next to this file. The stages below are found by the
decorator; the command line of the repository's root (``experiment-runner``
with conf/config.yaml) names the same functions by import path. Needs numpy.
"""
import json

import numpy as np

import experiment_runner


def pre(cfg):
    """Make the data set; its seed is the repetition number, so repetitions differ."""
    data = cfg["dataset"]
    rng = np.random.default_rng(cfg["run_id"])
    X = rng.uniform(-1, 1, size=(data["n_samples"], data["n_features"]))
    if data["name"] == "sine":
        y = np.sin(3 * X).sum(axis=1)
    else:
        y = X @ rng.normal(size=data["n_features"])
    y = y + rng.normal(scale=data["noise"], size=data["n_samples"])
    split = int(0.8 * data["n_samples"])
    return X[:split], y[:split], X[split:], y[split:]


def fit(cfg, data):
    """Fit the model; return a predict function and the held-out data."""
    X_train, y_train, X_test, y_test = data
    model = cfg["model"]
    if model["name"] == "ridge":
        features = np.hstack([X_train, np.ones((len(X_train), 1))])
        coef = np.linalg.solve(features.T @ features + model["alpha"] * np.eye(features.shape[1]), features.T @ y_train)

        def predict(X):
            return np.hstack([X, np.ones((len(X), 1))]) @ coef
    else:
        def predict(X):
            distances = ((X[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=2)
            nearest = np.argsort(distances, axis=1)[:, : model["k"]]
            return y_train[nearest].mean(axis=1)
    return predict, data


def post(cfg, fitted):
    predict, (X_train, y_train, X_test, y_test) = fitted
    return {
        "test_mse": float(np.mean((predict(X_test) - y_test) ** 2)),
        "train_mse": float(np.mean((predict(X_train) - y_train) ** 2)),
    }


@experiment_runner.main(config_path="conf", config_name="config")
def main(summary):
    """Called when the sweep has finished: print the best experiment by test error."""
    lines = [json.loads(line) for line in summary.results_file.read_text().splitlines()]
    if not lines:
        return
    scores = [line["scores"] for line in lines]
    best = min(zip(lines, scores), key=lambda pair: pair[1].get("mean_test_mse", pair[1]["test_mse"]))
    error = best[1].get("mean_test_mse", best[1]["test_mse"])
    print(f"best: model={best[0]['model']} dataset={best[0]['dataset']['name']} test_mse={error:.4f}")


if __name__ == "__main__":
    main()
