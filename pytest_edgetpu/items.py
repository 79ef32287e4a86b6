"""Zero-code benchmarks: a ``.tflite`` file collected as one test item (``pytest --edgetpu
models/``), timed and gated as ``tpu_bench(path)`` would time and gate it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .config import test_settings
from .fixtures import PENDING_KEY, RUN_KEY, ModelLoader, TpuBench

__all__ = [
    "TfliteFile",
    "TfliteItem",
    "UntimedTfliteFile",
    "collect_tflite",
    "passed_over_models",
]


def _explicit_paths(config: pytest.Config) -> set[Path]:
    """The paths named on the command line or, without any, in the ``testpaths`` ini key (each
    in its :func:`_places`): the only places ``.tflite`` files are collected from (a model file
    elsewhere in the project is data for a test, not a benchmark of its own)."""
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        base = config.invocation_params.dir
    elif config.args_source is pytest.Config.ArgsSource.TESTPATHS:
        base = config.rootpath
    else:
        return set()
    return {place for arg in config.args for place in _places(base / arg.split("::")[0])}


def _places(path: Path) -> set[Path]:
    """Where ``path`` lies: with every symlink followed, with its folders' followed but not
    its own, and with none followed. A model linked from elsewhere, or in a folder linked from
    elsewhere (as a repository's absolute symlinks link them), lies where its link does.
    ``realpath``, not ``Path.resolve``: a symlink loop stays a path, where ``resolve`` raises."""
    return {
        Path(os.path.realpath(path)),
        Path(os.path.realpath(path.parent)) / path.name,
        Path(os.path.abspath(path)),
    }


def collect_tflite(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """A benchmark for ``file_path`` when it is a ``.tflite`` file named on the command line
    or in ``testpaths``, or found in a directory named there; None otherwise."""
    if file_path.suffix != ".tflite":
        return None
    places = _places(file_path)
    named = _explicit_paths(parent.config)
    if not parent.config.stash[RUN_KEY].settings.enabled:
        # A model file named on the command line is no test without --edgetpu: say so,
        # rather than pytest's "not found" for a file that is there.
        if places & named and parent.config.args_source is pytest.Config.ArgsSource.ARGS:
            return UntimedTfliteFile.from_parent(parent, path=file_path)
        return None
    if any(p == place or p in place.parents for p in named for place in places):
        return TfliteFile.from_parent(parent, path=file_path)
    return None


def passed_over_models(directory: pytest.Directory) -> list[pytest.File]:
    """The ``.tflite`` entries of ``directory`` (a plain folder or a package) that pytest
    passes over, being neither a regular file nor a folder (a FIFO, a device, a socket, a
    symlink to nothing), collected as :func:`collect_tflite` would collect a model there: each
    then fails saying what it is, where passing it over would let the gate pass without it."""
    if not directory.config.stash[RUN_KEY].settings.enabled:
        return []
    try:
        with os.scandir(directory.path) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return []  # pytest's own collection of the folder says why
    found = []
    for entry in entries:
        path = Path(entry.path)
        # Path's tests, not the entry's: a symlink loop is neither, where DirEntry raises.
        if path.suffix != ".tflite" or path.is_file() or path.is_dir():
            continue
        if directory.ihook.pytest_ignore_collect(collection_path=path, config=directory.config):
            continue
        collected = collect_tflite(path, directory)
        if collected is not None:
            found.append(collected)
    return found


class TfliteFile(pytest.File):
    """A model file collected as one benchmark."""

    def collect(self) -> Iterator[TfliteItem]:
        yield TfliteItem.from_parent(self, name="latency")


class TfliteItem(pytest.Item):
    """Times the model file with the session's default settings and gates it."""

    def runtest(self) -> None:
        run = self.config.stash[RUN_KEY].get()
        settings = test_settings(run.settings, (), {}, self.nodeid)
        loader = ModelLoader.for_test(run, settings, self)
        bench = TpuBench(run, loader, settings, self.nodeid)
        try:
            bench(self.path)
        except pytest.skip.Exception:
            if loader.unmeasured:
                return  # the file's structure was gated; the summary says latency was not
            raise
        self.stash[PENDING_KEY] = bench.pending

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"tpu_bench {self.path.name}"


class UntimedTfliteFile(pytest.File):
    """A model file named on the command line of a run without ``--edgetpu``."""

    def collect(self) -> Iterator[pytest.Item]:
        yield UntimedTfliteItem.from_parent(self, name="latency")


class UntimedTfliteItem(pytest.Item):
    """Skips, saying how to benchmark the file: a model file alone runs nothing to smoke-test."""

    def runtest(self) -> None:
        named = self.nodeid.split("::")[0]
        raise pytest.skip.Exception(
            f"{named} is a benchmark only with --edgetpu: run pytest --edgetpu {named}",
            _use_item_location=True,
        )

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"tpu_bench {self.path.name}"
