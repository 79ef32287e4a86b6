"""pytest-xdist: one worker per device, exclusive leases, results merged by the controller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import (
    RECORDING_UPDATE,
    assert_clean,
    single_bench_file,
)

from pytest_edgetpu.device.leases import acquire
from pytest_edgetpu.model.examples import write_conv_model

TWO_CPUS = "--edgetpu-device=cpu:0,cpu:1"


def two_tests(first: str = "models/tiny_conv.tflite", body: str = "") -> str:
    return f"""
import os
import pytest

@pytest.mark.tpu_bench(model="{first}")
def test_one(tpu_bench):
    tpu_bench()

@pytest.mark.tpu_bench(model="models/tiny_dense.tflite")
def test_two(tpu_bench):
    tpu_bench()
{body}
"""


def test_two_workers_hold_two_devices_and_the_controller_writes(project: pytest.Pytester) -> None:
    project.makepyfile(test_bench=two_tests())
    result = project.runpytest(
        "-n", "2", TWO_CPUS, *RECORDING_UPDATE, "--edgetpu-json=results.json"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["edgetpu: baselines written to baselines/cpu-*.json"])
    document = json.loads((project.path / "results.json").read_text())
    assert sorted(r["device"] for r in document["results"]) == ["cpu:0", "cpu:1"]
    (path,) = (project.path / "baselines").glob("*.json")
    entries = json.loads(path.read_text())["entries"]
    assert sorted(entries) == ["test_bench.py::test_one", "test_bench.py::test_two"]
    assert {e["workers"] for e in entries.values()} == {2}
    # A gate under the same concurrency compares; a serial one is incomparable, never wrong.
    gated = project.runpytest("-n", "2", TWO_CPUS, "--edgetpu", "--edgetpu-threshold=60%")
    gated.assert_outcomes(passed=2)
    # Compared (a noisy second on the shared host may make it UNSTABLE or BUSY, never
    # INCOMPARABLE).
    gated.stdout.re_match_lines([r".*test_one .* (PASS|UNSTABLE|IMPROVED|BUSY)$"])
    serial = project.runpytest("--edgetpu", TWO_CPUS)
    serial.stdout.fnmatch_lines(
        [
            "test_bench.py::test_one: INCOMPARABLE p50 * ms on cpu (*): baselines exist only for"
            " other device profiles: cpu-*-litert-2-workers (recorded with -n 2); never compared"
            " with cpu-*-litert; record one for this device with --edgetpu-update-baselines"
        ]
    )


def test_the_controller_never_imports_numpy_or_the_measuring_engine(
    project: pytest.Pytester,
) -> None:
    # On a host with as many cores as workers, every import of the controller's takes CPU
    # time from a worker starting or measuring; it gathers results, it measures nothing.
    project.makeconftest(
        """
import os
import sys

HEAVY = ("numpy", "tflite", "pytest_edgetpu.engine.session", "pytest_edgetpu.engine.station")

def pytest_configure_node(node):
    print("before worker", node.gateway.id, [m for m in HEAVY if m in sys.modules])

def pytest_unconfigure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        print("controller at the end", [m for m in HEAVY if m in sys.modules])
"""
    )
    project.makepyfile(test_bench=two_tests())
    json_path = project.path / "results.json"
    result = project.runpytest_subprocess(
        "-n", "2", TWO_CPUS, "--edgetpu", "-s", f"--edgetpu-json={json_path}"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["before worker gw0 []", "before worker gw1 []", "controller at the end []"]
    )
    assert json_path.is_file()


def test_serial_and_parallel_baselines_live_side_by_side(project: pytest.Pytester) -> None:
    project.makepyfile(test_bench=two_tests())
    project.runpytest(*RECORDING_UPDATE, TWO_CPUS).assert_outcomes(passed=2)
    project.runpytest("-n", "2", TWO_CPUS, *RECORDING_UPDATE).assert_outcomes(passed=2)
    files = sorted(p.name for p in (project.path / "baselines").glob("*.json"))
    assert len(files) == 2 and files[0] == files[1].replace(".json", "-2-workers.json")
    for args in ([], ["-n", "2"]):
        gated = project.runpytest("--edgetpu", TWO_CPUS, "--edgetpu-threshold=60%", *args)
        gated.assert_outcomes(passed=2)
        gated.stdout.no_fnmatch_line("*INCOMPARABLE*")
        gated.stdout.no_fnmatch_line("*NO_BASELINE*")


def test_a_regression_fails_its_test_under_xdist(project: pytest.Pytester) -> None:
    write_conv_model(project.path / "models" / "big_conv.tflite", image_size=128, filters=64)
    project.makepyfile(test_bench=two_tests())
    project.runpytest("-n", "2", TWO_CPUS, *RECORDING_UPDATE).assert_outcomes(passed=2)
    project.makepyfile(test_bench=two_tests(first="models/big_conv.tflite"))
    # test_one's model is 10x slower now; test_two's is unchanged, but its neighbour on the
    # other core now streams a larger model through the shared memory: it read up to +25%.
    result = project.runpytest("-n", "2", TWO_CPUS, "--edgetpu", "--edgetpu-threshold=100%")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_bench.py::test_one - Failed: REGRESSION p50 (compared p5) *"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_more_workers_than_devices_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_bench=two_tests())
    result = project.runpytest("-n", "3", TWO_CPUS, "--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: 3 xdist workers but 2 device(s) selected by --edgetpu-device (cpu:0, cpu:1)*"]
    )


def test_n_auto_starts_one_worker_per_device(project: pytest.Pytester) -> None:
    project.makepyfile(test_bench=two_tests())
    result = project.runpytest("-n", "auto", TWO_CPUS, "--edgetpu")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 workers [[]2 items[]]*"])


def test_tx_popen_specs_work(project: pytest.Pytester) -> None:
    project.makepyfile(test_bench=two_tests())
    result = project.runpytest("--tx", "2*popen", "--dist", "load", TWO_CPUS, "--edgetpu")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_one*NO_BASELINE*"])


def test_a_crashed_worker_names_its_device_and_the_rest_finish(project: pytest.Pytester) -> None:
    crash = """
def test_crash(edgetpu, tpu_bench):
    model = edgetpu.load("models/tiny_dense.tflite")
    # libedgetpu aborts the process on a USB transfer error; os.abort() does the same.
    tpu_bench(lambda: os.abort())
"""
    project.makepyfile(test_bench=two_tests(body=crash))
    result = project.runpytest("-n", "2", TWO_CPUS, *RECORDING_UPDATE, "-p", "no:faulthandler")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*worker 'gw*' crashed while running 'test_bench.py::test_crash' on device cpu:*"]
    )
    (path,) = (project.path / "baselines").glob("*.json")
    entries = json.loads(path.read_text())["entries"]
    assert sorted(entries) == ["test_bench.py::test_one", "test_bench.py::test_two"]


def test_a_device_leased_by_another_session_is_refused(
    project: pytest.Pytester, private_lease_dir: Path
) -> None:
    project.makepyfile(test_bench=two_tests())
    lease = acquire("cpu:0", private_lease_dir)
    try:
        busy = project.runpytest("--edgetpu", "--edgetpu-device=cpu:0")
        assert busy.ret == pytest.ExitCode.USAGE_ERROR
        busy.stderr.fnmatch_lines(
            [
                "ERROR: every selected device is in use: cpu:0 is held by another pytest-edgetpu"
                " session (pid *, lease */cpu-0.lock)*"
            ]
        )
        # A serial run given a choice takes the free device.
        free = project.runpytest("--edgetpu", TWO_CPUS, "--edgetpu-json=r.json")
        free.assert_outcomes(passed=2)
        document = json.loads((project.path / "r.json").read_text())
        assert {r["device"] for r in document["results"]} == {"cpu:1"}
    finally:
        lease.release()
    project.runpytest("--edgetpu", "--edgetpu-device=cpu:0").assert_outcomes(passed=2)


# ---------------------------------------------------------------------------------------------
# devices held by another session, under xdist


def test_xdist_against_devices_another_session_holds_is_one_line(
    project: pytest.Pytester, private_lease_dir: Path
) -> None:
    project.makepyfile(test_a=single_bench_file())
    held = [acquire("cpu:0", private_lease_dir), acquire("cpu:1", private_lease_dir)]
    try:
        both = project.runpytest("--edgetpu", "-n", "2", "--edgetpu-device=cpu:0,cpu:1")
        assert both.ret == pytest.ExitCode.USAGE_ERROR
        both.stderr.fnmatch_lines(
            [
                "ERROR: every selected device is in use (cpu:0, cpu:1 held by another"
                " pytest-edgetpu session); wait for it to finish"
            ]
        )
        assert_clean(both)
        held.pop().release()
        one = project.runpytest("--edgetpu", "-n", "2", "--edgetpu-device=cpu:0,cpu:1")
        assert one.ret == pytest.ExitCode.USAGE_ERROR
        one.stderr.fnmatch_lines(
            [
                "ERROR: 2 xdist workers but only 1 of the 2 selected device(s) are free: cpu:0"
                " held by another pytest-edgetpu session; wait for it to finish, or use -n 1"
            ]
        )
        assert_clean(one)
        # -n 1 takes the free device.
        free = project.runpytest("--edgetpu", "-n", "1", "--edgetpu-device=cpu:0,cpu:1")
        free.assert_outcomes(passed=1)
    finally:
        for lease in held:
            lease.release()
