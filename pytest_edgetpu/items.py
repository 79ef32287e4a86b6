"""Zero-code benchmarks: a ``.tflite`` file collected as one test item (``pytest --edgetpu
models/``), timed and gated as ``tpu_bench(path)`` would time and gate it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .config import test_settings
from .fixtures import PENDING_KEY, RUN_KEY, ModelLoader, TpuBench

__all__ = ["TfliteFile", "TfliteItem", "UntimedTfliteFile", "collect_tflite"]


def _explicit_paths(config: pytest.Config) -> list[Path]:
    """The paths named on the command line or, without any, in the ``testpaths`` ini key: the
    only places ``.tflite`` files are collected from (a model file elsewhere in the project is
    data for a test, not a benchmark of its own)."""
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        base = config.invocation_params.dir
    elif config.args_source is pytest.Config.ArgsSource.TESTPATHS:
        base = config.rootpath
    else:
        return []
    return [(base / arg.split("::")[0]).resolve() for arg in config.args]


def collect_tflite(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """A benchmark for ``file_path`` when it is a ``.tflite`` file named on the command line
    or in ``testpaths``, or found in a directory named there; None otherwise."""
    if file_path.suffix != ".tflite":
        return None
    resolved = file_path.resolve()
    named = _explicit_paths(parent.config)
    if not parent.config.stash[RUN_KEY].settings.enabled:
        # A model file named on the command line is no test without --edgetpu: say so,
        # rather than pytest's "not found" for a file that is there.
        if resolved in named and parent.config.args_source is pytest.Config.ArgsSource.ARGS:
            return UntimedTfliteFile.from_parent(parent, path=file_path)
        return None
    if any(p == resolved or p in resolved.parents for p in named):
        return TfliteFile.from_parent(parent, path=file_path)
    return None


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
