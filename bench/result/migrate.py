"""Results written by earlier versions, brought to the current schema before they are read."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from bench.errors import BenchError
from bench.result.run_result import SCHEMA
from bench.result.sections import (
    AllocatorReport,
    EnergyReport,
    MemoryReport,
    RunTimes,
    ThroughputReport,
)

# Schema 2's flat `efficiency` section: each key goes to the section that now holds it.
_FLAT_SECTIONS = {
    name: section
    for section, cls in (
        ("throughput", ThroughputReport),
        ("allocator", AllocatorReport),
        ("memory", MemoryReport),
        ("energy", EnergyReport),
        ("time", RunTimes),
    )
    for name in (f.name for f in fields(cls))
}


def _nest_efficiency(flat: dict[str, Any]) -> dict[str, Any]:
    """Schema 2's flat efficiency dict as schema 3's sections."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if key in ("cache", "ceiling", "harness_efficiency"):
            nested[key] = value
        elif key in _FLAT_SECTIONS:
            nested.setdefault(_FLAT_SECTIONS[key], {})[key] = value
        # cache_mib is the cache store's size (cache.bytes): nothing else is dropped
    return nested


def migrate(result: dict, source: object = "a result") -> dict:
    """`result` in the current schema. Raises BenchError for a schema this version cannot read."""
    version = result.get("schema")
    if version == SCHEMA:
        return result
    if version not in (1, 2):
        raise BenchError(
            f"{source} has result schema {version!r}; this serbench reads schemas 1 to {SCHEMA}: "
            "render it with the serbench version that wrote it, or upgrade"
        )
    result = dict(result)
    metrics = result.get("metrics")
    if (
        version == 1
        and isinstance(metrics, dict)
        and not isinstance(metrics.get("degenerate"), list)
    ):
        flag = metrics.get("degenerate")
        result["metrics"] = {**metrics, "degenerate": [flag] if flag else []}
    if isinstance(result.get("efficiency"), dict):
        result["efficiency"] = _nest_efficiency(result["efficiency"])
    return result | {"schema": SCHEMA, "migrated_from_schema": version}
