"""A driver the stopping cases run in a process of their own, to stop it as a user would (Ctrl-C, SIGTERM).

``python -m experiment_runner.testing.driver SETTINGS CFGS`` (both JSON) runs
the cfgs with the suite's stages. Stopped, it prints the pids of its child
processes still running (a JSON list: there should be none) and exits 130;
otherwise it prints the run's summary (a JSON object: finished, failed_ids, ...).
"""
import json
import os
import sys

from .. import run_experiments
from . import stages
from .processes import children


def main(settings: str, cfgs: str) -> int:
    basecfg = {"pre": stages.pre, "fit": stages.fit, "post": stages.post, "verbose": False, **json.loads(settings)}
    try:
        summary = run_experiments(basecfg, json.loads(cfgs))
    except KeyboardInterrupt:
        print(json.dumps(children(os.getpid())), flush=True)
        return 130
    print(json.dumps({"finished": summary.finished, "failed_ids": summary.failed_ids, "skipped": summary.skipped}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
