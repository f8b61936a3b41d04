"""Caching the frozen prefix: compute it once per clip, store it, serve training batches from it.

`prepare_caches` is the one entry point. It keys the store (see key.py), opens it when it exists
and verifies, otherwise runs the frozen part of the model over every distinct clip of every split
(in eval mode, no grad) and streams the output to disk, then opens it: in memory when it fits,
memory-mapped otherwise. Each split gets a `CacheView` that yields padded batches in any order,
read ahead by a background thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio
import transformers

import bench.data.audio
from bench.cache.key import (
    FORMAT_VERSION,
    AudioFingerprints,
    CacheKey,
    clip_key,
    default_cache_dir,
    source_digest,
    weights_digest,
)
from bench.cache.lock import open_or_build
from bench.cache.prefetch import prefetched
from bench.cache.store import (
    DTYPES,
    CacheInvalid,
    DeviceStore,
    FeatureStore,
    StoreWriter,
    open_store,
    read_index,
    store_paths,
)
from bench.data.audio import sf as soundfile  # the stdlib stand-in where the package is missing
from bench.data.batching import AudioDataset, LengthGrid, collate, frames_of, make_loader
from bench.errors import BenchError
from bench.meter.host import available_memory
from bench.result.sections import CacheReport

STORE_PLACES = ("auto", "memory", "disk", "device")
# "auto" keeps a store in RAM when it takes at most this share of the memory available now.
MEMORY_SHARE = 0.5
# auto puts the store on the GPU when it takes at most this share of the device's memory (and
# a quarter of what is free): small enough that peak VRAM stays the strategy's, and the run's
# notes say the store is in it.
DEVICE_SHARE = 0.05
STORE_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


@dataclass
class CachedBatch:
    hidden: torch.Tensor  # (B, T, D) in the stored dtype; T rows = frames, or L+1 pooled states
    frame_mask: torch.Tensor  # (B, T) bool
    targets: torch.Tensor
    index: torch.Tensor  # positions in the split
    audio_seconds: float
    padded_seconds: float  # audio seconds the batch stands for, padding included

    @property
    def shape(self) -> torch.Size:
        return self.hidden.shape

    def to(self, device: torch.device) -> CachedBatch:
        return CachedBatch(
            self.hidden.to(device, non_blocking=True),
            self.frame_mask.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.index,
            self.audio_seconds,
            self.padded_seconds,
        )


class CacheView:
    """One split's clips, served from a store; `batches` reads ahead in a thread (a store on the
    device needs none: its batches are one gather kernel each)."""

    def __init__(
        self,
        store: FeatureStore | DeviceStore,
        positions: list[int],
        targets: torch.Tensor,
        grid: LengthGrid | None = None,
    ):
        self.store = store
        self.positions = positions
        self.on_device = isinstance(store, DeviceStore)
        self.targets = targets
        self.grid = grid
        self.samples = [store.index.samples[p] for p in positions]

    def batch(self, indices: list[int]) -> CachedBatch:
        """Clips `indices`, padded to the frames of the grid length an uncached batch gets."""
        longest = max(self.samples[i] for i in indices)
        padded = self.grid.pad_to(longest) if self.grid else longest
        pin = torch.cuda.is_available()
        hidden, mask = self.store.gather(
            [self.positions[i] for i in indices],
            pin=pin,
            min_rows=frames_of(padded) if self.grid else 0,
        )
        sr = bench.data.audio.TARGET_SR
        targets = self.targets[indices]  # on the host; CachedBatch.to copies it without a sync
        return CachedBatch(
            hidden,
            mask,
            targets.pin_memory() if pin else targets,
            torch.tensor(indices),
            sum(self.samples[i] for i in indices) / sr,
            padded * len(indices) / sr,
        )

    def batches(self, order: list[list[int]], prefetch: int = 4) -> Iterator[CachedBatch]:
        if self.on_device:
            return (self.batch(b) for b in order)
        return prefetched(self.batch, order, prefetch)


class _Clips(torch.utils.data.Dataset):
    """The distinct clips of several splits as one dataset; items are indexed by position."""

    def __init__(self, clips: list[tuple[AudioDataset, int]]):
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, j: int):
        ds, i = self.clips[j]
        wave, labels, _ = ds[i]
        return wave, labels, j


def resolve_place(requested: str, nbytes: int, device: torch.device | None = None) -> str:
    """device, memory or disk for a store of `nbytes`; "auto" picks the CUDA `device` when the
    store is small next to its memory, else host memory when it fits comfortably, else disk."""
    if requested not in STORE_PLACES:
        raise BenchError(f"cache_store must be one of {', '.join(STORE_PLACES)}, not {requested!r}")
    if requested == "device":
        return requested
    if requested == "auto" and device is not None and device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        if nbytes <= min(DEVICE_SHARE * total, 0.25 * free):
            return "device"
    memory = available_memory()  # a container's cgroup limit where it is the tighter
    avail = memory.bytes
    if requested == "memory" and avail is not None and nbytes > avail:
        raise BenchError(
            f"the prefix cache needs {nbytes / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB of "
            f"memory is available ({memory.source}); use cache_store='disk' (or 'auto')"
        )
    if requested != "auto":
        return requested
    return "memory" if avail is not None and nbytes <= MEMORY_SHARE * avail else "disk"


@dataclass(frozen=True)
class _Plan:
    key: CacheKey
    split_keys: dict[str, list[str]]  # clip key of every item of every split
    distinct: list[str]  # each clip key once, in first-seen order
    sources: list[tuple[AudioDataset, int]]  # one (dataset, index) per distinct key


def _plan(
    model,
    data: dict[str, AudioDataset],
    compute_dtype: torch.dtype | None,
    store_dtype: str,
    fingerprints: AudioFingerprints,
) -> _Plan:
    """The store's key, and which clips it holds."""
    split_keys: dict[str, list[str]] = {}
    first: dict[str, tuple[AudioDataset, int]] = {}
    for split, ds in data.items():
        keys = [
            clip_key(fingerprints.digest(u.path), u.seconds, ds.max_seconds, float(ds.offsets[i]))
            for i, u in enumerate(ds.utts)
        ]
        split_keys[split] = keys
        for i, k in enumerate(keys):
            first.setdefault(k, (ds, i))
    fingerprints.save()
    distinct = list(first)
    key = CacheKey(
        representation=model.cached_representation(),
        weights=weights_digest(model.frozen_modules()),
        compute_dtype=str(compute_dtype or torch.float32).removeprefix("torch."),
        store_dtype=store_dtype,
        # Everything between a file and the model input: decoding, resampling, normalising,
        # cropping. Editing that code (or upgrading the libraries) invalidates every store.
        preprocessing=source_digest(bench.data.audio, AudioDataset, collate)
        + f" torchaudio {torchaudio.__version__} soundfile {soundfile.__version__}",
        model_code=hashlib.sha256(model.code_fingerprint().encode()).hexdigest()
        + f" torch {torch.__version__} transformers {transformers.__version__}",
        clips=hashlib.sha256("\n".join(sorted(distinct)).encode()).hexdigest(),
    )
    return _Plan(key, split_keys, distinct, [first[k] for k in distinct])


def find_store(
    model,
    data: dict[str, AudioDataset],
    compute_dtype: torch.dtype | None,
    cache_dtype: str = "fp16",
    directory: Path | None = None,
) -> Path | None:
    """The store `prepare_caches` would open for these inputs, where one is already built in
    `directory`; None where it would build one. Reads no audio: a clip whose file this cache
    folder has never fingerprinted cannot be in any store here."""
    directory = Path(directory) if directory is not None else default_cache_dir()
    fingerprints = AudioFingerprints(directory)
    if not all(fingerprints.remembers(u.path) for ds in data.values() for u in ds.utts):
        return None
    digest = _plan(model, data, compute_dtype, STORE_DTYPES[cache_dtype], fingerprints).key.digest
    payload, index = store_paths(directory, digest)
    return payload if payload.is_file() and index.is_file() else None


@torch.no_grad()
def build_store(
    model,
    clips: list[tuple[AudioDataset, int]],
    clip_keys: list[str],
    writer: StoreWriter,
    device: torch.device,
    batch_size: int,
    compute_dtype: torch.dtype | None,
    num_workers: int = 0,
    grid: LengthGrid | None = None,
) -> None:
    """Run the frozen part over `clips` in eval mode and append each clip's valid rows."""
    was_training = model.training
    model.eval()
    # A clip's valid frames do not depend on its batch mates' padding (the model normalises
    # GroupNorm over each clip's own samples), so clips are batched, sorted by length and padded
    # to the run's bounded lengths: a few distinct shapes, not one per clip.
    lengths = {id(ds): ds.lengths() for ds, _ in clips}
    length = [lengths[id(ds)][i] for ds, i in clips]
    order = sorted(range(len(clips)), key=lambda j: length[j])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    preloaded = all(ds.waves is not None for ds, _ in clips)
    loader = make_loader(_Clips(clips), batches, 0 if preloaded else num_workers, grid)
    for b in loader:
        with torch.autocast(
            device.type, dtype=compute_dtype or torch.float32, enabled=compute_dtype is not None
        ):
            feats, mask = model.frozen_features(b.inputs.to(device), b.attention_mask.to(device))
        feats = feats.to(DTYPES[writer.dtype][0]).cpu()
        valid = mask.sum(1).cpu().tolist()
        samples = b.attention_mask.sum(1).tolist()
        for j, pos in enumerate(b.index.tolist()):
            writer.add(clip_keys[pos], feats[j, : valid[j]], samples[j])
    model.train(was_training)


def prepare_caches(
    model,
    data: dict[str, AudioDataset],
    device: torch.device,
    batch_size: int,
    compute_dtype: torch.dtype | None,
    cache_dtype: str = "fp16",
    place: str = "auto",
    directory: Path | None = None,
    num_workers: int = 0,
    grid: LengthGrid | None = None,
) -> tuple[dict[str, CacheView], CacheReport]:
    """A verified store for the frozen part of `model` over every clip of `data`, and a view per
    split. Builds it when missing; rebuilds it, never uses it, when it is corrupt or stale."""
    directory = Path(directory) if directory is not None else default_cache_dir()
    t0 = time.perf_counter()
    plan = _plan(
        model, data, compute_dtype, STORE_DTYPES[cache_dtype], AudioFingerprints(directory)
    )
    digest = plan.key.digest
    key_s = time.perf_counter() - t0
    build_s = write_gbps = None

    def build() -> None:
        nonlocal build_s, write_gbps
        t_build = time.perf_counter()
        dim = model.backbone.config.hidden_size
        with StoreWriter(
            directory, digest, plan.key.components(), plan.key.store_dtype, dim
        ) as writer:
            build_store(
                model,
                plan.sources,
                plan.distinct,
                writer,
                device,
                batch_size,
                compute_dtype,
                num_workers,
                grid,
            )
            writer.commit()
        build_s = time.perf_counter() - t_build
        write_gbps = writer.bytes_written / writer.write_s / 1e9 if writer.write_s else None

    t_open = time.perf_counter()
    store, outcome = open_or_build(
        directory, digest, lambda: _open(directory, plan, place, device), build
    )
    # Opening time: the whole call less building and waiting for another process's build.
    open_s = time.perf_counter() - t_open - (build_s or 0.0) - outcome.waited_s
    views = {
        split: CacheView(
            store,
            [store.position[k] for k in plan.split_keys[split]],
            torch.tensor([u.labels for u in ds.utts], dtype=torch.float32),
            # Pooled layer outputs (the head strategy) have no time axis to pad.
            grid if model.layer_weights is None else None,
        )
        for split, ds in data.items()
    }
    report = CacheReport(
        key=digest,
        path=str(store.path),
        where=store.where,
        reused=not outcome.built,
        rebuilt_because=outcome.rebuilt_because,
        bytes=store.nbytes,
        clips=len(store.index.clip_keys),
        key_s=key_s,
        build_s=build_s,
        write_gbps=write_gbps,
        open_s=open_s,
        verify_gbps=store.nbytes / open_s / 1e9 if open_s > 0 else None,
        lock_wait_s=outcome.waited_s,
        lock=outcome.lock,
        memory_source=available_memory().source,
    )
    return views, report


def _open(
    directory: Path, plan: _Plan, place: str, device: torch.device
) -> FeatureStore | DeviceStore:
    digest = plan.key.digest
    nbytes = read_index(directory, digest).payload_bytes
    where = resolve_place(place, nbytes, device)
    store = open_store(directory, digest, "memory" if where == "device" else where, FORMAT_VERSION)
    # The file name is a digest of the components; the index must also say so in full, and
    # hold every clip this run needs (an edited or mismatched index fails here, not in training).
    if store.index.components != plan.key.components():
        raise CacheInvalid(f"store {digest} was written for other inputs (stale index)")
    missing = sum(k not in store.position for k in plan.distinct)
    if missing:
        raise CacheInvalid(f"store {digest} lacks {missing} of the clips it should hold")
    return DeviceStore(store, device) if where == "device" else store
