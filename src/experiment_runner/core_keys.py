"""The run settings every backend reads, by name: what composing a config needs to know of them.

Kept apart from :mod:`.settings` (which parses and checks them) so that
composing a config (``--help``, ``--cfg``) tells run settings from experiment
parameters without importing the run's settings.
"""

#: Keys every backend understands.
CORE_KEYS = frozenset(
    {
        "out_path", "pre", "fit", "post", "backend", "repetitions", "timeout", "retries",
        "verbose", "if_exists", "num_cpus", "num_gpus", "max_memory", "secret_keys", "chdir",
        "search",
    }
)

#: The searches ``search=<name>`` selects: the grid of the listed configurations (the default), or Optuna's.
SEARCHES = ("grid", "optuna")
