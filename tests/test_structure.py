"""The package's shape: no import cycle, a pinned public API, the plugin start-up kept light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest_edgetpu
from pytest_edgetpu.config import MARKER_DOC
from pytest_edgetpu.example_models import write_conv_model

PACKAGE = Path(pytest_edgetpu.__file__).resolve().parent


def imports_of(module: Path) -> set[str]:
    """The package modules ``module`` imports, anywhere in it (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_edgetpu."):
            found.add(node.module.split(".")[1])
    return found & {p.stem for p in PACKAGE.glob("*.py")}


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = {p.stem: imports_of(p) - {p.stem} for p in PACKAGE.glob("*.py")}
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
        "heavy = [m for m in ('numpy', 'ai_edge_litert', 'pytest_edgetpu.baselines',"
        " 'pytest_edgetpu.example_models') if m in sys.modules]\n"
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
        "from pytest_edgetpu.models import inspect_model\n"
        f"print(inspect_model({str(model)!r}).operators, 'tflite' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == (
        "('CONV_2D', 'DEPTHWISE_CONV_2D', 'CONV_2D', 'MEAN', 'FULLY_CONNECTED', 'SOFTMAX') False"
    )


#: The modules that run under pytest; every other module is engine, usable without it.
PYTEST_SIDE = {"plugin", "fixtures", "collect", "outputs", "parallel", "serve"}


def test_the_engine_never_imports_pytest() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem in PYTEST_SIDE:
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
        assert not imported & {"pytest", "_pytest", "xdist"}, path.name


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
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            annotations = [a.annotation for a in node.args.args + node.args.kwonlyargs]
            for annotation in [*annotations, node.returns]:
                text = ast.unparse(annotation) if annotation is not None else ""
                if "str, Any]" in text:
                    loose.append(f"{path.stem}.{node.name}: {text}")
    assert loose == []
