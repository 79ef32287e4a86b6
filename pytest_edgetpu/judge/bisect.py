"""Finding the first commit at which benchmarks got slower (``pytest-edgetpu bisect``).

Each step measures a commit against GOOD in relative mode, and a commit is called by where its
change lies against the boundary halfway (on the ratio scale) between GOOD and BAD's measured
change: like BAD when the whole interval lies above it, like GOOD when below, undecided
otherwise. An undecided commit is measured again, its runs pooled, up to a number of tries, and
then skipped as ``git bisect skip`` would; a commit where the benchmarks cannot run is skipped
at once. Statistics decide each step, never the bigger half (asv's ``find``), so noise moves
the search only as far as the intervals allow.

The search itself only sees :class:`Measured` outcomes; :mod:`~pytest_edgetpu.worktree`
makes them by running pytest in a checkout of the commit.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from ..core.stats import Shift
from .verdict import Status

__all__ = [
    "Bisection",
    "Commit",
    "Decision",
    "Measured",
    "Step",
    "boundary",
    "decide",
    "pooled",
    "search",
]


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class Measured:
    """One run of the benchmarks at a commit against another: each benchmark's change (test id
    to :class:`Shift`) and verdict, or why the run could not measure them."""

    changes: Mapping[str, Shift]
    statuses: Mapping[str, Status]
    problem: str = ""
    seconds: float = 0.0


class Decision(str, enum.Enum):
    GOOD = "like GOOD"
    BAD = "like BAD"
    UNDECIDED = "undecided"
    UNTESTABLE = "cannot test"


@dataclass(frozen=True)
class Step:
    """A commit as the search judged it: its runs pooled, and the decision they made."""

    commit: Commit
    decision: Decision
    changes: Mapping[str, Shift]
    reason: str
    runs: int
    seconds: float


def boundary(bad_change: float) -> float:
    """The change halfway between GOOD (0) and BAD's ``bad_change`` on the ratio scale: +7.2%
    for +15%. A commit is like BAD only when it is confidently past it."""
    return math.sqrt(1.0 + bad_change) - 1.0


def pooled(runs: Sequence[Shift]) -> Shift:
    """Independent runs' estimates of one change, pooled: inverse-variance weights on the log
    ratio, each run's standard error read off its interval's width."""
    if len(runs) == 1:
        return runs[0]
    confidence = runs[0].confidence
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    weights, centres = [], []
    for run in runs:
        low, high = math.log1p(max(run.low, -0.999)), math.log1p(max(run.high, -0.999))
        error = max((high - low) / (2 * z), 1e-9)
        weights.append(1.0 / error**2)
        centres.append(math.log1p(max(run.estimate, -0.999)))
    total = sum(weights)
    centre = sum(w * c for w, c in zip(weights, centres, strict=True)) / total
    half = z / math.sqrt(total)
    return Shift(
        estimate=math.expm1(centre),
        low=math.expm1(centre - half),
        high=math.expm1(centre + half),
        confidence=confidence,
    )


def decide(changes: Mapping[str, Shift], boundaries: Mapping[str, float]) -> tuple[Decision, str]:
    """Where a commit lies: like BAD when any selected benchmark is confidently past its
    boundary (the first commit at which one got slower is the one looked for), like GOOD when
    every one is confidently below it; else undecided, or untestable when one has no change."""
    missing = [test for test in boundaries if test not in changes]
    bad = [
        test for test, limit in boundaries.items() if test in changes and changes[test].low > limit
    ]
    if bad:
        return Decision.BAD, ""
    if missing:
        return Decision.UNTESTABLE, f"no verdict for {', '.join(missing)} at this commit"
    if all(changes[test].high < limit for test, limit in boundaries.items()):
        return Decision.GOOD, ""
    return Decision.UNDECIDED, "its interval holds the boundary"


@dataclass(frozen=True)
class Bisection:
    """Where the search ended: the first bad commit when one is pinned down, else the commits
    it is among (untestable or undecided ones in the way)."""

    steps: tuple[Step, ...]
    candidates: tuple[Commit, ...]

    @property
    def culprit(self) -> Commit | None:
        return self.candidates[0] if len(self.candidates) == 1 else None


def search(
    commits: Sequence[Commit],
    measure: Callable[[Commit], Measured],
    boundaries: Mapping[str, float],
    tries: int,
    on_step: Callable[[Step, int], None],
) -> Bisection:
    """Binary search of ``commits`` (oldest first, after GOOD; the last is BAD, known bad) for
    the first one like BAD. ``on_step`` hears each step with how many commits are left open."""
    good, bad = -1, len(commits) - 1
    skipped: set[int] = set()
    steps: list[Step] = []
    while True:
        open_commits = [i for i in range(good + 1, bad) if i not in skipped]
        if not open_commits:
            break
        middle = (good + bad) / 2
        index = min(open_commits, key=lambda i: (abs(i - middle), i))
        step = judge(commits[index], measure, boundaries, tries)
        steps.append(step)
        if step.decision is Decision.GOOD:
            good = index
        elif step.decision is Decision.BAD:
            bad = index
        else:
            skipped.add(index)
        on_step(step, sum(1 for i in range(good + 1, bad) if i not in skipped))
    return Bisection(steps=tuple(steps), candidates=tuple(commits[good + 1 : bad + 1]))


def judge(
    commit: Commit,
    measure: Callable[[Commit], Measured],
    boundaries: Mapping[str, float],
    tries: int,
) -> Step:
    """One commit measured until its decision is made, or ``tries`` runs leave it undecided."""
    runs: list[Measured] = []
    while True:
        run = measure(commit)
        runs.append(run)
        seconds = sum(r.seconds for r in runs)
        if run.problem:
            return Step(commit, Decision.UNTESTABLE, {}, run.problem, len(runs), seconds)
        changes = {
            test: pooled([r.changes[test] for r in runs if test in r.changes])
            for test in boundaries
            if any(test in r.changes for r in runs)
        }
        decision, reason = decide(changes, boundaries)
        if decision is not Decision.UNDECIDED or len(runs) >= tries:
            return Step(commit, decision, changes, reason, len(runs), seconds)
