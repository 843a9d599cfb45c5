"""``python -m experiment_runner``: the experiment-runner command."""
from .cli import console_main

if __name__ == "__main__":
    console_main(prog_words=["python", "-m", "experiment_runner"])
