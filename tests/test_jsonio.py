"""Files that cross the boundary: reads are bounded and only of regular files (a FIFO, a device,
a directory, a file that grows), for baselines, results and models alike (core room)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import (
    TIMEOUT_S,
    assert_clean,
    single_bench_file,
)

from pytest_edgetpu.cli import main
from pytest_edgetpu.core import jsonio
from pytest_edgetpu.core.errors import ModelError
from pytest_edgetpu.model.inspection import inspect_model

# ---------------------------------------------------------------------------------------------
# reads are bounded, and only of regular files


def test_read_regular_refuses_fifos_devices_and_directories(fifo: Path, tmp_path: Path) -> None:
    import socket

    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "socket"))
    for path, kind in (
        (fifo, "a FIFO (named pipe)"),
        (tmp_path / "socket", "a socket"),
        (Path("/dev/zero"), "a character device"),
        (tmp_path, "a directory"),
    ):
        with pytest.raises(jsonio.NotRegularFileError) as caught:
            jsonio.read_regular(path, 100)
        assert str(caught.value) == f"it is {kind}, not a regular file"


def test_read_regular_reads_at_most_the_limit_plus_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 10)
    assert jsonio.read_regular(path, 10) == b"x" * 10
    with pytest.raises(ValueError, match="10 bytes is more than 9"):
        jsonio.read_regular(path, 9)
    with pytest.raises(ValueError, match="holds a NUL byte"):
        jsonio.read_regular(tmp_path / "a\0b", 9)


def test_a_fifo_or_dev_zero_named_like_a_baseline_file_stops_the_run_in_one_line(
    project: pytest.Pytester,
) -> None:
    baselines = project.path / "baselines"
    baselines.mkdir()
    project.makepyfile(test_a=single_bench_file())
    for planted, words in (
        (lambda p: os.mkfifo(p), "it is a FIFO (named pipe), not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "it is a character device, not a regular file"),
    ):
        path = baselines / "cpu-x.json"
        planted(path)
        result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {path} is not a readable baseline file ({words});*"])
        assert_clean(result)
        path.unlink()


def test_compare_and_accept_of_a_device_or_fifo_exit_2(
    fifo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for source in ("/dev/zero", str(fifo)):
        for command in ("compare", "accept"):
            assert main([command, source, "--baseline-dir", str(tmp_path / "b")]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"pytest-edgetpu: error: {source} is not a readable results")
            assert "not a regular file" in err


def test_a_model_is_refused_after_its_first_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sparse = tmp_path / "huge.tflite"
    with sparse.open("wb") as handle:
        handle.truncate(3 * 1024**3)  # 3 GB of zeros, no disk used
    read: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(ModelError, match="no 'TFL3' flatbuffer identifier"):
        inspect_model(sparse)
    assert sum(read) <= 200
    with sparse.open("r+b") as handle:
        handle.write(b"\0\0\0\0TFL3")
    read.clear()
    with pytest.raises(ModelError, match="3221225472 bytes is more than 2147483647"):
        inspect_model(sparse)
    assert sum(read) <= 200


def test_a_fifo_or_device_model_fails_its_test_in_one_line(
    project: pytest.Pytester, fifo: Path
) -> None:
    project.makepyfile(
        test_a=(
            "import pytest\n\n"
            f"@pytest.mark.parametrize('path', [{str(fifo)!r}, '/dev/zero'])\n"
            "def test_a(tpu_bench, path):\n    tpu_bench(path)\n"
        )
    )
    result = project.runpytest_subprocess("--edgetpu", "-p", "no:xdist", timeout=TIMEOUT_S)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"{fifo} is not a TFLite model (it is a FIFO (named pipe), not a regular file);"
            " give the .tflite file",
            "/dev/zero is not a TFLite model (it is a character device, not a regular file);"
            " give the .tflite file",
        ],
        consecutive=False,
    )
    assert_clean(result)
