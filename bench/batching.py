"""Length-bucketed batching and collation. Batch order is a pure function of (seed, epoch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.audio import crop, load_audio, normalize
from bench.datasets import Utterance


def bucket_batches(
    lengths: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    bucket_batches: int = 8,
) -> list[list[int]]:
    """Group indices of similar length into batches.

    Sort by length, cut into buckets of `bucket_batches` batches, shuffle inside each bucket (so
    batches differ between epochs), cut into batches, then shuffle the batch order. Without
    `shuffle` (evaluation) the batches are the sorted order, deterministic.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    if not shuffle:
        return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng([seed, 3, epoch])
    size = batch_size * bucket_batches
    batches: list[list[int]] = []
    for b in range(0, len(order), size):
        bucket = order[b : b + size].copy()
        rng.shuffle(bucket)
        bucket = bucket[np.argsort(np.asarray(lengths)[bucket], kind="stable")]
        batches += [bucket[i : i + batch_size].tolist() for i in range(0, len(bucket), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of padded samples over all samples in the padded batches."""
    padded = real = 0
    for batch in batches:
        ls = [lengths[i] for i in batch]
        padded += max(ls) * len(ls)
        real += sum(ls)
    return 1.0 - real / padded if padded else 0.0


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, S) float32, normalised, zero-padded
    attention_mask: torch.Tensor  # (B, S) long, 1 on real samples
    targets: torch.Tensor  # (B, D)
    index: torch.Tensor  # (B,) positions in the split
    audio_seconds: float


class AudioDataset(torch.utils.data.Dataset):
    """Decoded, normalised, cropped waveforms. Crop offsets are fixed per (seed, utterance) so
    every strategy (and a cache) sees the same window; eval crops are centred."""

    def __init__(self, utts: list[Utterance], max_seconds: float | None, seed: int, train: bool):
        self.utts = utts
        self.max_samples = int(max_seconds * 16_000) if max_seconds else None
        self.offsets = (
            np.random.default_rng([seed, 5]).random(len(utts)) if train else np.full(len(utts), 0.5)
        )

    def __len__(self) -> int:
        return len(self.utts)

    def lengths(self) -> list[int]:
        cap = self.max_samples or 10**12
        return [min(round(u.seconds * 16_000), cap) for u in self.utts]

    def __getitem__(self, i: int) -> tuple[np.ndarray, tuple[float, ...], int]:
        wave = normalize(
            crop(load_audio(self.utts[i].path), self.max_samples, float(self.offsets[i]))
        )
        return wave.astype(np.float32), self.utts[i].labels, i


def collate(items: list[tuple[np.ndarray, tuple[float, ...], int]]) -> Batch:
    n = max(len(w) for w, _, _ in items)
    inputs = torch.zeros(len(items), n)
    mask = torch.zeros(len(items), n, dtype=torch.long)
    for j, (w, _, _) in enumerate(items):
        inputs[j, : len(w)] = torch.from_numpy(w)
        mask[j, : len(w)] = 1
    targets = torch.tensor([lab for _, lab, _ in items], dtype=torch.float32)
    index = torch.tensor([i for _, _, i in items])
    return Batch(inputs, mask, targets, index, audio_seconds=float(mask.sum()) / 16_000)


def make_loader(
    ds: AudioDataset, batches: list[list[int]], num_workers: int
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        ds,
        batch_sampler=batches,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        # Its own generator, so creating an iterator does not draw from the global RNG that
        # dropout uses: cached and uncached runs then see the same dropout masks.
        generator=torch.Generator().manual_seed(0),
    )
