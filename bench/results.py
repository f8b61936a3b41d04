"""Results are plain data: one versioned JSON per (strategy, seed), written atomically."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

SCHEMA = 1


def result_path(out_dir: str | Path, strategy: str, seed: int, model: str | None = None) -> Path:
    """Where the result of one run lives; `model` is given in sweeps over several backbones."""
    name = strategy if model is None else f"{model}__{strategy}"
    safe = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name)
    return Path(out_dir) / "results" / f"{safe}__seed{seed}.json"


def write_result(path: str | Path, result: dict) -> None:
    """Write via a temporary file + fsync + rename, so a killed process never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(result, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_result(path: str | Path) -> dict | None:
    """The result at `path`, or None when absent or unreadable (a run to redo)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def load_results(out_dir: str | Path) -> list[dict]:
    folder = Path(out_dir) / "results"
    found = [read_result(p) for p in sorted(folder.glob("*.json"))]
    return [r for r in found if r is not None]
