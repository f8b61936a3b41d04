"""A whole plan: calibrate each strategy once, project it over the corpus and seeds."""

from __future__ import annotations

import gc
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.cache.key import default_cache_dir
from bench.cache.prefix import resolve_place
from bench.config import RunConfig
from bench.data.batching import LengthGrid, bucket_batches
from bench.data.datasets import Corpus
from bench.errors import BenchError
from bench.meter.precision import describe_facts, is_emulated, precision_facts
from bench.model.backbones import PRESETS
from bench.plan.calibrate import Calibration, calibrate
from bench.plan.corpus import PlanCorpus
from bench.plan.disk import DiskRates, probe_disk
from bench.plan.project import StrategyPlan, _sum, padded_counts, project, store_bytes
from bench.plan.stores import existing_stores
from strategies.registry import fp32_twin

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
    # Strategies whose reduced precision the device emulates, each with its projected epoch
    # next to its fp32 twin's: what `+amp` costs here, said before anything runs.
    warnings: tuple[str, ...] = ()

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
            "warnings": list(self.warnings),
        }


def _cache_builds(
    cals: list[Calibration],
    seeds: list[int],
    seed_specific: bool,
    existing: Collection[tuple[str, int]] = (),
) -> dict[str, dict[int, bool]]:
    """Which (strategy, seed) runs build a store, in the sweep's order (seed by seed, strategies
    in the given order): a later run with the same frozen prefix reuses the earlier store, and a
    run in `existing` finds its store built already (so do later runs sharing it)."""
    built: set = set()
    out: dict[str, dict[int, bool]] = {c.strategy: {} for c in cals}
    for seed in seeds:
        for c in cals:
            key = (c.representation, c.precision, c.store_dtype, seed if seed_specific else None)
            out[c.strategy][seed] = (
                c.store_dtype is not None
                and key not in built
                and (c.strategy, seed) not in existing
            )
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
    audio: Corpus | None = None,
) -> Plan:
    """Calibrate every strategy of `configs` on `device` and project it over `corpus`; with the
    corpus' `audio` (not for --msp-like durations), count no cache build where the store a run
    needs is already built."""
    if not corpus.lengths["train"]:
        raise BenchError(f"corpus {corpus.name} has no training clips: nothing to plan")
    t0 = time.perf_counter()
    c0 = configs[0]
    cfg = c0.train
    seeds = sorted({c.seed for c in configs})
    names = list(dict.fromkeys(c.strategy for c in configs))
    grid = LengthGrid.from_lengths(corpus.all_lengths())
    steps_per_epoch = -(-len(corpus.lengths["train"]) // cfg.batch_size)
    train = list(corpus.lengths["train"])
    padded = padded_counts(bucket_batches(train, cfg.batch_size, seeds[0], 0), tuple(train), grid)
    mean_padded = round(sum(n * k for n, k in padded.items()) / sum(padded.values()))
    cals = []
    for name in names:
        on_strategy(name)
        runs = sum(c.strategy == name for c in configs)  # seeds x learning rates
        cals.append(
            calibrate(
                name,
                c0.model,
                cfg,
                grid,
                corpus.dimensions,
                device,
                points,
                point_seconds,
                sweep_steps=runs * cfg.max_epochs * steps_per_epoch,
                probe_samples=mean_padded,
            )
        )
        gc.collect()  # the calibrated model, before the next one is built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    facts = precision_facts(device)
    twins = {}  # emulated strategy -> its fp32 twin's calibration (calibrated here if absent)
    for cal in cals:
        if not is_emulated(cal.precision, facts):
            continue
        twin = fp32_twin(cal.strategy)
        found = next((c for c in cals if c.strategy == twin), None)
        if found is None:
            on_strategy(f"{twin} (the fp32 twin of {cal.strategy}, for comparison)")
            found = calibrate(
                twin, c0.model, cfg, grid, corpus.dimensions, device, points, point_seconds
            )
        twins[cal.strategy] = found
    cached = [c for c in cals if c.store_dtype is not None]
    store_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    disk = probe_disk(store_dir) if cached else None
    existing = existing_stores(configs, audio, store_dir) if cached and audio is not None else {}
    # Random init draws each seed's frozen prefix anew, and a cropped clip differs by seed: then
    # seeds share no store.
    random_init = c0.weights == "random" or c0.model in PRESETS
    builds = _cache_builds(cals, seeds, corpus.cropped["train"] > 0 or random_init, existing)
    plans = []
    for cal in cals:
        place = None
        if cal.store_dtype is not None:
            try:
                place = resolve_place(cfg.cache_store, store_bytes(cal, corpus))
            except BenchError as exc:
                place = f"does not fit: {exc}"
        plans.append(project(cal, corpus, cfg, seeds, grid, disk, builds[cal.strategy], place))
    warnings = []
    for name, twin_cal in twins.items():
        mine = next(p for p in plans if p.strategy == name)
        twin = project(twin_cal, corpus, cfg, seeds, grid, disk, {s: False for s in seeds}, None)
        a, b = mine.epoch_s.value, twin.epoch_s.value
        ratio = f" ({a / b:.1f}x)" if a and b else ""
        warnings.append(
            f"{name}: {mine.precision} is EMULATED on this {device.type} "
            f"({describe_facts(facts)}): projected {_s(a)} an epoch against {_s(b)} for its fp32 "
            f"twin {twin_cal.strategy}{ratio}; its speed would measure the emulation, not mixed "
            "precision"
        )
    warnings += [
        f"{name} seed {seed}: its prefix store is built already ({path}); no cache build counted"
        for (name, seed), path in existing.items()
    ]
    wall = time.perf_counter() - t0
    warnings += caveats(plans, wall)
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
        calibration_wall_s=wall,
        warnings=tuple(warnings),
    )


def caveats(plans: list[StrategyPlan], calibration_s: float) -> list[str]:
    """When the plan says less than it seems to: bounds as large as the estimates (too few
    calibration steps for this machine's noise), or a calibration that cost more than the
    sweep it projects."""
    out = []
    loose = [
        p.strategy
        for p in plans
        if p.total_s.value and p.total_s.error and p.total_s.error >= 0.5 * p.total_s.value
    ]
    if loose:
        out.append(
            f"the bounds of {', '.join(loose)} are half their estimates or more: too few timed "
            "steps for this machine's noise (another job on it?) to project from; raise "
            "--calibration-seconds, or read these figures as orders of magnitude"
        )
    total = sum(p.total_s.value or 0.0 for p in plans)
    if total and calibration_s > total:
        out.append(
            f"calibrating took {calibration_s:.0f} s, longer than the {total:.0f} s the sweep is "
            "projected to take: at this scale running the sweep measures it exactly for less "
            "(lower --calibration-points and --calibration-seconds to plan cheaply)"
        )
    return out


def _s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"
