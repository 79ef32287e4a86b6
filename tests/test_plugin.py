"""End-to-end: the user's journey through pytest, with real LiteRT on real (generated) models."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from factories import (
    CALLABLE_TEST,
    RECORDING_UPDATE,
    bench_file,
    record,
    snapshot,
)

from pytest_edgetpu.engine.contention import CONTENDED_SHARE
from pytest_edgetpu.model.examples import write_conv_model


def bench_test(model: str = "models/tiny_conv.tflite", extra: str = "") -> str:
    return f"""
import pytest

@pytest.mark.tpu_bench(model="{model}"{extra})
def test_latency(tpu_bench):
    result = tpu_bench()
    assert result.n >= 1

def test_plain():
    pass
"""


def baseline_files(project: pytest.Pytester) -> list[Path]:
    return sorted((project.path / "baselines").glob("*.json"))


def test_without_edgetpu_a_bench_test_is_an_untimed_smoke_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.tpu_bench(model="models/tiny_conv.tflite")
        def test_latency(tpu_bench):
            result = tpu_bench()
            assert not result.timed and result.n == 1 and result.p50_ms > 0
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*edgetpu latency*")
    assert not (project.path / "baselines").exists()


def test_first_run_without_baseline_passes_with_a_note(project: pytest.Pytester) -> None:
    project.makepyfile(test_latency=bench_test())
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*edgetpu latency*",
            "*test_latency*cpu:0*NO_BASELINE*",
            "*NO_BASELINE p50 * ms on cpu (*LiteRT*1 thread): no baseline in baselines/cpu-*.json;"
            " record one with --edgetpu-update-baselines",
        ]
    )


def test_record_then_gate_passes_and_never_touches_the_baselines(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_latency=bench_test())
    recorded = project.runpytest("--edgetpu", "--edgetpu-update-baselines")
    recorded.assert_outcomes(passed=2)
    recorded.stdout.fnmatch_lines(
        ["*test_latency: recorded p50 * ms (new)", "edgetpu: baselines written to baselines/*"]
    )
    (path,) = baseline_files(project)
    document = json.loads(path.read_text())
    entry = document["entries"]["test_latency.py::test_latency"]
    assert len(entry["instance_values_ms"]) >= 3
    assert entry["model_path"] == "models/tiny_conv.tflite"
    assert 0.0 <= entry["run_queue_wait"] < CONTENDED_SHARE  # measured, and recorded: not busy
    before = path.read_bytes()
    # A generous threshold: this test is about the journey, not about the noise of the host.
    gated = project.runpytest("--edgetpu", "--edgetpu-threshold=60%")
    gated.assert_outcomes(passed=2)
    # Compared with the entry just recorded; a neighbour that slows this shared host for a
    # second can make it UNSTABLE (seen once at +56%), never NO_BASELINE or INCOMPARABLE.
    row = next(line for line in gated.stdout.lines if line.lstrip().startswith("test_latency.py::"))
    assert row.split()[-1] in ("PASS", "UNSTABLE", "IMPROVED", "BUSY"), row
    assert path.read_bytes() == before


def test_a_slower_model_fails_its_test_with_the_numbers(project: pytest.Pytester) -> None:
    write_conv_model(project.path / "models" / "big_conv.tflite", image_size=128, filters=64)
    project.makepyfile(test_latency=bench_test())
    project.runpytest("--edgetpu", "--edgetpu-update-baselines").assert_outcomes(passed=2)
    project.makepyfile(test_latency=bench_test(model="models/big_conv.tflite"))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_latency _*",
            "REGRESSION p50 (compared p5) * ms -> * ms (+*%, 95% CI +*..+*%)"
            " on cpu (*, LiteRT *, 1 thread);"
            " baseline baselines/cpu-*.json recorded 20*-*-* from model sha256 *…;"
            " compared: the p5 of each side's fastest instances (pooled p50 * ms -> * ms);"
            " model changed since the baseline (* -> *);"
            " the host ran *% against the recording (95% CI *; a reference workload in 5 fresh"
            " processes), which does not explain it; first measurement +*%, confirmed*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_gate_stops_once_its_verdict_is_settled_and_confirms_over_longer(
    project: pytest.Pytester,
) -> None:
    write_conv_model(project.path / "models" / "big_conv.tflite", image_size=128, filters=64)
    project.makepyfile(test_latency=bench_test())
    # Long enough for min_instances (8) of this model well inside max_time.
    longer = ("--edgetpu", "-o", "edgetpu_max_time=1")
    recorded = project.runpytest(*longer, *RECORDING_UPDATE, "--edgetpu-json=record.json")
    recorded.assert_outcomes(passed=2)
    (record,) = json.loads((project.path / "record.json").read_text())["results"]
    assert not record["stop_reason"].startswith("settled")  # a recording measures fully

    # Against a wide threshold unchanged code is settled early: nothing could make it count.
    # (A budget that 8 instances fit into even on a busy host: the settled stop ends it sooner.)
    ample = ("--edgetpu", "-o", "edgetpu_max_time=10")
    gated = project.runpytest(*ample, "--edgetpu-threshold=60%", "--edgetpu-json=gate.json")
    gated.assert_outcomes(passed=2)
    (gate,) = json.loads((project.path / "gate.json").read_text())["results"]
    assert gate["stop_reason"].startswith("settled: the change's 95% CI "), gate["stop_reason"]
    assert gate["stop_reason"].endswith("lies within ±48.0%")
    assert len(gate["instance_values_ms"]) >= 8  # the first look comes at min_instances

    # A model four times slower settles at once as a slowdown; its confirmation (the result
    # kept) measures for two thirds of max_time before it may settle so.
    project.makepyfile(test_latency=bench_test(model="models/big_conv.tflite"))
    slower = project.runpytest(*longer, "--edgetpu-json=slower.json")
    slower.assert_outcomes(passed=1, failed=1)
    slower.stdout.fnmatch_lines(
        ["*REGRESSION p50 (compared p5) *first measurement +*%, confirmed*"]
    )
    (confirmation,) = json.loads((project.path / "slower.json").read_text())["results"]
    assert confirmation["elapsed_s"] >= 2 / 3
    reason = confirmation["stop_reason"]
    assert reason.endswith("lies beyond +4.0%") or reason.startswith("max_time"), reason


def test_the_real_mobilenet_swap_is_a_regression(
    project: pytest.Pytester, coral_models: Path
) -> None:
    small = coral_models / "mobilenet_v1_0.25_128_quant.tflite"
    large = coral_models / "mobilenet_v1_0.5_160_quant.tflite"
    project.makepyfile(test_latency=bench_test(model=str(small)))
    project.runpytest("--edgetpu", "--edgetpu-update-baselines").assert_outcomes(passed=2)
    project.makepyfile(test_latency=bench_test(model=str(large)))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*REGRESSION p50 (compared p5) * ms -> * ms (+*%*confirmed*"])


def test_callable_is_measured_over_fresh_instances_of_its_models(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        def test_pipeline(edgetpu, tpu_bench):
            model = edgetpu.load("models/tiny_dense.tflite")
            # Each interpreter kept alive, so that no later one can take its id.
            seen = {}

            def classify():
                seen.setdefault(id(model.interpreter), model.interpreter)
                return model.run()[0].argmax()

            result = tpu_bench(classify)
            assert result.timed
            assert len(seen) == len(result.measurement.instances) >= 3
        """
    )
    project.runpytest("--edgetpu").assert_outcomes(passed=1)


def test_loaded_model_api(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import numpy as np

        def test_model(edgetpu, edgetpu_device):
            assert edgetpu_device.kind == "cpu" and edgetpu_device.id == "cpu:0"
            assert edgetpu_device.runtime.startswith("LiteRT ")
            model = edgetpu.load("models/tiny_conv.tflite")
            assert model.input_details[0]["shape"].tolist() == [1, 64, 64, 3]
            first = model.random_inputs(seed=0)
            assert np.array_equal(first[0], model.random_inputs(seed=0)[0])
            assert not np.array_equal(first[0], model.random_inputs(seed=1)[0])
            (scores,) = model.run()
            assert scores.shape == (1, 10) and abs(float(scores.sum()) - 1.0) < 1e-4
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_tflite_files_named_on_the_command_line_are_benchmarks(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--edgetpu", "models")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*models/tiny_conv.tflite::latency*NO_BASELINE*"])
    # Only paths given explicitly: a bare run (or one without --edgetpu) collects no model.
    project.runpytest("--edgetpu").assert_outcomes()
    project.runpytest("models").assert_outcomes()


def test_a_models_folder_gates_linked_models_and_fails_what_is_no_model_file(
    project: pytest.Pytester,
) -> None:
    # A repository links a model, and a folder of them, from elsewhere by absolute symlinks:
    # each is gated where its link lies. A FIFO, or a link to nothing, is no model pytest
    # would collect (nor is a link to itself): each fails with one line instead of passing
    # the gate without it.
    elsewhere = project.mkdir("elsewhere")
    shutil.copy(project.path / "models" / "tiny_conv.tflite", elsewhere / "shared.tflite")
    (project.path / "models" / "linked.tflite").symlink_to(elsewhere / "shared.tflite")
    (project.path / "models" / "shared").symlink_to(elsewhere, target_is_directory=True)
    (project.path / "models" / "dangling.tflite").symlink_to(project.path / "gone.tflite")
    (project.path / "models" / "loop.tflite").symlink_to("loop.tflite")
    os.mkfifo(project.path / "models" / "pipe.tflite")
    # A folder with an __init__.py is a package to pytest, not a plain folder.
    package = project.mkpydir("models/package")
    os.mkfifo(package / "pipe.tflite")
    result = project.runpytest("--edgetpu", "models")
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines_random(
        [
            "*models/linked.tflite::latency*NO_BASELINE*",
            "*models/shared/shared.tflite::latency*NO_BASELINE*",
            "*model file not found: */models/dangling.tflite (check the model path*",
            "*/models/pipe.tflite is not a TFLite model (it is a FIFO (named pipe), not a "
            "regular file); give the .tflite file*",
            "*/models/package/pipe.tflite is not a TFLite model (it is a FIFO*",
            "*cannot read model file */models/loop.tflite: Too many levels of symbolic links*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    # Ignored as pytest ignores anything; without --edgetpu, no model is collected.
    ignored = project.runpytest(
        "--edgetpu",
        "models",
        "--ignore=models/pipe.tflite",
        "--ignore=models/dangling.tflite",
        "--ignore=models/loop.tflite",
        "--ignore=models/package",
    )
    ignored.assert_outcomes(passed=4)
    project.runpytest("models").assert_outcomes()


def test_edgetpu_model_without_edgetpu_is_skipped_or_fails_when_strict(
    project: pytest.Pytester, coral_models: Path
) -> None:
    # A user's test cannot go on without the latency tpu_bench could not measure: it is
    # skipped, with its model's compile structure gated first (tests/test_compile_gate.py).
    model = coral_models / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    project.makepyfile(test_latency=bench_test(model=str(model)))
    result = project.runpytest("--edgetpu", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED ?1? test_latency.py:*: EDGETPU COMPILE NO_BASELINE *_edgetpu.tflite: 1 Edge "
            "TPU subgraph(s), *; latency not measured: no Edge TPU attached (this run uses cpu:0)"
        ]
    )
    # Without --edgetpu nothing is gated: the smoke run skips it as it always did.
    smoke = project.runpytest("-rs")
    smoke.stdout.fnmatch_lines(["SKIPPED*_edgetpu.tflite is compiled for the Edge TPU*cpu:0*"])
    strict = project.runpytest("--edgetpu", "--edgetpu-strict")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(["*is compiled for the Edge TPU (1 edgetpu-custom-op node(s))*"])


@pytest.mark.parametrize(
    "model", ["models/nope.tflite", "~no-such-user-pytest-edgetpu/nope.tflite"]
)
def test_missing_model_fails_the_test_with_one_line(project: pytest.Pytester, model: str) -> None:
    project.makepyfile(test_latency=bench_test(model=model))
    for args in ((), ("--edgetpu",)):
        result = project.runpytest(*args)
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines([f"*model file not found: */{model}*"])
        result.stdout.no_fnmatch_line("*Traceback*")


def test_unknown_marker_argument_is_a_collection_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_latency=bench_test(extra=", treshold='10%'"))
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*tpu_bench(...) on test_*.py::test_latency: unknown argument 'treshold';"
            " did you mean 'threshold'?*"
        ]
    )


def test_ill_typed_marker_argument_is_a_collection_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_latency=bench_test(extra=", warmup='many'"))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*tpu_bench(warmup=...) on test_*.py::test_latency: 'many' is not a whole number*"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--edgetpu-threshold=abc"],
            "ERROR: --edgetpu-threshold: threshold 'abc' is not a percentage*",
        ),
        (["--edgetpu-device=gpu"], "ERROR: --edgetpu-device: unknown device 'gpu' in 'gpu'*"),
        (
            ["--edgetpu", "--edgetpu-device=usb:0"],
            "ERROR: --edgetpu-device: no USB Edge TPU matches 'usb:0' (attached: none)*"
            "run `pytest-edgetpu devices`*",
        ),
    ],
    ids=["threshold", "device-grammar", "device-absent"],
)
def test_bad_options_are_usage_errors(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    project.makepyfile(test_latency=bench_test())
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_bad_ini_value_names_the_ini_file(project: pytest.Pytester, short_ini: str) -> None:
    project.makeini(short_ini + "edgetpu_threshold = lots\n")
    project.makepyfile(test_latency=bench_test())
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini edgetpu_threshold in *tox.ini: threshold 'lots'*"])


def test_corrupt_baseline_file_stops_the_run_naming_it(project: pytest.Pytester) -> None:
    project.makepyfile(test_latency=bench_test())
    (project.path / "baselines").mkdir()
    (project.path / "baselines" / "cpu-x.json").write_text('{"format": "pytest-edge')
    result = project.runpytest("--edgetpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: */baselines/cpu-x.json is not a readable baseline file*"])
    # The same file stops an update run too: it is never overwritten.
    result = project.runpytest("--edgetpu", "--edgetpu-update-baselines")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (project.path / "baselines" / "cpu-x.json").read_text() == '{"format": "pytest-edge'


def test_json_report_and_junit_outputs(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = project.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.makepyfile(test_latency=bench_test())
    result = project.runpytest(
        "--edgetpu",
        "--edgetpu-json=out/results.json",
        "--edgetpu-report=out/report.md",
        "--junitxml=out/junit.xml",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["edgetpu: results written to out/results.json", "edgetpu: report written to out/report.md"]
    )
    document = json.loads((project.path / "out" / "results.json").read_text())
    assert document["format"] == "pytest-edgetpu-results"
    (record,) = document["results"]
    assert record["test_id"] == "test_latency.py::test_latency"
    assert record["verdict"]["status"] == "NO_BASELINE"
    assert record["phases_ms"].keys() == {
        "load",
        "first_inference",
        "warmup_mean",
        "delegate_load",
    }
    assert record["phases_ms"]["delegate_load"] is None  # the CPU has no delegate to load
    assert record["summary_ms"]["n"] == sum(1 for _ in range(record["summary_ms"]["n"]))
    report = (project.path / "out" / "report.md").read_text()
    assert "**0 regressed, 0 improved, 0 unchanged, 1 new**" in report
    assert summary.read_text().startswith("earlier step\n## pytest-edgetpu latency gate")
    junit = (project.path / "out" / "junit.xml").read_text()
    assert '<property name="edgetpu_verdict" value="NO_BASELINE"' in junit


def test_a_failing_test_body_is_not_judged(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.tpu_bench(model="models/tiny_conv.tflite")
        def test_budget(tpu_bench):
            result = tpu_bench()
            assert result.p50_ms < 0, "budget exceeded"
        """
    )
    result = project.runpytest("--edgetpu", "--edgetpu-update-baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*budget exceeded*"])
    assert baseline_files(project) == []


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for line in (
        "*--edgetpu *Run latency benchmarks and gate them against baselines",
        "*--edgetpu-device=SPEC*",
        "*--edgetpu-baseline-dir=DIR*",
        "*--edgetpu-update-baselines*",
        "*--edgetpu-threshold=PCT*",
        "*--edgetpu-json=PATH*",
        "*--edgetpu-report=PATH*",
        "*--edgetpu-strict*",
        "*edgetpu_max_time (string):*",
    ):
        result.stdout.fnmatch_lines([line])


def test_runs_with_xdist_disabled(project: pytest.Pytester) -> None:
    project.makepyfile(test_latency=bench_test())
    project.runpytest("-p", "no:xdist", "--edgetpu").assert_outcomes(passed=2)


def test_example_suite_runs_from_a_copy(pytester: pytest.Pytester, short_ini: str) -> None:
    """The README's example, copied elsewhere, generates its models and runs."""
    root = Path(__file__).resolve().parent.parent
    shutil.copytree(
        root / "examples", pytester.path / "examples", ignore=shutil.ignore_patterns("models")
    )
    pytester.makeini(short_ini)
    result = pytester.runpytest("examples")
    result.assert_outcomes(passed=2)


# ---------------------------------------------------------------------------------------------
# faults during measurement


CALLABLE_RAISES = """
def helper():
    raise ValueError("user boom")


def test_pipeline(edgetpu, tpu_bench):
    tpu_bench(helper)
"""


@pytest.mark.parametrize("args", [[], ["--edgetpu"]], ids=["smoke", "timed"])
def test_an_exception_in_the_callable_shows_the_users_frames(
    project: pytest.Pytester, args: list[str]
) -> None:
    project.makepyfile(test_user=CALLABLE_RAISES)
    result = project.runpytest(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       tpu_bench(helper)",
            "test_user.py:6: ",
            "    def helper():",
            '>       raise ValueError("user boom")',
            "E       ValueError: user boom",
            "test_user.py:2: ValueError",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_edgetpu/*.py*")  # no frame of the plugin


def test_keyboard_interrupt_in_an_update_writes_nothing(project: pytest.Pytester) -> None:
    record(project, "test_ki.py::test_first")
    before = snapshot(project.path / "baselines")
    project.makepyfile(
        test_ki=bench_file("test_first") + "\n\ndef test_interrupted(edgetpu, tpu_bench):\n"
        "    def stop():\n        raise KeyboardInterrupt\n\n    tpu_bench(stop)\n"
    )
    result = project.runpytest(
        "--edgetpu-update-baselines",
        "--edgetpu-json=r.json",
        "--edgetpu-report=r.md",
        no_reraise_ctrlc=True,  # the inner run's KeyboardInterrupt, not this test's
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "edgetpu: interrupted: no baselines, results or report written (1 measurement(s)"
            " discarded); run again to record them"
        ]
    )
    result.stdout.no_fnmatch_line("*recorded*")  # the update's lines would claim otherwise
    assert snapshot(project.path / "baselines") == before
    assert not (project.path / "r.json").exists() and not (project.path / "r.md").exists()


def test_model_folders_in_testpaths_are_collected(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ntestpaths = tests models\nedgetpu_max_time = 0.05\n")
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    result = project.runpytest("--edgetpu", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "tests/test_plain.py::test_plain",
            "models/tiny_conv.tflite::latency",
            "models/tiny_dense.tflite::latency",
        ],
        consecutive=False,
    )
    # Without testpaths, a model file somewhere in the project is data, not a benchmark.
    project.makeini("[pytest]\n")
    bare = project.runpytest("--edgetpu", "--collect-only", "-q")
    bare.stdout.no_fnmatch_line("*.tflite::latency*")


def test_a_model_swapped_inside_a_callable_is_model_changed(project: pytest.Pytester) -> None:
    models = project.path / "models"
    shutil.copy(models / "tiny_dense.tflite", models / "current.tflite")
    project.makepyfile(test_pipe=CALLABLE_TEST)
    project.runpytest(*RECORDING_UPDATE).assert_outcomes(passed=1)  # whatever the host's noise
    (entry,) = json.loads(next((project.path / "baselines").glob("*.json")).read_text())[
        "entries"
    ].values()
    assert entry["model_path"] == "models/current.tflite"
    assert entry["model_sha256"] is not None
    shutil.copy(models / "tiny_conv.tflite", models / "current.tflite")
    result = project.runpytest("--edgetpu", "--edgetpu-json=r.json")
    result.stdout.fnmatch_lines(["*model changed since the baseline (*"])
    (record,) = json.loads((project.path / "r.json").read_text())["results"]
    assert record["verdict"]["model_changed"] is True
    assert 0.0 <= record["run_queue_wait"] <= 1.0
    assert [m["path"] for m in record["model"]["models"]] == [str(models / "current.tflite")]


def test_the_readme_callable_runs_a_one_input_model_on_one_array(
    project: pytest.Pytester,
) -> None:
    # README: tpu_bench(lambda: postprocess(model.run(preprocess(frame)))), preprocess giving
    # the model's one input as an array, not a list of arrays.
    project.makepyfile(
        test_pipeline="""
import numpy as np


def test_pipeline(edgetpu, tpu_bench):
    model = edgetpu.load("models/tiny_dense.tflite")
    frame = model.random_inputs(0)[0]
    outputs = model.run(np.copy(frame))
    assert len(outputs) == 1
    tpu_bench(lambda: model.run(np.copy(frame)))
"""
    )
    project.runpytest("--edgetpu").assert_outcomes(passed=1)
    project.runpytest().assert_outcomes(passed=1)
