"""Relative mode (``--edgetpu-against=REV``): each benchmark's counterpart at a git revision.

A model file the repository tracks is compared with the file as it is at the revision (``git
show REV:path``), loaded in this process on this device beside the current one: one delegate
serves both sides, so an Edge TPU is never open in two processes. A callable, or a model the
tests make themselves (untracked, such as the example suite's generated models), is compared
with the test's own code at the revision, run by a helper pytest process in a checkout of it,
one helper per test file (:mod:`pytest_edgetpu.relative.helper`). A side may be missing: a
benchmark new since the revision, a model outside the repository, a test that fails at the
revision, or a helper on an Edge TPU. Those are measured alone and say why they were not compared.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import EdgeTpuError, FailedAtRevisionError, RevisionError
from ..core.limits import MAX_MODEL_BYTES
from ..engine.against import Base, NotCompared
from ..engine.measurement import MeasureSettings
from ..engine.processes import FEWEST_PROCESS_PAIRS
from ..engine.session import DeviceSession
from ..engine.timing import StartSide
from ..model.inspection import ModelInfo
from .git import Revision, RevisionFiles
from .helper import RevisionHelper, RevisionTest
from .pool import HelperPool

__all__ = ["Relative"]


class Relative:
    """The revision a run gates against, and what of it this process made: files, a checkout,
    the helper of the test file being measured."""

    def __init__(self, revision: Revision, rootdir: Path) -> None:
        self.revision = revision
        self.rootdir = rootdir
        self.files = RevisionFiles(revision, MAX_MODEL_BYTES)
        # The test file's helpers, per side (head: the working tree, base: the revision), in
        # process pairs.
        self._pool = HelperPool(self._start_helper, ("head", "base"), FEWEST_PROCESS_PAIRS)
        self._logs = itertools.count(1)
        # The session's device, which the helpers load the tests' models on (set per call).
        self._device = "cpu"

    @classmethod
    def resolve(cls, name: str, rootdir: Path, source: str) -> Relative:
        return cls(Revision.resolve(name, rootdir, source), rootdir)

    @property
    def words(self) -> str:
        return self.revision.words

    def model(
        self, session: DeviceSession, info: ModelInfo, node_id: str, call: int
    ) -> Base | NotCompared:
        """The base side of ``info``'s model (call ``call`` of test ``node_id``), or why it
        has none."""
        relative = self.revision.relative(info.path)
        if relative is None:
            return NotCompared(
                self.words,
                str(info.path),
                (
                    f"{info.path} lies outside the git repository {self.revision.toplevel}, so "
                    f"{self.revision.name} has no version of it; not compared"
                ),
            )
        where = f"{self.revision.name}:{relative}"
        try:
            path = self.files.file(info.path)
            if path is None:
                if self.revision.tracks(info.path):
                    kind = self.revision.not_a_file(relative)
                    if kind is not None:
                        return NotCompared(
                            self.words,
                            where,
                            f"{where} is {kind} there, not a model file (a revision's links and "
                            "submodules are not followed); not compared",
                        )
                    return NotCompared(self.words, where, f"new since {self.words}: no {where}")
                # Not a versioned file but one the tests make: made as the test at the
                # revision makes it.
                return self.made_model(session, node_id, call)
            base = session.inspect(path)
        except EdgeTpuError as error:
            return NotCompared(
                self.words, where, f"{where} cannot be measured ({error}); not compared"
            )
        return session.model_base(base, self.words, where)

    def made_model(self, session: DeviceSession, node_id: str, call: int) -> Base | NotCompared:
        """The model call ``call`` of test ``node_id`` makes at the revision (its helper makes
        the file), measured in this process beside the current one, as a tracked model is: a
        model's two sides in one process show no offset between processes
        (``benchmarks/process_models.py``), so no pairs of processes. A call that is no model
        file there goes through the helpers as a callable does."""
        where = f"{self.revision.name}:{node_id}"
        if session.device.is_edgetpu:
            return self.test_call(session, node_id, call)
        self._device = session.device.kind_words
        test = self._pair_test(node_id, "base", 0)
        found = None if test.missing else test.calls.get(call)
        if found is None or found.model_sha256 is None or not Path(found.target).is_absolute():
            return self.test_call(session, node_id, call)
        try:
            made = session.inspect(Path(found.target))
        except EdgeTpuError as error:
            return NotCompared(
                self.words,
                where,
                f"the model the test makes at {self.words} cannot be measured ({error}); "
                "not compared",
            )
        return session.model_base(made, self.words, where)

    def test_call(self, session: DeviceSession, node_id: str, call: int) -> Base | NotCompared:
        """Call ``call`` of test ``node_id`` as the test makes it at the revision, or why
        there is none."""
        where = f"{self.revision.name}:{node_id}"
        if session.device.is_edgetpu:
            return NotCompared(
                self.words,
                where,
                (
                    f"the test's own code at {self.words} would run in a second process, and an "
                    f"Edge TPU is open in one process at a time ({session.device.id} is this "
                    "one's); give tpu_bench a model file the repository tracks (compared on the "
                    "device) or gate this test against stored baselines"
                ),
            )
        self._device = session.device.kind_words
        test = self._pair_test(node_id, "base", 0, together=True)
        if test.missing:
            return NotCompared(self.words, where, test.missing)
        found = test.calls.get(call)
        if found is None:
            return NotCompared(
                self.words,
                where,
                (
                    f"new since {self.words}: the test makes {len(test.calls)} tpu_bench call(s) "
                    f"there, this is call {call}"
                ),
            )

        def process_pair(pairs: range, settings: MeasureSettings) -> tuple[StartSide, StartSide]:
            # The pairs reach the test together before the first of them is measured (their
            # test bodies beside it would disturb it).
            index = pairs.start
            head, base = self._pair_tests(node_id, pairs)
            for side, served in (("the working tree", head), (self.words, base)):
                if served.missing or call not in served.calls:
                    raise FailedAtRevisionError(
                        f"{node_id} did not run as before in the helper of process pair "
                        f"{index + 1} in {side}: {served.missing or f'it made no call {call}'}"
                    )
            return head.side(call, settings), base.side(call, settings)

        return Base(
            self.words,
            where,
            lambda s: test.side(call, s),
            found.model_sha256,
            process_pair=process_pair,
        )

    def _pair_test(
        self, node_id: str, side: str, index: int, *, together: bool = False
    ) -> RevisionTest:
        """Test ``node_id`` as helper ``index`` of ``side`` (``head``: the working tree,
        ``base``: the revision) runs it; helpers start as process pairs need them, one set per
        test file, the fewest pairs ``together``."""
        with self._machinery(node_id):
            return self._pool.test(node_id, side, index, together=together)

    def _pair_tests(self, node_id: str, indices: range) -> tuple[RevisionTest, RevisionTest]:
        """Test ``node_id`` as the first pair of helpers ``indices`` runs it, every helper of
        the pairs asked before any is waited for."""
        with self._machinery(node_id):
            for side in ("head", "base"):
                self._pool.ask(node_id, side, indices)
            served = {
                side: [self._pool.test(node_id, side, index) for index in indices]
                for side in ("head", "base")
            }
        return served["head"][0], served["base"][0]

    @contextlib.contextmanager
    def _machinery(self, node_id: str) -> Iterator[None]:
        try:
            yield
        except EdgeTpuError as error:
            # The plugin's own machinery failed, not the test: a benchmark it could not compare
            # for that reason must not pass as merely "not compared".
            raise RevisionError(
                f"relative mode could not run {node_id} at {self.words}: {error}"
            ) from None

    def _start_helper(self, file: str, side: str, index: int) -> RevisionHelper:
        if side == "base":
            relative = self.revision.relative(self.rootdir)
            checkout, words = self.files.checkout() / (relative or ""), self.words
        else:
            checkout, words = self.rootdir, "the working tree"
        helper = RevisionHelper(
            checkout,
            file,
            self.files.scratch() / f"helper-{next(self._logs)}.log",
            self._device,
            # The revision's models are tried by its first helper, which runs each test before
            # the others do (they run the same checkout's code): a probe in each would be one
            # more process per helper, and one more try of every model. The working tree's
            # models this process has tried in its own probe.
            probe_models=side == "base" and index == 0,
        )
        helper.start(words)
        return helper

    def close_helper(self) -> None:
        """Close the test file's helpers (the next test file starts its own)."""
        self._pool.close()

    def close(self) -> None:
        self.close_helper()
        self.files.close()
