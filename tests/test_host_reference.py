"""Unit tests of pytest_edgetpu.engine.host_reference: the host's reading in fresh processes."""

from __future__ import annotations

import copy
import json
import math
import platform
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from factories import RECORDING_UPDATE, cpu_profile, entry

from pytest_edgetpu.cli import main
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.engine import host_reference
from pytest_edgetpu.engine.host_reference import (
    FRESH_FOR_S,
    HOST_PROCESSES,
    HostReading,
    HostReference,
    kernel_name,
    measure_host,
)
from pytest_edgetpu.judge.baselines import BaselineStore, write_entries
from pytest_edgetpu.judge.gate import Gate


def test_a_reading_is_one_time_per_call_a_process() -> None:
    reading = measure_host(processes=2)
    assert reading is not None
    assert reading.kernel == f"dict-format-1 cpython-{platform.python_version()}"
    assert len(reading.values_ms) == 2
    # The workload takes microseconds a call on any host this runs on.
    assert all(math.isfinite(v) and 1e-4 < v < 10 for v in reading.values_ms)


def test_a_python_that_does_not_start_gives_no_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    assert measure_host(processes=2) is None


@pytest.mark.parametrize(
    "printed", ["print('inf')", "print('-1.0')", "print('fast')", "print(2)", "raise SystemExit(3)"]
)
def test_a_process_that_does_not_say_a_time_gives_no_reading(
    monkeypatch: pytest.MonkeyPatch, printed: str
) -> None:
    monkeypatch.setattr(host_reference, "_SOURCE", printed)
    assert measure_host(processes=2) is None


def test_the_environment_does_not_reach_the_workload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sitecustomize on PYTHONPATH (or PYTHONSTARTUP) would run in the reference's processes.
    (tmp_path / "sitecustomize.py").write_text("raise SystemExit('injected')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert measure_host(processes=1) is not None


def test_a_reading_is_reused_until_it_is_stale() -> None:
    now = [0.0]
    readings = iter(HostReading("k", (float(i), float(i))) for i in range(1, 10))
    reference = HostReference(measure=lambda: next(readings), clock=lambda: now[0])
    first = reference.reading()
    now[0] = FRESH_FOR_S
    assert reference.reading() is first
    now[0] = FRESH_FOR_S + 1
    assert reference.reading() == HostReading("k", (2.0, 2.0))


def test_a_failed_reading_is_not_tried_again_at_once() -> None:
    calls = []

    def failing() -> HostReading | None:
        calls.append(1)
        return None

    reference = HostReference(measure=failing, clock=lambda: 5.0)
    assert reference.reading() is None and reference.reading() is None
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("processes", "in_test_processes", "where", "other_way"),
    [
        ("fresh", True, r"a reference workload in the test's \d processes", "BUSY"),
        ("one", False, r"a reference workload in 5 fresh processes", "REGRESSION"),
    ],
    ids=["in the test's processes", "in processes of its own"],
)
def test_a_stored_gate_tells_a_slower_host_from_slower_code(
    project: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
    processes: str,
    in_test_processes: bool,
    where: str,
    other_way: str,
) -> None:
    project.makepyfile(
        test_small="def test_sum(tpu_bench):\n    tpu_bench(lambda: sum(range(300)))\n"
    )
    selected = (
        "test_small.py",
        "-p",
        "no:randomly",
        "--edgetpu",
        "--edgetpu-json=out.json",
        f"--edgetpu-processes={processes}",
    )
    project.runpytest(*selected, *RECORDING_UPDATE).assert_outcomes(passed=1)
    path = next((project.path / "baselines").glob("*.json"))
    recorded = json.loads(path.read_text())
    entry = recorded["entries"]["test_small.py::test_sum"]
    reading = entry["host_reference"]
    assert reading["kernel"] == kernel_name(in_test_processes=in_test_processes)
    # One value a process: the test's own processes, or the reading's.
    assert len(reading["values_ms"]) == (
        entry["processes"] if in_test_processes else HOST_PROCESSES
    )

    def gate(
        host_factor: float, kernel: str = reading["kernel"], test_factor: float = 0.5
    ) -> tuple[pytest.RunResult, dict[str, object]]:
        # The test ran ``test_factor`` times as long when it was recorded (half by default),
        # and the host ran its reference workload ``host_factor`` times as long as it does now
        # (a quarter: the host reads four times as slow now, far more than the test, whatever
        # this host's noise).
        document = copy.deepcopy(recorded)
        entry = document["entries"]["test_small.py::test_sum"]
        entry["instance_values_ms"] = [v * test_factor for v in entry["instance_values_ms"]]
        entry["summary_ms"] = {
            k: v if k == "n" else v * test_factor for k, v in entry["summary_ms"].items()
        }
        entry["host_reference"]["values_ms"] = [v * host_factor for v in reading["values_ms"]]
        entry["host_reference"]["kernel"] = kernel
        path.write_text(json.dumps(document))
        run = project.runpytest(*selected)
        verdict = json.loads((project.path / "out.json").read_text())["results"][0]["verdict"]
        return run, verdict

    busy, verdict = gate(host_factor=0.25)
    busy.assert_outcomes(passed=1)
    assert verdict["status"] == "BUSY"
    assert re.search(
        r"the host ran \d+\.\d% slower than while recording \(95% CI [^)]*; "
        + where
        + r"\)(; the test's processes may have run at the slow end of the reading)?: beyond "
        r"that the change is ",
        str(verdict["message"]),
    ), verdict["message"]
    # In the test's processes, the suspected slowdown was measured again before the host's
    # reading judged it (a slower moment of the host may have passed by then), though its first
    # processes had timed the reference already; a reading of its own is taken for the
    # suspected slowdown, and judges it at once.
    confirmed_first = "not confirmed by a second one" in str(verdict["message"])
    assert confirmed_first or not in_test_processes, verdict["message"]
    # The results keep the reading it was judged beside: judged again, it is the same verdict.
    capsys.readouterr()
    assert main(["compare", "out.json"]) == 0
    assert "BUSY" in capsys.readouterr().out
    failed, verdict = gate(host_factor=1.0)
    failed.assert_outcomes(failed=1)
    assert verdict["status"] == "REGRESSION"
    # The reading taken for the suspected slowdown is named: the host was not what slowed it.
    assert re.search(
        r"the host ran [-+]\d+\.\d% against the recording \(95% CI [^)]*; " + where + r"\), "
        r"which does not explain it",
        str(verdict["message"]),
    ), verdict["message"]
    capsys.readouterr()
    assert main(["compare", "out.json"]) == 1
    assert "which does not explain it" in capsys.readouterr().out
    # A reading another Python took is not compared with this one.
    other, verdict = gate(host_factor=0.25, kernel="dict-format-1 cpython-2.7.18")
    other.assert_outcomes(failed=1)
    assert verdict["status"] == "REGRESSION"
    assert "the host ran" not in str(verdict["message"])
    # An entry's reading taken the other way is judged beside one taken that way, where this
    # run can take it: in fresh interpreters of its own, yes (entries recorded before readings
    # were taken in the test's processes); in the test's processes, not where it has none.
    _, verdict = gate(host_factor=0.25, kernel=kernel_name(in_test_processes=not in_test_processes))
    assert verdict["status"] == other_way

    def says_what_it_may_hide(message: object, beyond_sign: str) -> bool:
        return bool(
            re.search(
                r"the host ran \d+\.\d% faster than while recording \(95% CI [^)]*; "
                + where
                + r"\): a slowdown of up to \+\d+\.\d% reads as less than \+4\.0% here, and "
                r"beyond the host's speed-up the change is " + beyond_sign + r"\d+\.\d% \(95% "
                r"CI [^)]*\); gate with --edgetpu-against",
                str(message),
            )
        )

    # The host a fifth faster than while recording, the test a third faster (far beyond any
    # process's offset or the host's two speeds, so faster beyond the host's speed-up too): a
    # slowdown could hide behind the speed-up, and a gate whose processes read the host says
    # how large (one measured in this process takes no reading where nothing is suspected).
    passed, verdict = gate(host_factor=1.25, test_factor=1.5)
    passed.assert_outcomes(passed=1)
    assert verdict["status"] in ("PASS", "IMPROVED")
    hides = says_what_it_may_hide(verdict["message"], "[-+]")
    assert hides is in_test_processes, verdict["message"]
    # The host four times as fast, the test only a third faster: beyond the host's speed-up the
    # callable is more than twice as slow, yet a faster host never fails the code (a workload
    # need not speed up as the reference does); the gate says what the speed-up may hide.
    hid, verdict = gate(host_factor=4.0, test_factor=1.5)
    hid.assert_outcomes(passed=1)
    assert verdict["status"] == ("PASS" if in_test_processes else "IMPROVED"), verdict["message"]
    hides = says_what_it_may_hide(verdict["message"], r"\+")
    assert hides is in_test_processes, verdict["message"]


class ProfileStation:
    """A test double of the station: the profile its lookups use, nothing else."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile


@pytest.mark.parametrize(
    ("update", "key", "recorded_in_test_processes", "reads"),
    [
        (True, "t.py::test_a", False, True),  # an update records the reading
        (False, "t.py::test_a", True, True),  # a gate against an entry that recorded one so
        (False, "t.py::test_a", False, False),  # that entry's reading was taken in its own
        (False, "t.py::test_new", True, False),  # no entry: nothing to compare a reading with
    ],
)
def test_the_test_s_processes_time_the_reference_only_where_a_verdict_can_use_it(
    tmp_path: Path, update: bool, key: str, recorded_in_test_processes: bool, reads: bool
) -> None:
    profile = cpu_profile()
    reading = HostReading(kernel_name(in_test_processes=recorded_in_test_processes), (0.03, 0.03))
    write_entries(tmp_path, profile, {"t.py::test_a": replace(entry(1.0), host_reference=reading)})
    gate = Gate(
        ProfileStation(profile),  # type: ignore[arg-type]
        BaselineStore(tmp_path, "--edgetpu-baseline-dir"),
        strict=False,
        update=update,
        accept_unstable=False,
        display=lambda path: path,
        host=HostReference(measure=lambda: None),
    )
    assert gate.reads_host_in_processes(key) is reads
    # Where the device is not the host's CPU, never.
    gate.host = None
    assert not gate.reads_host_in_processes(key)
