"""What a run shows and writes: ``-v`` progress lines, the terminal summary, and the files
(baselines, the JSON results, the Markdown report and job summary, plots).

Only a serial run or the xdist controller writes; workers hand their results over. The hook
objects here are registered by :mod:`pytest_edgetpu.plugin` when their option asks for them.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from .core.errors import EdgeTpuError, one_line
from .core.keys import owner_of

if TYPE_CHECKING:
    from .run import BenchRun

__all__ = [
    "PROGRESS_ATTR",
    "CollectionErrors",
    "FailedTests",
    "Outputs",
    "ProgressLines",
]

#: The call report attribute that carries a test's progress lines (to the controller, too).
PROGRESS_ATTR: Final = "edgetpu_progress"


class ProgressLines:
    """With ``-v``, each benchmark's figures on a line under its outcome; registered only
    then, and not on xdist workers, whose output nobody sees."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)  # after the terminal reporter wrote the outcome
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        lines = getattr(report, PROGRESS_ATTR, ())
        if terminal is None or not lines:
            return
        terminal.ensure_newline()
        terminal.write("\n".join(f"    {line}" for line in lines))
        # Left open the way the reporter leaves its own lines, so that the next test's line
        # starts below this one instead of after a blank line.
        terminal.currentfspath = -2


class CollectionErrors:
    """Whether collection failed (here or, under xdist, on a worker), which pytest reports as
    an interrupted run although no test ran and nothing was lost."""

    def __init__(self) -> None:
        self.failed = False

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.failed = self.failed or report.failed


class FailedTests:
    """With ``--edgetpu-prune-baselines``: the tests that failed (in any phase, on any
    worker), whose entries pruning keeps: a broken test is not a deleted one."""

    def __init__(self) -> None:
        self.node_ids: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.node_ids.add(report.nodeid)


class Outputs:
    """The files a run writes at its end and the lines that say so."""

    def __init__(self, run: BenchRun) -> None:
        self.run = run
        #: One line per file written, or per file that could not be.
        self.lines: list[str] = []
        #: Entries an update kept although their test did not run.
        self.kept: list[str] = []

    def write(self, session: pytest.Session, exitstatus: int, failed: FailedTests | None) -> None:
        """Write baselines (update mode), the JSON results, the report and the plots. An
        interrupted run writes nothing: its files would mix this run's part with the last
        one's."""
        run, collector = self.run, self.run.collector
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            # Under xdist, measurements still on the workers never reach this count.
            timed = len(collector.timed)
            discarded = f" ({timed} measurement(s) discarded)" if timed else ""
            self.lines.append(
                f"interrupted: no baselines, results or report written{discarded}; run again "
                "to record them"
            )
            return
        if not collector.results and not collector.structures:
            return
        from .core.jsonio import write_text
        from .judge.results_file import ResultsFile
        from .report.render import markdown_report

        settings = run.settings
        try:
            if settings.update:
                self.kept = collector.kept_not_run(run.store)
                paths, errors = collector.write_baselines()
                self.lines += [f"baselines written to {path}" for path in paths]
                self.lines += [f"ERROR: {error}" for error in errors]
                if errors:
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
                if failed is not None:
                    self._prune(session, paths, failed)
            results = tuple(collector.results)
            environment = collector.environment
            if settings.json_path is not None:
                from .relative.git import commit_of

                # Which commit was measured, so that history can order runs by it.
                commit = commit_of(session.config.rootpath)
                document = ResultsFile(
                    results,
                    {**environment, **commit},
                    collector.profiles,
                    tuple(collector.structures),
                )
                write_text(settings.json_path, document.dumps())
                self.lines.append(f"results written to {run.display(settings.json_path)}")
            step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if settings.report_path is not None or step_summary:
                markdown = markdown_report(
                    results, environment, collector.profiles, collector.structures
                )
                if settings.report_path is not None:
                    write_text(settings.report_path, markdown)
                    self.lines.append(f"report written to {run.display(settings.report_path)}")
                if step_summary:
                    write_text(Path(step_summary), markdown, append=True)
            if settings.plot_dir is not None:
                from .report.plots import write_plots  # matplotlib and numpy: only when plotting

                plots = write_plots(results, settings.plot_dir)
                self.lines.append(
                    f"{len(plots)} plot(s) written to {run.display(settings.plot_dir)}"
                )
        except (EdgeTpuError, OSError) as error:
            self.lines.append(f"ERROR: {error}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _prune(self, session: pytest.Session, written: list[Path], failed: FailedTests) -> None:
        """Remove, from the files this update wrote, the entries of tests that did not run."""
        if session.shouldfail or session.shouldstop:
            # -x or --maxfail: the tests after the stop did not run, and are not gone.
            self.lines.append("not pruned: the run stopped early (-x or --maxfail)")
            return
        measured = {r.test_id for r in self.run.collector.timed}

        def keep(key: str) -> bool:
            return key in measured or owner_of(key) in failed.node_ids

        from .judge.baselines import prune_entries

        pruned: set[str] = set()
        for path in written:
            removed = prune_entries(self.run.settings.baseline_dir / path.name, keep)
            pruned.update(removed)
            if removed:
                self.lines.append(
                    f"pruned from {path} (not measured in this run): {', '.join(removed)}"
                )
        self.kept = [test_id for test_id in self.kept if test_id not in pruned]

    def summary(self, terminal: Any, exitstatus: int) -> None:
        """The table of every benchmark, its verdict, and the files written. An interrupted
        update recorded nothing, so it shows the table and says so, without the update's
        lines."""
        settings, timed = self.run.settings, self.run.collector.timed
        structures = self.run.collector.structures
        if not timed and not structures and not self.lines:
            return
        from .report.render import (
            headline,
            kept_line,
            relative_line,
            result_notes,
            summary_table,
            unique_structures,
            update_headline,
            update_line,
        )

        # Fitted only to a terminal a person reads: a CI log keeps every column, and each
        # message on one line for grep.
        width = terminal.config.get_terminal_writer().fullwidth if terminal.isatty() else None

        def say(line: str) -> None:
            text = one_line(line)
            if width is not None and len(text) > width:
                text = textwrap.fill(
                    text, width, subsequent_indent="    ", break_long_words=False,
                    break_on_hyphens=False,
                )  # fmt: skip
            terminal.write_line(text)

        terminal.write_sep("-", "edgetpu latency")
        if timed:
            terminal.write_line(summary_table(timed, width))
        recorded_nothing = settings.update and exitstatus == pytest.ExitCode.INTERRUPTED
        if timed and not recorded_nothing:
            terminal.write_line(update_headline(timed) if settings.update else headline(timed))
            for result in timed:
                shown = ""
                if settings.update:
                    shown = update_line(result)
                    say(shown)
                elif result.verdict.reason or result.verdict.noise_note:
                    shown = result.verdict.message
                    say(f"{result.test_id}: {shown}")
                for note in result_notes(result, shown):
                    say(f"{result.test_id}: {note}")
            for test_id in self.kept:
                say(kept_line(test_id))
            if relative_line(timed):
                say(relative_line(timed))
        for verdict in unique_structures(structures):
            say(verdict.message)
        for line in self.lines:
            say(f"edgetpu: {line}")
