"""The runs of a gate as series, and the steps in them: the creep that no single gate sees.

Each ``--edgetpu-json`` file is one run. A series is one benchmark on one device profile, its
runs in the order they were made, each run's figure the one the gate compares (the median of
its fastest instance values, :func:`~pytest_edgetpu.core.stats.compared_value`). Steps are found
by circular binary segmentation (Olshen et al., 2004): the stretch of runs whose ranks differ
most from the runs around it is a candidate when shuffled orders of the same runs rarely hold
a stretch or a single split as sharp (a permutation test of the best of each, so searching
every stretch costs no false steps). Each edge of it is a step when the shift across it (with
its 95% interval) excludes no change and counts against the threshold; the pieces between are
searched again.
A stretch, not a single split, is searched so that a slowdown later undone is found too. A run
whose verdict was ``BUSY`` or ``UNSTABLE`` is shown but takes no part in finding a step: a step
must stand on runs the gate itself trusted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..core.stats import Shift, compared_value, shift
from .compare import COUNTS_FROM
from .results import TimedResult
from .results_file import ResultsFile
from .verdict import Status

__all__ = ["Point", "Series", "Step", "find_steps", "series_of"]

#: Fewest trusted runs on each side of a step.
MIN_SIDE = 3
#: How often a stretch of unchanged runs may show a split as sharp as a step's (the family-wise
#: error of searching every split), judged on shuffled orders of its runs. A candidate's edges
#: must then each hold a change whose interval excludes none and that counts against the
#: threshold, so unchanged series show a step far less often than this: 1.0-1.8% of 1000
#: at 0.10, where 0.05 missed 10% of real +10% steps (``benchmarks/history_steps.py``).
FAMILY_ERROR = 0.10
_SHUFFLES = 999
_SEED = 20261206
#: Shuffled orders scored at once (bounds memory on long series).
_BATCH = 50
#: A run of these verdicts is drawn, but finds no step.
_UNTRUSTED = frozenset({Status.BUSY, Status.UNSTABLE})


@dataclass(frozen=True)
class Point:
    """One run of one benchmark: which run, when, its compared figure and its verdict."""

    run: str  # the results file, as given
    created: str
    value_ms: float
    status: Status
    commit: str = ""  # the commit measured, where the results file says

    @property
    def trusted(self) -> bool:
        return self.status not in _UNTRUSTED


@dataclass(frozen=True)
class Step:
    """A change of level: ``index`` is the series' first run after it."""

    index: int
    change: Shift
    #: The median run's compared figure between the previous step and this one, and between
    #: this step and the next.
    before_ms: float
    after_ms: float


@dataclass(frozen=True)
class Series:
    """One benchmark on one device profile, run after run, and the steps found in it."""

    test_id: str
    profile: str
    points: tuple[Point, ...]
    steps: tuple[Step, ...] = ()


def series_of(runs: Sequence[tuple[str, ResultsFile]], threshold: float) -> list[Series]:
    """Every benchmark's series over ``runs`` (each a name and its results file), ordered by
    the time of the commit each run measured (where its file names one: a rerun of an older
    commit then sits where that commit does), then by when it was made, with its steps of at
    least ``threshold`` (counted from :data:`~pytest_edgetpu.judge.compare.COUNTS_FROM` of
    it)."""

    def when(run: tuple[str, ResultsFile]) -> tuple[str, str, str]:
        name, document = run
        committed = document.environment.get("git_commit_time", "")
        return (committed or document.created, document.created, name)

    points: dict[tuple[str, str], list[Point]] = {}
    for name, document in sorted(runs, key=when):
        commit = document.environment.get("git_commit", "")
        for result in document.results:
            if isinstance(result, TimedResult):
                processes = result.baseline_entry.processes > 0
                figure = compared_value(result.instance_values_ms, processes)
                point = Point(name, document.created, figure, result.verdict.status, commit)
                points.setdefault((result.test_id, result.profile), []).append(point)
    return [
        Series(test_id, profile, tuple(found), find_steps(found, threshold))
        for (test_id, profile), found in sorted(points.items())
    ]


def find_steps(points: Sequence[Point], threshold: float) -> tuple[Step, ...]:
    """The steps of a series, in order (circular binary segmentation over its trusted runs)."""
    trusted = [i for i, point in enumerate(points) if point.trusted]
    values = [points[i].value_ms for i in trusted]
    splits: list[tuple[int, Shift]] = []
    _segment(values, 0, len(values), threshold * COUNTS_FROM, splits)
    splits.sort(key=lambda found: found[0])
    edges = [0, *(split for split, _ in splits), len(values)]
    return tuple(
        Step(
            index=trusted[split],
            change=change,
            # The levels either side (the median run): from the step before to the step after.
            before_ms=statistics.median(values[edges[number] : split]),
            after_ms=statistics.median(values[split : edges[number + 2]]),
        )
        for number, (split, change) in enumerate(splits)
    )


def _segment(
    values: Sequence[float], start: int, end: int, counted: float, found: list[tuple[int, Shift]]
) -> None:
    """Find the surest stretch of ``values[start:end]`` that differs from the runs around it;
    keep each of its edges that is a step, and search the pieces between them."""
    if end - start < 2 * MIN_SIDE:
        return
    (first, last), p_value = _best_stretch(values[start:end])
    if p_value > FAMILY_ERROR:
        return
    edges = [start, *(start + edge for edge in (first, last) if 0 < edge < end - start), end]
    for number in range(1, len(edges) - 1):
        edges[number] = _placed(values, edges[number - 1], edges[number + 1])
    kept = [start]
    for edge, after in pairwise(edges[1:]):
        change = shift(values[kept[-1] : edge], values[edge:after], 0.95)
        if not (change.low <= 0 <= change.high) and abs(change.estimate) >= counted:
            found.append((edge, change))
            kept.append(edge)
    if len(kept) == 1:
        return
    kept.append(end)
    for piece_start, piece_end in pairwise(kept):
        _segment(values, piece_start, piece_end, counted, found)


def _placed(values: Sequence[float], before: int, after: int) -> int:
    """Where between ``before`` and ``after`` the edge sits: the split whose two pieces lie
    closest to their own medians. Ranks cannot place it: the fastest run of the slower side
    and the slowest of the faster side rank alike wherever the edge is drawn."""
    logs = [math.log(value) for value in values]

    def spread(piece: Sequence[float]) -> float:
        middle = statistics.median(piece)
        return sum(abs(value - middle) for value in piece)

    return min(
        range(before + MIN_SIDE, after - MIN_SIDE + 1),
        key=lambda edge: spread(logs[before:edge]) + spread(logs[edge:after]),
    )


def _best_stretch(values: Sequence[float]) -> tuple[tuple[int, int], float]:
    """The stretch ``values[first:last]`` whose ranks differ most from those of the runs
    around it (the Mann-Whitney statistic, standardised; a stretch reaching either end is a
    single split), and how often a random order of the same values holds one as sharp.

    Two searches are judged together: the best single split, and the best stretch. Searching
    stretches finds a slowdown later undone, but the best of so many stretches of shuffled runs
    is sharp too, which hides a plain step that the best split alone would show. Each order's
    two best scores become how rare each is among all the orders, the rarer of the two is the
    order's figure, and the runs' own order is judged by how rare its figure is in turn (the
    minimum-p combination: one test at the family error, the power of the better search)."""
    import numpy as np

    size = len(values)
    ranks = np.argsort(np.argsort(np.asarray(values))) + 1.0
    # A piece left outside the stretch is either nothing or at least MIN_SIDE runs.
    cuts = [0, *range(MIN_SIDE, size - MIN_SIDE + 1), size]
    pairs = np.array(
        [
            (first, last)
            for first in cuts
            for last in cuts
            if MIN_SIDE <= last - first <= size - MIN_SIDE
        ]
    )
    splits = (pairs[:, 0] == 0) | (pairs[:, 1] == size)
    inside = (pairs[:, 1] - pairs[:, 0]).astype(float)
    mean = inside * (size + 1) / 2
    spread = np.sqrt(inside * (size - inside) * (size + 1) / 12)
    rng = np.random.default_rng(_SEED)  # deterministic: the same runs give the same steps
    orders = np.vstack([ranks, np.array([rng.permutation(ranks) for _ in range(_SHUFFLES)])])
    best_split = np.empty(len(orders))
    best_stretch = np.empty(len(orders))
    observed = np.zeros(len(pairs))
    for batch in range(0, len(orders), _BATCH):
        sums = np.cumsum(orders[batch : batch + _BATCH], axis=1)
        sums = np.hstack([np.zeros((len(sums), 1)), sums])
        scores = np.abs(sums[:, pairs[:, 1]] - sums[:, pairs[:, 0]] - mean) / spread
        best_split[batch : batch + _BATCH] = scores[:, splits].max(axis=1)
        best_stretch[batch : batch + _BATCH] = scores.max(axis=1)
        if batch == 0:
            observed = scores[0]

    def rarity(best: Any) -> Any:
        """For each order, the share of all orders whose best is at least as sharp."""
        return (len(best) - np.searchsorted(np.sort(best), best, side="left")) / len(best)

    split_rarity, stretch_rarity = rarity(best_split), rarity(best_stretch)
    figure = np.minimum(split_rarity, stretch_rarity)
    p_value = float(np.sum(figure <= figure[0]) / len(figure))
    candidates = splits if split_rarity[0] <= stretch_rarity[0] else np.ones_like(splits)
    chosen = np.flatnonzero(candidates)[int(np.argmax(observed[candidates]))]
    first, last = pairs[chosen]
    return (int(first), int(last)), p_value
