"""The package's shape: rooms layered without cycles, modules of bounded size, no assert in
library code, a pinned public API, the plugin start-up kept light; and what no module may do
(reach the network, run a shell, write outside its directory)."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from factories import (
    bench_file,
    entry,
)

import pytest_edgetpu
from pytest_edgetpu.cli import main
from pytest_edgetpu.device.profile import Profile
from pytest_edgetpu.judge.baselines import write_entries
from pytest_edgetpu.model.examples import write_conv_model
from pytest_edgetpu.options import MARKER_DOC

PACKAGE = Path(pytest_edgetpu.__file__).resolve().parent

#: The rooms, from the ground floor up: a module imports only from its own room and the rooms
#: below it. The modules at the top of the package (the pytest layer, the run, the CLI) stand
#: above every room.
ROOMS = ("core", "model", "device", "engine", "relative", "judge", "report")


def module_name(path: Path) -> str:
    """``judge.compare`` for ``pytest_edgetpu/judge/compare.py``."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def floor(module: str) -> int:
    room = module.split(".")[0]
    return ROOMS.index(room) if room in ROOMS else len(ROOMS)


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports, anywhere in it (function-level imports too)."""
    found = set()
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            found.update(
                {target}
                if target in MODULES
                else {f"{target}.{alias.name}".lstrip(".") for alias in node.names}
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_edgetpu."):
            found.add(node.module.removeprefix("pytest_edgetpu."))
    return found & set(MODULES)


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = {name: imports_of(name) - {name} for name in MODULES}
    assert len(graph) > 20 and graph["plugin"]
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for child in sorted(graph[name]):
            assert state.get(child) != "open", " -> ".join([*path, name, child])
            if child not in state:
                visit(child, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_every_import_runs_from_a_room_to_its_own_or_a_lower_one() -> None:
    upwards = [
        f"{name} -> {target}"
        for name in sorted(MODULES)
        for target in sorted(imports_of(name))
        if floor(target) > floor(name)
    ]
    assert upwards == []
    assert {name.split(".")[0] for name in MODULES if "." in name} == set(ROOMS)


def test_no_module_of_the_package_exceeds_500_lines() -> None:
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    assert {name: n for name, n in lengths.items() if n > 500} == {}


def test_library_code_holds_no_assert() -> None:
    # ``python -O`` drops asserts: a check the code relies on must be an ``if`` that raises.
    found = [
        f"{name}:{node.lineno}"
        for name, path in sorted(MODULES.items())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


def test_the_public_api_is_pinned() -> None:
    assert pytest_edgetpu.__all__ == [
        "BaselineError",
        "BenchResult",
        "ConfigError",
        "DeviceBusyError",
        "DeviceError",
        "EdgeTpuError",
        "LoadedModel",
        "ModelError",
        "NeedsEdgeTpuError",
        "ResultsError",
        "RuntimeUnavailableError",
        "Status",
        "Verdict",
    ]
    for name in pytest_edgetpu.__all__:
        assert getattr(pytest_edgetpu, name).__name__ == name


def test_the_marker_doc_is_product_mds_signature() -> None:
    # product.md's arguments, in its order; an argument added later (fully_delegated) follows.
    assert MARKER_DOC.startswith(
        "tpu_bench(model=None, *, threshold=None, metric='p50', warmup=None, min_runs=None, "
        "max_time=None, num_threads=None, fully_delegated=None): "
    )


def test_the_plugin_imports_no_numpy_runtime_or_baselines_at_start_up() -> None:
    code = (
        "import sys, pytest_edgetpu.plugin\n"
        "heavy = [m for m in ('numpy', 'ai_edge_litert', 'pytest_edgetpu.judge.baselines',"
        " 'pytest_edgetpu.model.examples') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_reading_a_models_operators_imports_none_of_the_generated_schema_modules(
    tmp_path: Path,
) -> None:
    # ``import tflite`` imports ~190 modules in every pytest process; the names need one.
    model = write_conv_model(tmp_path / "conv.tflite")
    code = (
        "import sys\n"
        "from pytest_edgetpu.model.inspection import inspect_model\n"
        f"print(inspect_model({str(model)!r}).operators, 'tflite' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == (
        "('CONV_2D', 'DEPTHWISE_CONV_2D', 'CONV_2D', 'MEAN', 'FULLY_CONNECTED', 'SOFTMAX') False"
    )


#: The modules that run under pytest; every other module is engine, usable without it.
PYTEST_SIDE = {"plugin", "fixtures", "items", "outputs", "xdist_hooks", "relative.serve"}


def test_the_engine_never_imports_pytest() -> None:
    for name, path in MODULES.items():
        if name in PYTEST_SIDE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0
        }
        assert not imported & {"pytest", "_pytest", "xdist"}, name


def test_plugin_py_holds_hooks_only() -> None:
    tree = ast.parse((PACKAGE / "plugin.py").read_text(encoding="utf-8"))
    assert not [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    public = [name for name in functions if not name.startswith("_")]
    assert public and all(name.startswith("pytest_") for name in public), public


def test_no_loose_dict_crosses_a_module_boundary() -> None:
    """No public function or method takes or returns ``dict[str, Any]`` (or a Mapping of Any):
    what modules exchange is typed."""
    loose = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            annotations = [a.annotation for a in node.args.args + node.args.kwonlyargs]
            for annotation in [*annotations, node.returns]:
                text = ast.unparse(annotation) if annotation is not None else ""
                if "str, Any]" in text:
                    loose.append(f"{name}.{node.name}: {text}")
    assert loose == []


# ---------------------------------------------------------------------------------------------
# security


def test_a_run_and_the_command_never_touch_the_network(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("pytest-edgetpu tried to use the network")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    project.makepyfile(test_net=bench_file("test_a"))
    project.runpytest("--edgetpu-update-baselines", "--edgetpu-json=r.json").assert_outcomes(
        passed=1
    )
    monkeypatch.chdir(project.path)
    for argv in (["devices"], ["show"], ["compare", "r.json"], ["accept", "r.json"]):
        assert main(argv) == 0


def test_no_shell_is_ever_invoked() -> None:
    """Subprocesses get argument lists, never a shell: user text cannot become a command."""
    assert len(MODULES) > 40  # every room's modules, not the top level's alone
    for name, source in sorted(MODULES.items()):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "shell":
                pytest.fail(f"{name}:{node.value.lineno}: shell= passed to a subprocess")
            if isinstance(node, ast.Attribute) and node.attr in {"system", "popen", "getoutput"}:
                pytest.fail(f"{name}:{node.lineno}: os.{node.attr} runs a shell")


def test_profile_keys_cannot_name_a_file_outside_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "baselines"
    for value in ("../../etc/passwd", "..", "/abs/path", "a\x00b", ".hidden", "~root"):
        profile = Profile({"device": value, "runtime": value})
        written = write_entries(directory, profile, {"t": entry(1.0)})
        assert written.parent == directory
        assert not written.name.startswith(".")
    assert not any(p for p in tmp_path.iterdir() if p != directory)
