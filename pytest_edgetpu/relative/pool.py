"""The helper processes of the test file being measured, per side, started as measurements in
processes need them: relative mode's (the working tree and the revision) and a stored gate's
fresh processes (the working tree alone)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from .helper import RevisionHelper, RevisionTest

__all__ = ["HelperPool", "collected_for"]


def collected_for(node_id: str) -> str:
    """What a helper collects to run test ``node_id``: its file, or for a model file collected
    as a benchmark (``models/a.tflite::latency``) the model's folder, so that one set of
    helpers serves a folder of models rather than each file starting its own."""
    file = PurePosixPath(node_id.split("::", 1)[0])
    if file.suffix == ".tflite" and file.parent != PurePosixPath("."):
        return file.parent.as_posix()
    return file.as_posix()


class HelperPool:
    """Helpers of one test file at a time, ``start(file, side, index)`` making each one. The first
    time a test asks for a helper ``together``, ``fewest`` helpers of every side start at once:
    their starts overlap on the host's cores instead of queueing one after another."""

    def __init__(
        self, start: Callable[[str, str, int], RevisionHelper], sides: Sequence[str], fewest: int
    ) -> None:
        self._start = start
        self._sides = tuple(sides)
        self._fewest = fewest
        self._file: str | None = None
        self._helpers: dict[str, list[RevisionHelper]] = {side: [] for side in self._sides}
        self._tests: dict[str, list[RevisionTest | None]] = {side: [] for side in self._sides}

    def test(self, node_id: str, side: str, index: int, *, together: bool = True) -> RevisionTest:
        """Test ``node_id`` as helper ``index`` of ``side`` runs it. A helper that ended (say, by
        a test that exits its process) is replaced by a new one; a test of another file closes
        this file's helpers first."""
        helper = self._running(node_id, side, index, together)
        served = self._tests[side][index]
        if served is None or served.node_id != node_id:
            served = self._tests[side][index] = helper.test(node_id)
        return served

    def ask(self, node_id: str, side: str, indices: range) -> None:
        """Ask helpers ``indices`` of ``side`` to run test ``node_id``, none waiting for another:
        their test bodies overlap on the host's cores instead of queueing one after another."""
        for index in indices:
            helper = self._running(node_id, side, index, together=True)
            served = self._tests[side][index]
            if served is None or served.node_id != node_id:
                helper.ask(node_id)

    def _running(self, node_id: str, side: str, index: int, together: bool) -> RevisionHelper:
        file = collected_for(node_id)
        if self._file != file:
            self.close()
            self._file = file
        if together:
            for one_side in self._sides:
                self._start_until(file, one_side, self._fewest)
        self._start_until(file, side, index + 1)
        helpers = self._helpers[side]
        if not (helpers[index].running or helpers[index].missing):
            helpers[index] = self._start(file, side, index)
            self._tests[side][index] = None
        return helpers[index]

    def _start_until(self, file: str, side: str, count: int) -> None:
        while len(self._helpers[side]) < count:
            self._helpers[side].append(self._start(file, side, len(self._helpers[side])))
            self._tests[side].append(None)

    def close(self) -> None:
        """End the file's helpers together (the next test file starts its own)."""
        helpers = [helper for side in self._sides for helper in self._helpers[side]]
        for helper in helpers:
            helper.let_go()
        for helper in helpers:
            helper.wait()
        self._helpers = {side: [] for side in self._sides}
        self._tests = {side: [] for side in self._sides}
        self._file = None
