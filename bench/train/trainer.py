"""The training loop, read top to bottom: batches in, CCC loss, backward, step, validate, keep the
best epoch, test it. Precision, caching, gradient checkpointing and compilation are decided before
the loop; its body is the same for every strategy, which reaches it through two hooks only
(`begin_training`, `after_step`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.cache import CacheView, prepare_caches
from bench.ccc import ccc
from bench.config import TrainConfig
from bench.data.batching import (
    LengthGrid,
    bucket_batches,
    distinct_lengths,
    padding_fraction,
)
from bench.data.loader import SplitLoader, prepare_loaders
from bench.meter import StepTimer
from bench.model.graphs import PrefixGraphs
from bench.model.ser import SERModel
from bench.result.sections import CacheReport, EpochLog, LoaderReport
from bench.train.setup import RunContext
from bench.train.step import Precision, forward, train_step

Progress = Callable[[dict], None]
PROGRESS_EVERY_S = 0.25  # training progress events at most this often (each one is pickled)


@dataclass
class TrainOutcome:
    history: list[EpochLog]
    best_epoch: int
    test_ccc: dict[str, float]
    test_ccc_mean: float
    test_predictions: list[list[float]]
    test_targets: list[list[float]]
    train_wall_s: float
    padding_fraction: float
    distinct_input_lengths: int  # padded training input lengths, over all epochs
    timer: StepTimer
    loader: LoaderReport
    notes: list[str] = field(default_factory=list)
    cache: CacheReport | None = None


def _batches(loader: SplitLoader, cache: CacheView | None, order: list[list[int]]):
    if cache is not None:
        return cache.batches(order)  # read ahead in a background thread
    return loader.batches(order)


class _Waited:
    """Iterates `items`, adding the seconds spent waiting for each one to `wait_s`."""

    def __init__(self, items):
        self.items, self.wait_s = iter(items), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t0 = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.wait_s += time.perf_counter() - t0


@torch.no_grad()
def evaluate(
    model: SERModel,
    loader: SplitLoader,
    cache: CacheView | None,
    cfg: TrainConfig,
    device: torch.device,
    precision: Precision,
    dims: tuple[str, ...],
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """CCC per dimension over a whole split, plus predictions and targets in dataset order."""
    model.eval()
    ds = loader.ds
    order = bucket_batches(ds.lengths(), cfg.batch_size, seed=0, epoch=0, shuffle=False)
    preds = torch.zeros(len(ds), len(dims))
    targets = torch.zeros(len(ds), len(dims))
    for batch in _batches(loader, cache, order):
        batch = batch.to(device)
        with precision.autocast(device):
            out = forward(model, batch)
        preds[batch.index] = out.float().cpu()
        targets[batch.index] = batch.targets.float().cpu()
    values = ccc(preds, targets)
    return {d: float(v) for d, v in zip(dims, values, strict=True)}, preds.numpy(), targets.numpy()


def train(ctx: RunContext, progress: Progress = lambda event: None) -> TrainOutcome:
    """Train `ctx`'s model on its corpus: epochs of `train_step`, validation after each, the
    best epoch's weights tested at the end."""
    t_start = time.perf_counter()
    model, data, device, stepper = ctx.model, ctx.data, ctx.device, ctx.stepper
    cfg, spec, seed, precision = ctx.cfg.train, ctx.spec, ctx.cfg.seed, ctx.precision
    dims = ctx.corpus.dimensions
    notes = list(ctx.notes)
    strategy, mods = spec.strategy, spec.modifiers

    # Every batch, cached or not, training or evaluation, is padded up to one of a few lengths.
    grid = LengthGrid.from_lengths([n for ds in data.values() for n in ds.lengths()])
    loaders, loader_report = prepare_loaders(data, grid, cfg.num_workers, cfg.preload)
    runner = model.prefix_runner
    # +graph: a step with a capture, and the step after any capture, are first visits too.
    captures = (lambda: runner.count) if isinstance(runner, PrefixGraphs) else None
    timer = StepTimer(device, cfg.warmup_steps, cfg.warmup_seconds, captures)
    caches: dict[str, CacheView | None] = {s: None for s in data}
    cache_report = None
    if mods.cache:
        progress({"phase": "cache"})
        with timer.phase("cache"):
            views, cache_report = prepare_caches(
                model,
                data,
                device,
                cfg.batch_size,
                precision.autocast_dtype,
                mods.cache_dtype,
                cfg.cache_store,
                num_workers=cfg.num_workers,
                grid=grid,
            )
        caches.update(views)
        if cache_report.rebuilt_because:
            notes.append(f"prefix cache rebuilt: {cache_report.rebuilt_because}")
        if cache_report.reused:
            notes.append(f"prefix cache reused from {cache_report.path} (built by an earlier run)")
        if cache_report.where == "device" and device.type == "cuda":
            notes.append(
                f"prefix cache held in GPU memory ({cache_report.mib:.0f} MiB, small next to the "
                "device's): peak VRAM includes it"
            )

    lengths = data["train"].lengths()
    steps_per_epoch = ctx.steps_per_epoch
    strategy.begin_training(model, cfg.max_epochs * steps_per_epoch)

    torch.manual_seed(seed)  # the loop's randomness (dropout) starts equal for every strategy
    history: list[EpochLog] = []
    best_mean, best_epoch, best_state, stale = -float("inf"), -1, None, 0
    pads, orders = [], []
    t_progress = 0.0
    for epoch in range(cfg.max_epochs):
        model.train()
        order = bucket_batches(lengths, cfg.batch_size, seed, epoch)
        pads.append(padding_fraction(order, lengths, grid))
        orders += order
        losses = []
        t_epoch = time.perf_counter()
        timer.start_epoch()
        batches = _Waited(_batches(loaders["train"], caches["train"], order))
        for step, batch in enumerate(batches):
            batch = batch.to(device)
            shape = tuple(batch.shape)
            with timer.step(len(batch.index), batch.audio_seconds, batch.padded_seconds, shape):
                loss = train_step(stepper, batch, epoch * steps_per_epoch + step)
            # Kept on the device: reading it now would wait for the step and idle the GPU.
            losses.append(loss.detach())
            if time.perf_counter() - t_progress > PROGRESS_EVERY_S or step + 1 == len(order):
                t_progress = time.perf_counter()
                progress(
                    {
                        "phase": "train",
                        "epoch": epoch,
                        "epochs": cfg.max_epochs,
                        "step": step + 1,
                        "steps": len(order),
                    }
                )
        losses = torch.stack(losses).float().cpu().tolist() if losses else [float("nan")]
        epoch_time = time.perf_counter() - t_epoch
        with timer.phase("eval"):
            val, _, _ = evaluate(model, loaders["val"], caches["val"], cfg, device, precision, dims)
        val_mean = float(np.mean(list(val.values())))
        history.append(
            EpochLog(
                epoch,
                float(np.mean(losses)),
                val,
                val_mean,
                epoch_time,
                time.perf_counter() - t_start,
                batches.wait_s,
            )
        )
        progress(
            {"phase": "val", "epoch": epoch, "epochs": cfg.max_epochs, "val_ccc_mean": val_mean}
        )
        if not np.isfinite(losses).all():
            notes.append(f"non-finite training loss in epoch {epoch}; stopped")
            break
        if val_mean > best_mean:
            best_mean, best_epoch, stale = val_mean, epoch, 0
            best_state = {
                n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
            }
        else:
            stale += 1
            if cfg.patience is not None and stale >= cfg.patience:
                notes.append(f"early stop after epoch {epoch}: no val-CCC gain for {stale} epochs")
                break

    if best_state is not None:
        params = dict(model.named_parameters())
        for n, v in best_state.items():
            params[n].data.copy_(v)
    with timer.phase("eval"):
        test, preds, targets = evaluate(
            model, loaders["test"], caches["test"], cfg, device, precision, dims
        )
    if isinstance(model.prefix_runner, PrefixGraphs):
        notes.append(model.prefix_runner.note())
    return TrainOutcome(
        history=history,
        best_epoch=best_epoch,
        test_ccc=test,
        test_ccc_mean=float(np.mean(list(test.values()))),
        test_predictions=preds.round(5).tolist(),
        test_targets=targets.round(5).tolist(),
        train_wall_s=time.perf_counter() - t_start,
        padding_fraction=float(np.mean(pads)) if pads else 0.0,
        distinct_input_lengths=distinct_lengths(orders, lengths, grid),
        timer=timer,
        loader=loader_report,
        notes=notes,
        cache=cache_report,
    )
