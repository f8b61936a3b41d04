"""The house's rules, read from the code's own imports (every import: module level, inside
functions and under TYPE_CHECKING): no cycle, and no module imports a command."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "strategies")
# The commands' modules, and the one shim each entry point may be (python -m bench.run,
# python -m bench.plan, python -m bench.report).
COMMANDS = {
    "bench.cli.run",
    "bench.cli.plan",
    "bench.cli.report",
    "bench.cli.ceiling",
    "bench.cli.cache",
    "bench.cli.meter",
    "bench.cli.data",
}
SHIMS = {"bench.run": "bench.cli.run", "bench.plan.__main__": "bench.cli.plan"}
SHIMS["bench.report.__main__"] = "bench.cli.report"


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, *([base] if base else [])])
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_walk_sees_imports_of_every_kind(tmp_path):
    graph = import_graph()
    # inside a function (the Slurm launcher is imported when it is used)
    assert "bench.launch.slurm" in graph["bench.launch"]
    # under TYPE_CHECKING (an adapter names the config it reads)
    assert "bench.config" in graph["bench.data.adapters.csv_manifest"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_a_command():
    graph = import_graph()
    assert set(graph) >= COMMANDS, "a command module was renamed: update COMMANDS"
    offenders = [
        f"{m} imports {t}"
        for m, targets in graph.items()
        for t in targets
        if t in COMMANDS | set(SHIMS) and SHIMS.get(m) != t
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_goes_through_the_one_error_handler(name):
    main = importlib.import_module(name).main
    source = inspect.getsource(main)
    assert "return run_cli(" in source, f"{name}.main does not go through errors.run_cli"


def test_the_handler_turns_errors_and_ctrl_c_into_exit_codes(capsys):
    from bench.errors import BenchError, run_cli

    def bad(argv):
        raise BenchError("--thing is wrong; do this")

    def stopped(argv):
        raise KeyboardInterrupt

    assert run_cli(bad) == 2
    assert capsys.readouterr().err == "error: --thing is wrong; do this\n"
    assert run_cli(stopped, interrupted="results are kept") == 130
    assert capsys.readouterr().err == "interrupted: results are kept\n"
