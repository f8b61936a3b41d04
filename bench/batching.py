"""Length-bucketed batching and collation. Batch order is a pure function of (seed, epoch).

Padding is wasted compute: on MSP-Podcast-like durations (lognormal, ~2.75-11 s) random batches of
16 are ~40% padding. Sorting by length removes almost all of it but makes every epoch see the same
batches; sorting by length with a small seeded jitter keeps padding near the jitter (~2%) while
clips of similar length still change batch mates from epoch to epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.audio import TARGET_SR, load_audio, normalize
from bench.datasets import Utterance

# Lengths are jittered by up to +-2% before sorting: the padding this leaves is about that much.
LENGTH_JITTER = 0.02


def bucket_batches(
    lengths: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    jitter: float = LENGTH_JITTER,
) -> list[list[int]]:
    """Batches of indices of similar length, as a pure function of (lengths, seed, epoch).

    Training (`shuffle`): sort by log-length plus seeded uniform noise of +-`jitter`, cut into
    batches, shuffle the batch order. Evaluation: the plain sorted order, cut into batches.
    """
    log_len = np.log(np.maximum(np.asarray(lengths, dtype=np.float64), 1.0))
    if not shuffle:
        order = np.argsort(log_len, kind="stable")
        return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng([seed, 3, epoch])
    order = np.argsort(log_len + rng.uniform(-jitter, jitter, len(log_len)), kind="stable")
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Batches of a plain random permutation: the no-bucketing reference for padding."""
    order = np.random.default_rng([seed, 4, epoch]).permutation(n)
    return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of padded samples over all samples in the padded batches (0..1)."""
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

    @property
    def padded_seconds(self) -> float:
        """Audio seconds the model computes on, padding included."""
        return self.inputs.numel() / 16_000

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.inputs.to(device, non_blocking=True),
            self.attention_mask.to(device),
            self.targets.to(device),
            self.index,
            self.audio_seconds,
        )

    def pin_memory(self) -> Batch:
        # DataLoader(pin_memory=True) pins only tensors and containers it knows; it calls this
        # for anything else, so that the trainer's non_blocking copies really overlap.
        return Batch(
            self.inputs.pin_memory(),
            self.attention_mask.pin_memory(),
            self.targets.pin_memory(),
            self.index,
            self.audio_seconds,
        )


class AudioDataset(torch.utils.data.Dataset):
    """Decoded, normalised, cropped waveforms.

    Crop windows are fixed per (seed, utterance), random in training and centred in evaluation:
    fixed rather than redrawn each epoch because a cached frozen prefix is computed once per clip,
    and cached and uncached runs must train on the same audio.
    """

    def __init__(self, utts: list[Utterance], max_seconds: float | None, seed: int, train: bool):
        self.utts = utts
        self.max_seconds = max_seconds
        self.max_samples = round(max_seconds * TARGET_SR) if max_seconds else None
        self.offsets = (
            np.random.default_rng([seed, 5]).random(len(utts)) if train else np.full(len(utts), 0.5)
        )

    def __len__(self) -> int:
        return len(self.utts)

    def lengths(self) -> list[int]:
        """Samples at 16 kHz after the crop, from the durations the corpus check measured."""
        cap = self.max_samples or 10**12
        return [min(round(u.seconds * TARGET_SR), cap) for u in self.utts]

    def __getitem__(self, i: int) -> tuple[np.ndarray, tuple[float, ...], int]:
        wave = load_audio(self.utts[i].path, self.max_seconds, float(self.offsets[i]))
        return normalize(wave).astype(np.float32, copy=False), self.utts[i].labels, i


def collate(items: list[tuple[np.ndarray, tuple[float, ...], int]]) -> Batch:
    # Assembled in numpy, then wrapped: torch's intra-op threads only add contention to copies
    # this small (3-4x slower on a busy 2-core machine), and the loader's main process has them.
    lens = np.array([len(w) for w, _, _ in items])
    inputs = np.zeros((len(items), int(lens.max())), dtype=np.float32)
    for j, (w, _, _) in enumerate(items):
        inputs[j, : len(w)] = w
    mask = (np.arange(inputs.shape[1])[None, :] < lens[:, None]).astype(np.int64)
    targets = torch.tensor([lab for _, lab, _ in items], dtype=torch.float32)
    index = torch.tensor([i for _, _, i in items])
    return Batch(
        torch.from_numpy(inputs),
        torch.from_numpy(mask),
        targets,
        index,
        audio_seconds=float(lens.sum()) / TARGET_SR,
    )


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
