"""A gate's history: its runs' results files as series per benchmark, with the steps in them.

``pytest-edgetpu history RESULTS.json...`` (the ``--edgetpu-json`` files of nightly runs or
CI artifacts, in any order) prints the steps as a Markdown table and exits 1 when a
benchmark's newest step is a slowdown beyond the threshold, so a scheduled job can gate on its
own history. In a notebook::

    from pytest_edgetpu.history import dataframe, load_history
    series = load_history(["runs/r1.json", "runs/r2.json"])
    frame = dataframe(series)  # needs pandas: pip install "pytest-edgetpu[history]"

Nothing on the gate's path imports this module or pandas.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .core.errors import ResultsError
from .judge.history import Series, series_of
from .judge.results_file import load_results

__all__ = ["dataframe", "history_command", "load_history"]


def load_history(paths: Iterable[str | Path], threshold: float = 0.05) -> list[Series]:
    """Every benchmark's series over the results files at ``paths``, with its steps of at
    least ``threshold``; a file that is not a results file is a ResultsError naming it. A run
    is named by its path as given: CI artifacts are often all ``results.json``."""
    runs = [(str(path), load_results(Path(path))) for path in paths]
    return series_of(runs, threshold)


def dataframe(series: Sequence[Series]) -> Any:
    """A ``pandas.DataFrame`` of every run of every series: test, profile, run, created,
    compared ms, status, and whether a step starts at that run."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            'pytest_edgetpu.history.dataframe needs pandas: pip install "pytest-edgetpu[history]"'
        ) from None
    rows = [
        {
            "test_id": one.test_id,
            "profile": one.profile,
            "run": point.run,
            "created": point.created,
            "compared_ms": point.value_ms,
            "status": point.status.value,
            "step": any(step.index == index for step in one.steps),
        }
        for one in series
        for index, point in enumerate(one.points)
    ]
    return pandas.DataFrame(rows)


def history_command(args: argparse.Namespace) -> int:
    """``pytest-edgetpu history``: the table, the plots, and the exit status."""
    from .core.jsonio import check_writable
    from .options import parse_threshold
    from .report.history import history_markdown, newest_regression, write_history_plots
    from .report.plots import check_matplotlib

    threshold = parse_threshold(args.threshold, "--threshold")
    if not args.results:
        raise ResultsError("history: give the --edgetpu-json files of the runs to read")
    if args.plot:
        check_matplotlib("--plot")
        check_writable(Path(args.plot), "--plot", directory=True)
    series = load_history(args.results, threshold)
    print(history_markdown(series), end="")
    if args.plot:
        written = write_history_plots(series, Path(args.plot))
        print(f"{len(written)} plot(s) written to {args.plot}")
    regressed = newest_regression(series)
    for line in regressed:
        print(f"newest step is a regression: {line}")
    return 1 if regressed else 0
