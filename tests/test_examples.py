"""The examples run end to end, as a user runs them."""
import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_ridge_regression_example_writes_the_whole_tree(tmp_path):
    out_path = tmp_path / "ridge"
    done = subprocess.run([sys.executable, str(EXAMPLES / "ridge_regression.py"), str(out_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "best: alpha=" in done.stdout
    assert "6 of 6 experiments finished" in done.stderr
    lines = [json.loads(line) for line in (out_path / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 6
    assert len({(line["alpha"], line["noise"], line["n_features"]) for line in lines}) == 6
    for line in lines:
        scores = line["scores"]
        assert len(scores["test_mse"]) == 3 and scores["mean_test_mse"] > 0
        assert isinstance(scores["mean_coef_norm"], float)
        for run_id in range(3):
            assert (out_path / str(line["experiment_id"]) / str(run_id) / "config.json").exists()
