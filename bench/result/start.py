"""A run's result as it starts: who it is, before it has measured anything. The worker fills it
in; a launcher whose run died without a result records the failure on it."""

from __future__ import annotations

import datetime as dt

from bench.config import RunConfig
from bench.meter.environment import environment
from bench.result.run_result import RunResult
from bench.result.sections import ModelInfo


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def started_result(cfg: RunConfig) -> RunResult:
    """A run's result before it has measured anything (status failed until it finishes)."""
    return RunResult(
        strategy=cfg.strategy,
        seed=cfg.seed,
        run_id=cfg.config_hash(),
        profile=cfg.profile,
        model=ModelInfo(name=cfg.model),
        config=cfg.to_dict(),
        environment=environment(),
        started_at=now_iso(),
    )
