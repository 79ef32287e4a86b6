"""The hooks of a relative-mode helper: run the one test it serves, then measure on command.

See :mod:`pytest_edgetpu.atrev`. The helper's collection keeps only that test; when it is not
there (new since the revision) or cannot be collected, the other side is told so and nothing
runs. After the test body passed, its ``tpu_bench`` calls are served until the other side is
done; a body that fails says so instead.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from .atrev import Serving
from .errors import one_line

__all__ = ["ServeHooks"]


class ServeHooks:
    """Registered only in a helper process (``PYTEST_EDGETPU_SERVE`` set)."""

    def __init__(self, serving: Serving) -> None:
        self.serving = serving
        self.collect_errors: list[str] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
            told = [line for line in lines if line.startswith("E ")]
            self.collect_errors.append((told or lines or ["a collection error"])[-1])

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        node_id, revision = self.serving.node_id, self.serving.revision
        chosen = [item for item in items if item.nodeid == node_id]
        if not chosen:
            if self.collect_errors:
                error = one_line(self.collect_errors[0])
                self.serving.finish(f"the test cannot be collected at {revision}: {error}")
            else:
                self.serving.finish(f"new since {revision}: no test {node_id} there")
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            yield
        except BaseException as error:
            words = one_line(str(error).strip().splitlines()[0] if str(error).strip() else "")
            self.serving.finish(
                f"the test fails at {self.serving.revision} ({type(error).__name__}"
                + (f": {words}" if words else "")
                + ")"
            )
            raise
        self.serving.serve()

    def pytest_sessionfinish(self) -> None:
        self.serving.finish(f"the test did not run at {self.serving.revision}")
