"""Runs real Hydra on a batch of cases; executed by the Python of the Hydra venv, never imported by the tests.

Usage: ``python hydra_driver.py REQUESTS.json OUTCOMES.json`` (see :mod:`hydra_reference`).

Each request is ``{"kind": "compose" | "sweep" | "run", "config_dir", "config_name", "overrides"}``.
Each outcome is ``{"jobs": [{"overrides", "config", "resolved"}, ...]}`` or
``{"error": {"type", "message"}}``, where ``config`` is the job's config as
composed (``${...}`` as written) and ``resolved`` the same resolved, or
``{"error": ...}`` when it cannot be resolved.

- compose: ``hydra.compose`` under ``initialize_config_dir`` with
  ``return_hydra_config=True``, then what Hydra does before it calls a task
  function: ``HydraConfig`` is set from the composed config (so the
  ``${hydra:...}`` resolver works) and the ``hydra`` node is removed.
- sweep: a real multirun (``Hydra.multirun``, the BasicSweeper and the
  BasicLauncher, as ``@hydra.main`` with ``-m`` runs it), each job's config
  captured by the task function. :data:`QUIET` goes before the case's
  overrides (which may change them): no logging and no ``.hydra`` folder per
  job, which halves the time of a job and changes no task config.
- run: the app run as ``@hydra.main`` runs it without ``-m`` (Hydra's
  ``_run_hydra`` and ``_run_app``): ``hydra.mode`` (given, or in a config)
  makes it a multirun as above; else one job (``Hydra.run``).

The working directory is the caller's: multirun writes its job folders there.
"""
import copy
import json
import sys
import traceback

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

VERSION_BASE = "1.3"
QUIET = ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled", "hydra.output_subdir=null"]


def error_of(exception):
    return {"type": type(exception).__name__, "message": str(exception)}


def task_view(cfg):
    """The config a task function sees: the hydra node removed, as composed and resolved."""
    task = copy.deepcopy(cfg)
    with open_dict(task):
        task.pop("hydra", None)
    job = {"config": OmegaConf.to_container(task, resolve=False)}
    try:
        job["resolved"] = OmegaConf.to_container(task, resolve=True)
    except Exception as exception:  # any resolution failure is an outcome to compare
        job["resolved"] = {"error": error_of(exception)}
    return job


def run_compose(request):
    with initialize_config_dir(config_dir=request["config_dir"], version_base=VERSION_BASE, job_name="app"):
        cfg = compose(request["config_name"], list(request["overrides"]), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        job = task_view(cfg)
    job["overrides"] = list(request["overrides"])
    return {"jobs": [job]}


def run_sweep(request):
    def task_function(cfg):
        job = task_view(cfg)
        job["overrides"] = list(HydraConfig.get().overrides.task)
        return job

    with initialize_config_dir(config_dir=request["config_dir"], version_base=VERSION_BASE, job_name="app"):
        hydra = GlobalHydra.instance().hydra
        batches = hydra.multirun(
            config_name=request["config_name"],
            task_function=task_function,
            overrides=QUIET + list(request["overrides"]),
            with_log_configuration=False,
        )
    return {"jobs": [job.return_value for batch in batches for job in batch]}


def run_app(request):
    jobs = []

    def task_function(cfg):
        job = task_view(cfg)
        job["overrides"] = list(HydraConfig.get().overrides.task)
        jobs.append(job)

    with initialize_config_dir(config_dir=request["config_dir"], version_base=VERSION_BASE, job_name="app"):
        hydra = GlobalHydra.instance().hydra
        overrides = QUIET + list(request["overrides"])
        mode = hydra.get_mode(config_name=request["config_name"], overrides=overrides)
        if mode == RunMode.MULTIRUN:
            hydra.multirun(config_name=request["config_name"], task_function=task_function, overrides=overrides,
                           with_log_configuration=False)
        else:
            hydra.run(config_name=request["config_name"], task_function=task_function,
                      overrides=overrides + ([] if mode else ["hydra.mode=RUN"]), with_log_configuration=False)
    return {"jobs": jobs}


KINDS = {"compose": run_compose, "sweep": run_sweep, "run": run_app}


def run(request):
    try:
        return KINDS[request["kind"]](request)
    except Exception as exception:  # Hydra's refusal is the outcome to compare
        outcome = {"error": error_of(exception)}
        if "--debug" in sys.argv:
            outcome["traceback"] = traceback.format_exc()
        return outcome
    finally:
        GlobalHydra.instance().clear()


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        requests = json.load(file)
    outcomes = [run(request) for request in requests]
    with open(sys.argv[2], "w", encoding="utf-8") as file:
        json.dump(outcomes, file)


if __name__ == "__main__":
    main()
