"""pytest hooks of pytest-edgetpu: options, marker, collection, verdicts, summary and files.

Hooks only; the work is done by :mod:`pytest_edgetpu.run` and the modules it drives. Those
(numpy, pandas, the TFLite runtime) are imported when a run benchmarks something, never at
plugin start-up: every pytest run of a project that installs the plugin pays for this module.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import fixtures
from .config import MARKER_DOC, OPTIONS, SessionSettings, session_settings, test_settings
from .errors import ConfigError, EdgeTpuError, one_line
from .fixtures import (
    PENDING_KEY,
    RUN_KEY,
    LazyRun,
    PendingBench,
    report_model_error,
)
from .parallel import DEVICE_INPUT, PAYLOAD_ATTR, ControllerHooks, node_count

if TYPE_CHECKING:
    from .run import BenchRun

_WRITTEN_KEY = pytest.StashKey[list[str]]()
_FAILED_KEY = pytest.StashKey["FailedTests"]()
_KEPT_KEY = pytest.StashKey[list[str]]()
_PROGRESS_KEY = pytest.StashKey[list[str]]()
_COLLECTION_KEY = pytest.StashKey["CollectionErrors"]()
#: The call report attribute that carries a test's progress lines (to the controller, too).
_PROGRESS_ATTR = "edgetpu_progress"


def _dest(name: str) -> str:
    return "edgetpu" + (f"_{name}" if name else "")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--edgetpu*`` option and its ``edgetpu_*`` ini key."""
    group = parser.getgroup("edgetpu", "latency gates on Edge TPUs and CPUs (pytest-edgetpu)")
    for option in OPTIONS:
        # argparse %-formats help texts; "5%" must reach it as "5%%".
        cli_help = option.help.replace("%", "%%")
        if option.cli and option.metavar is None:
            group.addoption(
                option.flag,
                action="store_true",
                default=None,
                dest=_dest(option.name),
                help=cli_help,
            )
        elif option.cli:
            group.addoption(
                option.flag,
                action="store",
                default=None,
                dest=_dest(option.name),
                metavar=option.metavar,
                help=cli_help,
            )
        parser.addini(option.ini, help=option.help, default=None)


def _settings(config: pytest.Config) -> SessionSettings:
    cli = {o.name: config.getoption(_dest(o.name)) for o in OPTIONS if o.cli}
    ini = {o.name: config.getini(o.ini) for o in OPTIONS}
    where = os.fspath(config.inipath) if config.inipath else "the ini file"
    try:
        return session_settings(cli, ini, config.rootpath, where)
    except ConfigError as error:
        raise pytest.UsageError(str(error)) from None


def _is_controller(config: pytest.Config) -> bool:
    return (
        not hasattr(config, "workerinput")
        and config.getoption("dist", "no") != "no"
        and not config.getoption("collectonly")
    )


def pytest_configure(config: pytest.Config) -> None:
    """Validate the settings and set up this process's benchmark run."""
    config.addinivalue_line("markers", MARKER_DOC)
    settings = _settings(config)
    if settings.enabled and settings.plot_dir is not None:
        from .plots import check_matplotlib

        try:
            check_matplotlib()
        except ConfigError as error:
            raise pytest.UsageError(str(error)) from None
    worker_input = getattr(config, "workerinput", None)

    def make_run() -> BenchRun:
        from .run import BenchRun

        if worker_input is not None:
            return BenchRun(
                settings,
                config.rootpath,
                role="worker",
                workers=int(worker_input["workercount"]),
                assigned_device=worker_input.get(DEVICE_INPUT),
            )
        if controller:
            return BenchRun(settings, config.rootpath, role="controller", workers=workers)
        return BenchRun(settings, config.rootpath)

    controller = worker_input is None and _is_controller(config) and settings.enabled
    workers = node_count(config) if controller else 1
    lazy = LazyRun(settings, make_run)
    if controller:
        try:
            hooks = ControllerHooks(lazy.get(), workers)
        except EdgeTpuError as error:
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(hooks, "edgetpu-controller")
    config.stash[RUN_KEY] = lazy
    config.stash[_WRITTEN_KEY] = []
    config.stash[_KEPT_KEY] = []
    if settings.enabled and worker_input is None:
        config.stash[_COLLECTION_KEY] = CollectionErrors()
        config.pluginmanager.register(config.stash[_COLLECTION_KEY], "edgetpu-collection")
    if settings.enabled and worker_input is None and config.getoption("verbose") > 0:
        config.pluginmanager.register(ProgressLines(config), "edgetpu-progress")
    config.pluginmanager.register(fixtures, "edgetpu-fixtures")
    if settings.prune and worker_input is None:
        config.stash[_FAILED_KEY] = FailedTests()
        config.pluginmanager.register(config.stash[_FAILED_KEY], "edgetpu-failed-tests")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash[RUN_KEY].made if RUN_KEY in config.stash else None
    if run is not None:
        run.close()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` with ``--edgetpu`` starts one worker per selected device."""
    settings = _settings(config)
    if not settings.enabled:
        return None
    from .devices import resolve_devices
    from .discovery import discover

    try:
        return len(resolve_devices(settings.devices, discover(), settings.device_source))
    except EdgeTpuError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before any test runs when the device, a baseline file or an output path is
    unusable."""
    lazy = session.config.stash[RUN_KEY]
    if not lazy.settings.enabled:
        return
    try:
        run = lazy.get()
        run.start()
        if run.role != "worker":
            _check_outputs(run.settings)
    except EdgeTpuError as error:
        raise pytest.UsageError(str(error)) from None


def _check_outputs(settings: SessionSettings) -> None:
    # Refused now rather than after minutes of measuring, when the results would be lost.
    from .jsonio import check_writable

    sources = settings.path_sources
    if settings.update:
        check_writable(settings.baseline_dir, sources["baseline_dir"], directory=True)
    if settings.plot_dir is not None:
        check_writable(settings.plot_dir, sources["plot"], directory=True)
    for name, path in (("json", settings.json_path), ("report", settings.report_path)):
        if path is not None:
            check_writable(path, sources[name], directory=False)


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.stash[RUN_KEY].settings.enabled:
        return None
    run = config.stash[RUN_KEY].get()
    mode = "recording baselines" if run.settings.update else "gating"
    if run.role == "controller":
        devices = ", ".join(d.id for d in run.devices)
        primed = (
            f" (firmware loaded into {len(run.primed)} USB stick(s) in DFU mode first)"
            if run.primed
            else ""
        )
        return f"edgetpu: {mode} on {devices}, one xdist worker per device{primed}"
    device = run.session.device.describe(run.runtime, 1)
    baseline = run.display(run.store.path_for(run.profile))
    return f"edgetpu: {mode} on {device}; baselines {baseline}"


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


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """With ``--edgetpu``, a ``.tflite`` file named on the command line or in ``testpaths``
    (or found in a directory named there) is one benchmark item."""
    if file_path.suffix != ".tflite" or not parent.config.stash[RUN_KEY].settings.enabled:
        return None
    resolved = file_path.resolve()
    if any(p == resolved or p in resolved.parents for p in _explicit_paths(parent.config)):
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
        session = run.session.with_threads(settings.num_threads)

        def bench() -> Any:
            return session.bench_model(session.inspect(self.path), settings.measure)

        try:
            result = bench()
        except EdgeTpuError as error:
            # Loading can fail as well as inspecting (an unknown custom op): one line either way.
            report_model_error(error, run.settings.strict)
        self.stash[PENDING_KEY] = [
            PendingBench(self.nodeid, result, settings.threshold.value, bench)
        ]

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"tpu_bench {self.path.name}"


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """A ``tpu_bench`` marker with an unknown or ill-typed argument is a collection error."""
    report = yield
    if report.passed and report.result:
        settings = collector.config.stash[RUN_KEY].settings
        errors = []
        for node in report.result:
            marker = node.get_closest_marker("tpu_bench") if isinstance(node, pytest.Item) else None
            if marker is None:
                continue
            try:
                test_settings(settings, marker.args, marker.kwargs, node.nodeid)
            except ConfigError as error:
                errors.append(str(error))
        if errors:
            report.outcome = "failed"
            report.longrepr = "\n".join(errors)
            report.result = []
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After the test body passed, judge its measurements; a regression fails the test."""
    yield
    pending_benches = item.stash.get(PENDING_KEY, [])
    if not pending_benches:
        return
    from .report import junit_properties, progress_line

    run = item.config.stash[RUN_KEY].get()
    failures = []
    for pending in pending_benches:
        try:
            verdict = run.judge(pending.key, pending.result, pending.threshold, pending.remeasure)
        except EdgeTpuError as error:
            raise pytest.fail.Exception(str(error), pytrace=False) from None
        if verdict is None:
            continue
        record = run.results[-1]  # judge() records the verdict it returns
        item.user_properties.extend(junit_properties(record))
        item.stash.setdefault(_PROGRESS_KEY, []).append(progress_line(record))
        if verdict.fails(run.settings.strict) and not run.settings.update:
            failures.append(verdict.message)
    if failures:
        pytest.fail("\n".join(map(one_line, failures)), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, Any]:
    """The call report carries the test's progress lines; on an xdist worker, the test's
    records travel to the controller with its report, so a worker that crashes later loses
    nothing that was already measured."""
    report = yield
    run = item.config.stash[RUN_KEY].made
    if report.when == "call" and _PROGRESS_KEY in item.stash:
        setattr(report, _PROGRESS_ATTR, item.stash[_PROGRESS_KEY])
    if run is not None and run.role == "worker" and report.when in ("call", "teardown"):
        payload = run.drain()
        if payload is not None:
            setattr(report, PAYLOAD_ATTR, payload)
    return report


class ProgressLines:
    """With ``-v``, each benchmark's figures on a line under its outcome; registered only
    then, and not on xdist workers, whose output nobody sees."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)  # after the terminal reporter wrote the outcome
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        lines = getattr(report, _PROGRESS_ATTR, ())
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


def _prune(session: pytest.Session, run: BenchRun, written: list[Path]) -> list[str]:
    """Remove, from the files this update wrote, the entries of tests that did not run."""
    if session.shouldfail or session.shouldstop:
        # -x or --maxfail: the tests after the stop did not run, and are not gone.
        return ["not pruned: the run stopped early (-x or --maxfail)"]
    measured = {r["test_id"] for r in run.results if r["timed"]}
    failed = session.config.stash[_FAILED_KEY].node_ids

    def keep(key: str) -> bool:
        # "test_x#2" is the second tpu_bench call of test_x.
        owner, _, call = key.rpartition("#")
        return key in measured or key in failed or (call.isdigit() and owner in failed)

    from .baselines import prune_entries

    lines = []
    pruned: set[str] = set()
    for path in written:
        removed = prune_entries(run.settings.baseline_dir / path.name, keep)
        pruned.update(removed)
        if removed:
            lines.append(f"pruned from {path} (not measured in this run): {', '.join(removed)}")
    kept = session.config.stash[_KEPT_KEY]
    kept[:] = [test_id for test_id in kept if test_id not in pruned]
    return lines


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write baselines (update mode), the JSON results and the Markdown report.

    Only a serial run or the xdist controller writes; workers hand their records over. An
    interrupted run writes nothing: its files would mix this run's part with the last one's."""
    config = session.config
    run = config.stash[RUN_KEY].made
    if run is None or not run.settings.enabled or run.role == "worker":
        return
    written = config.stash[_WRITTEN_KEY]
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        if config.stash[_COLLECTION_KEY].failed:
            return  # no test ran: pytest's "Interrupted: 1 error during collection" says why
        # Under xdist, measurements still on the workers never reach this count.
        timed = sum(1 for r in run.results if r["timed"])
        discarded = f" ({timed} measurement(s) discarded)" if timed else ""
        written.append(
            f"interrupted: no baselines, results or report written{discarded}; run again to "
            "record them"
        )
        return
    if not run.results:
        return
    from .plots import write_plots
    from .report import markdown_report
    from .results import dump_json, results_document, write_text

    try:
        if run.settings.update:
            config.stash[_KEPT_KEY] = run.kept_not_run()
            paths, errors = run.write_baselines()
            written += [f"baselines written to {path}" for path in paths]
            written += [f"ERROR: {error}" for error in errors]
            if errors:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            if run.settings.prune:
                written += _prune(session, run, paths)
        environment = run.environment()
        if run.settings.json_path is not None:
            document = results_document(run.results, environment, run.known_profiles)
            write_text(run.settings.json_path, dump_json(document))
            written.append(f"results written to {run.display(run.settings.json_path)}")
        markdown = markdown_report(run.results, environment, run.known_profiles)
        if run.settings.report_path is not None:
            write_text(run.settings.report_path, markdown)
            written.append(f"report written to {run.display(run.settings.report_path)}")
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            write_text(Path(step_summary), markdown, append=True)
        if run.settings.plot_dir is not None:
            plots = write_plots(run.results, run.store.files, run.settings.plot_dir)
            written.append(f"{len(plots)} plot(s) written to {run.display(run.settings.plot_dir)}")
    except (EdgeTpuError, OSError) as error:
        written.append(f"ERROR: {error}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The table of every benchmark, its verdict, and the files written. An interrupted
    update recorded nothing, so it shows the table and says so, without the update's lines."""
    run = config.stash[RUN_KEY].made
    if run is None:
        return
    timed = [r for r in run.results if r["timed"]]
    written = config.stash[_WRITTEN_KEY]
    if not timed and not written:
        return
    from .report import (
        headline,
        kept_line,
        result_notes,
        summary_table,
        update_headline,
        update_line,
    )

    terminalreporter.write_sep("-", "edgetpu latency")
    if timed:
        terminalreporter.write_line(summary_table(timed))
    recorded_nothing = run.settings.update and exitstatus == pytest.ExitCode.INTERRUPTED
    if timed and not recorded_nothing:
        if run.settings.update:
            terminalreporter.write_line(update_headline(timed))
        else:
            terminalreporter.write_line(headline(timed))
        for record in timed:
            verdict = record["verdict"]
            shown = ""
            if run.settings.update:
                shown = update_line(record)
                terminalreporter.write_line(one_line(shown))
            elif verdict is not None and (verdict["reason"] or verdict["noise_note"]):
                shown = verdict["message"]
                terminalreporter.write_line(one_line(f"{record['test_id']}: {shown}"))
            for note in result_notes(record, shown):
                terminalreporter.write_line(one_line(f"{record['test_id']}: {note}"))
        for test_id in config.stash[_KEPT_KEY]:
            terminalreporter.write_line(kept_line(test_id))
    for line in written:
        terminalreporter.write_line(one_line(f"edgetpu: {line}"))
