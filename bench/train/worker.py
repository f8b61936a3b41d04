"""One (strategy, seed) run, from config to `RunResult`. Runs inside its own process."""

from __future__ import annotations

import dataclasses
import os
import time
import traceback

import torch

from bench.config import RunConfig
from bench.data.datasets import Corpus
from bench.errors import BenchError
from bench.meter import MemoryTracker, peak_rss_mib
from bench.meter.environment import describe_device, pick_device
from bench.meter.host import cpu_time_s
from bench.meter.load import LoadTracker
from bench.meter.precision import emulated_note, is_emulated
from bench.meter.summary import run_times
from bench.model.flops import compute_of
from bench.model.ser import CONFIG_OVERRIDES, count_parameters
from bench.result import (
    AllocatorReport,
    DataInfo,
    Efficiency,
    MemoryReport,
    Metrics,
    ModelInfo,
    Predictions,
    RunResult,
    build,
)
from bench.result.start import now_iso, started_result
from bench.stats import prediction_problems
from bench.train.ceiling import fixed_batch, measure_ceiling
from bench.train.setup import setup_run
from bench.train.trainer import Progress, train


def run_one(
    cfg: RunConfig, progress: Progress = lambda e: None, corpus: Corpus | None = None
) -> RunResult:
    """Train and measure one run. Exceptions propagate; `run_guarded` turns them into results."""
    t_run = time.perf_counter()
    # NVML's baseline and idle check first, before anything touches CUDA: once setup_run has
    # made the CUDA context and loaded the weights (~1 GB), a container that hides PIDs would
    # show them as another process ("GPU not idle") and the device-delta figure would miss them.
    tracker = MemoryTracker(
        pick_device(cfg.device), cfg.meter.nvml_interval_s, require_idle=cfg.meter.require_idle_gpu
    )
    tracker.baseline()
    started = started_result(cfg)
    ctx = setup_run(cfg, corpus)
    spec, device, corpus, model, loaded = ctx.spec, ctx.device, ctx.corpus, ctx.model, ctx.loaded
    total, trainable = count_parameters(model)
    setup_s = time.perf_counter() - t_run  # corpus, model build, strategy; not the process start

    load = LoadTracker()
    with tracker.track(), load.track():
        out = train(ctx, progress)
    thr = out.timer.report()
    mem = tracker.report()
    best = next((h for h in out.history if h.epoch == out.best_epoch), None)
    ceiling = None
    if thr.padded_audio_s_per_sample is not None:
        ceiling = measure_ceiling(
            ctx.stepper,
            fixed_batch(
                ctx.stepper,
                cfg.train.batch_size,
                round(thr.padded_audio_s_per_sample * 16_000),
                len(corpus.dimensions),
                spec.modifiers.cache_dtype if spec.modifiers.cache else None,
                cfg.seed,
            ),
        )
    efficiency = Efficiency(
        throughput=thr,
        allocator=out.timer.allocator(),
        memory=mem,
        energy=tracker.energy(len(out.history), len(ctx.data["train"]) * len(out.history)),
        time=run_times(
            epoch_times=[h.epoch_time_s for h in out.history],
            cache_build_s=out.cache.ready_s if out.cache else None,
            train_wall_s=out.train_wall_s,
            time_to_best_s=best.elapsed_s if best else None,
            setup_s=setup_s,
            cpu_time_s=cpu_time_s(),
        ),
        cache=out.cache,  # how the prefix cache was obtained (key, memory/disk, reused, GB/s)
        ceiling=ceiling,
        load=load.report(),
        harness_efficiency=None
        if ceiling is None or thr.train_samples_per_s is None
        else thr.train_samples_per_s / ceiling.samples_per_s,
    )
    device_info = describe_device(device)
    emulated = is_emulated(ctx.precision.name, device_info.get("precision", {}))
    diverged = diverged_reason(out.test_ccc, [h.train_loss for h in out.history])
    return started.replace(
        status="diverged" if diverged else "ok",
        error=f"diverged: {diverged}" if diverged else None,
        device=device_info,
        model=ModelInfo(
            name=cfg.model,
            weights=loaded.weights,
            weights_note=loaded.note,
            architecture=model.architecture(),
            params_total=total,
            params_trainable=trainable,
            trainable_share=trainable / total,
            config_overrides=CONFIG_OVERRIDES,
            frozen_prefix_layers=model.frozen_prefix_layers,
            frozen_prefix_mode="eval (no dropout), cached or not",
        ),
        strategy_spec=spec.to_dict()
        | {
            "precision_resolved": ctx.precision.name,
            "precision_emulated": emulated,
            "lr": ctx.lr,
            # the fp32-math choices (also in config.train, hashed into the run id)
            "tf32": cfg.train.tf32,
            "cudnn_benchmark": cfg.train.cudnn_benchmark,
        },
        data=dataclasses.replace(
            build(DataInfo, corpus.summary()),
            padding_fraction=out.padding_fraction,
            distinct_input_lengths=out.distinct_input_lengths,
            loader=out.loader,
        ),
        metrics=Metrics(
            ccc=out.test_ccc,
            ccc_mean=out.test_ccc_mean,
            best_epoch=out.best_epoch,
            val_ccc_best=best.val_ccc_mean if best else None,
            history=tuple(out.history),
            # One rule for "degenerate"; the report's cross-run checks add to these.
            degenerate=tuple(
                prediction_problems(out.test_predictions, corpus.dimensions, out.test_ccc_mean)
            ),
        ),
        efficiency=efficiency,
        compute=compute_of(
            model,
            thr,
            model.frozen_prefix_layers if spec.modifiers.cache else None,
            device_info.get("name") if device.type == "cuda" else None,
            ctx.precision.name,
            cfg.meter.peak_tflops,
            cfg.train.tf32,
        ),
        predictions=Predictions(
            dimensions=tuple(corpus.dimensions),
            pred=out.test_predictions,
            target=out.test_targets,
        ),
        notes=tuple(
            ([loaded.note] if loaded.note else [])
            + ([emulated_note(ctx.precision.name, device_info)] if emulated else [])
            + list(mem.notes)
            + out.notes
            + ([thr.note] if thr.note else [])
        ),
        finished_at=now_iso(),
    )


def diverged_reason(test_ccc: dict[str, float], losses: list[float]) -> str | None:
    """Why a finished run diverged (a non-finite training loss or test CCC), or None."""
    import math

    bad_loss = [i for i, x in enumerate(losses) if not math.isfinite(x)]
    if bad_loss:
        return f"non-finite training loss in epoch {bad_loss[0]}"
    bad = [d for d, v in test_ccc.items() if not math.isfinite(v)]
    return f"non-finite test CCC ({', '.join(bad)})" if bad else None


def run_guarded(cfg: RunConfig, progress: Progress = lambda e: None) -> RunResult:
    """run_one, with every failure turned into a result that says what went wrong."""
    try:
        return run_one(cfg, progress)
    except torch.cuda.OutOfMemoryError as exc:
        result = started_result(cfg).replace(
            status="oom",
            error=f"CUDA out of memory: {str(exc).splitlines()[0]}",
            notes=(
                "lower the batch size (--batch-size) or --max-seconds, or use a strategy that "
                "trains less",
            ),
        )
    except BenchError as exc:
        result = started_result(cfg).replace(status="failed", error=str(exc))
    except Exception as exc:
        result = started_result(cfg).replace(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
    alloc = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return result.replace(
        efficiency=Efficiency(
            memory=MemoryReport(peak_rss_mib=peak_rss_mib()),
            allocator=AllocatorReport(peak_vram_alloc_mib=alloc),
        ),
        finished_at=now_iso(),
        pid=os.getpid(),
    )
