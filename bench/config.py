"""Profiles and the resolved configuration of one run, as plain frozen dataclasses: what to
train on (`DataConfig`), how to train (`TrainConfig`, and `Modifiers`, how a strategy's run
executes: precision, caching, checkpointing, compilation, CUDA graphs), how to measure
(`MeterConfig`), all in one `RunConfig`. A leaf of the import graph: it imports only option
types."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

from bench.data.adapters.hf_options import HFOptions
from bench.data.adapters.label_range import LabelRange
from bench.data.synthetic import SyntheticSpec
from bench.errors import BenchError


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
    # +cache: device (GPU memory) | memory | disk (memory-mapped) | auto (the first that fits:
    # device when the store is small next to the GPU's memory, see bench/cache/prefix.py)
    cache_store: str = "auto"
    # Multiplies each strategy's default learning rate (tuned for finetuning pretrained weights);
    # a randomly initialised backbone needs larger steps to learn anything in a few epochs.
    lr_scale: float = 1.0
    # Decode every split into memory before training (auto: when it fits; see bench/data/loader.py).
    preload: str = "auto"
    # Learning rates rise linearly over this share of the planned steps (post-LN transformers
    # need it); gradients are clipped to max_grad_norm (None: not clipped).
    lr_warmup: float = 0.1
    max_grad_norm: float | None = 1.0
    # fp32 math on CUDA, set before the model runs (bench/train/step.py: apply_fp32_math).
    # tf32: TF32 tensor cores for fp32 matmuls and cuDNN convolutions. Off by default, so that
    # an fp32 run computes in fp32 and its MFU is rated against the fp32 peak (PyTorch's own
    # defaults mix: TF32 for convolutions, not for matmuls); on: rated against the TF32 peak.
    # cudnn_benchmark: cuDNN autotunes each convolution at each new input shape (off by default,
    # as in PyTorch; the tuning falls in first visits, outside steady state).
    tf32: bool = False
    cudnn_benchmark: bool = False
    # --lrs xF: a learning-rate search's grid point as a multiple of the strategy's default
    # (after lr_scale); None: not part of a relative search. Left out of the config hash while
    # None, so results written before it existed still resume.
    lr_factor: float | None = None


def lr_label(train: TrainConfig) -> str | None:
    """The learning-rate grid point a run belongs to, as spelled for --lrs ("x0.3", "0.0001"),
    or None when the run uses its strategy's default rate."""
    if train.lr_factor is not None:
        return f"x{train.lr_factor:g}"
    if train.lr is not None:
        return f"{train.lr:g}"
    return None


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    model: str
    seeds: int
    train: TrainConfig
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)
    weights: str = "auto"  # --weights when not given: auto | pretrained | random
    # Checks that the pipeline runs end to end, not which strategy is better: its report makes
    # no recommendation (bench/report/evidence.py PIPELINE_CHECK_PROFILES).
    pipeline_check: bool = False


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
        pipeline_check=True,
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
        # padded length are set aside. The strategies' own learning rates (lr_scale 1), unlike
        # `quick`'s 4x. Both H100 runs in which `full` collapsed to constant predictions (test CCC
        # 0.000; README "What a GPU showed") ran this profile at lr_scale 4 (2e-4), which it had
        # until commit 94c85b9; no GPU has run it since. The collapse needs nothing GPU-specific:
        # on a CPU (AdamW not fused, convolutions in fp32, no TF32; the same batches of 16 clips
        # of 2-5 s), `python -m bench.run --profile gpu-check --strategies full --lrs x1,x4
        # --epochs 2 --device cpu` gave at 4x validation CCC 0.000 after both epochs, train loss
        # 0.99 then 1.00, test CCC 0.000 with predictions constant (sd ~1e-5); at 1x validation
        # 0.096 then 0.515, loss 0.93 then 0.61, test 0.387 (prediction sd 0.47-0.68, like the
        # targets' 0.48). Mechanism, measured on
        # the CPU over the first steps: at 4x each transformer layer's update adds an
        # input-independent part; the between-clip spread of the pooled hidden states fell to
        # 0.69 / 0.32 / 0.17 of its start after layers 4 / 8 / 12 within 4 steps (the CNN output
        # unchanged) and the loss stayed at ~1.0; at 1x it dipped to 0.70 at layer 12 and the
        # loss fell. Adam moves every weight by about the learning rate, so a layer's output
        # moves with its fan-in: the 768-wide post-LayerNorm base cannot take the rate that
        # suits `quick`'s 128-wide model.
        train=TrainConfig(
            batch_size=16,
            max_epochs=5,
            warmup_steps=10,
            max_seconds=5.0,
            num_workers=4,
            head_lr=1e-3,
        ),
        synthetic=SyntheticSpec(
            n_speakers=20, clips_per_speaker=40, min_seconds=2.0, max_seconds=5.0
        ),
        # Random init by design (its learning rates are chosen for it), so no run asks the hub:
        # offline, each of `all`'s runs spent 23 s in retries before falling back.
        weights="random",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise BenchError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]


def _known(cls: type, d: dict) -> dict:
    """The entries of `d` that name a field of dataclass `cls`: results written by another
    version may carry fields this one dropped; the missing ones take their defaults."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class DataConfig:
    """Which corpus a run trains on and how it is read; `bench.data.datasets.load_dataset` takes it."""

    dataset: str
    root: str | None  # what --data-root points at (synthetic: the cache folder, optional)
    strict: bool  # refuse a corpus with problems instead of skipping the bad rows
    synthetic: SyntheticSpec
    fold: int | None = None  # IEMOCAP: the session held out for test (--fold)
    test_set: str | None = None  # MSP-Podcast: the Split_Set used as test (--test-set)
    label_range: LabelRange | None = None  # csv, hf: the labels' native scale (--label-range)
    hf: HFOptions | None = None  # hf: columns and splits (--audio-column, --label-columns, ...)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        d = _known(cls, d)
        d["synthetic"] = SyntheticSpec(**_known(SyntheticSpec, d.get("synthetic") or {}))
        d["label_range"] = LabelRange.from_dict(d["label_range"]) if d.get("label_range") else None
        d["hf"] = HFOptions.from_dict(d["hf"]) if d.get("hf") else None
        return cls(**d)


@dataclass(frozen=True)
class MeterConfig:
    """How a run measures."""

    nvml_interval_s: float = 0.01  # NVML sampling period (--nvml-interval-ms)
    require_idle_gpu: bool = False  # abort instead of warning when other processes use the GPU
    peak_tflops: float | None = None  # override the peak used for MFU (--peak-tflops)


# The flat layout results written before DataConfig and MeterConfig stored: old key -> new one.
_FLAT_DATA = {
    "dataset": "dataset",
    "data_root": "root",
    "strict": "strict",
    "synthetic": "synthetic",
    "fold": "fold",
    "test_set": "test_set",
    "label_range": "label_range",
    "hf": "hf",
}
_FLAT_METER = ("nvml_interval_s", "require_idle_gpu", "peak_tflops")


# TrainConfig fields added after results were first written, with their defaults.
_ADDED_LATER = {"lr_factor": None, "tf32": False, "cudnn_benchmark": False}


@dataclass(frozen=True)
class RunConfig:
    """Everything one (strategy, seed) run needs; hashed to identify the run for resuming."""

    profile: str
    strategy: str
    seed: int
    model: str
    weights: str
    device: str
    train: TrainConfig
    data: DataConfig
    meter: MeterConfig = MeterConfig()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Back from `to_dict` (after a JSON round trip), or from the flat layout of results
        written by earlier versions (the data and meter fields at top level)."""
        d = dict(d)
        if "data" not in d:
            d["data"] = {new: d.pop(old) for old, new in _FLAT_DATA.items() if old in d}
            d["meter"] = {k: d.pop(k) for k in _FLAT_METER if k in d}
        d = _known(cls, d)
        d["train"] = TrainConfig(**_known(TrainConfig, d["train"]))
        d["data"] = DataConfig.from_dict(d["data"])
        d["meter"] = MeterConfig(**_known(MeterConfig, d.get("meter") or {}))
        return cls(**d)

    def _hashed(self) -> dict:
        """The config as hashed: fields added later are left out while at their defaults, so
        results written before them keep their hashes (and resume)."""
        d = self.to_dict()
        for key, default in _ADDED_LATER.items():
            if d["train"].get(key) == default:
                d["train"].pop(key, None)
        return d

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self._hashed(), sort_keys=True).encode()).hexdigest()[:12]

    def sweep_hash(self) -> str:
        """The hash of what one sweep's runs share: everything but the strategy, the seed, the
        backbone (--model a,b is one sweep), the fold (--folds) and the learning rate (--lrs).
        Results with different sweep hashes are different experiments, never replicates."""
        d = self._hashed()
        for key in ("strategy", "seed", "model"):
            d.pop(key)
        d["data"].pop("fold")
        d["train"].pop("lr", None)
        d["train"].pop("lr_factor", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def with_train(self, **changes) -> RunConfig:
        return replace(self, train=replace(self.train, **changes))

    def with_data(self, **changes) -> RunConfig:
        return replace(self, data=replace(self.data, **changes))


# Modifiers: orthogonal switches that compose with any strategy where they make sense; parsed
# from a strategy's spelling by `strategies.registry`.

PRECISIONS = ("fp32", "auto", "fp16", "bf16")
CACHE_DTYPES = ("fp16", "bf16", "fp32")  # fp32 exists for exactness checks; fp16 is the default
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")


@dataclass(frozen=True)
class Modifiers:
    precision: str = "fp32"  # fp32 | auto (fp16 on CUDA, bf16 elsewhere) | fp16 | bf16
    cache: bool = False
    cache_dtype: str = "fp16"  # how cached hidden states are stored
    ckpt: bool = False  # gradient checkpointing of the trainable transformer layers
    compile: str | None = None  # torch.compile backend, None = eager PyTorch
    graph: bool = False  # replay the frozen prefix as CUDA graphs, one per input shape

    def spelling(self) -> str:
        parts = []
        if self.precision != "fp32":
            parts.append("amp" if self.precision == "auto" else f"amp:{self.precision}")
        if self.cache:
            parts.append("cache" if self.cache_dtype == "fp16" else f"cache:{self.cache_dtype}")
        if self.ckpt:
            parts.append("ckpt")
        if self.compile is not None:
            parts.append("compile" if self.compile == "inductor" else f"compile:{self.compile}")
        if self.graph:
            parts.append("graph")
        return "".join("+" + p for p in parts)
