"""The sections of a run's result, as the meters, the trainer and the model report them.

Plain frozen dataclasses with no torch import, so the report reads results without loading
torch. Every field has a default: a failed run fills only what it got to, and results of older
schemas (migrated by `bench.result.migrate`) lack figures added since. Figures are declared
where they are held (`figure(...)`): label, unit and direction in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.result.figure import figure


@dataclass(frozen=True)
class EpochLog:
    epoch: int = 0
    train_loss: float | None = None
    val_ccc: Mapping[str, float | None] = field(default_factory=dict)
    val_ccc_mean: float | None = None
    epoch_time_s: float | None = None
    elapsed_s: float | None = None  # wall clock since training started (cache build included)
    data_wait_s: float = 0.0  # of epoch_time_s, waiting for the next batch (loader or cache read)


@dataclass(frozen=True)
class Metrics:
    ccc: Mapping[str, float | None] = field(default_factory=dict)  # test CCC per dimension
    ccc_mean: float | None = figure(
        "CCC mean", "", True, ".3f", help="test CCC averaged over the dimensions"
    )
    best_epoch: int | None = figure(
        "best epoch", "", False, ".1f", mark_best=False, help="epoch of the best validation CCC"
    )
    val_ccc_best: float | None = figure(
        "val CCC", "", True, ".3f", help="best validation CCC (mean over dimensions)"
    )
    history: tuple[EpochLog, ...] = ()
    # Why the test predictions say nothing (constant, collapsed to the mean, ...): empty if sound.
    degenerate: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThroughputReport:
    """Steady-state training speed from the step timer (bench/meter/timing.py)."""

    train_samples_per_s: float | None = figure(
        "throughput",
        "samples/s",
        True,
        ".1f",
        help="steady-state training samples/s, warm-up excluded, device synchronised",
    )
    train_audio_s_per_s: float | None = figure(
        "audio throughput", "audio-s/s", True, ".1f", help="audio seconds/s"
    )
    # includes the padding the model also computes on
    train_padded_audio_s_per_s: float | None = None
    steps_timed: int = 0
    warmup_steps: int = 0  # steps actually excluded
    step_time_p50_s: float | None = figure("step p50", "s", False, ".4f", help="median step time")
    step_time_p90_s: float | None = None
    step_time_p99_s: float | None = figure("step p99", "s", False, ".4f", help="p99 step time")
    step_time_cv: float | None = None  # standard deviation / mean of steady-state step times
    samples_timed: int = 0
    padded_audio_s_per_sample: float | None = None
    note: str | None = None
    # A step whose input shape the run had not trained on before pays for new kernel plans
    # (cuDNN under fp16/bf16: 5-10 steady steps on an H100); those are kept out of steady state.
    shape_warmup_steps: int = 0
    shape_warmup_s: float = figure(
        "shape warm-up",
        "s",
        False,
        help="time of the first step at each new input shape (and, with +graph, of each step "
        "with or right after a graph capture), kept out of steady state",
        default=0.0,
    )
    distinct_input_shapes: int = 0
    # Of shape_warmup_steps, those set aside for a CUDA graph capture alone (+graph): the step
    # after a capture reallocates what the capture freed from the allocator's cache.
    capture_warmup_steps: int = 0
    # Steady-state steps slower than STALL_FACTOR x the median: a loader, disk or host hiccup.
    stall_steps: int = 0
    stall_s: float = 0.0  # their summed duration
    stall_share: float | None = figure(
        "stall share",
        "%",
        False,
        "percent",
        help="share of timed training spent in steps slower than 3x the median",
    )


@dataclass(frozen=True)
class AllocatorReport:
    """torch's caching-allocator peaks, read and reset by the step timer alone (per step and per
    phase); whole-run figures include the cache build. None without CUDA."""

    peak_vram_alloc_mib: float | None = figure(
        "peak VRAM alloc",
        "MiB",
        False,
        ".0f",
        help="torch.cuda.max_memory_allocated (tensors only; no allocator cache, no CUDA context)",
    )
    peak_vram_reserved_mib: float | None = figure(
        "peak VRAM reserved", "MiB", False, ".0f", help="torch.cuda.max_memory_reserved"
    )
    alloc_peak_train_mib: float | None = None  # max over steady-state steps of per-step peaks
    alloc_mean_train_mib: float | None = None
    alloc_p99_train_mib: float | None = None
    alloc_peak_warmup_mib: float | None = None
    alloc_peak_eval_mib: float | None = None
    alloc_peak_cache_mib: float | None = None


@dataclass(frozen=True)
class MemoryReport:
    """NVML's view of GPU memory (sampled by a separate process) and the host's peak RSS."""

    unit: str = "MiB"
    peak_vram_nvml_mib: float | None = figure(
        "peak VRAM NVML",
        "MiB",
        False,
        ".0f",
        help="driver's view: NVML per-process used memory, peak of a background sampler",
    )
    nvml_source: str | None = None  # "process" or "device-delta" (fallback when PIDs are hidden)
    mean_vram_nvml_mib: float | None = None  # over NVML samples of this process tree
    p99_vram_nvml_mib: float | None = None
    peak_device_used_mib: float | None = None  # NVML: whole device, during the run
    device_baseline_mib: float | None = None  # NVML: whole device, just before the run
    nvml_samples: int | None = None
    peak_rss_mib: float | None = figure(
        "peak RSS", "MiB", False, ".0f", help="host peak resident memory"
    )
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnergyReport:
    """NVML's total-energy counter over the tracked region, and the mean GPU utilisation."""

    energy_j: float | None = None
    energy_j_per_epoch: float | None = figure(
        "energy per epoch",
        "J",
        False,
        ".0f",
        help="NVML total-energy counter over training, per epoch",
    )
    energy_j_per_sample: float | None = figure(
        "energy per sample", "J", False, ".2f", help="NVML energy over training samples seen"
    )
    gpu_util_mean_pct: float | None = None


@dataclass(frozen=True)
class RunTimes:
    """Wall-clock figures of the run as a whole."""

    epochs: int = 0
    epoch_time_s: float | None = figure(
        "epoch time", "s", False, ".2f", help="mean epoch wall time"
    )
    cache_build_s: float | None = figure(
        "cache build",
        "s",
        False,
        ".2f",
        mark_best=False,
        help="one-off time to run the frozen prefix over every clip (cached runs only; — "
        "without +cache)",
        absent="—",
    )
    train_wall_s: float | None = figure(
        "total time",
        "s",
        False,
        ".1f",
        help="wall time of the whole run: cache build, every epoch, validation and test",
    )
    time_to_best_val_s: float | None = None
    setup_s: float | None = None  # corpus, model build, strategy; not the process start
    cpu_time_s: float | None = None


@dataclass(frozen=True)
class CacheReport:
    """How this run got its prefix cache; sizes in bytes, times in seconds, rates in GB/s."""

    key: str = ""
    path: str = ""
    where: str = ""  # device | memory | disk
    reused: bool = False  # an earlier run built the store
    rebuilt_because: str | None = None  # why an existing store was discarded, if one was
    bytes: int = 0
    clips: int = 0
    key_s: float = 0.0  # hashing weights and audio
    build_s: float | None = None  # running the prefix and writing the store; None when reused
    write_gbps: float | None = None
    open_s: float = 0.0  # reading or mapping the store and verifying every checksum
    verify_gbps: float | None = None
    lock_wait_s: float = 0.0  # waiting for another process that was building the same store
    lock: str = "not needed"  # the build lock taken ("fcntl"), or why there was none
    # What "available memory" meant when memory or disk was chosen: a cgroup limit or meminfo.
    memory_source: str = ""

    @property
    def mib(self) -> float:
        return self.bytes / 2**20

    @property
    def ready_s(self) -> float:
        """Getting the cache ready, whether built now or reused: hashing, building, verifying."""
        return self.key_s + (self.build_s or 0.0) + self.open_s


@dataclass(frozen=True)
class Ceiling:
    """The bare-loop ceiling: the same step on one fixed batch on the device (bench/train/ceiling.py)."""

    samples_per_s: float = 0.0
    batch_size: int = 0
    input_samples: int = 0  # waveform length of the fixed batch (frame-aligned)
    steps: int = 0  # timed steps, after `warmup_steps` untimed ones
    warmup_steps: int = 0
    seconds: float = 0.0
    method: str = (
        "same model, strategy and train_step on one fixed batch on the device; "
        "no loader, no meter; one synchronisation after the timed steps"
    )


@dataclass(frozen=True)
class MachineLoad:
    """How busy the machine was while the run trained (bench/meter/load.py): a run timed on a
    machine that other processes keep busy measures the machine as much as the strategy."""

    cpus: int | None = None  # logical CPUs the OS reports
    loadavg_1m_start: float | None = None  # 1-minute load average as training started
    loadavg_1m_end: float | None = None
    loadavg_1m_max: float | None = None  # highest 1-minute load average sampled during training
    # Share of the machine's CPU time (all CPUs, wall time of training) that other processes
    # used: /proc/stat busy time minus this process's (and its reaped children's) CPU time.
    others_cpu_share: float | None = None
    note: str | None = None  # why a figure is None


@dataclass(frozen=True)
class Efficiency:
    throughput: ThroughputReport | None = None
    allocator: AllocatorReport | None = None
    memory: MemoryReport | None = None
    energy: EnergyReport | None = None
    time: RunTimes | None = None
    cache: CacheReport | None = None  # +cache strategies only
    ceiling: Ceiling | None = None
    load: MachineLoad | None = None  # added after schema 3: older results have none
    harness_efficiency: float | None = figure(
        "harness eff.",
        "",
        True,
        ".2f",
        mark_best=False,
        help="measured samples/s over the ceiling: the same step on one fixed batch on the "
        "device, no loader, no meter, at the run's mean padded length (near 1: the harness "
        "measured the strategy, not itself)",
    )

    def sections(self) -> tuple[Any, ...]:
        """The sections whose numeric fields are the run's efficiency figures."""
        return (
            self.throughput,
            self.allocator,
            self.memory,
            self.energy,
            self.time,
            self.load,
            self,
        )


@dataclass(frozen=True)
class Compute:
    train_flops_per_sample: float | None = None
    train_flops_per_audio_s: float | None = None
    achieved_tflops: float | None = figure(
        "achieved", "TFLOP/s", True, ".1f", help="model FLOPs per sample x samples/s"
    )
    peak_tflops: float | None = None
    peak_source: str = ""
    mfu: float | None = figure(
        "MFU", "%", True, "percent", help="achieved over the device's peak TFLOP/s"
    )
    method: str = ""


@dataclass(frozen=True)
class LoaderReport:
    """How the run's batches were served."""

    mode: str = ""  # memory | workers | inline
    workers: int = 0
    start_method: str | None = None
    decoded_mib: float | None = None  # memory mode: the decoded audio of every split
    decode_s: float | None = None  # memory mode: decoding it, before training
    reason: str = ""
    # What "available memory" meant for the preload decision: a cgroup limit or /proc/meminfo.
    memory_source: str = ""


@dataclass(frozen=True)
class DataInfo:
    """The corpus as the run saw it (`Corpus.summary()`), and how its batches were shaped."""

    name: str | None = None
    source: str | None = None
    dimensions: tuple[str, ...] = ()
    scale: str | None = None
    label_range: Mapping[str, Any] = field(default_factory=dict)
    split_rule: str | None = None
    n_utterances: Mapping[str, int] = field(default_factory=dict)
    hours: float | None = None
    skipped_rows: int = 0
    skipped_by_reason: Mapping[str, int] = field(default_factory=dict)
    skipped_reasons: tuple[str, ...] = ()
    # Corpus.fingerprint(): runs on different data have different ones (None: older results)
    fingerprint: str | None = None
    padding_fraction: float | None = figure(
        "padding", "%", False, "percent", help="share of padded input samples in training"
    )
    distinct_input_lengths: int | None = figure(
        "input lengths",
        "",
        False,
        ".0f",
        mark_best=False,
        help="distinct padded training input lengths over all epochs",
    )
    loader: LoaderReport | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str | None = None
    weights: str | None = None
    weights_note: str | None = None
    architecture: Mapping[str, Any] = field(default_factory=dict)
    params_total: int | None = None
    params_trainable: int | None = figure(
        "trainable params",
        "",
        False,
        "count",
        help="parameters that receive gradients (and their share of all parameters)",
    )
    trainable_share: float | None = figure(
        "trainable share", "%", False, "percent", help="trainable / total parameters"
    )
    config_overrides: Mapping[str, Any] = field(default_factory=dict)
    frozen_prefix_layers: int | None = None
    frozen_prefix_mode: str | None = None


@dataclass(frozen=True)
class Predictions:
    """Per-utterance test predictions, for paired tests against the baseline."""

    split: str = "test"
    dimensions: tuple[str, ...] = ()
    pred: Sequence[Sequence[float | None]] = ()  # one row per utterance, one column per dimension
    target: Sequence[Sequence[float]] = ()
