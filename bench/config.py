"""Profiles and the resolved configuration of one run, as plain frozen dataclasses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from bench.adapters.hf_options import HFOptions
from bench.adapters.label_range import LabelRange
from bench.errors import BenchError
from bench.synthetic import SyntheticSpec


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8
    max_epochs: int = 3
    patience: int | None = None  # epochs without val-CCC improvement before stopping
    lr: float | None = None  # None: the strategy's default
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 2  # steps excluded from throughput
    max_seconds: float | None = None  # crop longer clips
    num_workers: int = 0
    warmup_seconds: float = 0.0  # also excluded from throughput (whichever warm-up ends later)
    cache_store: str = "auto"  # +cache: memory | disk (memory-mapped) | auto (memory if it fits)
    # Multiplies each strategy's default learning rate (tuned for finetuning pretrained weights);
    # a randomly initialised backbone needs larger steps to learn anything in a few epochs.
    lr_scale: float = 1.0
    # Decode every split into memory before training (auto: when it fits; see bench/loader.py).
    preload: str = "auto"
    # Learning rates rise linearly over this share of the planned steps (post-LN transformers
    # need it); gradients are clipped to max_grad_norm (None: not clipped).
    lr_warmup: float = 0.1
    max_grad_norm: float | None = 1.0


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    model: str
    seeds: int
    train: TrainConfig
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        summary="tiny random-init wav2vec2-style model, 48 synthetic clips: checks the whole path in seconds",
        model="tiny-w2v2",
        seeds=1,
        train=TrainConfig(batch_size=4, max_epochs=2, warmup_steps=2, max_seconds=2.0),
        synthetic=SyntheticSpec(
            n_speakers=12, clips_per_speaker=4, min_seconds=1.0, max_seconds=2.0
        ),
    ),
    "quick": Profile(
        name="quick",
        summary="small random-init wav2vec2-style model, 600 synthetic clips: a CPU-sized comparison",
        model="small-w2v2",
        seeds=1,
        train=TrainConfig(
            batch_size=8, max_epochs=4, warmup_steps=5, max_seconds=4.0, head_lr=1e-3, lr_scale=4.0
        ),
        synthetic=SyntheticSpec(
            n_speakers=30, clips_per_speaker=20, min_seconds=1.5, max_seconds=3.0
        ),
    ),
    "study": Profile(
        name="study",
        summary="facebook/wav2vec2-base, early stopping on validation CCC, 3 seeds (the study's setup)",
        model="facebook/wav2vec2-base",
        seeds=3,
        train=TrainConfig(
            batch_size=16,
            max_epochs=30,
            patience=5,
            warmup_steps=20,
            max_seconds=8.0,
            num_workers=4,
        ),
        synthetic=SyntheticSpec(
            n_speakers=60, clips_per_speaker=60, min_seconds=2.0, max_seconds=8.0
        ),
    ),
    "gpu-check": Profile(
        name="gpu-check",
        summary="wav2vec2-base architecture, 175 steps per strategy on 800 synthetic clips: exercises the GPU paths",
        model="facebook/wav2vec2-base",
        seeds=1,
        # 5 epochs of 35 steps: >= 100 steady steps once warm-up and the <= 32 first visits of a
        # padded length are set aside. Random init needs the larger steps `quick` takes too.
        train=TrainConfig(
            batch_size=16,
            max_epochs=5,
            warmup_steps=10,
            max_seconds=5.0,
            num_workers=4,
            head_lr=1e-3,
            lr_scale=4.0,
        ),
        synthetic=SyntheticSpec(
            n_speakers=20, clips_per_speaker=40, min_seconds=2.0, max_seconds=5.0
        ),
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise BenchError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass(frozen=True)
class RunConfig:
    """Everything one (strategy, seed) run needs; hashed to identify the run for resuming."""

    profile: str
    strategy: str
    seed: int
    model: str
    weights: str
    dataset: str
    data_root: str | None
    strict: bool
    device: str
    train: TrainConfig
    synthetic: SyntheticSpec
    fold: int | None = None  # IEMOCAP: the session held out for test (--fold)
    test_set: str | None = None  # MSP-Podcast: the Split_Set used as test (--test-set)
    nvml_interval_s: float = 0.01  # NVML sampling period (--nvml-interval-ms)
    require_idle_gpu: bool = False  # abort instead of warning when other processes use the GPU
    peak_tflops: float | None = None  # override the peak used for MFU (--peak-tflops)
    label_range: LabelRange | None = None  # csv, hf: the labels' native scale (--label-range)
    hf: HFOptions | None = None  # hf: columns and splits (--audio-column, --label-columns, ...)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(d)
        d["train"] = TrainConfig(**d["train"])
        d["synthetic"] = SyntheticSpec(**d["synthetic"])
        if d.get("label_range"):
            d["label_range"] = LabelRange.from_dict(d["label_range"])
        if d.get("hf"):
            d["hf"] = HFOptions.from_dict(d["hf"])
        return cls(**d)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def with_train(self, **changes) -> RunConfig:
        return replace(self, train=replace(self.train, **changes))
