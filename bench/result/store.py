"""Result files: one versioned JSON per (strategy, seed[, fold]), written atomically and read
back as `RunResult` (bench/result/, migrated from older schemas)."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

from bench.errors import BenchError
from bench.result import SCHEMA, RunResult, migrate

__all__ = ["SCHEMA", "load_results", "log_path", "read_result", "result_path", "write_result"]


def result_path(
    out_dir: str | Path,
    strategy: str,
    seed: int,
    model: str | None = None,
    fold: int | None = None,
    lr: str | None = None,
) -> Path:
    """Where the result of one run lives:
    results/[<model>__]<strategy>[__lr<point>]__seed<s>[__fold<f>].json; `model` is given in
    sweeps over several backbones, `fold` in sweeps over IEMOCAP folds, `lr` (a --lrs grid
    point, "x0.3" or "0.0001") in learning-rate searches."""
    name = strategy if model is None else f"{model}__{strategy}"
    if lr is not None:
        name += f"__lr{lr}"
    safe = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name)
    tail = "" if fold is None else f"__fold{fold}"
    return Path(out_dir) / "results" / f"{safe}__seed{seed}{tail}.json"


def log_path(result: str | Path) -> Path:
    """Where the run whose result is at `result` writes its output: <run dir>/logs/<name>.log."""
    result = Path(result)
    return result.parent.parent / "logs" / f"{result.stem}.log"


def _finite(value, where: str, found: list[str]):
    if isinstance(value, float) and not math.isfinite(value):
        found.append(where)
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    return value


def finite_or_null(result: dict) -> tuple[dict, list[str]]:
    """`result` with every NaN or infinity replaced by None (JSON has neither), and where they were."""
    found: list[str] = []
    return _finite(result, "", found), found


def write_result(path: str | Path, result: RunResult) -> None:
    """Write via a temporary file + fsync + rename, so a killed process never leaves half a file.

    A NaN or infinity (a diverged run's CCC or loss) is written as null, and a note names the
    fields: the run is kept, never lost to a JSON error."""
    data, non_finite = finite_or_null(result.to_dict())
    if non_finite:
        shown = ", ".join(non_finite[:8]) + (
            f" and {len(non_finite) - 8} more" if len(non_finite) > 8 else ""
        )
        data["notes"] = [*data["notes"], f"non-finite values written as null: {shown}"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_result(path: str | Path) -> RunResult | None:
    """The result at `path` in the current schema, or None when absent or unreadable (a run to
    redo). A result of an unknown schema is an error, never silently dropped."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    data = migrate(data, path)
    try:
        return RunResult.from_dict(data)
    except (TypeError, ValueError):  # a field of the wrong shape: edited or foreign JSON
        return None


def supersede(path: str | Path) -> Path:
    """Move the result at `path` to results/superseded/, named with its modification time
    (UTC), so a forced rerun never erases what it replaces; returns the new path."""
    import datetime as dt

    path = Path(path)
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = path.parent / "superseded" / f"{path.stem}__{stamp}{path.suffix}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, dest)
    return dest


def load_results(out_dir: str | Path) -> list[RunResult]:
    """Every result of the run folder `out_dir`, in the current schema (older ones migrated).
    Raises BenchError naming any file that is not a readable result."""
    folder = Path(out_dir) / "results"
    paths = sorted(folder.glob("*.json"))
    found = [read_result(p) for p in paths]
    bad = [p.name for p, r in zip(paths, found, strict=True) if r is None]
    if bad:
        raise BenchError(
            f"{folder}: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not readable "
            "result JSON (truncated or edited); move them out of results/ or rerun those runs"
        )
    return [r for r in found if r is not None]
