"""Reports: the Markdown report, JUnit properties, progress lines, update lines and plots.

Rendering is tested on fixed records, with the exact text; the pytester runs check that each
output reaches its consumer (the report file, the job summary, the JUnit XML, the terminal,
the plot folder) from a real run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import pytest
from factories import (
    BASELINE_FILE,
    CPU_WORDS,
    PROFILE,
    PROFILE_FIELDS,
    RECORDING_UPDATE,
    TIMEOUT_S,
    USB_PROFILE,
    USB_WORDS,
    assert_clean,
    commit_everything,
    entry,
    needs_git,
    record,
    result,
    single_bench_file,
)

from pytest_edgetpu.cli import main
from pytest_edgetpu.core import jsonio
from pytest_edgetpu.core.errors import (
    ConfigError,
)
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.judge.baselines import BaselineEntry, dumps, write_entries
from pytest_edgetpu.judge.verdict import Status, format_ms
from pytest_edgetpu.model.examples import write_conv_model
from pytest_edgetpu.options import OPTIONS
from pytest_edgetpu.report.junit import junit_properties
from pytest_edgetpu.report.plots import check_matplotlib, write_plots
from pytest_edgetpu.report.render import (
    UNREAD_WAIT,
    kept_line,
    markdown_report,
    progress_line,
    summary_table,
    update_headline,
    update_line,
)
from pytest_edgetpu.report.table import text_table

REGRESSION = result(
    "test_a.py::test_big",
    "REGRESSION",
    1.84,
    baseline=0.504,
    change=(2.846, 2.56, 3.127),
    confirmed=True,
)
PASSED = result("test_a.py::test_small", "PASS", 0.5, baseline=0.498, change=(0.004, -0.01, 0.02))
NEW = result("test_a.py::test_new", "NO_BASELINE", 12.34)
ON_USB = result(
    "test_a.py::test_small",
    "IMPROVED",
    0.0412,
    device="usb:0",
    baseline=0.05,
    change=(-0.176, -0.2, -0.15),
)


def test_summary_table_exact_content() -> None:
    assert summary_table([PASSED, NEW, REGRESSION]).splitlines() == [
        "test                   device  compared ms (baseline -> now)  change (95% CI)       "
        "     pooled p50 ms  pooled p90 ms  pooled p99 ms    n  CPU wait  verdict",
        "test_a.py::test_big    cpu:0   p5 0.504 -> 1.94               +284.6% (+256.0..+312."
        "7%)           1.84           2.21           2.76  400        2%  REGRESSION",
        "test_a.py::test_new    cpu:0                                                        "
        "              12.3           14.8           18.5  400        2%  NO_BASELINE",
        "test_a.py::test_small  cpu:0   p5 0.498 -> 0.500              +0.4% (-1.0..+2.0%)   "
        "             0.500          0.600          0.750  400        2%  PASS",
    ]


def test_a_blank_cpu_wait_is_explained_under_the_table() -> None:
    unread = replace(PASSED, run_queue_wait=None)
    lines = summary_table([unread, NEW]).splitlines()
    (passed,) = [line for line in lines if line.endswith("PASS")]
    assert passed.split()[-2:] == ["400", "PASS"]  # the cell is blank
    assert lines[-1] == UNREAD_WAIT
    assert UNREAD_WAIT.startswith("CPU wait blank: the kernel keeps no /proc/thread-self/")
    assert UNREAD_WAIT not in summary_table([PASSED, NEW])


def test_a_table_wider_than_its_terminal_leaves_out_columns_and_names_them() -> None:
    lines = summary_table([PASSED, NEW, REGRESSION], width=120).splitlines()
    assert lines[0].split()[:3] == ["test", "device", "compared"]
    assert lines[0].endswith("pooled p50 ms  verdict")
    assert all(len(line) <= 120 for line in lines)
    assert lines[-1] == (
        "(left out for a 120-column terminal: pooled p99 ms, pooled p90 ms, n, CPU wait; "
        "--edgetpu-json has all)"
    )
    assert summary_table([PASSED], width=400) == summary_table([PASSED])


WIDE_TERMINAL = """
def pytest_sessionstart(session):
    # A test double for a person's terminal: pytester's output is no tty.
    session.config.pluginmanager.get_plugin("terminalreporter").isatty = lambda: True
"""


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "log"])
def test_a_long_verdict_wraps_on_a_terminal_and_stays_one_line_in_a_log(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tty: bool
) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    if tty:
        project.makeconftest(WIDE_TERMINAL)
    project.makepyfile(test_a="def test_a(tpu_bench):\n    tpu_bench(lambda: None)\n")
    result = project.runpytest("--edgetpu", "-p", "no:randomly")
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("test_a.py::test_a: "))
    if tty:
        assert all(len(line) <= 90 for line in lines[start : start + 3])
        # Where the wrap falls moves with the measured figure's digits.
        wrapped = " ".join(line.strip() for line in lines[start:])
        assert lines[start + 1].startswith("    ") and "no baseline" in wrapped
    else:
        assert len(lines[start]) > 90 and "no baseline in baselines/" in lines[start]


def test_text_table_aligns_numbers_right_and_words_left() -> None:
    rows = [{"name": "a", "n": 3, "note": ""}, {"name": "longer", "n": 12, "note": "-1.5%"}]
    assert text_table(rows) == "name     n   note\na        3\nlonger  12  -1.5%"
    assert text_table([]) == ""


def test_markdown_report_exact_content() -> None:
    environment = {"python": "3.11.7", "runtime_version": "2.3.0", "workers": "1"}
    profiles = {
        PROFILE: Profile(PROFILE_FIELDS),
        USB_PROFILE: Profile({"device": "edgetpu-usb", "link": "usb5000", "runtime": "litert"}),
    }
    text = markdown_report([PASSED, NEW, ON_USB, REGRESSION], environment, profiles)
    h = (
        "| test | compared ms (baseline -> now) | change (95% CI) | pooled p50 ms | pooled p90 ms "
        "| pooled p99 ms | CPU wait | verdict |"
    )
    rule = "|:---|:---|:---|---:|---:|---:|---:|:---|"
    assert text == "\n".join(
        [
            "## pytest-edgetpu latency gate",
            "",
            "**1 regressed, 1 improved, 1 unchanged, 1 new**",
            "",
            f"### `cpu:0`: {CPU_WORDS}",
            "",
            h,
            rule,
            "| `test_a.py::test_big` | p5 0.504 -> 1.94 | +284.6% (+256.0..+312.7%) | 1.84 | 2.21 "
            "| 2.76 | 2% | **REGRESSION** |",
            "| `test_a.py::test_new` |  |  | 12.3 | 14.8 | 18.5 | 2% | NO_BASELINE |",
            "| `test_a.py::test_small` | p5 0.498 -> 0.500 | +0.4% (-1.0..+2.0%) | 0.500 | 0.600 "
            "| 0.750 | 2% | PASS |",
            "",
            "- `test_a.py::test_big`: REGRESSION p50 (compared p5) 0.504 ms -> 1.94 ms "
            "(+284.6%, 95% CI "
            f"+256.0..+312.7%) on {CPU_WORDS}; baseline {BASELINE_FILE} recorded 2026-11-20 "
            "from model sha256 cb27…; compared: the p5 of each side's fastest instances (pooled "
            "p50 0.504 ms -> 1.84 ms)",
            f"- `test_a.py::test_new`: NO_BASELINE p50 12.3 ms on {CPU_WORDS}: no baseline in "
            f"{BASELINE_FILE}; record one with --edgetpu-update-baselines",
            "",
            f"### `usb:0`: {USB_WORDS}",
            "",
            h,
            rule,
            "| `test_a.py::test_small` | p5 0.0500 -> 0.0412 | -17.6% (-20.0..-15.0%) | 0.0412 "
            "| 0.0494 | 0.0618 | 2% | IMPROVED |",
            "",
            "- `test_a.py::test_small`: IMPROVED p50 (compared p5) 0.0500 ms -> 0.0412 ms "
            "(-17.6%, 95% CI "
            f"-20.0..-15.0%) on {USB_WORDS}; baseline {BASELINE_FILE} recorded 2026-11-20 from "
            "model sha256 cb27…; compared: the p5 of each side's fastest instances (pooled p50 "
            "0.0500 ms -> 0.0412 ms)",
            "",
            "<details><summary>Environment and fingerprints</summary>",
            "",
            "Environment:",
            "",
            "- python: 3.11.7",
            "- runtime_version: 2.3.0",
            "- workers: 1",
            "",
            "Device profiles (a baseline is compared only within its profile):",
            "",
            f"- `{PROFILE}`: arch x86_64, cpu_model AMD EPYC, device cpu, runtime litert",
            f"- `{USB_PROFILE}`: device edgetpu-usb, link usb5000, runtime litert",
            "",
            "Fingerprints:",
            "",
            "| test | device | model | sha256 | baseline sha256 | baseline recorded"
            " | baseline file |",
            "|:---|:---|:---|:---|:---|:---|:---|",
            f"| `test_a.py::test_big` | cpu:0 | `models/test_big.tflite` | 3cc6d2ca460a"
            f" | cb273c23ee76 | 2026-11-20 | `{BASELINE_FILE}` |",
            f"| `test_a.py::test_new` | cpu:0 | `models/test_new.tflite` | 3cc6d2ca460a |  |  "
            f"| `{BASELINE_FILE}` |",
            f"| `test_a.py::test_small` | cpu:0 | `models/test_small.tflite` | 3cc6d2ca460a"
            f" | cb273c23ee76 | 2026-11-20 | `{BASELINE_FILE}` |",
            f"| `test_a.py::test_small` | usb:0 | `models/test_small.tflite` | 3cc6d2ca460a"
            f" | cb273c23ee76 | 2026-11-20 | `{BASELINE_FILE}` |",
            "",
            "</details>",
            "",
        ]
    )


def test_markdown_report_names_a_metric_other_than_p50_and_escapes_pipes() -> None:
    tail = result(
        "test_a.py::test_x[a|b]",
        "PASS",
        1.0,
        baseline=2.0,
        change=(0.0, -0.1, 0.1),
        metric="p99",
        recorded=True,
    )
    text = markdown_report([tail], {}, {PROFILE: Profile(PROFILE_FIELDS)})
    assert (
        "| `test_a.py::test_x[a\\|b]` | p99 2.00 -> 2.00 | +0.0% (-10.0..+10.0%) | 1.00 | "
        "1.20 | 1.50 | 2% | PASS, recorded |" in text
    )


def test_markdown_report_without_timed_records() -> None:
    text = markdown_report([], {"python": "3.12.1"}, {})
    assert text == "\n".join(
        [
            "## pytest-edgetpu latency gate",
            "",
            "**0 regressed, 0 improved, 0 unchanged, 0 new**",
            "",
            "<details><summary>Environment and fingerprints</summary>",
            "",
            "Environment:",
            "",
            "- python: 3.12.1",
            "",
            "</details>",
            "",
        ]
    )


def test_junit_properties_of_a_confirmed_regression() -> None:
    assert junit_properties(REGRESSION) == [
        ("edgetpu_verdict", "REGRESSION"),
        ("edgetpu_metric", "p50"),
        ("edgetpu_device", "cpu:0"),
        ("edgetpu_p50_ms", "1.84"),
        ("edgetpu_p90_ms", "2.208"),
        ("edgetpu_p99_ms", "2.76"),
        ("edgetpu_baseline_p50_ms", "0.504"),
        ("edgetpu_compared_figure", "p5"),
        ("edgetpu_compared_baseline_ms", "0.504"),
        ("edgetpu_compared_ms", "1.938"),
        ("edgetpu_change", "+2.8460"),
        ("edgetpu_change_ci_low", "+2.5600"),
        ("edgetpu_change_ci_high", "+3.1270"),
        ("edgetpu_confirmed", "true"),
    ]


def test_junit_properties_without_baseline_and_of_another_metric() -> None:
    assert junit_properties(NEW) == [
        ("edgetpu_verdict", "NO_BASELINE"),
        ("edgetpu_metric", "p50"),
        ("edgetpu_device", "cpu:0"),
        ("edgetpu_p50_ms", "12.34"),
        ("edgetpu_p90_ms", "14.81"),
        ("edgetpu_p99_ms", "18.51"),
        ("edgetpu_confirmed", "false"),
    ]
    mean = result("t.py::t", "PASS", 1.0, baseline=1.0, change=(0.0, -0.01, 0.01), metric="mean")
    names = [name for name, _ in junit_properties(mean)]
    assert names[3:8] == [
        "edgetpu_p50_ms",
        "edgetpu_p90_ms",
        "edgetpu_p99_ms",
        "edgetpu_mean_ms",
        "edgetpu_baseline_mean_ms",
    ]


def test_progress_lines() -> None:
    assert progress_line(REGRESSION) == (
        "p50 1.84 ms, p90 2.21 ms, p99 2.76 ms (n 400): REGRESSION +284.6% (+256.0..+312.7%),"
        " compared p5 0.504 ms -> 1.94 ms, confirmed"
    )
    new = replace(NEW, recorded=True)
    assert (
        progress_line(new) == "p50 12.3 ms, p90 14.8 ms, p99 18.5 ms (n 400): NO_BASELINE; recorded"
    )


def test_update_lines() -> None:
    assert (
        update_line(replace(NEW, recorded=True))
        == "test_a.py::test_new: recorded p50 12.3 ms (new)"
    )
    assert update_line(replace(PASSED, recorded=True)) == (
        "test_a.py::test_small: recorded p50 0.500 ms (compared p5 0.498 ms -> 0.500 ms, +0.4%: "
        "unchanged within the threshold; pooled p50 was 0.498 ms)"
    )
    assert update_line(
        replace(PASSED, recorded=True, verdict=replace(PASSED.verdict, status=Status.MODEL_CHANGED))
    ) == (
        "test_a.py::test_small: recorded p50 0.500 ms (compared p5 0.498 ms -> 0.500 ms, +0.4%: "
        "model changed, latency unchanged within the threshold; pooled p50 was 0.498 ms)"
    )
    unstable = result("t.py::t", "UNSTABLE", 0.6, baseline=0.5, change=(0.2, -0.05, 0.5))
    assert update_line(unstable) == (
        "t.py::t: not recorded: p50 0.600 ms is UNSTABLE against the baseline (compared p5 0.500 ms"
        " -> 0.600 ms, +20.0% (-5.0..+50.0%): too noisy to decide); the old entry is kept; "
        "measure again, or record it anyway with --edgetpu-accept-unstable"
    )
    assert update_line(replace(unstable, recorded=True)) == (
        "t.py::t: recorded p50 0.600 ms (compared p5 0.500 ms -> 0.600 ms, +20.0%: unstable; pooled"
        " p50 was 0.500 ms)"
    )
    assert kept_line("t.py::gone") == "t.py::gone: kept (not run)"
    assert update_headline([replace(NEW, recorded=True), unstable]) == (
        "1 baseline(s) recorded, 1 not recorded (UNSTABLE or BUSY; --edgetpu-accept-unstable"
        " records them)"
    )
    assert update_headline([replace(NEW, recorded=True)]) == "1 baseline(s) recorded"


def assert_png(path: Path) -> tuple[int, ...]:
    """``path`` is a PNG that matplotlib reads back; returns its pixel array's shape."""
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shape: tuple[int, ...] = matplotlib.image.imread(path).shape
    return shape


def baseline_entry(values: list[float]) -> BaselineEntry:
    return BaselineEntry(
        metric="p50",
        instance_values_ms=tuple(values),
        summary_ms={"n": 400, "min": 0.45, "p50": 0.504, "p90": 0.55, "p99": 0.64, "max": 3.1},
        load_ms=5.0,
        first_inference_ms=1.0,
        num_threads=1,
        workers=1,
        recorded="2026-11-20T09:15:00+00:00",
    )


def test_write_plots_draws_one_png_per_timed_result(tmp_path: Path) -> None:
    untimed = result("test_a.py::test_smoke", "PASS", 0.5, timed=False)
    clash = replace(NEW, test_id="test_a.py/test_new")  # the same file name as test_a.py::test_new
    regression = replace(REGRESSION, compared_entry=baseline_entry([0.48, 0.5, 0.51, 0.52, 0.55]))
    paths = write_plots([regression, NEW, untimed, clash], tmp_path / "plots")
    assert [p.name for p in paths] == [
        "test_a.py_test_big.png",
        "test_a.py_test_new.png",
        "test_a.py_test_new-2.png",
    ]
    for path in paths:
        height, width, _ = assert_png(path)
        assert (width, height) == (850, 600)


def test_missing_matplotlib_is_an_error_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError) as info:
        check_matplotlib()
    assert str(info.value) == (
        "--edgetpu-plot needs matplotlib, which is not installed; install it with: "
        'pip install "pytest-edgetpu[plot]"'
    )


# ---------------------------------------------------------------------------------------------
# End to end


def bench_tests(**models: str) -> str:
    return "import pytest\n" + "".join(
        f"""
@pytest.mark.tpu_bench(model="models/{model}.tflite")
def test_{name}(tpu_bench):
    tpu_bench()
"""
        for name, model in models.items()
    )


def test_a_model_swap_reaches_every_report(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_conv_model(project.path / "models" / "big_conv.tflite", image_size=128, filters=64)
    project.makepyfile(test_swap=bench_tests(swapped="tiny_conv", same="tiny_dense"))
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=2)  # whatever the noise
    project.makepyfile(test_swap=bench_tests(swapped="big_conv", same="tiny_dense"))
    summary = project.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    # A generous threshold: only the swap is meant to regress, whatever the host's noise.
    result = project.runpytest(
        "--edgetpu",
        "-v",
        "--edgetpu-threshold=60%",
        "--edgetpu-report=out/report.md",
        "--edgetpu-plot=out/plots",
        "--junitxml=out/junit.xml",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_swap.py::test_swapped FAILED*",
            "    p50 * ms, p90 * ms, p99 * ms (n *): REGRESSION +*% (+*..+*%), compared p5 * ms"
            " -> * ms, confirmed",
            "test_swap.py::test_same PASSED*",
            "    p50 * ms, p90 * ms, p99 * ms (n *): PASS *% (*..*%), compared p5 * ms -> * ms",
            "edgetpu: report written to out/report.md",
            "edgetpu: 2 plot(s) written to out/plots",
        ]
    )
    report = (project.path / "out" / "report.md").read_text()
    assert summary.read_text() == report
    lines = report.splitlines()
    assert lines[:4] == [
        "## pytest-edgetpu latency gate",
        "",
        # The bigger model's arena is bigger too: its memory verdict fails beside its latency.
        "**1 regressed, 0 improved, 1 unchanged, 0 new, 1 grew in memory**",
        "",
    ]
    pytest.LineMatcher(lines[4:]).fnmatch_lines(
        [
            "- `test_swap.py::test_swapped`: REGRESSION p50 (compared p5) *",
            "- `test_swap.py::test_swapped`: MEMORY *allocate_anon (private memory added by "
            "allocate_tensors) * KiB -> * KiB (+* KiB, +*%; spread over 3 processes * KiB)*",
            "<details><summary>Memory per phase (KiB) and delegation</summary>",
            "",
            "| test | device | load_rss | load_anon | allocate_rss | allocate_anon | invoke_rss |"
            " invoke_anon | peak_rss | largest spread | delegation |",
            "|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|:---|",
            "| `test_swap.py::test_swapped` | cpu:0 | * | * | * | * | * | * | * | * | fully "
            "delegated to XNNPACK (* ops) |",
        ]
    )
    pytest.LineMatcher(lines[4:]).fnmatch_lines(
        [
            "### `cpu:0`: cpu (*, LiteRT *, 1 thread)",
            "",
            "| test | compared ms (baseline -> now) | change (95% CI) | pooled p50 ms | pooled p90"
            " ms | pooled p99 ms | CPU wait | verdict |",
            "|:---|:---|:---|---:|---:|---:|---:|:---|",
            "| `test_swap.py::test_swapped` | * -> * | +*% (+*..+*%) | * | * | * | *% |"
            " **REGRESSION** |",
            "| `test_swap.py::test_same` | * -> * | *% (*..*%) | * | * | * | *% | PASS |",
            "",
            "- `test_swap.py::test_swapped`: REGRESSION p50 (compared p5) * ms -> * ms *; model"
            " changed since the baseline (* -> *); the host ran *% against the recording (*),"
            " which does not explain it; first measurement +*%, confirmed",
            "",
            "<details><summary>Environment and fingerprints</summary>",
            "*",
            "| `test_swap.py::test_same` | cpu:0 | `*/models/tiny_dense.tflite` | * | * |"
            " 20*-*-* | `baselines/cpu-*.json` |",
            "| `test_swap.py::test_swapped` | cpu:0 | `*/models/big_conv.tflite` | * | * |"
            " 20*-*-* | `baselines/cpu-*.json` |",
            "",
            "</details>",
        ]
    )
    properties = {
        case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")]
        for case in ET.parse(project.path / "out" / "junit.xml").iter("testcase")
    }
    swapped = dict(properties["test_swapped"])
    assert list(swapped) == [
        "edgetpu_verdict",
        "edgetpu_metric",
        "edgetpu_device",
        "edgetpu_p50_ms",
        "edgetpu_p90_ms",
        "edgetpu_p99_ms",
        "edgetpu_baseline_p50_ms",
        "edgetpu_compared_figure",
        "edgetpu_compared_baseline_ms",
        "edgetpu_compared_ms",
        "edgetpu_change",
        "edgetpu_change_ci_low",
        "edgetpu_change_ci_high",
        "edgetpu_confirmed",
        "edgetpu_memory_load_rss_kib",
        "edgetpu_memory_load_anon_kib",
        "edgetpu_memory_allocate_rss_kib",
        "edgetpu_memory_allocate_anon_kib",
        "edgetpu_memory_invoke_rss_kib",
        "edgetpu_memory_invoke_anon_kib",
        "edgetpu_memory_peak_rss_kib",
        "edgetpu_memory_verdict",
        "edgetpu_fully_delegated",
    ]
    assert swapped["edgetpu_verdict"] == "REGRESSION" and swapped["edgetpu_confirmed"] == "true"
    assert swapped["edgetpu_memory_verdict"] == "REGRESSION"
    assert float(swapped["edgetpu_change_ci_low"]) > 0.6
    assert float(swapped["edgetpu_p50_ms"]) > float(swapped["edgetpu_baseline_p50_ms"])
    assert dict(properties["test_same"])["edgetpu_verdict"] == "PASS"
    plots = sorted((project.path / "out" / "plots").iterdir())
    assert [p.name for p in plots] == [
        "test_swap.py_test_same.png",
        "test_swap.py_test_swapped.png",
    ]
    for path in plots:
        assert_png(path)


def unstable_baseline(path: Path, test_id: str) -> None:
    """Spread the fastest third of the entry's instance values (what verdicts compare) over 100x
    around 30% of its value: a comparison with it shifts beyond any small threshold but cannot
    tell, so it is UNSTABLE."""
    document = json.loads(path.read_text())
    entry = document["entries"][test_id]
    center = entry["summary_ms"]["p50"] * 0.3
    factors = (0.1, 1, 10, 30, 30, 30, 30, 30, 30)
    # Four significant digits, as the baseline writer rounds: a kept entry reads back equal.
    entry["instance_values_ms"] = [float(f"{center * f:.4g}") for f in factors]
    entry["summary_ms"]["p50"] = float(f"{center:.4g}")
    path.write_text(json.dumps(document))


def test_update_refuses_unstable_entries_and_lists_those_kept(project: pytest.Pytester) -> None:
    project.makepyfile(test_up=bench_tests(conv="tiny_conv", dense="tiny_dense", gone="tiny_dense"))
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=3)  # whatever the noise
    (path,) = (project.path / "baselines").glob("*.json")
    unstable_baseline(path, "test_up.py::test_conv")
    before = json.loads(path.read_text())["entries"]
    # test_gone is deleted: its entry stays, and the update says so.
    project.makepyfile(test_up=bench_tests(conv="tiny_conv", dense="tiny_dense"))
    # A generous threshold: only the doctored entry is meant to be UNSTABLE.
    result = project.runpytest("--edgetpu-update-baselines", "--edgetpu-threshold=60%")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "1 baseline(s) recorded, 1 not recorded (UNSTABLE or BUSY; --edgetpu-accept-unstable"
            " records them)",
            "test_up.py::test_conv: not recorded: p50 * ms is UNSTABLE against the baseline"
            " (compared p5 * ms -> * ms, +*% (-*..+*%): too noisy to decide); the old entry is"
            " kept; measure again, or record it anyway with --edgetpu-accept-unstable",
            "test_up.py::test_dense: recorded p50 * ms (compared p5 * ms -> * ms, *%: *; pooled p50"
            " was * ms)",
            "test_up.py::test_gone: kept (not run)",
            "edgetpu: baselines written to baselines/cpu-*.json",
        ]
    )
    result.stdout.no_fnmatch_line("    p50 *")  # progress lines only with -v
    after = json.loads(path.read_text())["entries"]
    assert after["test_up.py::test_conv"] == before["test_up.py::test_conv"]
    assert after["test_up.py::test_gone"] == before["test_up.py::test_gone"]
    assert after["test_up.py::test_dense"] != before["test_up.py::test_dense"]
    result = project.runpytest(
        "--edgetpu-update-baselines", "--edgetpu-threshold=60%", "--edgetpu-accept-unstable", "-q"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "2 baseline(s) recorded",
            "test_up.py::test_conv: recorded p50 * ms (compared p5 * ms -> * ms, +*%: unstable;"
            " pooled p50 was * ms)",
        ]
    )
    result.stdout.no_fnmatch_line("    p50 *")
    assert (
        json.loads(path.read_text())["entries"]["test_up.py::test_conv"]["summary_ms"]
        != (before["test_up.py::test_conv"]["summary_ms"])
    )


def test_progress_plots_and_properties_under_xdist(project: pytest.Pytester) -> None:
    project.makepyfile(test_par=bench_tests(conv="tiny_conv", dense="tiny_dense"))
    result = project.runpytest(
        "--edgetpu",
        "-n",
        "2",
        "--edgetpu-device=cpu:0,cpu:1",
        "-v",
        "--edgetpu-plot=plots",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["[[]gw?[]] *PASSED test_par.py::test_*", "    p50 * ms, * (n *): NO_BASELINE"]
    )
    assert len(list((project.path / "plots").glob("*.png"))) == 2
    junit = (project.path / "junit.xml").read_text()
    assert junit.count('<property name="edgetpu_verdict" value="NO_BASELINE"') == 2


def test_plot_without_matplotlib_is_a_usage_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    project.makepyfile(test_x=bench_tests(conv="tiny_conv"))
    result = project.runpytest("--edgetpu", "--edgetpu-plot=plots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --edgetpu-plot needs matplotlib, which is not installed; install it with: "
            'pip install "pytest-edgetpu[plot]"'
        ]
    )
    # Without --edgetpu nothing is plotted, so nothing is needed.
    project.runpytest("--edgetpu-plot=plots").assert_outcomes(passed=1)


README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_option_ini_key_and_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = README.read_text(encoding="utf-8")
    options = text.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    for option in OPTIONS:
        if option.cli:
            metavar = f"={option.metavar}" if option.metavar else ""
            assert f"| `{option.flag}{metavar}` | `{option.ini}` |" in options, option.flag
        else:
            assert f"`{option.ini}`" in options, option.ini
    commands = text.split("\n## The `pytest-edgetpu` command\n", 1)[1].split("\n## ", 1)[0]
    with pytest.raises(SystemExit):
        main(["--help"])
    # "usage: pytest-edgetpu [-h] {devices,show,compare,accept,diff} ..."
    names = capsys.readouterr().out.split("{", 1)[1].split("}", 1)[0].split(",")
    assert len(names) >= 5
    for name in names:
        assert f"| `{name}" in commands, name


def test_the_readme_options_are_those_pytest_help_lists(pytester: pytest.Pytester) -> None:
    listed = pytester.runpytest("--help").stdout.str()
    in_help = set(re.findall(r"^\s+(--edgetpu[a-z-]*)", listed, flags=re.MULTILINE))
    options = README.read_text(encoding="utf-8").split("\n## Options\n", 1)[1].split("\n## ")[0]
    in_readme = set(re.findall(r"^\| `(--edgetpu[a-z-]*)", options, flags=re.MULTILINE))
    assert in_help and in_readme == in_help
    ini_help = set(re.findall(r"^\s+(edgetpu[a-z_]*) \(", listed, flags=re.MULTILINE))
    assert ini_help and all(f"`{key}`" in options for key in ini_help)


def test_help_shows_the_report_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--edgetpu-accept-unstable*",
            "*With --edgetpu-update-baselines, also record*",
            "*--edgetpu-plot=DIR*Write a PNG per benchmark to DIR: its latency against*",
            "*edgetpu_plot (string):*",
        ]
    )


# ---------------------------------------------------------------------------------------------
# outputs that would overwrite a baseline, writes that fail, escapes, plots


def test_an_output_into_the_baseline_directory_is_refused(project: pytest.Pytester) -> None:
    path = record(project, "test_a.py::test_a")
    before = path.read_bytes()
    project.makepyfile(test_a=single_bench_file())
    for args in (
        [f"--edgetpu-json={path}"],
        ["--edgetpu-json=baselines/results.json"],
        ["--edgetpu-json=out.md", "--edgetpu-report=out.md"],
    ):
        result = project.runpytest("--edgetpu", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        assert_clean(result)
    result.stderr.fnmatch_lines(
        [
            "ERROR: --edgetpu-report: */out.md is also the path of --edgetpu-json; give each output"
            " a file of its own"
        ]
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_failed_update_write_reports_nothing_as_recorded(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_a=single_bench_file())

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = project.runpytest("--edgetpu-update-baselines", "--edgetpu-report=r.md")
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "RECORDED" not in output
    assert "1 baseline(s) recorded" not in output
    result.stdout.fnmatch_lines(
        [
            "0 baseline(s) recorded, 1 not recorded (the baseline file could not be written)",
            "test_a.py::test_a: not recorded: p50 * ms; its baseline file could not be written"
            " (the ERROR line below says why)",
            "edgetpu: ERROR: cannot write */baselines/cpu-*.json: * No space left on device;*",
        ]
    )


def test_show_escapes_control_characters_of_test_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(tmp_path, Profile({"device": "cpu"}), {"t\x1b]0;pwned\x07\nx": entry(1.0)})
    assert main(["show", "--baseline-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "t\\x1b]0;pwned\\x07\\nx" in out


def test_plots_replace_a_planted_symlink_and_a_failed_write_leaves_no_file(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Imported here, not first inside an in-process run, whose end would unload half of it.
    pytest.importorskip("matplotlib.figure")
    pytest.importorskip("matplotlib.backends.backend_agg")
    project.makepyfile(test_a=single_bench_file())
    plots = project.path / "plots"
    plots.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (plots / "test_a.py_test_a.png").symlink_to(victim)
    result = project.runpytest("--edgetpu", "--edgetpu-plot=plots")
    result.stdout.fnmatch_lines(["edgetpu: 1 plot(s) written to plots"])
    assert victim.read_text() == "precious\n"
    (png,) = plots.iterdir()
    assert not png.is_symlink() and png.read_bytes().startswith(b"\x89PNG")
    png.unlink()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    failed = project.runpytest("--edgetpu", "--edgetpu-plot=plots")
    monkeypatch.undo()
    failed.stdout.fnmatch_lines(
        [f"edgetpu: ERROR: cannot write the plot {plots}/test_a.py_test_a.png: No space left*"]
    )
    assert list(plots.iterdir()) == []


def test_an_output_that_is_a_device_or_fifo_is_refused(
    project: pytest.Pytester, fifo: Path
) -> None:
    project.makepyfile(test_a=single_bench_file())
    for target, kind in ((fifo, "a FIFO (named pipe)"), (Path("/dev/null"), "a character device")):
        result = project.runpytest("--edgetpu", f"--edgetpu-json={target}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --edgetpu-json: {target} is {kind}, not a regular file; give the path of a"
                " file"
            ]
        )


def test_a_fifo_as_the_job_summary_is_one_line_not_a_hang(
    project: pytest.Pytester, fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_a=single_bench_file())
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(fifo))
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [f"edgetpu: ERROR: cannot write {fifo}: it is a FIFO (named pipe), not a regular file"]
    )


@needs_git
def test_diff_sizes_a_revisions_baseline_before_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "cpu.json").write_bytes(b" " * (jsonio.MAX_BYTES + 1))
    commit_everything(tmp_path, "huge")
    (baselines / "cpu.json").write_text(dumps(Profile({"device": "cpu"}), {"t": entry(1.0)}))
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "HEAD"]) == 2
    assert capsys.readouterr().err == (
        f"pytest-edgetpu: error: HEAD:baselines/cpu.json: {jsonio.MAX_BYTES + 1} bytes is too"
        f" large for a baseline file (at most {jsonio.MAX_BYTES})\n"
    )


def test_two_tpu_bench_calls_write_unique_junit_properties(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_two="""
        def test_two(tpu_bench):
            tpu_bench("models/tiny_dense.tflite")
            tpu_bench("models/tiny_conv.tflite")
        """
    )
    project.runpytest("--edgetpu", "--junitxml=j.xml").assert_outcomes(passed=1)
    names = [p.get("name") for p in ElementTree.parse(project.path / "j.xml").iter("property")]
    assert len(names) == len(set(names)) and "edgetpu_verdict" in names
    assert "edgetpu_2_verdict" in names and "edgetpu_2_p50_ms" in names


def test_a_figure_shows_the_same_from_a_run_and_from_its_baseline_file() -> None:
    # 0.23751 is recorded as 0.2375 (four significant digits): both read 0.238.
    assert format_ms(0.23751) == format_ms(0.2375) == "0.238"
    assert format_ms(0.23746) == format_ms(0.2375)
    assert format_ms(1.0) == "1.00" and format_ms(12.34) == "12.3" and format_ms(0.0566) == "0.0566"


def test_the_plot_shows_the_tail() -> None:
    pytest.importorskip("matplotlib.figure")
    from matplotlib.figure import Figure

    from pytest_edgetpu.report.plots import _distribution

    axes = Figure().subplots()
    summary = {"min": 0.1, "p50": 0.11, "p90": 0.12, "p99": 0.15, "max": 2.0}
    _distribution(axes, [0.1] * 21, [("this run", [0.1, 0.11], summary, "C0")])
    assert axes.get_xlim()[1] >= 2.0 and axes.get_xscale() == "log"
