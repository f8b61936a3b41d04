"""Precision and the one training step. The trainer, the ceiling, `bench-meter` and the
micro-benchmarks all call `train_step`, so they time the same work: autocast forward, CCC loss,
(scaled) backward, optimiser step, the strategy's `after_step` hook."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from bench.ccc import ccc_loss

if TYPE_CHECKING:
    from bench.cache import CachedBatch
    from bench.data.batching import Batch
    from bench.model.ser import SERModel
    from strategies.base import Strategy


@dataclass(frozen=True)
class Precision:
    """What `amp` resolved to on this device."""

    name: str  # fp32 | fp16 | bf16
    autocast_dtype: torch.dtype | None
    loss_scaling: bool

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The autocast context of this precision (a no-op for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """`amp` (auto) is bf16 wherever the device has it: fp32's range, so no loss scaling, whose
    overflow check reads a flag on the host every step (a synchronisation). fp16 with loss
    scaling on CUDA GPUs without bf16 (before Ampere), or when asked for (`+amp:fp16`)."""
    if requested == "fp32":
        return Precision("fp32", None, False)
    if requested == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        requested = "fp16" if device.type == "cuda" and not cuda_bf16 else "bf16"
    if requested == "fp16":
        return Precision("fp16", torch.float16, device.type == "cuda")
    return Precision("bf16", torch.bfloat16, False)


def apply_fp32_math(tf32: bool, cudnn_benchmark: bool, device: torch.device) -> str | None:
    """Set TF32 (matmuls and cuDNN convolutions alike) and cuDNN autotuning for this process,
    before the model runs; a note for the result on CUDA (None elsewhere: neither applies)."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    if device.type != "cuda":
        return None
    math = (
        "TF32 for fp32 matmuls and convolutions"
        if tf32
        else "fp32 matmuls and convolutions in fp32 (TF32 off)"
    )
    tuned = "cudnn.benchmark on" if cudnn_benchmark else "cudnn.benchmark off"
    return f"{math}; {tuned} (--tf32, --cudnn-benchmark)"


def forward(model: SERModel, batch: Batch | CachedBatch) -> torch.Tensor:
    """Predictions for a waveform batch, or for a cached batch of frozen-prefix features."""
    hidden = getattr(batch, "hidden", None)
    if hidden is not None:
        return model.forward_from_features(hidden.float(), batch.frame_mask)
    return model(batch.inputs, batch.attention_mask)


@dataclass
class Stepper:
    """Everything one optimisation step needs besides the batch."""

    model: SERModel
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    precision: Precision
    strategy: Strategy
    device: torch.device
    schedule: torch.optim.lr_scheduler.LRScheduler
    max_grad_norm: float | None = None


def train_step(s: Stepper, batch: Batch | CachedBatch, step: int) -> torch.Tensor:
    """One step on a batch already on the device; returns the loss (a device tensor, not synced)."""
    with s.precision.autocast(s.device):
        pred = forward(s.model, batch)
    loss = ccc_loss(pred.float(), batch.targets)
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    if s.max_grad_norm is not None:
        s.scaler.unscale_(s.optimizer)
        params = [p for g in s.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
    s.scaler.step(s.optimizer)
    s.scaler.update()
    s.schedule.step()
    s.strategy.after_step(s.model, step)
    return loss


def make_stepper(
    model: SERModel,
    strategy: Strategy,
    precision: Precision,
    device: torch.device,
    lr: float,
    head_lr: float,
    weight_decay: float,
    warmup_steps: int = 0,
    max_grad_norm: float | None = 1.0,
) -> Stepper:
    """AdamW with two groups: the backbone's trainable parameters at `lr`, everything outside
    the backbone (head, SUPERB layer weights) at `head_lr`; the learning rates rise linearly
    over `warmup_steps`, then stay; gradients are clipped to `max_grad_norm`.

    Why both: wav2vec2-base is a post-LayerNorm transformer, and without them Adam's first
    updates at full rate collapsed partial3+amp, partial3+amp+cache and dora on a random-init
    base to constant predictions on an H100; with them they learned. (Full finetuning of that
    base also needed a lower rate: see the gpu-check profile in bench/config.py.)"""
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone_ids]
    body = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": head_lr}] + ([{"params": body, "lr": lr}] if body else [])
    # Fused on CUDA: one kernel for the whole update, and with loss scaling its inf check stays
    # on the device.
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=precision.loss_scaling)
    ramp = max(1, warmup_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / ramp))
    return Stepper(model, optimizer, scaler, precision, strategy, device, schedule, max_grad_norm)
