"""Make docs/serve.png, the README's picture of ``experiment-runner serve``: a small sweep, served, photographed.

    python docs/make_screenshot.py [--chromium /usr/bin/chromium] [--output docs/serve.png]

Needs the serve extra and Playwright (``pip install -e '.[test]'``) and a chromium on this machine (Debian:
``apt-get install chromium``); it downloads nothing. The sweep is written to a temporary folder and removed;
it is made and served from inside that folder as ``results/sweep``, and its stages carry the file name
``train.py``, so that the picture shows no path of the machine that took it.
"""
import argparse
import linecache
import os
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from experiment_runner import run_experiments

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


#: The experiment's stages, as the module train.py: the page shows that file in tracebacks.
STAGES = '''
import math
import random

from experiment_runner import report_metrics


def fit(cfg, _):
    """A made-up model: best near lr=0.01, better with depth, noisy; the largest lr diverges on deep models."""
    if cfg["lr"] >= 1.0 and cfg["depth"] >= 4:
        raise FloatingPointError("loss is NaN after 3 steps: lower the learning rate")
    noise = random.Random(cfg["experiment_id"] * 10 + cfg["run_id"])
    quality = 0.93 - 0.06 * abs(math.log10(cfg["lr"]) + 2) - 0.04 / cfg["depth"]
    loss = 1.0
    for step in range(12):
        loss = loss * (0.75 + 0.05 * abs(math.log10(cfg["lr"]) + 2)) + noise.uniform(0, 0.01)
        report_metrics(step, val_loss=round(loss, 4))
    print(f"epoch 12: val_loss={loss:.4f}")
    return round(quality + noise.uniform(-0.015, 0.015), 4)


def post(cfg, accuracy):
    return {"accuracy": accuracy}
'''


def stages_module() -> types.ModuleType:
    """STAGES as a module named train whose file is ``train.py``, its lines known to tracebacks."""
    train = types.ModuleType("train")
    train.__file__ = "train.py"
    exec(compile(STAGES, "train.py", "exec"), train.__dict__)
    linecache.cache["train.py"] = (len(STAGES), None, STAGES.splitlines(keepends=True), "train.py")
    sys.modules["train"] = train
    return train


def make_runs() -> None:
    """The sweep, at results/sweep in the current folder."""
    train = stages_module()
    cfgs = [{"lr": lr, "depth": depth, "optimizer": "adam"} for lr in (0.0001, 0.001, 0.01, 0.1, 1.0)
            for depth in (2, 4, 8)]
    run_experiments({"out_path": "results/sweep", "fit": train.fit, "post": train.post,
                     "repetitions": 3, "verbose": False}, cfgs)


def photograph(chromium: str, output: Path) -> None:
    """The page of results/ (in the current folder), served as a user serves it."""
    from playwright.sync_api import expect, sync_playwright

    server = subprocess.Popen([sys.executable, "-m", "experiment_runner", "serve", "results", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        address = re.search(r"at (http://\S+)", server.stdout.readline()).group(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto(f"{address}#run=sweep")
            expect(page.locator("#curves-plot .scatterlayer .trace").first).to_be_visible(timeout=30_000)
            expect(page.locator("#parallel-plot .parcoords").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(output), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait()
        server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "serve.png")
    args = parser.parse_args()
    output = args.output.resolve()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            make_runs()
            photograph(args.chromium, output)
        finally:
            os.chdir(here)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
