"""Caching the frozen prefix: run it once per clip (eval mode, no grad), keep its output in fp16,
and train the rest on stored hidden states every epoch."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bench.batching import AudioDataset, make_loader


@dataclass
class CachedBatch:
    hidden: torch.Tensor  # (B, T, D) stored dtype
    frame_mask: torch.Tensor  # (B, T) bool
    targets: torch.Tensor
    index: torch.Tensor
    audio_seconds: float


@dataclass
class PrefixCache:
    """Per-utterance hidden states entering layer `boundary`, valid frames only."""

    boundary: int
    store_dtype: torch.dtype
    features: list[torch.Tensor]  # indexed like the dataset; (frames, D)
    targets: torch.Tensor
    seconds: list[float]
    build_s: float

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.features)

    def batch(self, indices: list[int]) -> CachedBatch:
        feats = [self.features[i] for i in indices]
        t = max(f.shape[0] for f in feats)
        hidden = torch.zeros(len(feats), t, feats[0].shape[1], dtype=self.store_dtype)
        mask = torch.zeros(len(feats), t, dtype=torch.bool)
        for j, f in enumerate(feats):
            hidden[j, : f.shape[0]] = f
            mask[j, : f.shape[0]] = True
        return CachedBatch(
            hidden,
            mask,
            self.targets[indices],
            torch.tensor(indices),
            sum(self.seconds[i] for i in indices),
        )


@torch.no_grad()
def build_cache(
    model,
    ds: AudioDataset,
    boundary: int,
    device: torch.device,
    batch_size: int,
    autocast_dtype: torch.dtype | None,
    num_workers: int = 0,
    store_dtype: torch.dtype = torch.float16,
) -> PrefixCache:
    """Run the frozen prefix over every clip of `ds` in eval mode and store its output."""
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    n = len(ds)
    features: list[torch.Tensor | None] = [None] * n
    targets = torch.zeros(n, len(ds.utts[0].labels))
    seconds = [0.0] * n
    if model.backbone.config.feat_extract_norm == "group":
        # GroupNorm over time sees the padding, so a clip's features would depend on its batch
        # mates. One clip per batch gives each clip its own, padding-free features, so the cache
        # can be keyed by content alone.
        batch_size = 1
    lengths = ds.lengths()
    order = sorted(range(n), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    for b in make_loader(ds, batches, num_workers):
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            hidden, mask = model.prefix(b.inputs.to(device), b.attention_mask.to(device), boundary)
        hidden = hidden.to(store_dtype).cpu()
        valid = mask.sum(1).cpu()
        for j, i in enumerate(b.index.tolist()):
            features[i] = hidden[j, : valid[j]].clone()
            targets[i] = b.targets[j]
            seconds[i] = float(b.attention_mask[j].sum()) / 16_000
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    model.train(was_training)
    return PrefixCache(boundary, store_dtype, features, targets, seconds, time.perf_counter() - t0)  # type: ignore[arg-type]
