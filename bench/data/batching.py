"""Length-bucketed batching and collation. Batch order is a pure function of (seed, epoch).

Padding is wasted compute: on MSP-Podcast-like durations (lognormal, ~2.75-11 s) random batches of
16 are ~40% padding. Sorting by length removes almost all of it but makes every epoch see the same
batches; sorting by length with a small seeded jitter keeps padding near the jitter (~2%) while
clips of similar length still change batch mates from epoch to epoch.
"""

from __future__ import annotations

import bisect
import functools
import multiprocessing as mp
from dataclasses import dataclass

import numpy as np
import torch

from bench.data.audio import TARGET_SR, load_audio, normalize
from bench.data.datasets import Utterance

# Lengths are jittered by up to +-2% before sorting: the padding this leaves is about that much.
LENGTH_JITTER = 0.02
# The CNN of every wav2vec2-family model (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2) turns
# L samples into T = floor((L - 400) / 320) + 1 frames: lengths 400 + 320 * (T - 1) waste none.
FRAME_RECEPTIVE, FRAME_STRIDE = 400, 320
# Batches are padded up to one of at most this many lengths. Under fp16/bf16 the first step at a
# new input shape costs 5-10 steady steps on an H100 (cuDNN builds its convolution plans), and
# padding each batch to its own longest clip made nearly every step a new shape.
MAX_LENGTHS = 32
# fork starts a worker in ~0.05 s; spawn re-imports torch in each (seconds). Workers only read
# files and build numpy arrays, never CUDA, so forking a process that uses CUDA is safe.
WORKER_START_METHOD = "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def frames_of(samples: int) -> int:
    """Frames the CNN makes of `samples` samples (0 below one receptive field)."""
    return max(0, (samples - FRAME_RECEPTIVE) // FRAME_STRIDE + 1)


def frame_aligned(samples: int) -> int:
    """The smallest length >= `samples` that ends exactly on a frame boundary."""
    t = max(1, -(-(samples - FRAME_RECEPTIVE) // FRAME_STRIDE) + 1)
    return FRAME_RECEPTIVE + FRAME_STRIDE * (t - 1)


@dataclass(frozen=True)
class LengthGrid:
    """The input lengths (samples, ascending, frame-aligned) that batches are padded up to.

    Grid points sit at evenly spaced quantiles of the corpus's clip lengths, so they are dense
    where clips are many: on MSP-Podcast-like durations (`make bench-data`, batch 16) 32 points
    take padding from 1.7% (each batch to its longest clip, 1,231 lengths an epoch) to 4.1%.
    Derived from every split's lengths, so evaluation maps onto the same shapes.
    """

    lengths: tuple[int, ...]

    @classmethod
    def from_lengths(cls, lengths: list[int], n: int = MAX_LENGTHS) -> LengthGrid:
        if not lengths:
            return cls(())
        qs = np.quantile(np.asarray(lengths, dtype=np.float64), np.arange(1, n + 1) / n)
        return cls(tuple(sorted({frame_aligned(int(np.ceil(q))) for q in qs})))

    def pad_to(self, samples: int) -> int:
        """The grid length a batch whose longest clip has `samples` samples is padded to."""
        if not self.lengths:
            return samples
        i = bisect.bisect_left(self.lengths, samples)
        # Longer than the grid (a clip outside the corpus the grid was made from): its own length.
        return self.lengths[i] if i < len(self.lengths) else frame_aligned(samples)


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


def padding_fraction(
    batches: list[list[int]], lengths: list[int], grid: LengthGrid | None = None
) -> float:
    """Share of padded samples over all samples in the padded batches (0..1); with `grid`,
    batches are padded up to its lengths rather than to their longest clip."""
    padded = real = 0
    for batch in batches:
        ls = [lengths[i] for i in batch]
        padded += (grid.pad_to(max(ls)) if grid else max(ls)) * len(ls)
        real += sum(ls)
    return 1.0 - real / padded if padded else 0.0


def distinct_lengths(
    batches: list[list[int]], lengths: list[int], grid: LengthGrid | None = None
) -> int:
    """How many different padded input lengths `batches` have."""
    return len(
        {(grid.pad_to(m) if grid else m) for m in (max(lengths[i] for i in b) for b in batches)}
    )


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

    @property
    def shape(self) -> torch.Size:
        return self.inputs.shape

    def to(self, device: torch.device) -> Batch:
        # All non-blocking (the loader pins them): a blocking copy would wait for the GPU to
        # finish the previous step.
        return Batch(
            self.inputs.to(device, non_blocking=True),
            self.attention_mask.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
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
        self.waves: list[np.ndarray] | None = None  # set by `preload`

    def __len__(self) -> int:
        return len(self.utts)

    def lengths(self) -> list[int]:
        """Samples at 16 kHz after the crop, from the durations the corpus check measured."""
        cap = self.max_samples or 10**12
        return [min(round(u.seconds * TARGET_SR), cap) for u in self.utts]

    def __getitem__(self, i: int) -> tuple[np.ndarray, tuple[float, ...], int]:
        if self.waves is not None:
            return self.waves[i], self.utts[i].labels, i
        return self.decode(i), self.utts[i].labels, i

    def decode(self, i: int) -> np.ndarray:
        """Clip `i`, decoded, cropped to its fixed window and normalised (float32)."""
        wave = load_audio(self.utts[i].path, self.max_seconds, float(self.offsets[i]))
        return normalize(wave).astype(np.float32, copy=False)

    def decoded_bytes(self) -> int:
        """Memory that `preload` takes (float32 samples)."""
        return 4 * sum(self.lengths())

    def preload(self, threads: int) -> None:
        """Decode every clip once, in `threads` threads (libsndfile and the resampler release
        the GIL); items are then served from memory."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, threads)) as pool:
            self.waves = list(pool.map(self.decode, range(len(self.utts))))


def collate(
    items: list[tuple[np.ndarray, tuple[float, ...], int]], grid: LengthGrid | None = None
) -> Batch:
    """Zero-padded batch: to the longest clip, or up to the next length of `grid`."""
    # Assembled in numpy, then wrapped: torch's intra-op threads only add contention to copies
    # this small (3-4x slower on a busy 2-core machine), and the loader's main process has them.
    lens = np.array([len(w) for w, _, _ in items])
    width = int(lens.max()) if grid is None else grid.pad_to(int(lens.max()))
    inputs = np.zeros((len(items), width), dtype=np.float32)
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
    ds: torch.utils.data.Dataset,
    batches,
    num_workers: int,
    grid: LengthGrid | None = None,
    persistent: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over `batches` (lists of indices). Workers start with an explicit method:
    inside a run process started with spawn, the default would be spawn too, and each worker
    would import torch and transformers again (~6 s on 2 cores, ~11 s on a GPU host)."""
    workers = dict(
        persistent_workers=persistent,
        multiprocessing_context=WORKER_START_METHOD,
    )
    return torch.utils.data.DataLoader(
        ds,
        batch_sampler=batches,
        collate_fn=functools.partial(collate, grid=grid),
        num_workers=num_workers,
        **(workers if num_workers > 0 else {}),
        pin_memory=torch.cuda.is_available(),
        # Its own generator, so creating an iterator does not draw from the global RNG that
        # dropout uses: cached and uncached runs then see the same dropout masks.
        generator=torch.Generator().manual_seed(0),
    )
