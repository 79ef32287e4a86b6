"""Reliability end to end: every bad input gets one clear answer, and no fault loses a baseline.

Each bad input is run through pytest (pytester) and checked for its outcome (usage error,
collection error, failed or skipped test) and the exact words of its message, with no
traceback, no chained exception and no INTERNALERROR. The concurrency and kill cases run real
pytest processes, bounded in time. The property tests of the parsers are in test_fuzz.py;
the unit-level bad inputs of the loaders in test_baselines.py, test_config.py, test_models.py.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from factories import RECORDING_UPDATE, cpu_profile, entry, record

from pytest_edgetpu.cli import main
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.judge.baselines import load_file, write_entries
from pytest_edgetpu.judge.results_file import write_text

# Short measurements keep the suite fast; what is checked here does not depend on length.
PACKAGE = Path(__file__).resolve().parent.parent / "pytest_edgetpu"
#: Whatever pytest prints when something escaped the plugin's error handling: a traceback, a
#: chained exception, a frame of the plugin's own code.
NOT_CLEAN = ("Traceback", "INTERNALERROR", "During handling", "direct cause", "pytest_edgetpu/")
TIMEOUT_S = 60


@pytest.fixture
def short_ini() -> str:
    return SHORT_INI


SHORT_INI = """
[pytest]
edgetpu_max_time = 0.05
edgetpu_min_runs = 10
filterwarnings = ignore::pytest.PytestAssertRewriteWarning
"""


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``directory``: its content hash and modification time."""
    return {
        os.fspath(p.relative_to(directory)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def entries_of(path: Path) -> list[str]:
    return sorted(json.loads(path.read_text(encoding="utf-8"))["entries"])


def assert_clean(result: pytest.RunResult) -> None:
    output = result.stdout.str() + result.stderr.str()
    for words in NOT_CLEAN:
        assert words not in output, words
    # "E   " starts the lines of an exception pytest shows with its frames.
    assert not [line for line in output.splitlines() if line.startswith("E   ")]


def bench_file(*names: str, marker: str = 'model="models/tiny_dense.tflite"') -> str:
    tests = [
        f"@pytest.mark.tpu_bench({marker})\ndef {name}(tpu_bench):\n    tpu_bench()\n"
        for name in names
    ]
    return "import pytest\n\n\n" + "\n\n".join(tests)


# ---------------------------------------------------------------------------------------------
# bad models: the test fails (or skips) with one line naming the file and the fix


def test_bad_model_files_fail_their_test_with_one_line(project: pytest.Pytester) -> None:
    models = project.path / "models"
    (models / "random.tflite").write_bytes(bytes(range(256)) * 8)
    (models / "empty.tflite").write_bytes(b"")
    (models / "truncated.tflite").write_bytes((models / "tiny_conv.tflite").read_bytes()[:3000])
    (models / "renamed.tflite").write_text('{"format": "layers-model"}', encoding="utf-8")
    project.makepyfile(
        test_bad_models="""
        import pytest

        @pytest.mark.parametrize(
            "name", ["missing", "random", "empty", "truncated", "renamed"]
        )
        def test_model(tpu_bench, name):
            tpu_bench(f"models/{name}.tflite")
        """
    )
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(failed=5)
    root = project.path
    result.stdout.fnmatch_lines(
        [
            f"model file not found: {root}/models/missing.tflite (check the model path given to"
            " the test, the marker or the command line; relative paths are resolved from the"
            " pytest rootdir)",
            f"{root}/models/random.tflite is not a TFLite model (no 'TFL3' flatbuffer"
            " identifier at bytes 4..8; is it a SavedModel, an ONNX file or a truncated"
            " download?)",
            f"{root}/models/empty.tflite is not a TFLite model (the file is empty; an"
            " interrupted download or write? re-export or re-download it)",
            f"{root}/models/truncated.tflite is a corrupt TFLite model (* lies outside the"
            " 3000-byte file); re-export or re-download it",
            f"{root}/models/renamed.tflite is not a TFLite model (no 'TFL3' flatbuffer"
            " identifier at bytes 4..8; it looks like JSON, not a .tflite flatbuffer: convert"
            " the model to TFLite)",
        ],
        consecutive=False,
    )
    assert_clean(result)


def test_a_bad_model_file_named_on_the_command_line_fails_its_item(
    project: pytest.Pytester,
) -> None:
    (project.path / "models" / "broken.tflite").write_bytes(b"\x00" * 64)
    result = project.runpytest("--edgetpu", "models/broken.tflite")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ tpu_bench broken.tflite _*",
            f"{project.path}/models/broken.tflite is not a TFLite model (no 'TFL3' flatbuffer"
            " identifier at bytes 4..8; is it a SavedModel, an ONNX file or a truncated"
            " download?)",
        ]
    )
    assert_clean(result)


def test_unknown_custom_op_fails_and_an_edgetpu_model_skips(
    project: pytest.Pytester, coral_models: Path
) -> None:
    model = project.path / "models" / "invalid_model_invoking_error.tflite"
    model.write_bytes((coral_models / model.name).read_bytes())
    tpu_model = project.path / "models" / "split_concat_edgetpu.tflite"
    tpu_model.write_bytes((coral_models / tpu_model.name).read_bytes())
    project.makepyfile(
        test_op=bench_file("test_op", marker=f"model={str(model)!r}"),
        test_tpu=bench_file("test_tpu", marker=f"model={str(tpu_model)!r}"),
    )
    # Through the marker, and as files collected from the command line.
    result = project.runpytest(
        "--edgetpu", "-rs", "test_op.py", "test_tpu.py", f"models/{model.name}"
    )
    result.assert_outcomes(failed=2, skipped=1)
    message = (
        f"{model} uses the custom op 'fake-op-double*', which this runtime does not provide;"
        " register the op or export the model without it"
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_op _*",
            message,
            f"*_ tpu_bench {model.name} _*",
            message,
            f"SKIPPED ?1? test_tpu.py:4: {tpu_model} is compiled for the Edge TPU (1"
            " edgetpu-custom-op node(s)) and this run uses cpu:0; attach an Edge TPU (see"
            " `pytest-edgetpu devices`) or benchmark the CPU twin (the file without the"
            " _edgetpu suffix)",
        ]
    )
    assert_clean(result)


# ---------------------------------------------------------------------------------------------
# bad marker arguments: a collection error naming the test and the argument


BAD_MARKERS = {
    "metric": (
        "metric='p42'",
        "tpu_bench(metric=...) on test_metric.py::test_m: unknown metric 'p42'; use one of"
        " p50, p90, p99, mean, min",
    ),
    "positional": (
        "'models/a.tflite', 'models/b.tflite'",
        "tpu_bench(...) on test_positional.py::test_m: takes at most one positional argument"
        " (model), got 2",
    ),
    "threshold": (
        "threshold=True",
        "tpu_bench(threshold=...) on test_threshold.py::test_m: threshold True is not a"
        " percentage; write it like '5%' or 5",
    ),
    "model": (
        "model=3",
        "tpu_bench(model=...) on test_model.py::test_m: expected a non-empty path or string, got 3",
    ),
    "time": (
        "max_time=-1",
        "tpu_bench(max_time=...) on test_time.py::test_m: -1 is not a positive number of"
        " seconds (like 2 or 0.5)",
    ),
}


def test_bad_marker_arguments_are_collection_errors(project: pytest.Pytester) -> None:
    project.makepyfile(
        **{f"test_{name}": bench_file("test_m", marker=m) for name, (m, _) in BAD_MARKERS.items()}
    )
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(errors=len(BAD_MARKERS))
    for name, (_, message) in BAD_MARKERS.items():
        result.stdout.fnmatch_lines([f"*ERROR collecting test_{name}.py*", message])
    assert_clean(result)


# ---------------------------------------------------------------------------------------------
# bad options and ini values: a usage error before any test runs


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Directories listed here refuse new files, as a read-only directory does for a normal
    user; simulated, because permission bits do not stop root."""
    refused: list[Path] = []
    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if kwargs.get("dir") is not None and Path(kwargs["dir"]) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(kwargs["dir"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return refused


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ["--edgetpu", "--edgetpu-prune-baselines"],
            "",
            "ERROR: --edgetpu-prune-baselines: pruning removes entries only while baselines are"
            " written, and only --edgetpu-update-baselines writes them; add it, or drop the"
            " setting",
        ),
        (
            ["--edgetpu", "--edgetpu-accept-unstable"],
            "",
            "ERROR: --edgetpu-accept-unstable: accepting unstable measurements applies only while"
            " baselines are written, and only --edgetpu-update-baselines writes them; add it,"
            " or drop the setting",
        ),
        (
            ["--edgetpu", "--edgetpu-baseline-dir=test_options.py"],
            "",
            "ERROR: --edgetpu-baseline-dir: the baseline directory */test_options.py is a file;"
            " give a directory",
        ),
        (
            ["--edgetpu"],
            "edgetpu_baseline_dir = test_options.py",
            "ERROR: ini edgetpu_baseline_dir in */tox.ini: the baseline directory"
            " */test_options.py is a file; give a directory",
        ),
        (
            ["--edgetpu-update-baselines", "--edgetpu-baseline-dir=test_options.py/baselines"],
            "",
            "ERROR: --edgetpu-baseline-dir: */test_options.py is a file, so"
            " */test_options.py/baselines cannot be created; choose another path",
        ),
        (
            ["--edgetpu", "--edgetpu-report=models"],
            "",
            "ERROR: --edgetpu-report: */models is a directory; give the path of a file",
        ),
        (
            ["--edgetpu", "--edgetpu-device="],
            "",
            "ERROR: --edgetpu-device: expected a non-empty path or string, got ''",
        ),
        (
            ["--edgetpu"],
            "edgetpu_device = usb:zero",
            "ERROR: ini edgetpu_device in */tox.ini: unknown device 'usb:zero' in 'usb:zero';"
            " expected auto, cpu, cpu-builtin, usb, pci, litert-cpu, litert-gpu, litert-npu"
            " (each but the last two also with :N), :N, delegate:PATH, or a comma list of them",
        ),
        (
            ["--edgetpu"],
            "edgetpu_warmup = many",
            "ERROR: ini edgetpu_warmup in */tox.ini: 'many' is not a whole number",
        ),
        (
            ["--edgetpu"],
            "edgetpu_json = test_options.py/out.json",
            "ERROR: ini edgetpu_json in */tox.ini: */test_options.py is a file, so"
            " */test_options.py/out.json cannot be created; choose another path",
        ),
    ],
    ids=[
        "prune-without-update",
        "accept-unstable-without-update",
        "baseline-dir-is-a-file",
        "ini-baseline-dir-is-a-file",
        "baseline-dir-under-a-file",
        "report-is-a-directory",
        "empty-device",
        "ini-device",
        "ini-warmup",
        "ini-json-under-a-file",
    ],
)
def test_bad_options_stop_the_run_naming_the_option(
    project: pytest.Pytester, short_ini: str, args: list[str], ini: str, message: str
) -> None:
    project.makeini(short_ini + ini + "\n")
    project.makepyfile(test_options=bench_file("test_a"))
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert_clean(result)
    assert not (project.path / "baselines").exists()


def test_an_unwritable_baseline_directory_stops_an_update_before_measuring(
    project: pytest.Pytester, unwritable: list[Path]
) -> None:
    path = record(project, "test_write.py::test_a")
    before = path.read_bytes()
    unwritable.append(path.parent)
    project.makepyfile(test_write=bench_file("test_a"))
    result = project.runpytest("--edgetpu-update-baselines")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --edgetpu-baseline-dir (default): cannot write {path.parent}"
            f" ({path.parent}: Permission denied); choose a writable location or fix its"
            " permissions"
        ]
    )
    assert path.read_bytes() == before
    # A gate only reads: the same directory serves it.
    project.runpytest("--edgetpu").assert_outcomes(passed=1)


# ---------------------------------------------------------------------------------------------
# bad baseline files: the run stops naming the file, and the file is never overwritten


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda doc: json.dumps(doc)[:200],
            "ERROR: {path} is not a readable baseline file (*line 1 column 201 (char 200));"
            " restore it from git (git checkout -- <file>) or delete it and record again with"
            " --edgetpu-update-baselines",
        ),
        (
            lambda doc: json.dumps({**doc, "schema_version": 2}),
            "ERROR: {path} has schema version 2, newer than this pytest-edgetpu reads (1);"
            " upgrade pytest-edgetpu",
        ),
        (
            lambda doc: json.dumps({**doc, "profile": {**doc["profile"], "cpu_model": "Other"}}),
            "ERROR: {path} holds the baselines of profile 'cpu-*-other-litert'; rename it to"
            " cpu-*-other-litert.json (the name selects the profile)",
        ),
        (
            lambda doc: json.dumps(
                {
                    **doc,
                    "entries": {
                        "test_files.py::test_a": {
                            k: v
                            for k, v in doc["entries"]["test_files.py::test_a"].items()
                            if k != "instance_values_ms"
                        }
                    },
                }
            ),
            "ERROR: {path}: entry 'test_files.py::test_a' has no 'instance_values_ms'; restore"
            " the file from git or record the test again with --edgetpu-update-baselines",
        ),
        (
            lambda doc: "\x00\xff binary",
            "ERROR: {path} is not a readable baseline file (Expecting value: line 1 column 1"
            " (char 0)); restore it from git (git checkout -- <file>) or delete it and record"
            " again with --edgetpu-update-baselines",
        ),
    ],
    ids=["truncated", "future-schema", "other-profile", "missing-field", "binary"],
)
def test_bad_baseline_files_stop_the_run_naming_the_file(
    project: pytest.Pytester, damage: Any, message: str
) -> None:
    path = record(project, "test_files.py::test_a")
    path.write_text(damage(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")
    before = path.read_bytes()
    project.makepyfile(test_files=bench_file("test_a"))
    for args in (["--edgetpu"], ["--edgetpu-update-baselines"]):
        result = project.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message.format(path=path)])
        assert_clean(result)
    assert path.read_bytes() == before


def test_a_baseline_of_another_profile_is_never_compared(project: pytest.Pytester) -> None:
    other = Profile({**cpu_profile().fields, "cpu_model": "Other CPU"})
    write_entries(project.path / "baselines", other, {"test_files.py::test_a": entry(1.0)})
    project.makepyfile(test_files=bench_file("test_a"))
    result = project.runpytest("--edgetpu")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_files.py::test_a: INCOMPARABLE p50 * ms on cpu (*): baselines exist only for"
            " other device profiles: cpu-*-other-cpu-litert (cpu_model 'Other CPU' vs *);"
            " never compared with cpu-*; record one for this device with"
            " --edgetpu-update-baselines"
        ]
    )


# ---------------------------------------------------------------------------------------------
# writing: disk full, unsafe test ids, gates that only read


def test_disk_full_while_writing_keeps_the_previous_file(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(project, "test_disk.py::test_a")
    before = path.read_bytes()
    project.makepyfile(test_disk=bench_file("test_a"))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = project.runpytest("--edgetpu-update-baselines")
    gate = project.runpytest("--edgetpu", "--edgetpu-json=out/r.json")
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"edgetpu: ERROR: cannot write {path}: [Errno 28] No space left on device; the"
            " previous file is unchanged"
        ]
    )
    assert_clean(result)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert gate.ret == pytest.ExitCode.TESTS_FAILED
    gate.stdout.fnmatch_lines(
        [f"edgetpu: ERROR: cannot write {project.path}/out/r.json: No space left on device"]
    )
    assert list((project.path / "out").iterdir()) == []


UNSAFE_IDS = ["../../../etc/passwd", "a/b\\c:d*?<>|", "new\nline", "ünï😀", "\udc80", ""]


def test_test_ids_unsafe_in_file_names_stay_keys_in_one_file(
    project: pytest.Pytester, short_ini: str
) -> None:
    # Unescaped ids, the rawest a test id gets (pytest escapes non-ASCII ones by default).
    project.makeini(
        short_ini + "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"
    )
    project.makepyfile(
        test_ids=f"""
        import pytest

        @pytest.mark.parametrize("x", {UNSAFE_IDS!r})
        @pytest.mark.tpu_bench(model="models/tiny_dense.tflite")
        def test_id(tpu_bench, x):
            tpu_bench()
        """
    )
    # pytest's own cache cannot store a raw lone surrogate: that is pytest's to solve.
    recorded = project.runpytest("--edgetpu-update-baselines", "-p", "no:cacheprovider")
    recorded.assert_outcomes(passed=len(UNSAFE_IDS))
    assert_clean(recorded)
    (path,) = (project.path / "baselines").iterdir()
    assert path.name == f"{cpu_profile().key}.json"
    assert len(load_file(path).entries) == len(UNSAFE_IDS)
    gated = project.runpytest(
        "--edgetpu", "--edgetpu-json=r.json", "--edgetpu-threshold=900%", "-p", "no:cacheprovider"
    )
    gated.assert_outcomes(passed=len(UNSAFE_IDS))
    results = json.loads((project.path / "r.json").read_text(encoding="utf-8"))["results"]
    # Every test found its own entry again.
    assert "NO_BASELINE" not in {r["verdict"]["status"] for r in results}


def test_a_gate_run_never_modifies_the_baselines(project: pytest.Pytester) -> None:
    # A baseline a thousand times faster than the model: the gate finds a regression.
    record(project, "test_gate.py::test_a", value_ms=0.0001)
    before = snapshot(project.path / "baselines")
    project.makepyfile(test_gate=bench_file("test_a", "test_b"))
    result = project.runpytest("--edgetpu", "--edgetpu-json=r.json", "--edgetpu-report=r.md")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*REGRESSION p50*confirmed*"])
    assert snapshot(project.path / "baselines") == before


# ---------------------------------------------------------------------------------------------
# updates keep what did not run, unless asked to prune


def test_an_update_keeps_entries_of_tests_that_did_not_run(project: pytest.Pytester) -> None:
    path = record(
        project, "test_keep.py::test_a", "test_keep.py::test_skipped", "test_gone.py::test_x"
    )
    project.makepyfile(
        test_keep=bench_file("test_a", "test_b")
        + "\n\n@pytest.mark.skip(reason='not today')\ndef test_skipped(tpu_bench):\n"
        "    tpu_bench()\n"
    )
    result = project.runpytest("--edgetpu-update-baselines", "-k", "test_a or test_skipped")
    result.assert_outcomes(passed=1, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["test_gone.py::test_x: kept (not run)", "test_keep.py::test_skipped: kept (not run)"],
        consecutive=False,
    )
    assert entries_of(path) == [
        "test_gone.py::test_x",
        "test_keep.py::test_a",
        "test_keep.py::test_skipped",
    ]


def test_prune_removes_entries_of_tests_that_did_not_run(project: pytest.Pytester) -> None:
    path = record(
        project,
        "test_prune.py::test_a",
        "test_prune.py::test_a#2",
        "test_prune.py::test_failing",
        "test_prune.py::test_skipped",
        "test_prune.py::test_deselected",
        "test_gone.py::test_x",
    )
    project.makepyfile(
        test_prune=bench_file("test_a", "test_deselected")
        + "\n\n@pytest.mark.skip(reason='not today')\ndef test_skipped(tpu_bench):\n"
        "    tpu_bench()\n\n\ndef test_failing(tpu_bench):\n    assert False\n"
    )
    # Both runs record whatever the host's noise: the second one re-records test_a against what
    # the first measured, and an UNSTABLE comparison would leave the file unwritten (CI saw it).
    update = (
        "--edgetpu-update-baselines",
        "--edgetpu-accept-unstable",
        "--edgetpu-prune-baselines",
    )
    stopped = project.runpytest(*update, "-x")
    stopped.stdout.fnmatch_lines(["edgetpu: not pruned: the run stopped early (-x or --maxfail)"])
    assert len(entries_of(path)) == 6
    result = project.runpytest(*update, "-k", "not test_deselected")
    result.assert_outcomes(passed=1, failed=1, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "edgetpu: pruned from baselines/*.json (not measured in this run):"
            " test_gone.py::test_x, test_prune.py::test_a#2, test_prune.py::test_deselected,"
            " test_prune.py::test_skipped"
        ]
    )
    assert [line for line in result.stdout.lines if "kept" in line] == [
        "test_prune.py::test_failing: kept (not run)"
    ]
    # A failing test is broken, not gone: its entry stays.
    assert entries_of(path) == ["test_prune.py::test_a", "test_prune.py::test_failing"]


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


# ---------------------------------------------------------------------------------------------
# processes: concurrent updates, a SIGKILL mid-update

#: Loaded into the pytest processes below: a test waits for a file before it ends, and with
#: SLOW_WRITE every baseline write holds the lock a moment, so two writers must meet there.
PROCESS_CONFTEST = """
import os
import time
from pathlib import Path

import pytest

_replace = os.replace


def _slow_replace(src, dst):
    # Between the complete temporary file and the rename, with the directory locked.
    if Path(dst).parent.name == "baselines":
        Path(os.environ["MARK_DIR"], f"writing-{os.getpid()}").touch()
        time.sleep(float(os.environ["SLOW_WRITE"]))
    _replace(src, dst)


os.replace = _slow_replace


@pytest.fixture
def meet():
    def wait_for(name):
        marks = Path(os.environ["MARK_DIR"])
        (marks / f"{os.environ['ME']}-{name}").touch()
        deadline = time.monotonic() + 60
        while not (marks / f"go-{name}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    return wait_for
"""


def start_pytest(
    project: pytest.Pytester, me: str, *args: str, slow_write: float, own_group: bool = False
) -> subprocess.Popen[str]:
    """A pytest process in the project; ``me`` names it in its marker files. With
    ``own_group`` it leads a process group of its own, as a shell's foreground job does, which
    a Ctrl-C reaches as a whole."""
    marks = project.path / "marks"
    env = {
        **os.environ,
        "ME": me,
        "MARK_DIR": str(marks),
        "SLOW_WRITE": str(slow_write),
        # Each process its own leases: both may measure on cpu:0, even on a one-core host.
        "PYTEST_EDGETPU_LEASE_DIR": str(marks / f"leases-{me}"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=own_group,
        # A shell starts background jobs with SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler: give the child the default a foreground job has.
        preexec_fn=_default_sigint if own_group else None,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_files(*paths: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"timed out waiting for {paths}"
        time.sleep(0.05)


#: An update whose measurement must be recorded however busy the host is: these processes
#: measure side by side on purpose, and the test is about the write, not the measurement.
WAITING_TEST = """
import pytest


@pytest.mark.tpu_bench(model="models/tiny_dense.tflite")
def test_{name}(tpu_bench, meet):
    tpu_bench()
    meet("measured")
"""


def test_two_concurrent_updates_keep_both_runs_entries(project: pytest.Pytester) -> None:
    project.makeconftest(PROCESS_CONFTEST)
    (project.path / "marks").mkdir()
    path = record(project, "test_earlier.py::test_x")
    project.makepyfile(
        test_one=WAITING_TEST.format(name="one"), test_two=WAITING_TEST.format(name="two")
    )
    runs = [
        start_pytest(project, name, f"test_{name}.py", *RECORDING_UPDATE, slow_write=0.5)
        for name in ("one", "two")
    ]
    try:
        # Both measured; released together, both write at once and meet at the lock.
        marks = project.path / "marks"
        wait_for_files(marks / "one-measured", marks / "two-measured")
        (marks / "go-measured").touch()
        outputs = [run.communicate(timeout=TIMEOUT_S)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert len(list(marks.glob("writing-*"))) == 2
    assert entries_of(path) == [
        "test_earlier.py::test_x",
        "test_one.py::test_one",
        "test_two.py::test_two",
    ]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("moment", ["measuring", "writing"])
def test_sigkill_mid_update_leaves_the_previous_file_intact(
    project: pytest.Pytester, moment: str
) -> None:
    project.makeconftest(PROCESS_CONFTEST)
    marks = project.path / "marks"
    marks.mkdir()
    path = record(project, "test_killed.py::test_killed")
    before = path.read_bytes()
    project.makepyfile(test_killed=WAITING_TEST.format(name="killed"))
    run = start_pytest(project, "victim", *RECORDING_UPDATE, slow_write=TIMEOUT_S)
    try:
        if moment == "measuring":
            wait_for_files(marks / "victim-measured")
        else:
            (marks / "go-measured").touch()
            wait_for_files(marks / f"writing-{run.pid}")
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=TIMEOUT_S)
    finally:
        run.kill()
    assert run.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    if moment == "writing":
        # Killed between the complete temporary file and the rename: a hidden leftover.
        (leftover,) = leftovers
        assert leftover.startswith(f".{path.name}.") and leftover.endswith(".tmp")
    else:
        assert leftovers == []
    # The next write removes what the killed writer left.
    write_entries(path.parent, cpu_profile(), {"test_next.py::test_y": entry(2.0)})
    assert entries_of(path) == ["test_killed.py::test_killed", "test_next.py::test_y"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_ctrl_c_under_xdist_writes_nothing(project: pytest.Pytester) -> None:
    project.makeconftest(PROCESS_CONFTEST)
    marks = project.path / "marks"
    marks.mkdir()
    path = record(project, "test_earlier.py::test_x")
    before = path.read_bytes()
    project.makepyfile(
        test_one=WAITING_TEST.format(name="one"), test_two=WAITING_TEST.format(name="two")
    )
    run = start_pytest(
        project,
        "ctrl-c",
        "-n",
        "2",
        "--edgetpu-update-baselines",
        "--edgetpu-json=r.json",
        slow_write=0,
        own_group=True,
    )
    try:
        # Both workers measured and wait in their tests: the controller holds both records.
        wait_for_files(marks / "ctrl-c-measured")
        time.sleep(0.5)
        os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the foreground job
        output = run.communicate(timeout=TIMEOUT_S)[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "edgetpu: interrupted: no baselines, results or report written" in output
    assert "INTERNALERROR" not in output
    assert path.read_bytes() == before
    assert not (project.path / "r.json").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_results_write_removes_only_the_temporary_files_of_dead_writers(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    # Above Linux's largest pid (4194304): a writer that can no longer exist.
    dead = tmp_path / ".results.json.999999999.k1ll3d.tmp"
    live = tmp_path / f".results.json.{os.getpid()}.wr1t1ng.tmp"
    other = tmp_path / ".report.md.999999999.k1ll3d.tmp"
    for leftover in (dead, live, other):
        leftover.write_text("{", encoding="utf-8")
    write_text(path, "{}\n")
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name, other.name])


# ---------------------------------------------------------------------------------------------
# security


def test_a_run_and_the_command_never_touch_the_network(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("pytest-edgetpu tried to use the network")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    project.makepyfile(test_net=bench_file("test_a"))
    project.runpytest("--edgetpu-update-baselines", "--edgetpu-json=r.json").assert_outcomes(
        passed=1
    )
    monkeypatch.chdir(project.path)
    for argv in (["devices"], ["show"], ["compare", "r.json"], ["accept", "r.json"]):
        assert main(argv) == 0


def test_no_shell_is_ever_invoked() -> None:
    """Subprocesses get argument lists, never a shell: user text cannot become a command."""
    for source in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "shell":
                pytest.fail(f"{source.name}:{node.value.lineno}: shell= passed to a subprocess")
            if isinstance(node, ast.Attribute) and node.attr in {"system", "popen", "getoutput"}:
                pytest.fail(f"{source.name}:{node.lineno}: os.{node.attr} runs a shell")


def test_profile_keys_cannot_name_a_file_outside_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "baselines"
    for value in ("../../etc/passwd", "..", "/abs/path", "a\x00b", ".hidden", "~root"):
        profile = Profile({"device": value, "runtime": value})
        written = write_entries(directory, profile, {"t": entry(1.0)})
        assert written.parent == directory
        assert not written.name.startswith(".")
    assert not any(p for p in tmp_path.iterdir() if p != directory)
