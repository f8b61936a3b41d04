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

from bench.batching import AudioDataset, Batch, bucket_batches, make_loader, padding_fraction
from bench.cache import CachedBatch, CacheReport, CacheView, prepare_caches
from bench.ccc import ccc, ccc_loss
from bench.config import TrainConfig
from bench.meter import StepTimer
from bench.model import SERModel, compile_model
from strategies import StrategySpec

Progress = Callable[[dict], None]


@dataclass(frozen=True)
class Precision:
    """What `amp` resolved to on this device."""

    name: str  # fp32 | fp16 | bf16
    autocast_dtype: torch.dtype | None
    loss_scaling: bool


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """fp16 with loss scaling on CUDA; bf16 where fp16 autocast is not available (CPU)."""
    if requested == "fp32":
        return Precision("fp32", None, False)
    if requested == "auto":
        requested = "fp16" if device.type == "cuda" else "bf16"
    if requested == "fp16":
        return Precision("fp16", torch.float16, device.type == "cuda")
    return Precision("bf16", torch.bfloat16, False)


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_ccc: dict[str, float]
    val_ccc_mean: float
    epoch_time_s: float
    elapsed_s: float  # wall clock since training started (cache build included)
    data_wait_s: float = 0.0  # of epoch_time_s, waiting for the next batch (loader or cache read)


@dataclass
class TrainOutcome:
    history: list[EpochLog]
    best_epoch: int
    test_ccc: dict[str, float]
    test_ccc_mean: float
    test_predictions: list[list[float]]
    test_targets: list[list[float]]
    cache_build_s: float | None
    cache_mib: float | None
    train_wall_s: float
    padding_fraction: float
    timer: StepTimer
    notes: list[str] = field(default_factory=list)
    cache: CacheReport | None = None


def _forward(model: SERModel, batch: Batch | CachedBatch) -> torch.Tensor:
    if isinstance(batch, CachedBatch):
        return model.forward_from_features(batch.hidden.float(), batch.frame_mask)
    return model(batch.inputs, batch.attention_mask)


def _batches(ds: AudioDataset, cache: CacheView | None, order: list[list[int]], workers: int):
    if cache is not None:
        return cache.batches(order)  # read ahead in a background thread
    return iter(make_loader(ds, order, workers))


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
    ds: AudioDataset,
    cache: CacheView | None,
    cfg: TrainConfig,
    device: torch.device,
    precision: Precision,
    dims: tuple[str, ...],
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """CCC per dimension over a whole split, plus predictions and targets in dataset order."""
    model.eval()
    order = bucket_batches(ds.lengths(), cfg.batch_size, seed=0, epoch=0, shuffle=False)
    preds = torch.zeros(len(ds), len(dims))
    targets = torch.zeros(len(ds), len(dims))
    for batch in _batches(ds, cache, order, cfg.num_workers):
        batch = batch.to(device)
        with torch.autocast(
            device.type,
            dtype=precision.autocast_dtype or torch.float32,
            enabled=precision.autocast_dtype is not None,
        ):
            out = _forward(model, batch)
        preds[batch.index] = out.float().cpu()
        targets[batch.index] = batch.targets.float().cpu()
    values = ccc(preds, targets)
    return {d: float(v) for d, v in zip(dims, values, strict=True)}, preds.numpy(), targets.numpy()


def train(
    model: SERModel,
    data: dict[str, AudioDataset],
    dims: tuple[str, ...],
    cfg: TrainConfig,
    lr: float,
    precision: Precision,
    spec: StrategySpec,
    seed: int,
    device: torch.device,
    progress: Progress = lambda event: None,
) -> TrainOutcome:
    t_start = time.perf_counter()
    model.to(device)
    notes: list[str] = []
    strategy, mods = spec.strategy, spec.modifiers

    model.checkpoint_layers = mods.ckpt
    if mods.compile is not None:
        notes.append(compile_model(model, mods.compile, device))

    caches: dict[str, CacheView | None] = {s: None for s in data}
    cache_report = cache_build_s = cache_mib = None
    if mods.cache:
        progress({"phase": "cache"})
        views, cache_report = prepare_caches(
            model,
            data,
            device,
            cfg.batch_size,
            precision.autocast_dtype,
            mods.cache_dtype,
            cfg.cache_store,
            num_workers=cfg.num_workers,
        )
        caches.update(views)
        # Getting the cache ready, whether built now or reused: hashing, building, verifying.
        cache_build_s = cache_report.key_s + (cache_report.build_s or 0.0) + cache_report.open_s
        cache_mib = cache_report.bytes / 2**20
        if cache_report.rebuilt_because:
            notes.append(f"prefix cache rebuilt: {cache_report.rebuilt_because}")
        if cache_report.reused:
            notes.append(f"prefix cache reused from {cache_report.path} (built by an earlier run)")

    # The head and the SUPERB layer weights (everything outside the backbone) use head_lr.
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone_ids]
    body = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": cfg.head_lr}] + ([{"params": body, "lr": lr}] if body else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.loss_scaling)
    timer = StepTimer(device, cfg.warmup_steps, cfg.warmup_seconds)
    train_ds = data["train"]
    lengths = train_ds.lengths()
    steps_per_epoch = len(bucket_batches(lengths, cfg.batch_size, seed, 0))
    strategy.begin_training(model, cfg.max_epochs * steps_per_epoch)

    torch.manual_seed(seed)  # the loop's randomness (dropout) starts equal for every strategy
    history: list[EpochLog] = []
    best_mean, best_epoch, best_state, stale = -float("inf"), -1, None, 0
    pads = []
    for epoch in range(cfg.max_epochs):
        model.train()
        order = bucket_batches(lengths, cfg.batch_size, seed, epoch)
        pads.append(padding_fraction(order, lengths))
        losses = []
        t_epoch = time.perf_counter()
        timer.start_epoch()
        batches = _Waited(_batches(train_ds, caches["train"], order, cfg.num_workers))
        for step, batch in enumerate(batches):
            batch = batch.to(device)
            with timer.step(len(batch.index), batch.audio_seconds, batch.padded_seconds):
                with torch.autocast(
                    device.type,
                    dtype=precision.autocast_dtype or torch.float32,
                    enabled=precision.autocast_dtype is not None,
                ):
                    pred = _forward(model, batch)
                loss = ccc_loss(pred.float(), batch.targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                strategy.after_step(model, epoch * steps_per_epoch + step)
            losses.append(loss.item())
            progress(
                {
                    "phase": "train",
                    "epoch": epoch,
                    "epochs": cfg.max_epochs,
                    "step": step + 1,
                    "steps": len(order),
                }
            )
        epoch_time = time.perf_counter() - t_epoch
        with timer.eval_phase():
            val, _, _ = evaluate(model, data["val"], caches["val"], cfg, device, precision, dims)
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
    with timer.eval_phase():
        test, preds, targets = evaluate(
            model, data["test"], caches["test"], cfg, device, precision, dims
        )
    return TrainOutcome(
        history=history,
        best_epoch=best_epoch,
        test_ccc=test,
        test_ccc_mean=float(np.mean(list(test.values()))),
        test_predictions=preds.round(5).tolist(),
        test_targets=targets.round(5).tolist(),
        cache_build_s=cache_build_s,
        cache_mib=cache_mib,
        train_wall_s=time.perf_counter() - t_start,
        padding_fraction=float(np.mean(pads)) if pads else 0.0,
        timer=timer,
        notes=notes,
        cache=cache_report,
    )
