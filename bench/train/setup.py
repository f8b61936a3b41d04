"""Setting up one run: from its config to everything the training loop needs, in one place.

The worker, `bench-cache`, `bench-meter` and the micro-benchmarks all start here, so they train
the same model with the same strategy, precision and optimiser as a sweep does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.config import RunConfig
from bench.data.batching import AudioDataset, bucket_batches
from bench.data.datasets import SPLITS, Corpus, load_dataset
from bench.meter.environment import pick_device
from bench.model.ser import LoadedBackbone, SERModel, build_model, prepare_forward
from bench.train.step import (
    Precision,
    Stepper,
    apply_fp32_math,
    make_stepper,
    resolve_precision,
)
from strategies import StrategySpec, parse_strategy


@dataclass
class RunContext:
    cfg: RunConfig
    spec: StrategySpec
    device: torch.device
    corpus: Corpus
    data: dict[str, AudioDataset]  # train / val / test
    model: SERModel  # on `device`, the strategy applied
    loaded: LoadedBackbone
    precision: Precision
    lr: float  # the backbone's learning rate (the head's is cfg.train.head_lr)
    steps_per_epoch: int
    stepper: Stepper  # optimiser, loss scaler, warm-up schedule: the one training step's state
    notes: list[str]  # how the forward pass executes (+compile), for the result


def setup_run(cfg: RunConfig, corpus: Corpus | None = None) -> RunContext:
    """Corpus, datasets, model, strategy, precision and optimiser for `cfg`. `corpus`: one the
    caller already loaded for this config (the same seed), so it is not read twice."""
    spec = parse_strategy(cfg.strategy)
    device = pick_device(cfg.device)
    math_note = apply_fp32_math(cfg.train.tf32, cfg.train.cudnn_benchmark, device)
    torch.manual_seed(cfg.seed)
    if corpus is None:
        # The command line checked this corpus before the sweep; the audio check is remembered
        # on disk, so this load reads the label files only and gets the same corpus.
        corpus = load_dataset(cfg.data, cfg.seed)
    data = {
        s: AudioDataset(corpus.split(s), cfg.train.max_seconds, cfg.seed, train=s == "train")
        for s in SPLITS
    }
    model, loaded = build_model(
        cfg.model, cfg.weights, cfg.seed, spec.strategy, n_outputs=len(corpus.dimensions)
    )
    model.to(device)
    notes = prepare_forward(model, spec.modifiers, device)  # +ckpt, +compile, +graph
    notes += [math_note] if math_note else []
    precision = resolve_precision(spec.modifiers.precision, device)
    lr = cfg.train.lr or spec.strategy.default_lr * cfg.train.lr_scale * (
        cfg.train.lr_factor or 1.0
    )
    steps_per_epoch = len(
        bucket_batches(data["train"].lengths(), cfg.train.batch_size, cfg.seed, 0)
    )
    stepper = make_stepper(
        model,
        spec.strategy,
        precision,
        device,
        lr,
        cfg.train.head_lr,
        cfg.train.weight_decay,
        warmup_steps=round(cfg.train.lr_warmup * cfg.train.max_epochs * steps_per_epoch),
        max_grad_norm=cfg.train.max_grad_norm,
    )
    return RunContext(
        cfg,
        spec,
        device,
        corpus,
        data,
        model,
        loaded,
        precision,
        lr,
        steps_per_epoch,
        stepper,
        notes,
    )
