"""``experiment-runner report <out_path>``: the table of a run's best configurations, or a plot.

The run's status (finished, failed, not finished) goes to stderr, so the
table on stdout can be redirected into a file as it is.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import List, Set

from .console import say
from .errors import ExperimentRunnerError, ReportError
from .report import (
    TABLE_FORMATS,
    RunRecords,
    csv_frame,
    curve_metrics,
    experiments_with_null,
    experiments_without,
    experiments_without_number,
    format_table,
    plot_learning_curves,
    plot_metric,
    results_table,
    sort_order,
    summarize_results,
)
from .report_records import metric_names
from .search.best import best_trial_lines
from .search.history import is_a_search, plot_search
from .serialization import write_atomic

PROG = "experiment-runner report"


def _positive(text: str) -> int:
    return _whole(text, minimum=1)


def _not_negative(text: str) -> int:
    return _whole(text, minimum=0)


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Show a run's results: the parameters that vary across its experiments and each "
        "metric as mean ± std over repetitions. Works on a run still in progress.",
    )
    parser.add_argument("out_path", help="the run's out_path (the folder holding results.jsonl)")
    table = parser.add_argument_group("table")
    table.add_argument("--sort", metavar="M", help="sort by metric M (default: the first metric post returns)")
    order = table.add_mutually_exclusive_group()
    order.add_argument("--ascending", action="store_const", const=True, dest="ascending",
                       help="lowest first (default for a metric named like loss, error, mse, time)")
    order.add_argument("--descending", action="store_const", const=False, dest="ascending",
                       help="highest first (default for other metrics, such as accuracy)")
    table.add_argument("--top", metavar="N", type=_positive, help="show the first N experiments only")
    table.add_argument("--best-per", metavar="P", help="show the best experiment for each value of parameter P")
    table.add_argument("--decimals", metavar="D", type=_not_negative,
                       help="digits after the point (default: 4 significant digits)")
    table.add_argument("--format", choices=TABLE_FORMATS, default="table",
                       help="table (terminal), markdown, csv (numbers: mean_<M>, std_<M>) or html (a page)")
    parser.add_argument("--output", metavar="FILE", help="write the table or plot to FILE instead of stdout")
    plot = parser.add_argument_group("plot (needs matplotlib: pip install 'experiment-runner[plot]')")
    plot.add_argument("--plot", metavar="M", nargs="?", const="",
                      help="plot metric M (mean ± std) over parameter --x to a PNG instead of the table; --plot "
                      "alone (or M reported step by step) plots the learning curves of what the experiments "
                      "reported with report_metrics, the best (--top N, by --sort) in colour, and for an adaptive "
                      "search its optimisation history")
    plot.add_argument("--x", metavar="P", help="the parameter on the x axis of --plot M")
    plot.add_argument("--hue", metavar="P", help="one line per value of parameter P")
    return parser


def main(argv: List[str]) -> int:
    """Run the report command with ``argv`` (the arguments after ``report``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_plot_arguments(args)
        run = RunRecords.load(args.out_path)
        if args.plot is not None and not args.x:
            _plot_learning_curves(run, args)
        elif args.plot is not None:
            _plot(run, args)
        else:
            _table(run, args)
    except SystemExit as stop:  # argparse: --help, or a malformed command line
        return stop.code if isinstance(stop.code, int) else 2
    except ExperimentRunnerError as error:
        say(f"{PROG}: error: {error}")
        return error.exit_code
    return 0


def _check_plot_arguments(args: argparse.Namespace) -> None:
    if not args.plot and (args.x or args.hue):
        raise ReportError("--x and --hue go with --plot M: the metric to plot")
    if args.hue and not args.x:
        raise ReportError("--hue goes with --plot M --x P: a metric over a parameter")


def _plot_learning_curves(run: RunRecords, args: argparse.Namespace) -> None:
    """``--plot`` alone: every metric reported step by step (and a search's optimisation history or Pareto
    front); ``--plot M`` without ``--x``: M's, if M is one."""
    reported = curve_metrics(run)  # reads every metrics.jsonl (drawing the curves reads them again)
    if not args.plot and is_a_search(run.root):
        for output in plot_search(run.root):
            print(f"wrote {output}")
        if not reported:
            return
    if args.plot and args.plot not in reported:
        _check_metric_name(run, args.plot, reported)
        reported_text = ", ".join(reported) or "this run has none"
        raise ReportError("--plot needs --x P: the parameter on the x axis (or a metric the experiments reported "
                          f"step by step with report_metrics, for its learning curves: {reported_text})")
    name = "learning_curves" + (f"_{args.plot}" if args.plot else "")
    output = _output_path(args.output) if args.output else run.root / (re.sub(r"[^\w.-]", "_", name) + ".png")
    plot_learning_curves(run, [args.plot] if args.plot else None, top=args.top, sort=args.sort,
                         ascending=args.ascending, output=output)
    say(run.status_line())
    print(f"wrote {output}")


def _check_metric_name(run: RunRecords, name: str, reported: List[str]) -> None:
    """``name``, given to --plot, must be a metric of the run: its final scores' or those ``reported`` step by
    step."""
    metrics = sorted({metric for line in run.results.values() for metric in metric_names(line.get("scores") or {})}
                     | set(reported))
    if name not in metrics:
        close = difflib.get_close_matches(name, metrics, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReportError(f"unknown metric {name!r} for --plot{hint}; the metrics of this run are: "
                          f"{', '.join(metrics) or 'none yet'}")


def _table(run: RunRecords, args: argparse.Namespace) -> None:
    output = _output_path(args.output) if args.output else None
    sort, ascending = sort_order(run, args.sort, args.ascending)
    summary = summarize_results(run, sort=sort, ascending=ascending, top=args.top, best_per=args.best_per)
    if args.format == "csv":
        text = format_table(csv_frame(summary, args.decimals), "csv")
    else:
        table = results_table(summary, decimals=args.decimals)
        text = format_table(table, args.format, title=str(run.root), note=run.status_line())
    say(f"{run.status_line()}; sorted by {sort}, {'lowest' if ascending else 'highest'} first")
    for line in best_trial_lines(run.root):
        say(line)
    if output is not None:
        write_atomic(output, text)
        say(f"wrote {output}")
    else:
        sys.stdout.write(text)


def _plot(run: RunRecords, args: argparse.Namespace) -> None:
    output = _output_path(args.output) if args.output else _default_plot_path(run.root, args)
    plot_metric(run, args.plot, args.x, hue=args.hue, output=output)
    say(run.status_line())
    left_out = _say_who_is_left_out(run, [name for name in (args.x, args.hue) if name])
    _say_who_has_no_number(run, args.plot, left_out)
    print(f"wrote {output}")


def _say_who_is_left_out(run: RunRecords, parameters: List[str]) -> Set[int]:
    """One line on stderr for the experiments a plot leaves out because its x or hue is missing or null.

    Returns their ids.
    """
    missing = {name: experiments_without(run, name) for name in parameters}
    null = {name: experiments_with_null(run, name) for name in parameters}
    left_out = set().union(*missing.values(), *null.values())
    reasons = []
    if any(missing.values()):
        reasons.append("which have no " + " or ".join(name for name, ids in missing.items() if ids))
    if any(null.values()):
        reasons.append("whose " + " or ".join(name for name, ids in null.items() if ids) + " is null")
    if left_out:
        say(f"left out of the plot: {len(left_out)} of {len(run.results)} finished experiments, "
            f"{' or '.join(reasons)}")
    return left_out


def _say_who_has_no_number(run: RunRecords, metric: str, already_left_out: Set[int]) -> None:
    """One line on stderr for the experiments a plot leaves out because ``metric`` is not a number (a string, ...)."""
    ids = [i for i in experiments_without_number(run, metric) if i not in already_left_out]
    if ids:
        scores = run.results[ids[0]].get("scores") or {}
        value = json.dumps(scores[metric]) if metric in scores else "none returned"
        say(f"left out of the plot: {len(ids)} of {len(run.results)} finished experiments, whose {metric} "
            f"is not a number (experiment {ids[0]}: {textwrap.shorten(value, 60)})")


def _default_plot_path(root: Path, args: argparse.Namespace) -> Path:
    """``<out_path>/<M>_by_<x>[_and_<hue>].png``, next to the results it shows."""
    name = f"{args.plot}_by_{args.x}" + (f"_and_{args.hue}" if args.hue else "")
    return root / (re.sub(r"[^\w.-]", "_", name) + ".png")


def _output_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise ReportError(f"--output {text}: is a folder; name the file to write")
    if not path.parent.is_dir():
        raise ReportError(f"--output {text}: the folder '{path.parent}' does not exist")
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
