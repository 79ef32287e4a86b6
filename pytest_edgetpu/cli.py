"""The ``pytest-edgetpu`` command (also ``python -m pytest_edgetpu``).

Subcommands: ``devices`` (what is attached, which runtime), ``show`` (baselines as a table),
``compare RESULTS.json`` (verdicts without pytest), ``accept RESULTS.json`` (results become
baselines), ``diff REV`` (baselines changed since a revision), ``inspect MODEL...`` (what
edgetpu_compiler did), ``history RESULTS.json...`` (steps in a gate's runs), ``bisect GOOD BAD``
(the commit that made benchmarks slower). Exit codes: 0
success, 1 a regression or a measurement not accepted (``accept``), 2 bad input.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .bisect import add_bisect_command
from .core.errors import BaselineError, EdgeTpuError, ResultsError, RevisionError, one_line
from .core.jsonio import MAX_BYTES
from .core.stats import instance_figure, shift
from .device.discovery import discover
from .device.profile import Profile
from .device.runtime import load_runtime
from .device.selection import cpu_governor, cpu_model, parse_device_spec, resolve_devices
from .engine.memory import MemoryPolicy
from .judge.baselines import (
    STRUCTURE_FILE,
    BaselineEntry,
    BaselineFile,
    BaselineStore,
    write_entries,
)
from .judge.baselines import parse_text as parse_baseline_text
from .judge.compare import recordable
from .judge.gate import compared_entry, final_verdict, first_verdict, judge_memory
from .judge.results import current_of
from .judge.results_file import load_results
from .judge.structure import StructureStore, judge_structure, parse_structures
from .judge.verdict import Policy, Status, format_bytes, format_ms
from .options import option_help, parse_memory_slack, parse_threshold
from .relative.git import Revision, git
from .report.render import says_more, summary_table
from .report.table import text_table

__all__ = ["main"]


def _devices(_: argparse.Namespace) -> int:
    found = discover()
    try:
        runtime = load_runtime().label
    except EdgeTpuError as error:
        runtime = f"none ({error})"
    print(f"runtime: {runtime}")
    print(f"libedgetpu: {found.libedgetpu or 'not loaded'}", end="")
    if found.libedgetpu_version:
        print(f" ({found.libedgetpu_version}, build {found.libedgetpu_build or 'unknown'})", end="")
    print()
    governor = cpu_governor()
    cpus = resolve_devices(parse_device_spec("cpu", "cpu"), found, "cpu")
    cpu_ids = ", ".join(device.id for device in cpus)
    print(
        f"cpu: {cpu_ids} (one per usable core; {platform.machine()}, {cpu_model()}"
        + (f", governor {governor}" if governor else "")
        + ")"
    )
    builtin_ids = ", ".join(device.id.replace("cpu", "cpu-builtin") for device in cpus)
    print(f"cpu-builtin: {builtin_ids} (the same cores, XNNPACK off)")
    print("delegate: any TFLite external delegate library, as --edgetpu-device=delegate:PATH")
    from .device.accelerators import accelerator_missing

    for accelerator in ("cpu", "gpu", "npu"):
        missing = accelerator_missing(accelerator)
        print(f"litert-{accelerator}: {missing or 'available (LiteRT CompiledModel)'}")
    if found.devices:
        rows = [
            {
                "device": tpu.device_string,
                "path": tpu.path,
                "link": tpu.link,
                "dfu": "yes" if tpu.dfu_mode else "",
                "temperature": f"{tpu.temperature_c:.1f} °C"
                if tpu.temperature_c is not None
                else "",
                "found by": tpu.source,
            }
            for tpu in found.devices
        ]
        _print_table(rows)
    else:
        print(
            f"Edge TPUs: none attached; --edgetpu-device=auto runs on the CPU ({cpu_ids}; "
            "-n auto starts one worker per CPU device)"
        )
    for note in found.notes:
        print(f"note: {note}")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = BaselineStore(Path(args.baseline_dir), "--baseline-dir")
    rows = [
        {
            "test": test_id,
            "profile": key,
            "metric": entry.metric,
            **{
                f"{name} ms": format_ms(entry.summary_ms[name]) if name in entry.summary_ms else ""
                for name in ("p50", "p90", "p99")
            },
            "workers": entry.workers,
            "instances": len(entry.instance_values_ms),
            "recorded": entry.recorded[:10],
            "model sha256": (entry.model_sha256 or "")[:12],
        }
        for key, baseline in store.files.items()
        for test_id, entry in sorted(baseline.entries.items())
    ]
    structures = StructureStore(Path(args.baseline_dir)).entries
    if not rows and not structures:
        print(f"no baselines in {args.baseline_dir}")
        return 0
    if rows:
        _print_table(rows)
    if structures:
        print(f"Edge TPU compile structures ({Path(args.baseline_dir) / STRUCTURE_FILE}):")
        _print_table(
            [
                {
                    "model": model,
                    "Edge TPU subgraphs": s.edgetpu_subgraphs,
                    "cached on chip": format_bytes(s.cached_bytes),
                    "streamed": format_bytes(s.streamed_bytes),
                    "CPU ops": sum(s.cpu_ops.values()),
                    "compiler": ", ".join(s.compiler_versions),
                    "min runtime": s.min_runtime_version,
                }
                for model, s in sorted(structures.items())
            ]
        )
    return 0


def _print_table(rows: Sequence[Mapping[str, Any]]) -> None:
    # Test ids and paths come from files anyone may have written: no escape sequence in them
    # reaches the terminal.
    shown = [{k: one_line(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows]
    print(text_table(shown))


def _compare(args: argparse.Namespace) -> int:
    source = Path(args.results)
    document = load_results(source)
    store = BaselineStore(Path(args.baseline_dir), "--baseline-dir")
    policy = Policy(threshold=parse_threshold(args.threshold, "--threshold"))
    memory_policy = MemoryPolicy(
        parse_threshold(args.memory_threshold, "--memory-threshold"),
        float(parse_memory_slack(args.memory_slack, "--memory-slack")),
    )
    judged = []
    for result in document.timed:
        # As the gate judges a measurement (first_verdict, final_verdict), less the second
        # measurement a suspected regression gets there: a relative run's result against the
        # side measured beside it, any other against the stored entry.
        lookup = (
            store.lookup(result.test_id, document.profiles[result.profile])
            if result.against is None
            else None
        )
        verdict = final_verdict(
            first_verdict(current_of(result), result.against, lookup, policy),
            result.thermal,
            result.run_queue_wait,
            update=False,
            structure=result.structure,
        )
        memory = judge_memory(
            result.memory, result.against, lookup, memory_policy, result.device_words
        )
        judged.append(
            replace(
                result,
                verdict=verdict,
                compared_entry=compared_entry(verdict, lookup),
                recorded=False,
                memory_verdict=memory,
            )
        )
    if not judged:
        print(f"{source} holds no timed results")
        return 0
    print(
        summary_table(judged, shutil.get_terminal_size().columns if sys.stdout.isatty() else None)
    )
    for result in judged:
        if says_more(result):
            print(one_line(f"{result.test_id}: {result.verdict.message}"))
        if result.memory_verdict is not None and result.memory_verdict.failed:
            print(one_line(f"{result.test_id}: {result.memory_verdict.message}"))
    regressed = sum(1 for r in judged if r.verdict.status is Status.REGRESSION)
    grown = sum(1 for r in judged if r.memory_verdict is not None and r.memory_verdict.failed)
    print(
        f"{regressed} regressed of {len(judged)} (one measurement each: a regression found here "
        "is not confirmed by a second one, as in a pytest run)"
        + (f"; {grown} grew in memory" if grown else "")
    )
    return 1 if regressed or grown else 0


def _not_accepted_because(status: Status, args: argparse.Namespace) -> str | None:
    """The fix for a measurement ``accept`` refuses, judged ``status``; None when it takes it."""
    if not recordable(status, accept_unstable=args.accept_unstable):
        # The same rule as --edgetpu-update-baselines's.
        return "measure again, or accept it anyway with --accept-unstable"
    if status is Status.REGRESSION and not args.accept_regression:
        # A CI run's regression is what the gate exists to stop: taken only when said so.
        return "fix it, or if it is intended, accept it anyway with --accept-regression"
    return None


def _accept(args: argparse.Namespace) -> int:
    source = Path(args.results)
    document = load_results(source)
    directory = Path(args.baseline_dir)
    store = BaselineStore(directory, "--baseline-dir")
    by_profile: dict[str, tuple[Profile, dict[str, BaselineEntry]]] = {}
    statuses: dict[tuple[str, str], Status] = {}
    refused = 0
    for result in document.timed:
        entry, judged = result.baseline_entry, result.verdict.status
        fix = _not_accepted_because(judged, args)
        if fix is not None:
            print(
                one_line(
                    f"{result.test_id}: not accepted: its measurement was {judged.value} "
                    f"against the baseline; {fix}"
                )
            )
            refused += 1
            continue
        profile = document.profiles[result.profile]
        by_profile.setdefault(profile.key, (profile, {}))[1][result.test_id] = entry
        statuses[profile.key, result.test_id] = judged
    if not by_profile and not refused:
        print(f"{source} holds no timed results: nothing to accept")
        return 0
    for profile, entries in by_profile.values():
        for test_id, entry in sorted(entries.items()):
            old = store.lookup(test_id, profile).entry
            was = f"was {format_ms(old.value_ms)} ms" if old else "new"
            status = statuses.get((profile.key, test_id))
            if status in (Status.REGRESSION, Status.UNSTABLE):
                was += f", accepted although {status.value}"
            print(one_line(f"{test_id}: {entry.metric} {format_ms(entry.value_ms)} ms ({was})"))
        path = write_entries(directory, profile, entries)
        print(f"baselines written to {path}")
    if refused:
        # A CI step that accepts a run's results must not look green when it did not.
        print(f"{refused} measurement(s) not accepted (see above)")
        return 1
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .model.inspection import inspect_model
    from .report.inspection import inspection_json, inspection_lines

    documents, failed = [], 0
    for path in args.models:
        try:
            info = inspect_model(path)
        except EdgeTpuError as error:  # one bad file is one line; the others are still read
            print(f"pytest-edgetpu: error: {one_line(str(error))}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            documents.append(inspection_json(info, path))
        else:
            print("\n".join(inspection_lines(info, path)))
    if args.json:
        print(json.dumps(documents, indent=2, sort_keys=True))
    return 2 if failed else 0


def _history(args: argparse.Namespace) -> int:
    from .history import history_command  # the steps' statistics: only for this command

    return history_command(args)


def _baselines_at(rev: str, directory: Path) -> dict[str, BaselineFile]:
    try:
        git("rev-parse", "--show-toplevel", cwd=directory)
    except RevisionError:
        raise BaselineError(
            f"diff: the baseline directory {directory} is not inside a git repository; give "
            "--baseline-dir of a checkout"
        ) from None
    revision = Revision.resolve(rev, directory, "diff")
    relative = revision.relative(directory)
    files = {}
    listing = git(
        "ls-tree", "-z", "--name-only", revision.commit, "--", f"{relative}/",
        cwd=revision.toplevel,
    )  # fmt: skip
    for name in filter(None, os.fsdecode(listing).split("\0")):
        found = revision.blob(name) if name.endswith(".json") else None
        if Path(name).name == STRUCTURE_FILE:
            continue
        if found is None:
            continue
        object_id, size = found
        # Sized before it is read: a commit can hold a blob of any size.
        if size > MAX_BYTES:
            raise BaselineError(
                f"{rev}:{name}: {size} bytes is too large for a baseline file (at most {MAX_BYTES})"
            )
        text = revision.read(object_id).decode("utf-8", "replace")
        files[Path(name).stem] = parse_baseline_text(text, Path(f"{rev}:{name}"))
    return files


def _compared_ms(entry: BaselineEntry | None) -> str:
    return format_ms(entry.compared_ms) if entry is not None else ""


def _diff(args: argparse.Namespace) -> int:
    directory = Path(args.baseline_dir)
    if not directory.is_dir():
        raise BaselineError(f"no baseline directory {directory}; give --baseline-dir")
    before = _baselines_at(args.rev, directory)
    after = BaselineStore(directory, "--baseline-dir").files
    rows = []
    for key in sorted(set(before) | set(after)):
        old_entries = before[key].entries if key in before else {}
        new_entries = after[key].entries if key in after else {}
        for test_id in sorted(set(old_entries) | set(new_entries)):
            old, new = old_entries.get(test_id), new_entries.get(test_id)
            if old == new:
                continue
            if old is not None and new is not None and old.metric == new.metric:
                # The gate's rule, so that diff and the gate say the same change.
                estimate = shift(old.compared_values_ms, new.compared_values_ms)
                change = f"{estimate.estimate:+.1%}"
            elif old is not None and new is not None:
                change = f"metric {old.metric} -> {new.metric}"
            else:
                change = "added" if old is None else "removed"
            metric = next(e.metric for e in (new, old) if e is not None)
            rows.append(
                {
                    "test": test_id,
                    "profile": key,
                    "metric": metric,
                    "compared figure": instance_figure(metric),
                    "compared old ms": _compared_ms(old),
                    "compared new ms": _compared_ms(new),
                    "change": change,
                    "pooled old ms": format_ms(old.value_ms) if old else "",
                    "pooled new ms": format_ms(new.value_ms) if new else "",
                    "model": "changed"
                    if old and new and old.model_sha256 != new.model_sha256
                    else "",
                }
            )
    changed = _structure_changes(args.rev, directory)
    if not rows and not changed:
        print(f"baselines unchanged since {args.rev}")
        return 0
    if rows:
        _print_table(rows)
    if changed:
        print(f"Edge TPU compile structures changed since {args.rev}:")
        _print_table(changed)
    return 0


def _structure_changes(rev: str, directory: Path) -> list[dict[str, str]]:
    """Per model whose stored compile structure changed since ``rev``: what changed, in the
    gate's words."""
    revision = Revision.resolve(rev, directory, "diff")
    found = revision.blob(f"{revision.relative(directory)}/{STRUCTURE_FILE}")
    before = {}
    if found is not None:
        object_id, size = found
        if size > MAX_BYTES:
            raise BaselineError(f"{rev}:{STRUCTURE_FILE}: {size} bytes is too large")
        text = revision.read(object_id).decode("utf-8", "replace")
        before = parse_structures(text, f"{rev}:{STRUCTURE_FILE}")
    after = StructureStore(directory).entries
    rows = []
    for model in sorted(set(before) | set(after)):
        old, new = before.get(model), after.get(model)
        if old == new:
            continue
        if old is None or new is None:
            change = "added" if old is None else "removed"
        else:
            verdict = judge_structure(new, old, model, rev)
            change = "; ".join(verdict.findings + verdict.notes) or "unchanged"
        rows.append({"model": model, "change": change})
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-edgetpu", description="Latency baselines and devices of pytest-edgetpu."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    devices = commands.add_parser("devices", help="List attached Edge TPUs and the runtime")
    devices.set_defaults(handler=_devices)
    show = commands.add_parser("show", help="Show the baselines as a table")
    compare_cmd = commands.add_parser(
        "compare", help="Verdicts of a results file against the baselines (exit 1 on a regression)"
    )
    compare_cmd.add_argument("results", help="A results file written by --edgetpu-json")
    compare_cmd.add_argument(
        "--memory-threshold", default="10%", help=option_help("memory_threshold").replace("%", "%%")
    )
    compare_cmd.add_argument(
        "--memory-slack", default="512", help=option_help("memory_slack").replace("%", "%%")
    )
    accept = commands.add_parser("accept", help="Write a results file's measurements as baselines")
    accept.add_argument("results", help="A results file written by --edgetpu-json")
    accept.add_argument(
        "--accept-unstable",
        action="store_true",
        help="Also accept measurements whose verdict was UNSTABLE or BUSY",
    )
    accept.add_argument(
        "--accept-regression",
        action="store_true",
        help="Also accept measurements whose verdict was REGRESSION (an intended slowdown)",
    )
    diff = commands.add_parser("diff", help="How the baselines changed since a git revision")
    diff.add_argument("rev", nargs="?", help="A git revision, e.g. origin/main or HEAD~1")
    inspect = commands.add_parser(
        "inspect",
        help="What edgetpu_compiler did to each model (or a plain model's operators and weights)",
    )
    inspect.add_argument("models", nargs="+", help="One or more .tflite files")
    inspect.add_argument("--json", action="store_true", help="Print the reports as JSON")
    inspect.set_defaults(handler=_inspect)
    history = commands.add_parser(
        "history", help="Steps in the runs of a gate: its --edgetpu-json files, in any order"
    )
    history.add_argument("results", nargs="*", help="Results files written by --edgetpu-json")
    history.add_argument("--plot", help="Write a PNG per benchmark to this directory")
    history.set_defaults(handler=_history)
    bisect = add_bisect_command(commands)
    for sub in (compare_cmd, history, bisect):
        sub.add_argument(
            "--threshold", default="5%", help=option_help("threshold").replace("%", "%%")
        )
    for sub, handler in ((show, _show), (compare_cmd, _compare), (accept, _accept), (diff, _diff)):
        sub.add_argument(
            "--baseline-dir",
            default="baselines",
            help="Directory of the baselines (default: baselines)",
        )
        sub.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    # Test ids and paths may hold any character; a terminal or pipe that takes only ASCII
    # gets them escaped, not a UnicodeEncodeError traceback.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command != "diff" or args.rev is not None:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        # ``diff --output=x``: argparse takes it for an option; it was meant as the revision,
        # which _commit_of refuses with the documented message.
        args.rev = unknown[0]
    if args.command == "diff" and args.rev is None:
        parser.error("diff: give a git revision, e.g. origin/main or HEAD~1")
    try:
        status: int = args.handler(args)
        sys.stdout.flush()
    except (EdgeTpuError, ResultsError) as error:
        print(f"pytest-edgetpu: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `pytest-edgetpu devices | head -2`: the reader left; say nothing more to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status
