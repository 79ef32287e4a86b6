"""Mutation run: damaged real models must end as a clear error or a normal result, never a crash.

Every real Coral model in ../shared/models/coral/ is damaged in four ways, deterministically
from --seed: bit flips (1 to 8 random bits), truncation (a random length), zeroed ranges (4 to
4096 bytes at a random offset) and one byte set to 0x00 or 0xFF. ``--sweep MODEL`` instead sets
every byte of one model, in turn, to 0x00 and to 0xFF: on split_concat.tflite that finds the
mutants that pass every check of the file and still make LiteRT segfault.

Each mutant goes through what a ``tpu_bench`` test does on
the CPU (``DeviceSession.inspect``, which tries the model in the plugin's probe helper first,
then interpreter creation, tensor allocation, generated inputs, two inferences) in a worker
process, so that a crash or hang the plugin did not catch is counted, not fatal: the worker is
replaced and the run goes on. Mutants that crashed or hung the probe helper (a ModelError that
says so) are listed with the seed that makes them again, and all of them run through pytest.

Outcomes, counted by kind: ``ran`` (a normal result), ``ModelError`` / ``NeedsEdgeTpuError`` /
``RuntimeUnavailableError`` (the plugin's one-line errors; each message must name the mutant's
file), ``unexpected <Type>`` (any other exception: a traceback in a pytest run, a bug),
``crash <signal>`` and ``hang``. A sample of the mutants that did not crash then runs through
pytest itself (``pytest --edgetpu DIR`` collects each file as an item) to check the mapping to
pytest outcomes: ran -> passed, ModelError -> failed, NeedsEdgeTpuError -> skipped, and no
INTERNALERROR or traceback in the output.

    python benchmarks/mutants.py --mutants 3000 --seed 1 --out benchmarks/results/mutants.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import selectors
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from saved import ROOT, save

CORAL = ROOT.parent / "shared" / "models" / "coral"
KINDS = ("bitflip", "truncate", "zero", "byte")
ZERO_LENGTHS = (4, 16, 64, 256, 4096)
HANG_S = 60.0


def mutate(data: bytes, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """One damaged copy of ``data`` and words that say what was done."""
    damaged = bytearray(data)
    if kind == "bitflip":
        bits = sorted(rng.sample(range(len(data) * 8), rng.randint(1, 8)))
        for bit in bits:
            damaged[bit // 8] ^= 1 << (bit % 8)
        return bytes(damaged), f"flipped bits {bits}"
    if kind == "truncate":
        size = rng.randrange(len(data))
        return bytes(damaged[:size]), f"cut to {size} bytes"
    if kind == "byte":
        return set_byte(data, rng.randrange(len(data)), rng.choice((0x00, 0xFF)))
    length = rng.choice(ZERO_LENGTHS)
    start = rng.randrange(len(data))
    damaged[start : start + length] = bytes(len(damaged[start : start + length]))
    return bytes(damaged), f"zeroed {length} bytes at {start}"


def set_byte(data: bytes, offset: int, value: int) -> tuple[bytes, str]:
    damaged = bytearray(data)
    damaged[offset] = value
    return bytes(damaged), f"byte {offset} set to {value:#04x}"


def sweep(model: str) -> list[dict[str, Any]]:
    """Every byte of ``model`` set to 0x00 and to 0xFF, one mutant each (unchanged ones left
    out)."""
    data = (CORAL / model).read_bytes()
    offsets = [(o, v) for o in range(len(data)) for v in (0x00, 0xFF) if data[o] != v]
    return [
        {"index": i, "model": model, "kind": "byte", "offset": o, "value": v}
        for i, (o, v) in enumerate(offsets)
    ]


def plan(count: int, seed: int) -> list[dict[str, Any]]:
    """The mutants: model, kind and the seed that reproduces each one."""
    models = sorted(p.name for p in CORAL.glob("*.tflite"))
    rng = random.Random(seed)
    return [
        {
            "index": i,
            "model": models[i % len(models)],
            "kind": KINDS[(i // len(models)) % len(KINDS)],
            "seed": rng.getrandbits(32),
        }
        for i in range(count)
    ]


def write_mutant(spec: dict[str, Any], directory: Path) -> tuple[Path, str]:
    data = (CORAL / spec["model"]).read_bytes()
    if "offset" in spec:
        damaged, words = set_byte(data, spec["offset"], spec["value"])
    else:
        damaged, words = mutate(data, spec["kind"], random.Random(spec["seed"]))
    path = directory / f"m{spec['index']:05d}_{spec['kind']}_{spec['model']}"
    path.write_bytes(damaged)
    return path, words


# --- the worker: reads one mutant spec per line, answers one JSON line per mutant ----------


def worker() -> None:
    from pytest_edgetpu.core.errors import EdgeTpuError
    from pytest_edgetpu.device.runtime import load_runtime
    from pytest_edgetpu.device.selection import Device
    from pytest_edgetpu.engine.session import DeviceSession

    session = DeviceSession(Device("cpu", "cpu:0"), load_runtime())
    with tempfile.TemporaryDirectory() as tmp:
        for line in sys.stdin:
            spec = json.loads(line)
            path, _ = write_mutant(spec, Path(tmp))
            answer: dict[str, Any] = {"index": spec["index"]}
            try:
                # What tpu_bench(path) does without --edgetpu: load, one inference, one more.
                session.bench_model(session.inspect(path), None)
                answer["outcome"] = "ran"
            except EdgeTpuError as error:
                answer["outcome"] = type(error).__name__
                answer["names_file"] = str(path) in str(error)
                answer["one_line"] = "\n" not in str(error)
                answer["caught_by_probe"] = "probe process" in str(error)
            except Exception as error:  # counting what escapes is the point
                answer["outcome"] = f"unexpected {type(error).__name__}"
                answer["message"] = str(error)[:300]
            path.unlink()
            print(json.dumps(answer), flush=True)


class Worker:
    """A worker process and a line reader with a deadline."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)

    def ask(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(spec) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        if not self.selector.select(timeout=HANG_S):
            self.process.kill()
            self.process.wait()
            return {"index": spec["index"], "outcome": "hang"}
        line = self.process.stdout.readline()
        if line:
            answer: dict[str, Any] = json.loads(line)
            return answer
        code = self.process.wait()
        signal_words = f"signal {-code}" if code < 0 else f"exit {code}"
        return {"index": spec["index"], "outcome": f"crash ({signal_words})"}

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=HANG_S)


def run_pytest(specs: list[dict[str, Any]], answers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The sample through pytest: each mutant one collected item; outcomes against answers."""
    expected = {"ran": "passed", "ModelError": "failed", "NeedsEdgeTpuError": "skipped"}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "pytest.ini").write_text(
            "[pytest]\nedgetpu_max_time = 0.05\nedgetpu_min_runs = 10\n", encoding="utf-8"
        )
        models = directory / "models"
        models.mkdir()
        for spec in specs:
            write_mutant(spec, models)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:xdist",
                "--edgetpu",
                "--junitxml=junit.xml",
                "models",
            ],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=30 * 60,
            check=False,
        )
        output = done.stdout + done.stderr
        outcomes: Counter[str] = Counter()
        mismatches = []
        for case in ET.parse(directory / "junit.xml").getroot().iter("testcase"):
            # The file name starts with the mutant's index: m00042_...
            found = re.search(r"m(\d{5})_", case.get("classname", ""))
            if found is None:
                continue
            index = int(found.group(1))
            if case.find("failure") is not None or case.find("error") is not None:
                got = "failed"
            elif case.find("skipped") is not None:
                got = "skipped"
            else:
                got = "passed"
            outcomes[got] += 1
            want = expected.get(answers[index]["outcome"])
            if got != want:
                mismatches.append({"index": index, "pytest": got, "worker": want})
        return {
            "mutants": len(specs),
            "exit_code": done.returncode,
            "outcomes": dict(outcomes),
            "mismatches": mismatches,
            "internal_errors": output.count("INTERNALERROR"),
            "tracebacks": output.count("Traceback"),
            # A frame of the plugin's code, or an exception shown with its frames ("E   ").
            "plugin_frames": output.count("pytest_edgetpu/"),
            "exception_lines": sum(1 for line in output.splitlines() if line.startswith("E   ")),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sweep", metavar="MODEL", help="every byte of one Coral model instead")
    parser.add_argument("--pytest-sample", type=int, default=60)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if not CORAL.is_dir():
        sys.exit(f"no Coral models at {CORAL}: this benchmark needs the shared/ checkout")
    specs = sweep(args.sweep) if args.sweep else plan(args.mutants, args.seed)
    answers: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()
    current = Worker()
    for spec in specs:
        if not current.alive():
            current = Worker()
        answers[spec["index"]] = current.ask(spec)
        if (spec["index"] + 1) % 100 == 0:
            print(f"{spec['index'] + 1}/{len(specs)} mutants", file=sys.stderr)
    current.close()
    elapsed = time.perf_counter() - started

    by_outcome: Counter[str] = Counter(a["outcome"] for a in answers.values())
    by_kind: dict[str, Counter[str]] = {}
    by_model: dict[str, Counter[str]] = {}
    for spec in specs:
        outcome = answers[spec["index"]]["outcome"]
        by_kind.setdefault(spec["kind"], Counter())[outcome] += 1
        by_model.setdefault(spec["model"], Counter())[outcome] += 1
    errors = [a for a in answers.values() if "names_file" in a]
    bad = [
        {**spec, "outcome": answers[spec["index"]]["outcome"]}
        for spec in specs
        if answers[spec["index"]]["outcome"].startswith(("unexpected", "crash", "hang"))
    ]
    caught = [s for s in specs if answers[s["index"]].get("caught_by_probe")]
    rng = random.Random(args.seed)
    safe = [s for s in specs if not answers[s["index"]]["outcome"].startswith(("crash", "hang"))]
    drawn = rng.sample(safe, min(args.pytest_sample, len(safe)))
    sample = sorted({s["index"]: s for s in drawn + caught}.values(), key=lambda s: s["index"])
    summary = {
        "mutants": len(specs),
        "seed": args.seed,
        "sweep": args.sweep,
        "models": sorted({s["model"] for s in specs}),
        "outcomes": dict(by_outcome.most_common()),
        "by_kind": {k: dict(v.most_common()) for k, v in by_kind.items()},
        "by_model": {k: dict(v.most_common()) for k, v in sorted(by_model.items())},
        "errors_naming_the_file": sum(1 for a in errors if a["names_file"]),
        "errors_on_one_line": sum(1 for a in errors if a["one_line"]),
        "errors": len(errors),
        "crashes_unexpected_or_hangs": bad[:50],
        "caught_by_probe": caught,
        "seconds": round(elapsed, 1),
        "pytest_sample": run_pytest(sample, answers),
    }
    save(summary, args.out)


if __name__ == "__main__":
    main()
