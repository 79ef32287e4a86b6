"""The typed result and its one JSON schema: what a worker sends and a results file holds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from factories import PROFILE, PROFILE_FIELDS, USB_PROFILE, entry, result, summary

from pytest_edgetpu.core.errors import BaselineError, ResultsError
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.engine.against import Against, NotCompared
from pytest_edgetpu.judge.baselines import parse_entry
from pytest_edgetpu.judge.results import ModelFacts, ModelRef, Result, TimedResult, current_of
from pytest_edgetpu.judge.results_file import ResultsFile, load_results, read_result, result_json
from pytest_edgetpu.report.render import markdown_report

JUDGED = result(
    "t.py::test_a", "REGRESSION", 1.84, baseline=0.504, change=(2.846, 2.56, 3.127), confirmed=True
)


@pytest.mark.parametrize(
    "original",
    [
        JUDGED,
        result("t.py::test_new", "NO_BASELINE", 12.3, recorded=True, run_queue_wait=None),
        result("t.py::test_smoke", "PASS", 0.5, timed=False),
        replace(
            JUDGED,
            model=ModelFacts(
                "a.tflite, b.tflite", "ab" * 32, 1, 8, True, (ModelRef("a.tflite", "cd" * 32),)
            ),
            record_error="cannot write baselines/x.json: No space left on device",
            stop_reason="max_time 1.5 s reached",
            elapsed_s=1.6,
        ),
    ],
    ids=["regression", "new", "untimed", "callable"],
)
def test_a_result_reads_back_as_it_was_written(original: Result) -> None:
    text = json.dumps(result_json(original))  # what crosses the file or the xdist boundary
    again = read_result(json.loads(text), "r.json", 0)
    assert result_json(again) == result_json(original)
    assert type(again) is type(original)
    if isinstance(original, TimedResult) and isinstance(again, TimedResult):
        # The message follows from the fields read.
        assert again.verdict.message == original.verdict.message


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ({"timed": "yes"}, "r.json: result 3 has a 'timed' of the wrong type"),
        ({"metric": "p42"}, "r.json: result 3 has a 'metric' of the wrong type"),
        ({"summary_ms": {"p50": 1.0}}, "r.json: result 3 summary_ms has no 'n'"),
        ({"verdict": {"status": "WORSE"}}, "r.json: result 3 verdict has a 'status' of the wrong"),
        ({"instance_values_ms": [1.0]}, "t.py::test_a has no usable instance_values_ms"),
        ({"baseline_entry": {"metric": "p50"}}, "entry 't.py::test_a' has no 'instance_values"),
        (
            {"run_queue_wait": 1.5},
            "result 3 has a 'run_queue_wait' that is not a share from 0 to 1",
        ),
    ],
)
def test_a_damaged_result_is_one_line_naming_the_field(
    damage: dict[str, object], words: str
) -> None:
    with pytest.raises(ResultsError) as caught:
        read_result({**result_json(JUDGED), **damage}, "r.json", 3)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_compare_judges_a_results_file_with_its_run_queue_wait() -> None:
    # `pytest-edgetpu compare` gives a results file's wait to the verdict, as a pytest run does.
    current = current_of(replace(JUDGED, run_queue_wait=0.4))
    assert (current.value_ms, current.wait_share) == (1.84, 0.4)


def test_a_baseline_entry_keeps_its_run_queue_wait() -> None:
    contended = replace(entry(1.0), run_queue_wait=0.123456)
    written = contended.to_json()
    assert written["run_queue_wait"] == 0.1235
    assert parse_entry("b.json", "t", written).run_queue_wait == 0.1235
    # An entry that measured none writes none: files of earlier versions read and write alike.
    assert "run_queue_wait" not in entry(1.0).to_json()
    for bad in (1.5, -0.1, True, "0.1"):
        with pytest.raises(BaselineError, match="run_queue_wait that is not a share from 0 to 1"):
            parse_entry("b.json", "t", {**written, "run_queue_wait": bad})


# ---------------------------------------------------------------------------------------------
# golden files: what a run writes, byte for byte

GOLDEN_RESULTS = Path(__file__).parent / "golden" / "results_v1.json"
GOLDEN_REPORT = Path(__file__).parent / "golden" / "report_v1.md"
CREATED = "2026-12-06T00:00:00+00:00"
GOLDEN_PROFILES = {
    PROFILE: Profile(PROFILE_FIELDS),
    USB_PROFILE: Profile(
        {
            "device": "edgetpu-usb",
            "link": "usb5000",
            "arch": "x86_64",
            "libedgetpu": "direct",
            "runtime": "litert",
        }
    ),
}


def golden_results() -> tuple[Result, ...]:
    """Every kind of result: a confirmed regression, a new benchmark recorded, a smoke run, an
    Edge TPU pass, a relative-mode pass and a benchmark new since the revision."""
    relative = result("t.py::test_rel", "PASS", 1.0, baseline=1.0, change=(0.002, -0.004, 0.006))
    memory = {
        "load_rss": 100.0,
        "load_anon": 50.0,
        "allocate_rss": 20.0,
        "allocate_anon": 10.0,
        "invoke_rss": 10.0,
        "invoke_anon": 5.0,
        "peak_rss": 130.0,
    }
    return (
        JUDGED,
        result("t.py::test_new", "NO_BASELINE", 12.3, recorded=True, run_queue_wait=None),
        result("t.py::test_smoke", "PASS", 0.5, timed=False),
        result(
            "t.py::test_b", "PASS", 0.2, baseline=0.2, change=(0.001, -0.01, 0.012), device="usb:0"
        ),
        replace(
            relative,
            against=Against(
                "HEAD (a1b2c3d)",
                "HEAD:models/a.tflite",
                summary=summary(1.0),
                instance_values_ms=(1.0, 1.01, 0.99),
                model_sha256="ab" * 32,
                memory_kib=memory,
            ),
        ),
        replace(
            result("t.py::test_gone", "NO_BASELINE", 2.0),
            against=NotCompared(
                "HEAD (a1b2c3d)", "HEAD:t.py::test_gone", "new since HEAD (a1b2c3d): no t.py there"
            ),
        ),
    )


def test_a_results_file_matches_the_golden_file() -> None:
    document = json.loads(
        ResultsFile(golden_results(), {"python": "3.11.7"}, GOLDEN_PROFILES).dumps()
    )
    document["created"] = CREATED  # the one field that is the moment of writing
    assert json.dumps(document, indent=2, sort_keys=True) + "\n" == GOLDEN_RESULTS.read_text()


def test_the_golden_results_file_reads_back_as_written() -> None:
    read = load_results(GOLDEN_RESULTS)
    assert [result_json(r) for r in read.results] == [result_json(r) for r in golden_results()]
    assert dict(read.profiles) == GOLDEN_PROFILES


def test_the_markdown_report_matches_the_golden_file() -> None:
    report = markdown_report(golden_results(), {"python": "3.11.7"}, GOLDEN_PROFILES)
    assert report == GOLDEN_REPORT.read_text()
