"""Analytic training FLOPs of an SER model, per clip, and MFU against known peaks.

One multiply-add counts as 2 FLOPs. Per block (CNN feature encoder, feature projection,
positional convolution, each transformer layer, head), the forward cost is counted from the
architecture at a given clip length, for each backbone family (data2vec-audio's stack of
positional convolutions, WavLM's per-head gate of its relative position bias); attention is
quadratic in frames. The backward cost of a
block is its forward cost once for the gradient with respect to its input (needed when anything
below it trains) plus its forward cost times the share of its parameters that train (the weight
gradients: ~1x for a fully trained block, ~0 for LoRA or BitFit, whose small adapter/bias
products are neglected). A block that does not run (a cached prefix) costs nothing. Norms,
activations, softmax and the optimizer step are neglected: they are a few percent at most.
The attention products have no parameters: their backward costs twice their forward whenever
anything at or below the layer trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bench.result.sections import Compute, ThroughputReport

# Dense peak TFLOP/s from vendor specifications (no sparsity: half the datasheets' starred
# figures): (fp16/bf16 tensor, TF32 tensor or None where the GPU has no TF32, fp32 non-tensor).
# Matched by substring of the CUDA device name, first match wins, so longer names come first.
PEAK_TFLOPS: list[tuple[str, float, float | None, float]] = [
    ("H100 PCIe", 756.0, 378.0, 51.0),
    ("H100", 989.0, 494.7, 67.0),
    ("H200", 989.0, 494.7, 67.0),
    ("A100", 312.0, 156.0, 19.5),
    ("L40S", 362.0, 183.0, 91.6),
    ("L4", 121.0, 60.0, 30.3),
    ("A10", 125.0, 62.5, 31.2),
    ("RTX 4090", 165.0, 82.6, 82.6),
    ("RTX 3090", 71.0, 35.6, 35.6),
    ("V100", 125.0, None, 15.7),
    ("T4", 65.0, None, 8.1),
]


@dataclass(frozen=True)
class Block:
    name: str
    forward: float  # FLOPs for one clip, parameterised products (linear layers, convolutions)
    module: nn.Module | None  # for the trainable share; None: no parameters
    core: float = 0.0  # FLOPs of parameter-free products (attention scores and weighted sum)
    entry: float | None = None  # FLOPs of the products that read the block's input (None: all)


def cnn_lengths(config, n_samples: int) -> list[int]:
    lengths, n = [], n_samples
    for k, s in zip(config.conv_kernel, config.conv_stride, strict=True):
        n = (n - k) // s + 1
        lengths.append(max(n, 0))
    return lengths


def block_flops(model, n_samples: int) -> list[Block]:
    """Forward FLOPs per block for one clip of `n_samples` samples at 16 kHz."""
    cfg = model.backbone.config
    lengths = cnn_lengths(cfg, n_samples)
    cnn, c_in = 0.0, 1
    for n, k, c_out in zip(lengths, cfg.conv_kernel, cfg.conv_dim, strict=True):
        cnn += 2.0 * n * k * c_in * c_out
        c_in = c_out
    t, d, inner = lengths[-1], cfg.hidden_size, cfg.intermediate_size
    n_pos, k_pos = model.family.pos_conv(cfg)
    groups = cfg.num_conv_pos_embedding_groups
    bb = model.backbone
    blocks = [
        Block("cnn", cnn, bb.feature_extractor),
        Block("projection", 2.0 * t * c_in * d, bb.feature_projection),
        Block("pos_conv", n_pos * 2.0 * t * d * (d // groups) * k_pos, bb.encoder.pos_conv_embed),
    ]
    linear = 2.0 * t * d * d * 4 + 2.0 * 2 * t * d * inner  # q, k, v, out projections; feed-forward
    core = 2.0 * 2 * t * t * d  # QK^T and softmax(QK^T)V
    qkv = 2.0 * t * d * d * 3
    if model.family.relative_position_bias:
        # WavLM gates the bias per head from the layer input: Linear(head_dim, g) on every head.
        gate = 2.0 * t * d * model.layers[0].attention.gru_rel_pos_linear.out_features
        linear, qkv = linear + gate, qkv + gate
    for i, layer in enumerate(model.layers):
        # Pre-LN layers (stable layer norm) normalise their input before q, k, v: when that
        # LayerNorm trains, q, k, v need gradients w.r.t. its output, so no product reads the
        # layer's input directly.
        trains_norm = any(p.requires_grad for p in layer.layer_norm.parameters())
        entry = 0.0 if model.stable_layer_norm and trains_norm else qkv
        blocks.append(Block(f"layer{i}", linear, layer, core, entry))
    head_params = sum(p.numel() for p in model.head.parameters())
    blocks.append(Block("head", 2.0 * head_params, model.head))
    return blocks


def _trainable_share(module: nn.Module | None) -> float:
    if module is None:
        return 0.0
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    return sum(p.numel() for p in params if p.requires_grad) / total if total else 0.0


def train_flops_per_clip(model, n_samples: int, cached_layers: int | None = None) -> float:
    """Forward + backward FLOPs of one training step on one clip; `cached_layers`: the prefix
    (CNN .. layer cached_layers-1) comes from the cache and is not computed."""
    blocks = block_flops(model, n_samples)
    first_run = (
        0 if cached_layers is None else 3 + cached_layers
    )  # cnn, projection, pos_conv come first
    total, below_trains = 0.0, False
    for i, b in enumerate(blocks):
        if i < first_run:
            continue
        share = _trainable_share(b.module)
        if below_trains:
            input_grads = b.forward
        elif share > 0:
            # The lowest trainable block needs input gradients inside itself (to reach its first
            # products' weights), but not for the products that read the block's input.
            input_grads = b.forward - (b.forward if b.entry is None else b.entry)
        else:
            input_grads = 0.0
        backward = input_grads + b.forward * share
        if below_trains or share > 0:
            backward += 2.0 * b.core  # gradients w.r.t. both operands of each attention product
        total += b.forward + b.core + backward
        below_trains = below_trains or share > 0
    return total


def peak_tflops(
    device_name: str | None, precision: str, override: float | None, tf32: bool = False
) -> tuple[float | None, str]:
    """Peak TFLOP/s for the precision used (fp32 with `tf32` allowed: the TF32 tensor peak),
    and where the figure comes from."""
    if override is not None:
        return override, "--peak-tflops"
    if not device_name:
        return None, "no peak figure for this device; pass --peak-tflops to get MFU"
    for key, half, tf32_peak, single in PEAK_TFLOPS:
        if key not in device_name:
            continue
        if precision != "fp32":
            return half, f"{key} {precision} tensor spec"
        if not tf32:
            return single, f"{key} fp32 spec (TF32 off)"
        if tf32_peak is None:
            return single, f"{key} fp32 spec (--tf32 on, but this GPU has no TF32)"
        return tf32_peak, f"{key} TF32 tensor spec (--tf32 on)"
    return None, f"{device_name!r} is not in the table of known GPUs; pass --peak-tflops to get MFU"


def compute_of(
    model,
    thr: ThroughputReport,
    cached_layers: int | None,
    device_name: str | None,
    precision: str,
    peak_override: float | None,
    tf32: bool = False,
) -> Compute:
    """A run's compute section: model FLOPs per sample at the mean padded length of its timed
    steps, the TFLOP/s that makes at its throughput, and MFU against the device's peak (None,
    with the peak's source saying why, where a figure is missing)."""
    padded = thr.padded_audio_s_per_sample
    flops = (
        None
        if padded is None
        else train_flops_per_clip(model, round(padded * 16_000), cached_layers)
    )
    peak, peak_source = peak_tflops(device_name, precision, peak_override, tf32)
    sps = thr.train_samples_per_s
    achieved = None if flops is None or sps is None else flops * sps / 1e12
    audio_per_sample = (
        None if not sps or thr.train_audio_s_per_s is None else thr.train_audio_s_per_s / sps
    )
    return Compute(
        train_flops_per_sample=flops,
        train_flops_per_audio_s=None
        if not flops or not audio_per_sample
        else flops / audio_per_sample,
        achieved_tflops=achieved,
        peak_tflops=peak,
        peak_source=peak_source,
        mfu=None if achieved is None or not peak else achieved / peak,
        method="analytic (bench/model/flops.py) at the mean padded clip length of timed steps",
    )
