"""The hooks of a relative-mode helper: run each test it is asked for, then measure on command.

See :mod:`pytest_edgetpu.relative.helper`. The helper collects the whole file and runs no test of
its own accord: it runs the test the other side names, and once that test's body has passed, serves
its ``tpu_bench`` calls until the other side is done with it; then the next one. A test that is not
there (new since the revision) or cannot be collected, or is skipped or fails there, says so
instead. Each test runs as if it were the session's last (its fixtures, session-scoped ones
included, are torn down after it), since which test comes next is known only once asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from typing import NoReturn

import pytest

from ..core.errors import one_line
from .channel import error_words
from .serving import Serving

__all__ = ["ServeHooks"]


class ServeHooks:
    """Registered only in a helper process (``PYTEST_EDGETPU_SERVE`` set)."""

    def __init__(self, serving: Serving) -> None:
        self.serving = serving
        self.collect_errors: list[str] = []
        self.exit_status = 0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
            told = [line for line in lines if line.startswith("E ")]
            self.collect_errors.append((told or lines or ["a collection error"])[-1])

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        items = {item.nodeid: item for item in session.items}
        revision = self.serving.revision
        while (node_id := self.serving.next_test()) is not None:
            item = items.get(node_id)
            if item is None:
                if self.collect_errors:
                    error = one_line(self.collect_errors[0])
                    self.serving.finish(f"the test cannot be collected at {revision}: {error}")
                else:
                    self.serving.finish(f"new since {revision}: no test {node_id} there")
                continue
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
            self.serving.finish(f"the test did not run at {revision}")
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and report.when in ("setup", "call"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            reason = one_line(str(reason).removeprefix("Skipped: "))
            self.serving.finish(
                f"the test is skipped at {self.serving.revision}"
                + (f" ({reason})" if reason else "")
            )

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            yield
        except BaseException as error:
            self.serving.finish(f"the test fails at {self.serving.revision} ({error_words(error)})")
            if isinstance(error, KeyboardInterrupt):
                # Raised by the test's own code (a helper has its own session: no Ctrl-C
                # reaches it); as a failure, the helper's session goes on to the next test.
                raise pytest.fail.Exception("KeyboardInterrupt", pytrace=False) from None
            raise
        self.serving.serve()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.serving.finish(f"the test did not run at {self.serving.revision}")
        self.exit_status = int(session.exitstatus)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> NoReturn:
        # The session has finished (its hooks, the project's included, have run) and every test
        # it ran was torn down as the session's last: the interpreter's own teardown is all that
        # is left, and the other side waits for it (eight helpers ending took 0.49 s of a 7 s
        # stored gate of six callables, 0.13 s ending here).
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(self.exit_status)
