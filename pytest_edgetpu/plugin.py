"""pytest hooks of pytest-edgetpu: options, marker, collection, verdicts, summary and files.

Hooks only; the work is done by :mod:`pytest_edgetpu.run` and the modules it drives.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import fixtures
from .config import MARKER_DOC, OPTIONS, SessionSettings, session_settings, test_settings
from .devices import resolve_devices
from .discovery import discover
from .errors import ConfigError, EdgeTpuError
from .fixtures import PENDING_KEY, RUN_KEY, PendingBench, report_model_error
from .parallel import DEVICE_INPUT, PAYLOAD_ATTR, ControllerHooks, node_count
from .report import headline, markdown_report, summary_table, update_line
from .results import dump_json, results_document, write_text
from .run import BenchRun

_WRITTEN_KEY = pytest.StashKey[list[str]]()


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
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:
        run = BenchRun(
            settings,
            config.rootpath,
            role="worker",
            workers=int(worker_input["workercount"]),
            assigned_device=worker_input.get(DEVICE_INPUT),
        )
    elif _is_controller(config) and settings.enabled:
        workers = node_count(config)
        run = BenchRun(settings, config.rootpath, role="controller", workers=workers)
        try:
            config.pluginmanager.register(ControllerHooks(run, workers), "edgetpu-controller")
        except EdgeTpuError as error:
            raise pytest.UsageError(str(error)) from None
    else:
        run = BenchRun(settings, config.rootpath)
    config.stash[RUN_KEY] = run
    config.stash[_WRITTEN_KEY] = []
    config.pluginmanager.register(fixtures, "edgetpu-fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    if RUN_KEY in config.stash:
        config.stash[RUN_KEY].close()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` with ``--edgetpu`` starts one worker per selected device."""
    settings = _settings(config)
    if not settings.enabled:
        return None
    try:
        return len(resolve_devices(settings.devices, discover(), settings.device_source))
    except EdgeTpuError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before any test runs when the device or a baseline file is unusable."""
    try:
        session.config.stash[RUN_KEY].start()
    except EdgeTpuError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    run = config.stash[RUN_KEY]
    if not run.settings.enabled:
        return None
    mode = "recording baselines" if run.settings.update else "gating"
    if run.role == "controller":
        devices = ", ".join(d.id for d in run.devices)
        return f"edgetpu: {mode} on {devices}, one xdist worker per device"
    device = run.session.device.describe(run.runtime, 1)
    baseline = run.display(run.store.path_for(run.profile))
    return f"edgetpu: {mode} on {device}; baselines {baseline}"


def _explicit_paths(config: pytest.Config) -> list[Path]:
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return []
    return [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """With ``--edgetpu``, a ``.tflite`` file named on the command line (or found in a
    directory named there) is one benchmark item."""
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
        run = self.config.stash[RUN_KEY]
        settings = test_settings(run.settings, (), {}, self.nodeid)
        session = run.session.with_threads(settings.num_threads)
        try:
            info = session.inspect(self.path)
        except EdgeTpuError as error:
            report_model_error(error, run.settings.strict)
            raise

        def bench() -> Any:
            return session.bench_model(info, settings.measure)

        self.stash[PENDING_KEY] = [
            PendingBench(self.nodeid, bench(), settings.threshold.value, bench)
        ]

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"tpu_bench {self.path.name}"


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """A ``tpu_bench`` marker with an unknown or ill-typed argument is a collection error."""
    report = yield
    if report.passed and report.result:
        run = collector.config.stash[RUN_KEY]
        errors = []
        for node in report.result:
            marker = node.get_closest_marker("tpu_bench") if isinstance(node, pytest.Item) else None
            if marker is None:
                continue
            try:
                test_settings(run.settings, marker.args, marker.kwargs, node.nodeid)
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
    run = item.config.stash[RUN_KEY]
    failures = []
    for pending in item.stash.get(PENDING_KEY, []):
        try:
            verdict = run.judge(pending.key, pending.result, pending.threshold, pending.remeasure)
        except EdgeTpuError as error:
            pytest.fail(str(error), pytrace=False)
        if verdict is None:
            continue
        item.user_properties.extend(
            [
                ("edgetpu_verdict", verdict.status.value),
                (f"edgetpu_{verdict.metric}_ms", f"{verdict.current_ms:.4g}"),
                ("edgetpu_device", pending.result.device_id),
            ]
        )
        if verdict.change is not None:
            item.user_properties.append(("edgetpu_change", f"{verdict.change.estimate:+.4f}"))
        if verdict.fails(run.settings.strict) and not run.settings.update:
            failures.append(verdict.message)
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, Any]:
    """On an xdist worker, the test's records travel to the controller with its report,
    so a worker that crashes later loses nothing that was already measured."""
    report = yield
    run = item.config.stash[RUN_KEY]
    if run.role == "worker" and report.when in ("call", "teardown"):
        payload = run.drain()
        if payload is not None:
            setattr(report, PAYLOAD_ATTR, payload)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write baselines (update mode), the JSON results and the Markdown report.

    Only a serial run or the xdist controller writes; workers hand their records over."""
    config = session.config
    run = config.stash[RUN_KEY]
    if not run.settings.enabled or not run.results or run.role == "worker":
        return
    written = config.stash[_WRITTEN_KEY]
    try:
        if run.settings.update:
            written += [f"baselines written to {path}" for path in run.write_baselines()]
        environment = run.environment()
        if run.settings.json_path is not None:
            document = results_document(run.results, environment, run.known_profiles)
            write_text(run.settings.json_path, dump_json(document))
            written.append(f"results written to {run.display(run.settings.json_path)}")
        markdown = markdown_report(run.results, environment)
        if run.settings.report_path is not None:
            write_text(run.settings.report_path, markdown)
            written.append(f"report written to {run.display(run.settings.report_path)}")
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            write_text(Path(step_summary), markdown, append=True)
    except (EdgeTpuError, OSError) as error:
        written.append(f"ERROR: {error}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The table of every benchmark, its verdict, and the files written."""
    run = config.stash[RUN_KEY]
    timed = [r for r in run.results if r["timed"]]
    written = config.stash[_WRITTEN_KEY]
    if not timed and not written:
        return
    terminalreporter.write_sep("-", "edgetpu latency")
    if timed:
        terminalreporter.write_line(summary_table(timed))
        if run.settings.update:
            terminalreporter.write_line(f"{len(timed)} baseline(s) recorded")
        else:
            terminalreporter.write_line(headline(timed))
        for record in timed:
            verdict = record["verdict"]
            if record["recorded"]:
                terminalreporter.write_line(update_line(record))
            elif verdict is not None and (verdict["reason"] or verdict["noise_note"]):
                terminalreporter.write_line(f"{record['test_id']}: {verdict['message']}")
    for line in written:
        terminalreporter.write_line(f"edgetpu: {line}")
