"""Result files: one versioned JSON per (strategy, seed[, fold]), written atomically and read
back as `RunResult` (bench/result/, migrated from older schemas)."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

from bench.errors import BenchError
from bench.result import SCHEMA, RunResult, migrate
from bench.result.figure import non_numbers

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
    text = json.dumps(data, indent=1, allow_nan=False).encode()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    except OSError as exc:
        raise _unwritable(exc, path, len(text)) from exc
    try:
        # mkstemp makes the file 0600; results are shared like the report files beside them
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _unwritable(exc, path, len(text)) from exc
        raise


def new_file_mode() -> int:
    """The mode `open()` gives a new file: 0o666 less the umask (0o644 under the usual 022).
    Read from /proc where it says, so the process umask is never changed (threads)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _unwritable(exc: OSError, path: Path, nbytes: int) -> OSError | BenchError:
    """A full disk or quota as a BenchError naming the folder and the space needed (the CLI
    stops the sweep with one line; finished results stay); any other OSError as it is."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return exc
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return BenchError(
        f"no space left to write the result {path.name} in {path.parent} ({exc.strerror}; "
        f"{nbytes / 1024:.0f} KiB needed, {free}): free some space there, then rerun the same "
        "command; finished results are kept and skipped"
    )


def _parse(path: str | Path) -> RunResult | str:
    """The result at `path` in the current schema, or why it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except ValueError:
        return "not valid JSON (truncated?)"
    if not isinstance(data, dict):
        return "not a JSON object"
    data = migrate(data, path)
    try:
        result = RunResult.from_dict(data)
    except (TypeError, ValueError) as exc:  # a field of the wrong shape: edited or foreign JSON
        return f"a field of the wrong shape ({exc})"
    wrong = non_numbers(result)
    if wrong:
        return f"{'; '.join(wrong[:3])}, where a number (or null) belongs"
    return result


def read_result(path: str | Path) -> RunResult | None:
    """The result at `path` in the current schema, or None when absent or unreadable (a run to
    redo). A result of an unknown schema is an error, never silently dropped."""
    result = _parse(path)
    return result if isinstance(result, RunResult) else None


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
    found = [_parse(p) for p in paths]
    bad = [f"{p.name}: {r}" for p, r in zip(paths, found, strict=True) if isinstance(r, str)]
    if bad:
        raise BenchError(
            f"{folder}: {'; '.join(bad)}. Not a readable result (truncated or edited): fix it, "
            "move it out of results/, or rerun that run"
        )
    return [r for r in found if isinstance(r, RunResult)]


SWEEP_FILE = "sweep.json"


def write_sweep_notes(out_dir: str | Path, notes: list[str]) -> None:
    """What the sweep decided that the results cannot say (a device-adapted default strategy
    set), for the report of the folder. Rewritten by every sweep; removed when it has none."""
    path = Path(out_dir) / SWEEP_FILE
    if not notes:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"notes": notes}, indent=2) + "\n", encoding="utf-8")


def read_sweep_notes(out_dir: str | Path) -> list[str]:
    """The notes `write_sweep_notes` left in `out_dir`, or [] (none, or an unreadable file)."""
    try:
        data = json.loads((Path(out_dir) / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    notes = data.get("notes") if isinstance(data, dict) else None
    return [str(n) for n in notes] if isinstance(notes, list) else []


def other_sweeps(out_dir: str | Path, sweep_hashes: set[str]) -> list[Path]:
    """Result files of `out_dir` whose configuration belongs to none of `sweep_hashes`
    (`RunConfig.sweep_hash`): another corpus, profile or training setting. A run folder holds
    one sweep's configuration, so that its report never pools different experiments."""
    found = []
    for path in sorted((Path(out_dir) / "results").glob("*.json")):
        result = read_result(path)
        if result is None or not result.config:
            continue
        if result.sweep_hash() not in sweep_hashes:
            found.append(path)
    return found
