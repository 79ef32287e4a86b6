"""Rendering: the terminal summary, progress lines and the Markdown report (JUnit properties:
:mod:`pytest_edgetpu.report.junit`).

Renders what the gate decided (:class:`~pytest_edgetpu.judge.results.TimedResult`); never decides
anything itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Final

from ..core.errors import one_line
from ..device.profile import Profile
from ..engine.against import NotCompared
from ..engine.measurement import OVER_MAX_TIME
from ..engine.memory import MEMORY_PHASES
from ..judge.results import Result, TimedResult
from ..judge.structure import StructureVerdict
from ..judge.verdict import Status, format_bytes, format_interval, format_ms
from .table import text_table

__all__ = [
    "headline",
    "kept_line",
    "markdown_report",
    "progress_line",
    "relative_line",
    "result_notes",
    "says_more",
    "summary_table",
    "unique_structures",
    "update_headline",
    "update_line",
]

# Regressions first, so a reader sees what failed before what passed.
_ORDER: Final = {
    Status.REGRESSION: 0,
    Status.UNSTABLE: 1,
    Status.BUSY: 2,
    Status.INCOMPARABLE: 3,
    Status.MODEL_CHANGED: 4,
    Status.NO_BASELINE: 5,
    Status.IMPROVED: 6,
    Status.PASS: 7,
}

_ACCEPT_UNSTABLE: Final = "--edgetpu-accept-unstable"
#: The column of the figures a change is estimated between (compare.compared_words).
_COMPARED_HEADER: Final = "compared ms (baseline -> now)"


def _change(result: TimedResult) -> str:
    change = result.verdict.change
    if change is None:
        return ""
    return f"{change.estimate:+.1%} ({format_interval(change.low, change.high)})"


def _compared(result: TimedResult) -> str:
    """The figures the change was estimated between under their own name, ``p5 0.480 ->
    0.538`` (ms)."""
    return result.verdict.compared_figures.replace(" ms", "")


def _wait(result: TimedResult) -> str:
    """The share of its timed loops the benchmark thread waited for a CPU: ``3%``."""
    return f"{result.run_queue_wait:.0%}" if result.run_queue_wait is not None else ""


def _sort_key(result: TimedResult) -> tuple[int, str]:
    return (_ORDER[result.verdict.status], result.test_id)


def _rows(results: Sequence[TimedResult]) -> list[dict[str, str | int]]:
    rows: list[dict[str, str | int]] = []
    for r in sorted(results, key=_sort_key):
        rows.append(
            {
                # Results files come from anyone: no escape sequence in an id reaches the
                # terminal.
                "test": one_line(r.test_id),
                "device": one_line(r.device),
                _COMPARED_HEADER: _compared(r),
                "change (95% CI)": _change(r),
                "pooled p50 ms": format_ms(r.summary.p50_ms),
                "pooled p90 ms": format_ms(r.summary.p90_ms),
                "pooled p99 ms": format_ms(r.summary.p99_ms),
                "n": r.summary.n,
                "CPU wait": _wait(r),
                "verdict": r.status_words,
            }
        )
    return rows


#: Under the table when a CPU wait is blank, which is not "no wait".
UNREAD_WAIT: Final = (
    "CPU wait blank: the kernel keeps no /proc/thread-self/schedstat here (or its counters "
    "went back); contention was not read for them"
)


#: The columns a table narrower than its terminal leaves out, first to last.
_DROPPED_TO_FIT: Final = ("pooled p99 ms", "pooled p90 ms", "n", "CPU wait", "device")


def summary_table(results: Sequence[Result], width: int | None = None) -> str:
    """A plain-text table of timed results, for the terminal summary and ``compare``; lines
    under it say why a CPU wait is blank, where one is, and why a measurement ran well past
    its max_time, where one did. Given a terminal's ``width``, columns are left out (and
    named) until the table fits."""
    timed = [r for r in results if isinstance(r, TimedResult)]
    rows = _rows(timed)
    table, left_out = text_table(rows), []
    for column in _DROPPED_TO_FIT:
        if width is None or max(map(len, table.splitlines()), default=0) <= width:
            break
        left_out.append(column)
        rows = [{k: v for k, v in row.items() if k != column} for row in rows]
        table = text_table(rows)
    if left_out:
        dropped = ", ".join(left_out)
        table += f"\n(left out for a {width}-column terminal: {dropped}; --edgetpu-json has all)"
    if any(r.run_queue_wait is None for r in timed):
        table += "\n" + UNREAD_WAIT
    for result in timed:
        if result.stop_reason is not None and result.stop_reason.startswith(OVER_MAX_TIME):
            table += f"\n{result.test_id}: measured {result.stop_reason}"
    return table


def progress_line(result: TimedResult) -> str:
    """One judged test's figures and verdict, for the line under it in ``pytest -v``."""
    summary, verdict = result.summary, result.verdict
    text = (
        f"p50 {format_ms(summary.p50_ms)} ms, p90 {format_ms(summary.p90_ms)} ms, "
        f"p99 {format_ms(summary.p99_ms)} ms (n {summary.n}): {verdict.status.value}"
    )
    if verdict.change is not None and verdict.compared_figures:
        text += f" {_change(result)}, compared {verdict.compared_figures}"
    if verdict.confirmed:
        text += ", confirmed"
    if result.recorded:
        text += "; recorded"
    return text


def update_line(result: TimedResult) -> str:
    """What an update run did to one test's baseline, for the terminal."""
    verdict = result.verdict
    now = f"{result.metric} {format_ms(result.value_ms)} ms"
    if result.record_error:
        return (
            f"{result.test_id}: not recorded: {now}; its baseline file could not be written "
            "(the ERROR line below says why)"
        )
    compared = f"compared {verdict.compared_figures}"
    if not result.recorded and verdict.status is Status.BUSY:
        return (
            f"{result.test_id}: not recorded: {now} is BUSY: {verdict.reason}; the old entry, if "
            f"any, is kept; or record it anyway with {_ACCEPT_UNSTABLE}"
        )
    if not result.recorded:
        return (
            f"{result.test_id}: not recorded: {now} is UNSTABLE against the baseline "
            f"({compared}, {_change(result)}: too noisy to decide); the old entry is kept; "
            f"measure again, or record it anyway with {_ACCEPT_UNSTABLE}"
        )
    if verdict.change is None or verdict.baseline_ms is None:
        return f"{result.test_id}: recorded {now} (new)"
    how = {
        Status.PASS: "unchanged within the threshold",
        Status.MODEL_CHANGED: "model changed, latency unchanged within the threshold",
    }.get(verdict.status, verdict.status.value.lower())
    return (
        f"{result.test_id}: recorded {now} ({compared}, {verdict.change.estimate:+.1%}: {how}; "
        f"pooled {result.metric} was {format_ms(verdict.baseline_ms)} ms)"
    )


def result_notes(result: Result, shown: str = "") -> list[str]:
    """The result's notes (a partly mapped model, a throttled Edge TPU) that ``shown``, the
    text already printed for it, does not hold yet."""
    return [note for note in result.notes if note not in shown]


def kept_line(test_id: str) -> str:
    """A baseline entry an update kept although its test did not run."""
    return f"{test_id}: kept (not run)"


def update_headline(results: Sequence[TimedResult]) -> str:
    """``2 baseline(s) recorded, 1 not recorded (UNSTABLE or BUSY)`` over an update's
    results."""
    recorded = sum(1 for r in results if r.recorded)
    failed = sum(1 for r in results if r.record_error)
    refused = len(results) - recorded - failed
    text = f"{recorded} baseline(s) recorded"
    if refused:
        text += f", {refused} not recorded (UNSTABLE or BUSY; {_ACCEPT_UNSTABLE} records them)"
    if failed:
        text += f", {failed} not recorded (the baseline file could not be written)"
    return text


def headline(results: Sequence[TimedResult]) -> str:
    """``1 regressed, 0 improved, 3 unchanged, 1 new`` over the gated results."""
    counts = Counter(r.verdict.status for r in results)
    parts = [
        f"{counts[Status.REGRESSION]} regressed",
        f"{counts[Status.IMPROVED]} improved",
        f"{counts[Status.PASS] + counts[Status.MODEL_CHANGED]} unchanged",
        f"{counts[Status.NO_BASELINE]} new",
    ]
    parts += [
        f"{counts[s]} {s.value.lower()}"
        for s in (Status.UNSTABLE, Status.BUSY, Status.INCOMPARABLE)
        if counts[s]
    ]
    grown = sum(1 for r in results if r.memory_verdict is not None and r.memory_verdict.failed)
    if grown:
        parts.append(f"{grown} grew in memory")
    return ", ".join(parts)


def relative_line(results: Sequence[TimedResult]) -> str:
    """In relative mode, how many benchmarks were compared with the revision and how many not
    (``""`` otherwise): a gate that compared nothing must not read like one that passed."""
    relative = [r for r in results if r.against is not None]
    if not relative:
        return ""
    revisions = ", ".join(sorted({r.against.revision for r in relative if r.against is not None}))
    missing = sum(1 for r in relative if isinstance(r.against, NotCompared))
    text = f"against {revisions}: {len(relative) - missing} of {len(relative)} compared"
    return text + (f", {missing} not (each line above says why)" if missing else "")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _table(
    header: Sequence[str], rows: Sequence[Sequence[object]], numbers: Collection[int] = ()
) -> list[str]:
    """A Markdown table; the columns at the indices ``numbers`` are right-aligned."""
    aligns = ["---:" if index in numbers else ":---" for index in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _verdict_cell(result: TimedResult) -> str:
    status = result.verdict.status.value
    text = f"**{status}**" if result.verdict.status is Status.REGRESSION else status
    return text + (", recorded" if result.recorded else "")


def says_more(result: TimedResult) -> bool:
    """Whether the verdict's message says more than the report's row: then it is shown below
    the table."""
    verdict = result.verdict
    return bool(verdict.status is not Status.PASS or verdict.reason or verdict.noise_note)


def _device_section(device: str, results: Sequence[TimedResult]) -> list[str]:
    words = "; ".join(sorted({r.device_words for r in results}))
    rows = [
        [
            f"`{r.test_id}`",
            _compared(r),
            _change(r),
            format_ms(r.summary.p50_ms),
            format_ms(r.summary.p90_ms),
            format_ms(r.summary.p99_ms),
            _wait(r),
            _verdict_cell(r),
        ]
        for r in results
    ]
    header = [
        "test",
        _COMPARED_HEADER,
        "change (95% CI)",
        "pooled p50 ms",
        "pooled p90 ms",
        "pooled p99 ms",
        "CPU wait",
        "verdict",
    ]
    lines = [f"### `{device}`: {words}", "", *_table(header, rows, numbers={3, 4, 5, 6}), ""]
    shown = {r.test_id: r.verdict.message for r in results if says_more(r)}
    lines += [f"- `{test_id}`: {message}" for test_id, message in shown.items()]
    flags = [
        f"- `{r.test_id}`: {note}"
        for r in results
        for note in result_notes(r, shown.get(r.test_id, ""))
    ]
    lines += flags
    grown = [
        f"- `{r.test_id}`: {r.memory_verdict.message}"
        for r in results
        if r.memory_verdict is not None and r.memory_verdict.failed
    ]
    lines += grown
    return lines + ([""] if shown or flags or grown else [])


def _memory_and_delegation(results: Sequence[TimedResult]) -> list[str]:
    """Each model's memory per phase (medians of its processes, and the largest spread among
    them) and how its delegate ran it; empty when no result has either."""
    rows = []
    for r in results:
        if r.memory is None and not r.delegations:
            continue
        memory = r.memory
        figures = (
            [
                *(f"{memory.kib[p]:,.0f}" for p in MEMORY_PHASES),
                f"{max(memory.spread_kib.values()):,.0f}",
            ]
            if memory is not None
            else [""] * (len(MEMORY_PHASES) + 1)
        )
        delegation = "; ".join(d.words() for d in r.delegations)
        rows.append([f"`{r.test_id}`", r.device, *figures, delegation])
    if not rows:
        return []
    header = ["test", "device", *MEMORY_PHASES, "largest spread", "delegation"]
    return [
        "<details><summary>Memory per phase (KiB) and delegation</summary>",
        "",
        *_table(header, rows, numbers=set(range(2, len(MEMORY_PHASES) + 3))),
        "",
        "</details>",
        "",
    ]


def _fingerprints(results: Sequence[TimedResult]) -> list[str]:
    rows = []
    for r in sorted(results, key=lambda r: (r.test_id, r.device)):
        verdict = r.verdict
        rows.append(
            [
                f"`{r.test_id}`",
                r.device,
                f"`{r.model.path if r.model is not None else r.target}`",
                ((r.model.sha256 if r.model is not None else None) or "")[:12],
                (verdict.baseline_sha256 or "")[:12],
                (verdict.baseline_recorded or "")[:10],
                f"`{verdict.baseline_path}`",
            ]
        )
    header = [
        "test",
        "device",
        "model",
        "sha256",
        "baseline sha256",
        "baseline recorded",
        "baseline file",
    ]
    return _table(header, rows)


def unique_structures(verdicts: Sequence[StructureVerdict]) -> list[StructureVerdict]:
    """Each model's structure verdict once (several tests may benchmark one model), the
    regressions first."""
    unique = {verdict.message: verdict for verdict in verdicts}
    return sorted(unique.values(), key=lambda v: (_ORDER.get(v.status, 10), v.model))


def _structure_section(verdicts: Sequence[StructureVerdict]) -> list[str]:
    """The compile structure of every Edge TPU model benchmarked, and each verdict's line."""
    shown = unique_structures(verdicts)
    if not shown:
        return []
    rows = [
        [
            f"`{v.model}`",
            v.current.edgetpu_subgraphs,
            format_bytes(v.current.cached_bytes),
            format_bytes(v.current.streamed_bytes),
            sum(v.current.cpu_ops.values()),
            f"**{v.status.value}**" if v.status is Status.REGRESSION else v.status.value,
        ]
        for v in shown
    ]
    header = ["model", "Edge TPU subgraphs", "cached on chip", "streamed", "CPU ops", "verdict"]
    return [
        "### Edge TPU compile structure",
        "",
        *_table(header, rows, numbers={1, 2, 3, 4}),
        "",
        *(f"- {v.message}" for v in shown),
        "",
    ]


def markdown_report(
    results: Sequence[Result],
    environment: Mapping[str, str],
    profiles: Mapping[str, Profile],
    structures: Sequence[StructureVerdict] = (),
) -> str:
    """A Markdown report for a CI job summary or a pull-request comment: the headline, a table
    per device (regressions first), the Edge TPU models' compile structure, and the
    environment and fingerprints, collapsed."""
    gated = sorted((r for r in results if isinstance(r, TimedResult)), key=_sort_key)
    lines = ["## pytest-edgetpu latency gate", "", f"**{headline(gated)}**", ""]
    revisions = sorted({r.against.revision for r in gated if r.against is not None})
    if revisions:
        lines += [
            f"Relative mode: against {', '.join(f'`{rev}`' for rev in revisions)}, measured in "
            "this run on the same device, in interleaved pairs; nothing compared with stored "
            "baselines.",
            "",
        ]
    by_device: dict[str, list[TimedResult]] = {}
    for result in gated:
        by_device.setdefault(result.device, []).append(result)
    # The device with the worst verdict first; sorted records make its first one its worst.
    for device in sorted(by_device, key=lambda d: (_sort_key(by_device[d][0])[0], d)):
        lines += _device_section(device, by_device[device])
    lines += _structure_section(structures)
    lines += _memory_and_delegation(gated)
    lines += ["<details><summary>Environment and fingerprints</summary>", "", "Environment:", ""]
    lines += [f"- {key}: {value}" for key, value in sorted(environment.items())]
    used = sorted({r.profile for r in gated})
    if used:
        lines += ["", "Device profiles (a baseline is compared only within its profile):", ""]
        for key in used:
            known = profiles[key].fields if key in profiles else {}
            fields = ", ".join(f"{k} {v}" for k, v in sorted(known.items()))
            lines.append(f"- `{key}`: {fields}")
        lines += ["", "Fingerprints:", "", *_fingerprints(gated)]
    lines += ["", "</details>", ""]
    return "\n".join(lines)
