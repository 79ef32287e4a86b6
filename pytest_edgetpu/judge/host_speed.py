"""The host's own speed beside a stored verdict: the reference workload's reading now against
the one its baseline recorded (:mod:`pytest_edgetpu.engine.host_reference`). A slower host may
explain a slowdown (``BUSY``); a faster one may explain an improvement, and may hide a slowdown,
which the verdict then says.
Computes, never prints or raises.
"""

from __future__ import annotations

import math

from ..core.stats import Shift, shift
from ..engine.host_reference import HostReading
from .verdict import COUNTS_FROM, Policy, Status, decide, format_interval

__all__ = ["MODEL_SENSITIVITY", "host_explains", "host_hides"]

#: How much more than the reference workload a model may slow with the host, as a power of
#: the reference's ratio: a model's invoke streams its weights through memory, so beside
#: memory-streaming neighbours each model slows its own way, up to about twice the reference's
#: ratio where the reference read significantly slower (unchanged models +25..+40% beside
#: readings of +16..+20%, ``benchmarks/relative_gate.py``, 2026-12-07). Replayed on the stored
#: ``REGRESSION`` s of the 11 models that the benchmarks kept beside a reading in the test's
#: processes (``benchmarks/experiments/host_rule_replay.py``), the square leaves 9 of 37 on
#: unchanged code beside 2 memory neighbours where the ratio left 37, 17 of 23 quiet (22),
#: and catches 62 of 102 +10% slowdowns quiet (102; the rest ``BUSY`` in slow spells of the
#: host). On the small callables' it removes no false alarm (it leaves 1 of 5 and 3 of 11, as
#: the ratio does) and would miss 57 of 217 slowdowns more, so a callable's slowdown is divided
#: by the ratio itself.
MODEL_SENSITIVITY = 2.0


def host_explains(
    status: Status,
    change: Shift,
    policy: Policy,
    then: HostReading | None,
    now: HostReading | None,
    *,
    model: bool,
) -> tuple[bool, str]:
    """Whether the host's own slowdown since the recording explains a suspected one, and what
    the host's reading says ("" when none was compared): the reference workload
    (:mod:`pytest_edgetpu.engine.host_reference`) ran slower now than while recording,
    significantly or, in a reading the test's own processes took, with the upper end of its
    interval as far as a slowdown of the code counts from (four fifths of the threshold), and
    the change beyond what that explains (the change divided by the host's ratio, there its
    interval beyond the reading's, below; a ``model`` 's by that ratio to the power
    :data:`MODEL_SENSITIVITY`) is no longer ``status``, nor a regression. Only a slower host
    explains: a faster one would turn noise in the reference into regressions. A reading that
    explains nothing is still named, so that a regression says the host was not what slowed it.

    On 16 minutes of rounds of a drifting 2-core VM (``benchmarks/experiments/host_reference.py``),
    one stored comparison of unchanged small callables (no confirmation) read REGRESSION in
    15.6% of (recording, gate) pairs of rounds, and 4.5% with the significant reading alone in
    processes of its own; +10% of work was caught in 90.1% and 86.1%. In the benchmark's own
    processes the reading shares their state, and a drift that reaches most but not all of a
    gate's processes reads a large estimate in a wide interval there: unchanged code read
    confirmed REGRESSIONs of +12.8% and +16.4% beside readings of +15.9% (95% CI -0.6..+16.8%)
    and +17.5% (-0.2..+19.3%) (``benchmarks/process_gate.py``, 2026-12-07). Taking such an
    estimate too, that experiment's replay read 2.1% instead of 2.7% on unchanged code and
    caught +10% in 88.1% instead of 88.4%; in processes of its own, 3.6% instead of 4.5% but
    83.5% instead of 86.1%, so a bare reading still has to be sure. On every REGRESSION that
    ``benchmarks/process_gate.py``'s runs kept beside a reading in the test's processes
    (``benchmarks/experiments/host_rule_replay.py``) the estimate turned 12 of 15 on unchanged
    code ``BUSY`` (those two, and the 10 that the rule before read in rounds where this rule
    read none), and 2 of 242 on 10% more work (each an undecided +13.7..+13.9% beyond a host
    +17..+18% slower).

    A change beside a reading its own processes took is judged beyond the host's interval, not
    its estimate alone: the change's lower end divided by the reading's upper end, its upper end
    by the reading's lower end. Its processes may have run in the host's slow moments where most
    of the reference's did not: quiet, unchanged models read confirmed REGRESSIONs of
    +4.7..+6.3% beside readings of +0.3..+3.6% whose intervals reached +16..+18%
    (``benchmarks/relative_gate.py``, 2026-12-07), and unchanged ``nms_python`` +10.6..+13.9%
    beside +0.4..+6.2% reaching +16..+22% (``benchmarks/process_gate.py``, 2026-12-08).
    Replayed on every stored REGRESSION the benchmarks kept (``host_rule_replay.py``,
    2026-12-08): on the models it leaves 6 of 27 on unchanged code quiet where the estimate left
    21, 8 of 50 beside 2 memory neighbours (22), and catches 72 of 137 +10% slowdowns quiet
    (97), 43 of 114 beside the neighbours (55), the rest ``BUSY``; on the small callables 3 of
    13 quiet (5), none of 7 beside the neighbours (3), 186 of 254 caught quiet (252), 53 of 55
    beside the neighbours (55). Live on the models, in 4 rounds beside the estimate's rule
    against the same baselines: 1 of 88 false REGRESSIONs quiet against 3 of 44, 1 of 44 beside
    the neighbours against 12 of 44."""
    sensitivity = MODEL_SENSITIVITY if model else 1.0
    in_test_processes = now is not None and now.in_test_processes
    compared = _beside_host(then, now, policy)
    if compared is None:
        return False, ""
    host, reading = compared
    beyond = _beyond(change, host, sensitivity, spread=in_test_processes)
    # The host's slowdown that may explain the change: a reading the test's own processes took
    # shares their state, so the upper end of its interval may, where its estimate does not.
    by_estimate = host.significant_slowdown and not _still(
        status, _beyond(change, host, sensitivity, spread=False), policy
    )
    by_interval = in_test_processes and (
        host.significant_slowdown or host.high >= policy.threshold * COUNTS_FROM
    )
    if not (by_estimate or by_interval) or _still(status, beyond, policy):
        return False, (
            f"the host ran {host.estimate:+.1%} against the recording ({reading}), which does "
            "not explain it"
        )
    explaining = host.estimate if by_estimate else host.high
    ran = (
        f"{host.estimate:.1%} slower than while recording"
        if host.estimate > 0
        else f"{host.estimate:+.1%} against the recording"
    )
    # A model's words say how far beyond the host's own ratio its slowdown was explained.
    model_words = (
        f", which explains a slowdown of the model of up to "
        f"{(1.0 + explaining) ** sensitivity - 1.0:+.1%} (a model streams its weights through "
        "memory and may slow by the host's ratio squared)"
        if model
        else ""
    )
    interval_words = (
        "" if by_estimate else "; the test's processes may have run at the slow end of the reading"
    )
    return True, (
        f"the host ran {ran} ({reading}){model_words}{interval_words}: "
        f"beyond that the change is {beyond.estimate:+.1%} ({beyond.confidence:.0%} CI "
        f"{format_interval(beyond.low, beyond.high)}); run again on a quiet host, or gate with "
        "--edgetpu-against"
    )


def _still(status: Status, beyond: Shift, policy: Policy) -> bool:
    """Whether the change beyond the host's is still ``status``, or a regression."""
    return decide(beyond, policy.threshold)[0] in (Status.REGRESSION, status)


def host_hides(
    status: Status,
    change: Shift,
    policy: Policy,
    then: HostReading | None,
    now: HostReading | None,
) -> tuple[bool, str]:
    """Whether a host faster than while recording explains an ``IMPROVED`` (re-recording would
    bake its fast moment into the baseline), and what it may hide ("" where the reading does
    not say so): a slowdown of up to ``(1 + counting point) / (1 + host's change) - 1`` reads
    below the counting point; said where that reaches the threshold.

    Never counted against the code: a workload need not speed up as the reference does (one
    that waits on a sleep, a syscall or a device not at all), so its unchanged code would read
    slower beyond the host's speed-up. Counted for callables from 26324a4 to 2026-12-08, judged
    by the end of the reading's interval nearest no change: unchanged ``nms_python`` read a
    confirmed REGRESSION of +8.3% (95% CI +0.3..+12.4%) beyond a host 18.6% faster (-20.0..-14.7%)
    in one of three stored gates by hand, its own change -11.9% in the same processes.
    Replayed on the kept results the rule had read none of 92 unchanged and 14 of 30 hidden +10%
    slowdowns (``host_rule_replay.py``' third table): a hidden slowdown is said, and relative
    mode (``--edgetpu-against``) sees it beside the revision."""
    compared = _beside_host(then, now, policy)
    if compared is None:
        return False, ""
    host, reading = compared
    if not host.significant_speedup:
        return False, ""
    beyond = _beyond(change, host, 1.0, spread=False)
    sped_up = status is Status.IMPROVED and decide(beyond, policy.threshold)[0] is not status
    counted = policy.threshold * COUNTS_FROM
    hidden = (1.0 + counted) / (1.0 + host.estimate) - 1.0
    if hidden < policy.threshold and not sped_up:
        return False, ""
    return sped_up, (
        f"the host ran {-host.estimate:.1%} faster than while recording ({reading}): a slowdown "
        f"of up to {hidden:+.1%} reads as less than {counted:+.1%} here, and beyond the host's "
        f"speed-up the change is {beyond.estimate:+.1%} ({beyond.confidence:.0%} CI "
        f"{format_interval(beyond.low, beyond.high)}); gate with --edgetpu-against to tell"
    )


def _beside_host(
    then: HostReading | None, now: HostReading | None, policy: Policy
) -> tuple[Shift, str] | None:
    """The host's change since the recording and the reading's words, where both readings are
    of one kernel."""
    if then is None or now is None or then.kernel != now.kernel:
        return None
    host = shift(then.values_ms, now.values_ms, policy.confidence)
    return host, f"{host.confidence:.0%} CI {format_interval(host.low, host.high)}; {now.words}"


def _beyond(change: Shift, host: Shift, sensitivity: float, *, spread: bool) -> Shift:
    """``change`` beyond the host's ratio to the power ``sensitivity``; with ``spread``, its
    interval beyond the host's interval (its lower end beyond the host's upper end)."""

    def beyond_host(value: float, host_change: float) -> float:
        return (1.0 + value) / math.pow(1.0 + host_change, sensitivity) - 1.0

    return Shift(
        estimate=beyond_host(change.estimate, host.estimate),
        low=beyond_host(change.low, host.high if spread else host.estimate),
        high=beyond_host(change.high, host.low if spread else host.estimate),
        confidence=change.confidence,
    )
