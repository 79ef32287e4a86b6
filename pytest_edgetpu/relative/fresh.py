"""Fresh processes of the working tree's tests, in which a stored baseline of a callable is
recorded and gated.

A stored baseline is recorded in one process and gated in another, and a small, pure-Python
callable's speed moves with the process it runs in (``benchmarks/process_stored.py``: gated
in the pytest process against a figure recorded in another, unchanged code read as a
REGRESSION in up to 30% of runs). So a callable is recorded and gated alike: in helper
processes that run its test (relative mode's helpers, in the working tree), the process the
unit both sides count (:func:`~pytest_edgetpu.engine.processes.measure_processes`).
"""

from __future__ import annotations

import collections
import itertools
import shutil
from pathlib import Path
from typing import Final

from ..core.errors import EdgeTpuError, FailedAtRevisionError, RevisionError
from ..engine.measurement import MeasureSettings
from ..engine.processes import FEWEST_PROCESSES, processes_at_once
from ..engine.session import FreshProcess
from ..engine.timing import StartSide
from .git import private_scratch
from .helper import RevisionHelper, RevisionTest
from .pool import HelperPool

__all__ = ["FreshProcesses", "processes_started_with"]

_SCRATCH_PREFIX: Final = "pytest-edgetpu-fresh-"
_SIDE: Final = "fresh"


def processes_started_with(index: int) -> int:
    """How many processes start with process ``index`` of a measurement. The fewest (a
    confirming measurement's too) start together, then the rest
    :func:`~pytest_edgetpu.engine.processes.processes_at_once`: each reaches the test before
    the first of them is measured (its start, pytest, the file's collection and the test's
    body, would otherwise run beside it, or one after another)."""
    if index == 0:
        return FEWEST_PROCESSES
    beyond = index - FEWEST_PROCESSES
    at_once = processes_at_once()
    return at_once if beyond >= 0 and beyond % at_once == 0 else 1


class FreshProcesses:
    """Helper processes of the working tree (under ``rootdir``), one test file's at a time."""

    def __init__(self, rootdir: Path, device: str) -> None:
        self.rootdir = rootdir
        # The session's kind of device, which the helpers measure on (``cpu-builtin``, ...).
        self.device = device
        self._pool = HelperPool(self._start_helper, (_SIDE,), FEWEST_PROCESSES)
        self._scratch: Path | None = None
        self._logs = itertools.count(1)
        # Per test, the helpers its measurements took so far: a confirming measurement takes
        # processes its first did not, so that it samples new ones.
        self._taken: collections.Counter[str] = collections.Counter()

    def call(self, node_id: str, call: int, *, reference: bool = False) -> FreshProcess:
        """Starts instances of call ``call`` of test ``node_id`` in the next fresh process
        (and with ``reference``, of the host's reference workload in each); a test that does
        not run there as here is a :class:`FailedAtRevisionError`, a helper that cannot run it
        a :class:`RevisionError`."""
        first = self._taken[node_id]

        def start(index: int, settings: MeasureSettings) -> StartSide:
            self._taken[node_id] = max(self._taken[node_id], first + index + 1)
            indices = range(first + index, first + index + processes_started_with(index))
            return self._served(node_id, call, indices).side(call, settings)

        def start_reference(index: int) -> StartSide:
            # The helper that has just measured the call's instances, still serving the test.
            return self._pool.test(node_id, _SIDE, first + index).reference_side()

        return FreshProcess(start, start_reference if reference else None)

    def _served(self, node_id: str, call: int, indices: range) -> RevisionTest:
        """Test ``node_id`` as the first of helpers ``indices`` runs it, all of them asked."""
        try:
            self._pool.ask(node_id, _SIDE, indices)
            served = [self._pool.test(node_id, _SIDE, index) for index in indices]
        except FailedAtRevisionError:
            raise
        except EdgeTpuError as error:
            # The machinery failing (a helper that cannot start), not the test: it fails.
            raise RevisionError(f"a fresh process could not run {node_id}: {error}") from None
        for one in served:
            if one.missing or call not in one.calls:
                raise FailedAtRevisionError(
                    f"{node_id} did not run in a fresh process as it does in this one: "
                    f"{one.missing or f'it made no tpu_bench call {call} there'}"
                )
        return served[0]

    def _start_helper(self, file: str, side: str, index: int) -> RevisionHelper:
        if self._scratch is None:
            self._scratch = private_scratch(_SCRATCH_PREFIX)
        helper = RevisionHelper(
            self.rootdir,
            file,
            self._scratch / f"helper-{next(self._logs)}.log",
            self.device,
            probe_models=False,
        )
        helper.start("the working tree")
        return helper

    def close(self) -> None:
        self._pool.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
