"""pytest hooks of pytest-edgetpu: options, marker, collection, verdicts, summary and files.

Hooks only; the work is done by :mod:`pytest_edgetpu.run` and the modules it drives, the
collection of ``.tflite`` files by :mod:`pytest_edgetpu.items`, and what the run shows and
writes by :mod:`pytest_edgetpu.outputs`. The engine modules (numpy, the TFLite runtime) are
imported when a run benchmarks something, never at plugin start-up: every pytest run of a
project that installs the plugin pays for this module.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import fixtures
from .config import SessionSettings, session_settings, test_settings
from .core.errors import ConfigError, EdgeTpuError, one_line
from .fixtures import PENDING_KEY, RUN_KEY, LazyRun
from .items import collect_tflite, passed_over_models
from .options import MARKER_DOC, OPTIONS
from .outputs import PROGRESS_ATTR, CollectionErrors, FailedTests, Outputs, ProgressLines
from .relative.serve import ServeHooks
from .relative.serving import Serving
from .xdist_hooks import DEVICE_INPUT, ControllerHooks, WorkerHooks, node_count

if TYPE_CHECKING:
    from .run import BenchRun

_OUTPUTS_KEY = pytest.StashKey[Outputs]()
_FAILED_KEY = pytest.StashKey[FailedTests]()
_PROGRESS_KEY = pytest.StashKey[list[str]]()
_COLLECTION_KEY = pytest.StashKey[CollectionErrors]()


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
        from .report.plots import check_matplotlib

        try:
            check_matplotlib()
        except ConfigError as error:
            raise pytest.UsageError(str(error)) from None
    worker_input = getattr(config, "workerinput", None)
    serving = Serving.from_environment(os.environ)
    if serving is not None:
        # A relative-mode helper collects the .tflite file it may serve, and smoke-runs its
        # test's benchmarks (TpuBench) instead of measuring them.
        settings = dataclasses.replace(settings, enabled=True)
        config.pluginmanager.register(ServeHooks(serving), "edgetpu-serve")

    def make_run() -> BenchRun:
        from .run import BenchRun, Role

        if serving is not None:
            return BenchRun(settings, config.rootpath, role=Role.BASE, serving=serving)
        if worker_input is not None:
            return BenchRun(
                settings,
                config.rootpath,
                role=Role.WORKER,
                workers=int(worker_input["workercount"]),
                assigned_device=worker_input.get(DEVICE_INPUT),
            )
        if controller:
            return BenchRun(settings, config.rootpath, role=Role.CONTROLLER, workers=workers)
        return BenchRun(settings, config.rootpath)

    controller = (
        worker_input is None and serving is None and _is_controller(config) and settings.enabled
    )
    workers = node_count(config) if controller else 1
    lazy = LazyRun(settings, make_run)
    if controller:
        try:
            hooks = ControllerHooks(lazy.get(), workers)
        except EdgeTpuError as error:
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(hooks, "edgetpu-controller")
    elif worker_input is not None:
        config.pluginmanager.register(WorkerHooks(lazy), "edgetpu-worker")
    config.stash[RUN_KEY] = lazy
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
    from .device.discovery import discover
    from .device.selection import resolve_devices

    try:
        devices = resolve_devices(
            settings.devices,
            discover(),
            settings.sources["device"],
            root=config.rootpath,
            delegate_options=settings.delegate_options,
        )
        return len(devices)
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
        if run.role.writes_outputs:
            _check_outputs(run.settings)
    except EdgeTpuError as error:
        raise pytest.UsageError(str(error)) from None


def _check_outputs(settings: SessionSettings) -> None:
    # Refused now rather than after minutes of measuring, when the results would be lost.
    from .core.jsonio import check_writable

    sources = settings.sources
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
    if run.relative is not None:
        mode = f"gating against {run.relative.words}, measured now in interleaved pairs,"
    if not run.role.measures:
        devices = ", ".join(d.id for d in run.devices)
        primed = (
            f" (firmware loaded into {len(run.primed)} USB stick(s) in DFU mode first)"
            if run.primed
            else ""
        )
        return f"edgetpu: {mode} on {devices}, one xdist worker per device{primed}"
    device = run.station.words(1)
    if run.relative is not None:
        return f"edgetpu: {mode} on {device}"
    baseline = run.display(run.store.path_for(run.station.profile))
    return f"edgetpu: {mode} on {device}; baselines {baseline}"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """With ``--edgetpu``, a ``.tflite`` file named on the command line or in ``testpaths``
    (or found in a directory named there) is one benchmark item."""
    return collect_tflite(file_path, parent)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """A ``tpu_bench`` marker with an unknown or ill-typed argument is a collection error; a
    ``.tflite`` entry of a folder that is no regular file is a benchmark that fails."""
    report = yield
    if report.passed and isinstance(collector, pytest.Directory):
        report.result.extend(passed_over_models(collector))
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
    from .judge.results import TimedResult
    from .report.junit import junit_properties
    from .report.render import progress_line

    run = item.config.stash[RUN_KEY].get()
    failures = []
    for pending in pending_benches:
        try:
            result = run.judge(pending)
        except EdgeTpuError as error:
            raise pytest.fail.Exception(str(error), pytrace=False) from None
        if not isinstance(result, TimedResult):
            continue
        item.user_properties.extend(junit_properties(result))
        item.stash.setdefault(_PROGRESS_KEY, []).append(progress_line(result))
        if result.verdict.fails(run.settings.strict) and not run.settings.update:
            failures.append(result.verdict.message)
        if result.memory_verdict is not None and result.memory_verdict.failed:
            failures.append(result.memory_verdict.message)
    if failures:
        pytest.fail("\n".join(map(one_line, failures)), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, Any]:
    """The call report carries the test's progress lines."""
    report = yield
    if report.when == "call" and _PROGRESS_KEY in item.stash:
        setattr(report, PROGRESS_ATTR, item.stash[_PROGRESS_KEY])
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write baselines (update mode), the JSON results, the Markdown report and the plots."""
    config = session.config
    run = config.stash[RUN_KEY].made
    if run is None or not run.settings.enabled or not run.role.writes_outputs:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED and config.stash[_COLLECTION_KEY].failed:
        return  # no test ran: pytest's "Interrupted: 1 error during collection" says why
    outputs = config.stash[_OUTPUTS_KEY] = Outputs(run)
    outputs.write(session, exitstatus, config.stash.get(_FAILED_KEY, None))
    if run.settings.bisect:
        from .judge.compare import bisect_exit

        session.exitstatus = bisect_exit(
            [result.verdict.status for result in run.collector.timed],
            failed=exitstatus == pytest.ExitCode.TESTS_FAILED,
            completed=exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED),
        )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The table of every benchmark, its verdict, and the files written."""
    outputs = config.stash.get(_OUTPUTS_KEY, None)
    if outputs is not None:
        outputs.summary(terminalreporter, exitstatus)
