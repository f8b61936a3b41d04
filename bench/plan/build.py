"""A whole plan: calibrate each strategy once, project it over the corpus and seeds."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.cache.key import default_cache_dir
from bench.cache.prefix import resolve_place
from bench.config import RunConfig
from bench.data.batching import LengthGrid
from bench.errors import BenchError
from bench.plan.calibrate import Calibration, calibrate
from bench.plan.corpus import PlanCorpus
from bench.plan.disk import DiskRates, probe_disk
from bench.plan.project import StrategyPlan, _sum, project, store_bytes

PLAN_SCHEMA = 1


@dataclass(frozen=True)
class Plan:
    profile: str
    model: str
    device: str
    corpus: PlanCorpus
    batch_size: int
    epochs: int
    seeds: tuple[int, ...]
    grid_lengths: tuple[int, ...]
    strategies: tuple[StrategyPlan, ...]
    calibrations: tuple[Calibration, ...]
    disk: DiskRates | None
    calibration_wall_s: float

    def total_s(self):
        return _sum([s.total_s for s in self.strategies], "s", "sum over strategies")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {
            "schema": PLAN_SCHEMA,
            "profile": self.profile,
            "model": self.model,
            "weights_for_calibration": "random-init (speed does not depend on weight values)",
            "device": self.device,
            "corpus": self.corpus.to_dict(),
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "seeds": list(self.seeds),
            "grid_lengths": list(self.grid_lengths),
            "calibration_wall_s": self.calibration_wall_s,
            "disk": asdict(self.disk) if self.disk else None,
            "total_s": self.total_s().to_dict(),
            "strategies": [s.to_dict() for s in self.strategies],
            "calibrations": [c.to_dict() for c in self.calibrations],
        }


def _cache_builds(
    cals: list[Calibration], seeds: list[int], seed_specific: bool
) -> dict[str, dict[int, bool]]:
    """Which (strategy, seed) runs build a store, in the sweep's order (seed by seed, strategies
    in the given order): a later run with the same frozen prefix reuses the earlier store."""
    built: set = set()
    out: dict[str, dict[int, bool]] = {c.strategy: {} for c in cals}
    for seed in seeds:
        for c in cals:
            key = (c.representation, c.precision, c.store_dtype, seed if seed_specific else None)
            out[c.strategy][seed] = c.store_dtype is not None and key not in built
            built.add(key)
    return out


def make_plan(
    configs: list[RunConfig],
    corpus: PlanCorpus,
    device: torch.device,
    points: int = 5,
    point_seconds: float = 1.0,
    cache_dir: Path | None = None,
    on_strategy=lambda name: None,
) -> Plan:
    """Calibrate every strategy of `configs` on `device` and project it over `corpus`."""
    if not corpus.lengths["train"]:
        raise BenchError(f"corpus {corpus.name} has no training clips: nothing to plan")
    t0 = time.perf_counter()
    c0 = configs[0]
    cfg = c0.train
    seeds = sorted({c.seed for c in configs})
    names = list(dict.fromkeys(c.strategy for c in configs))
    grid = LengthGrid.from_lengths(corpus.all_lengths())
    cals = []
    for name in names:
        on_strategy(name)
        cals.append(
            calibrate(name, c0.model, cfg, grid, corpus.dimensions, device, points, point_seconds)
        )
        gc.collect()  # the calibrated model, before the next one is built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    cached = [c for c in cals if c.store_dtype is not None]
    disk = probe_disk(Path(cache_dir) if cache_dir else default_cache_dir()) if cached else None
    builds = _cache_builds(cals, seeds, seed_specific=corpus.cropped["train"] > 0)
    plans = []
    for cal in cals:
        place = None
        if cal.store_dtype is not None:
            try:
                place = resolve_place(cfg.cache_store, store_bytes(cal, corpus))
            except BenchError as exc:
                place = f"does not fit: {exc}"
        plans.append(project(cal, corpus, cfg, seeds, grid, disk, builds[cal.strategy], place))
    return Plan(
        profile=c0.profile,
        model=c0.model,
        device=str(device),
        corpus=corpus,
        batch_size=cfg.batch_size,
        epochs=cfg.max_epochs,
        seeds=tuple(seeds),
        grid_lengths=grid.lengths,
        strategies=tuple(plans),
        calibrations=tuple(cals),
        disk=disk,
        calibration_wall_s=time.perf_counter() - t0,
    )
