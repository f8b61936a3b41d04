"""Third-party strategies through the `serbench.strategies` entry-point group, and the listing."""

from __future__ import annotations

import sys
import textwrap

import pytest

import strategies.registry as registry
from bench.cli.run import main
from bench.errors import BenchError
from strategies import parse_strategy

PLUGIN = textwrap.dedent(
    '''
    """A third-party strategy: only the last layer's FFN output projection trains."""
    from dataclasses import dataclass

    from strategies import Strategy, register_strategy


    @register_strategy("lastffn", summary="train the last layer's FFN output projection")
    @dataclass(frozen=True)
    class LastFFN(Strategy):
        scale: float = 1.0

        def apply(self, model):
            for p in model.layers[-1].feed_forward.output_dense.parameters():
                p.requires_grad = True
    '''
)


def _install(site, name: str, module: str, source: str, target: str) -> None:
    """What `pip install` leaves behind: the module and a dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[serbench.strategies]\n{name} = {target}\n")


@pytest.fixture
def fresh_registry(monkeypatch, tmp_path):
    """A registry that loads plugins again, restored afterwards; yields a site directory."""
    registry.registered()  # built-ins into the real registry first: their modules import once
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in ("serbench_lastffn", "serbench_broken"):  # so the next test imports afresh
        sys.modules.pop(module, None)


def test_an_installed_plugin_is_listed_and_parsed(fresh_registry, capsys):
    _install(fresh_registry, "serbench_lastffn", "serbench_lastffn", PLUGIN, "serbench_lastffn")
    assert main(["--list-strategies"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "lastffn" in ln)
    assert "scale=1.0" in line and "train the last layer's FFN output projection" in line
    spec = parse_strategy("lastffn:scale=2.0+amp")
    assert spec.strategy.scale == 2.0 and spec.name == "lastffn:scale=2.0+amp"
    with pytest.raises(BenchError, match="no frozen prefix"):
        parse_strategy("lastffn+cache")  # the base class's default: not cacheable


def test_a_plugin_trains_through_the_normal_path(fresh_registry, tiny_config):
    import dataclasses

    from bench.train.worker import run_one

    _install(fresh_registry, "serbench_lastffn", "serbench_lastffn", PLUGIN, "serbench_lastffn")
    result = run_one(dataclasses.replace(tiny_config, strategy="lastffn"))
    assert result.status == "ok"
    hidden, ffn = 32, 64  # tiny-w2v2: output_dense is Linear(64 -> 32)
    head = hidden * 256 + 256 + 256 * 3 + 3
    assert result.model.params_trainable == ffn * hidden + hidden + head


def test_a_broken_plugin_is_named_with_the_fix(fresh_registry):
    _install(
        fresh_registry, "serbench_broken", "serbench_broken", "import nowhere\n", "serbench_broken"
    )
    with pytest.raises(BenchError, match=r"plugin 'serbench_broken'.*failed to import.*uninstall"):
        parse_strategy("full")


def test_list_strategies_prints_every_family_its_parameters_and_the_modifiers(capsys):
    assert main(["--list-strategies"]) == 0
    out = capsys.readouterr().out
    import dataclasses

    for name, info in registry.registered().items():
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(name)), None)
        assert line is not None, f"{name} missing from --list-strategies"
        assert info.summary in line
        for f in dataclasses.fields(info.cls):
            if f.name != info.shorthand:
                assert f"{f.name}=" in line, f"{name}: parameter {f.name} not shown"
    for modifier in ("+amp", "+cache", "+ckpt", "+compile"):
        assert modifier in out
    assert "all = " in out and "lora3+amp+cache" in out


def test_strategies_have_no_import_cycle():
    """Only the package imports the families; no module of strategies/ imports one that
    imports it back (checked on the source, so lazy imports inside functions count too)."""
    import ast
    from pathlib import Path

    root = Path(__file__).parent.parent / "strategies"
    graph = {}
    for path in root.glob("*.py"):
        if path.name == "__init__.py":
            continue
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "strategies":
                    deps |= {a.name for a in node.names if (root / f"{a.name}.py").exists()}
                elif node.module.startswith("strategies."):
                    deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {
                    a.name.split(".")[1] for a in node.names if a.name.startswith("strategies.")
                }
        graph[path.stem] = deps
    assert graph["registry"] == set() and graph["base"] == set()

    def reaches(start, target, seen=()):
        return any(
            d == target or (d not in seen and reaches(d, target, (*seen, d)))
            for d in graph.get(start, ())
        )

    cycles = [m for m in graph if reaches(m, m)]
    assert cycles == []


def test_importing_the_registry_alone_finds_the_built_ins():
    import subprocess
    import sys

    code = "import strategies.registry as r; print(sorted(r.registered()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "partial" in out.stdout and "lora" in out.stdout and "full" in out.stdout
