"""``pytest-edgetpu bisect GOOD BAD [-- PYTEST ARGS]``: the first commit at which benchmarks
got slower.

BAD is measured against GOOD first (relative mode, one pytest run of the arguments after
``--``); the benchmarks that regress there are the ones looked for. Then each step checks out a
commit between them in a temporary worktree and measures it against GOOD; the statistics of
:mod:`~pytest_edgetpu.judge.bisect` call it like GOOD, like BAD, undecided (measured again, then
skipped) or untestable (skipped). The first commit like BAD is measured against its own parent
to confirm the step, and to say when the slowdown did not come in that one step.

Exit status: 0 a culprit found and confirmed; 1 no single commit found (untestable or
undecided commits in the way, no regression from GOOD to BAD, or the step not confirmed);
2 bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Final

from .core.errors import RevisionError
from .core.jsonio import JsonObject, check_writable, write_atomic
from .core.stats import Shift
from .judge.bisect import Bisection, Commit, Decision, Measured, Step, boundary, search
from .judge.verdict import Status, format_interval
from .options import parse_threshold
from .relative.git import Revision, git
from .report.table import text_table
from .worktree import Worktree, commits_between

__all__ = ["add_bisect_command", "bisect_command"]

#: What the exit status says (module docstring).
FOUND, NOT_FOUND, INTERRUPTED = 0, 1, 130


def add_bisect_command(commands: Any) -> argparse.ArgumentParser:
    """The ``bisect`` subcommand of ``commands`` (argparse's subparsers), with its own
    arguments; ``--threshold`` is added with the other commands'."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "bisect",
        help="The first commit between GOOD and BAD at which benchmarks got slower",
        usage="pytest-edgetpu bisect [options] GOOD BAD [-- PYTEST ARGS]",
    )
    parser.add_argument("good", help="A commit where the benchmarks were fast (older)")
    parser.add_argument("bad", help="A later commit where they are slower, e.g. HEAD")
    parser.add_argument(
        "--tries",
        type=int,
        default=2,
        help="Runs at a commit whose measurement leaves it undecided, before it is skipped "
        "(default: 2)",
    )
    parser.add_argument("--json", help="Also write the steps and the culprit to this JSON file")
    parser.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        help="pytest's arguments after --: which benchmarks, and how (default: none)",
    )
    parser.set_defaults(handler=bisect_command)
    return parser


def bisect_command(args: argparse.Namespace) -> int:
    """Run the bisection the parsed command line asks for; returns the exit status."""
    threshold = parse_threshold(args.threshold, "--threshold")
    if args.tries < 1:
        raise RevisionError(f"bisect: --tries {args.tries} must be at least 1")
    if args.json:
        check_writable(Path(args.json), "--json", directory=False)
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    here = Path.cwd()
    good = Revision.resolve(args.good, here, "bisect GOOD")
    bad = Revision.resolve(args.bad, here, "bisect BAD")
    if good.commit == bad.commit:
        raise RevisionError(f"bisect: GOOD and BAD are the same commit ({good.words})")
    if not _is_ancestor(good.commit, bad.commit, good.toplevel):
        raise RevisionError(
            f"bisect: GOOD {good.words} is not an ancestor of BAD {bad.words}; give the older, "
            "faster commit first (pytest-edgetpu bisect GOOD BAD), on BAD's history"
        )
    commits = commits_between(good.commit, bad.commit, good.toplevel)
    subdirectory = here.resolve().relative_to(good.toplevel.resolve()).as_posix()
    try:
        with (
            _terminate_as_interrupt(),
            Worktree(good.toplevel, subdirectory, pytest_args, bad.commit) as worktree,
        ):
            return _bisect(args, threshold, good, bad, commits, worktree)
    except KeyboardInterrupt:
        print("bisect: interrupted; its worktree and files are removed", file=sys.stderr)
        return INTERRUPTED


def _bisect(
    args: argparse.Namespace,
    threshold: float,
    good: Revision,
    bad: Revision,
    commits: list[Commit],
    worktree: Worktree,
) -> int:
    short = good.commit[:7]
    steps = math.ceil(math.log2(len(commits))) if len(commits) > 1 else 0
    print(
        f"bisect: {len(commits)} commit(s) after GOOD {good.words} up to BAD {bad.words}; "
        f"about {steps} step(s) after BAD's, each a relative run of: "
        f"pytest {' '.join(worktree.args) or '(no arguments)'}",
        flush=True,
    )
    at_bad = worktree.measure(commits[-1], good.commit, threshold)
    if at_bad.problem:
        raise RevisionError(
            f"bisect: BAD {bad.words} cannot be measured against GOOD: {at_bad.problem}"
        )
    regressed = {
        test: at_bad.changes[test]
        for test, status in at_bad.statuses.items()
        if status is Status.REGRESSION
    }
    if not regressed:
        measured = "; ".join(f"{test} {_change(c)}" for test, c in at_bad.changes.items())
        print(
            f"bisect: no benchmark regressed from GOOD to BAD beyond {threshold:.1%} "
            f"({measured or 'none compared'}); nothing to bisect"
        )
        _write_json(args, good, bad, {}, None, None, None)
        return NOT_FOUND
    boundaries = {test: boundary(change.estimate) for test, change in regressed.items()}
    print(
        f"BAD {bad.commit[:7]} against GOOD {short}: {', '.join(regressed)} regressed: "
        f"{_changes(regressed)}; a commit is like BAD past {_limits(boundaries)} "
        f"({at_bad.seconds:.1f} s)",
        flush=True,
    )
    step_threshold = min(boundaries.values())
    bad_step = Step(commits[-1], Decision.BAD, regressed, "", 1, at_bad.seconds)

    def at(commit: Commit) -> Measured:
        return worktree.measure(commit, good.commit, step_threshold)

    made = 0

    def progress(step: Step, left: int) -> None:
        nonlocal made
        made += 1
        said = f"{_changes(step.changes)}: " if step.changes else ""
        said += step.decision.value + (f": {step.reason}" if step.reason else "")
        tries = f", {step.runs} runs" if step.runs > 1 else ""
        print(
            f"step {made}/~{steps}: {_commit_words(step.commit)}: {said}; {left} commit(s) left "
            f"({step.seconds:.1f} s{tries})",
            flush=True,
        )

    found = search(commits, at, boundaries, args.tries, progress)
    confirmation = None
    culprit = found.culprit
    if culprit is not None:
        parent = git("rev-parse", f"{culprit.sha}^", cwd=good.toplevel).decode().strip()
        confirmation = worktree.measure(culprit, parent, step_threshold)
        print(
            f"confirm {culprit.short} against its parent {parent[:7]}: "
            f"{confirmation.problem or _changes(_selected(confirmation, boundaries))} "
            f"({confirmation.seconds:.1f} s)",
            flush=True,
        )
    print()
    print(_table([bad_step, *found.steps], commits, short))
    print()
    verdict = _verdict(found, confirmation, regressed, boundaries)
    print(verdict)
    _write_json(args, good, bad, regressed, found, confirmation, boundaries)
    confirmed = confirmation is not None and _confirmed(confirmation, found, boundaries)
    return FOUND if confirmed else NOT_FOUND


def _commit_words(commit: Commit) -> str:
    subject = commit.subject if len(commit.subject) <= 50 else commit.subject[:49] + "…"
    return f'{commit.short} "{subject}"'


def _selected(measured: Measured, boundaries: Mapping[str, float]) -> dict[str, Shift]:
    return {test: measured.changes[test] for test in boundaries if test in measured.changes}


def _culprit_tests(found: Bisection, boundaries: Mapping[str, float]) -> list[str]:
    """The benchmarks whose slowdown made the culprit like BAD (all, when BAD is the culprit
    and was never a step of the search)."""
    for step in found.steps:
        if step.commit == found.culprit:
            return [
                t
                for t, limit in boundaries.items()
                if t in step.changes and step.changes[t].low > limit
            ]
    return list(boundaries)


def _confirmed(confirmation: Measured, found: Bisection, boundaries: Mapping[str, float]) -> bool:
    tests = _culprit_tests(found, boundaries)
    return not confirmation.problem and all(
        test in confirmation.changes and confirmation.changes[test].low > 0 for test in tests
    )


def _verdict(
    found: Bisection,
    confirmation: Measured | None,
    regressed: Mapping[str, Shift],
    boundaries: Mapping[str, float],
) -> str:
    culprit = found.culprit
    if culprit is None or confirmation is None:
        listed = ", ".join(_commit_words(commit) for commit in found.candidates)
        return (
            f"no single commit found: the first slower one is one of {len(found.candidates)}: "
            f"{listed} (the others could not be tested or stayed undecided; bisect again with "
            "--tries higher, or look at them by hand)"
        )
    if not _confirmed(confirmation, found, boundaries):
        measured = confirmation.problem or _changes(_selected(confirmation, boundaries))
        return (
            f"{_commit_words(culprit)} is where the benchmarks first measured like BAD, but "
            f"against its parent it is {measured}: "
            "not confirmed as one step (the slowdown may have come in smaller steps, or come "
            "and gone)"
        )
    steps = _selected(confirmation, boundaries)
    text = f"first slower commit: {_commit_words(culprit)}: {_changes(steps)} against its parent"
    smaller = [
        f"{test} {_figure(steps[test].estimate)} of BAD's {_figure(regressed[test].estimate)}"
        for test in _culprit_tests(found, boundaries)
        if test in steps and _part_of(steps[test], regressed[test]) < _MOST_OF
    ]
    if smaller:
        text += (
            f"; its step is smaller than the whole slowdown ({'; '.join(smaller)}): the rest "
            f"came in other commits (bisect again from {culprit.short} to BAD)"
        )
    return text


#: The share of BAD's slowdown (on the ratio scale) that a culprit's step must reach, with its
#: interval's upper end, to be called the whole of it. Runs in different processes differ by
#: more than their intervals say (docs/measuring.md), so two smaller steps read as about half
#: each and one step measured twice as anything from two thirds up.
_MOST_OF: Final = 0.75


def _part_of(step: Shift, whole: Shift) -> float:
    """The share of ``whole``'s slowdown that ``step`` can be, at most, on the ratio scale."""
    return math.log1p(step.high) / math.log1p(whole.estimate)


def _table(steps: Sequence[Step], commits: Sequence[Commit], good: str) -> str:
    """The steps in the order of the history (BAD last)."""
    order = {commit.sha: index for index, commit in enumerate(commits)}
    rows = [
        {
            "commit": step.commit.short,
            "subject": step.commit.subject[:50],
            f"change against {good}": _changes(step.changes) or step.reason,
            "decision": step.decision.value,
        }
        for step in sorted(steps, key=lambda s: order[s.commit.sha])
    ]
    return text_table(rows)


def _figure(value: float) -> str:
    return f"{value:+.1%}"


def _change(change: Shift) -> str:
    interval = format_interval(change.low, change.high)
    return f"{_figure(change.estimate)} ({change.confidence:.0%} CI {interval})"


def _changes(changes: Mapping[str, Shift]) -> str:
    """Each benchmark's change; a lone one's figures alone (the first line named it)."""
    if len(changes) == 1:
        return _change(next(iter(changes.values())))
    return "; ".join(f"{test} {_change(change)}" for test, change in changes.items())


def _limits(boundaries: Mapping[str, float]) -> str:
    if len(boundaries) == 1:
        return _figure(next(iter(boundaries.values())))
    return ", ".join(f"{_figure(limit)} ({test})" for test, limit in boundaries.items())


def _is_ancestor(good: str, bad: str, toplevel: Path) -> bool:
    try:
        git("merge-base", "--is-ancestor", good, bad, cwd=toplevel)
    except RevisionError:
        return False
    return True


def _shift_json(change: Shift) -> JsonObject:
    return {
        "change": change.estimate,
        "ci_low": change.low,
        "ci_high": change.high,
        "confidence": change.confidence,
    }


def _step_json(step: Step) -> JsonObject:
    return {
        "commit": step.commit.sha,
        "subject": step.commit.subject,
        "decision": step.decision.name,
        "reason": step.reason,
        "runs": step.runs,
        "seconds": round(step.seconds, 3),
        "changes": {test: _shift_json(change) for test, change in step.changes.items()},
    }


def _write_json(
    args: argparse.Namespace,
    good: Revision,
    bad: Revision,
    regressed: Mapping[str, Shift],
    found: Bisection | None,
    confirmation: Measured | None,
    boundaries: Mapping[str, float] | None,
) -> None:
    if not args.json:
        return
    document: dict[str, Any] = {
        "good": good.commit,
        "bad": bad.commit,
        "regressed": {test: _shift_json(change) for test, change in regressed.items()},
        "boundaries": dict(boundaries or {}),
        "steps": [_step_json(step) for step in found.steps] if found else [],
        "candidates": [commit.sha for commit in found.candidates] if found else [],
        "culprit": None,
    }
    if found is not None and found.culprit is not None and confirmation is not None:
        document["culprit"] = {
            "commit": found.culprit.sha,
            "subject": found.culprit.subject,
            "confirmed": _confirmed(confirmation, found, boundaries or {}),
            "problem": confirmation.problem,
            "against_parent": {t: _shift_json(c) for t, c in confirmation.changes.items()},
        }
    write_atomic(Path(args.json), json.dumps(document, indent=2, sort_keys=True) + "\n")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """A SIGTERM (a CI job cancelled) ends the bisection as Ctrl-C does: cleaned up."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
