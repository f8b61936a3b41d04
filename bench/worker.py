"""One (strategy, seed) run, from config to result dict. Runs inside its own process."""

from __future__ import annotations

import datetime as dt
import os
import time
import traceback
from dataclasses import asdict

import torch

from bench.ceiling import fixed_batch, measure_ceiling
from bench.config import RunConfig
from bench.datasets import Corpus
from bench.environment import describe_device, environment
from bench.errors import BenchError
from bench.flops import peak_tflops, train_flops_per_clip
from bench.meter import MemoryTracker, peak_rss_mib
from bench.meter.host import cpu_time_s
from bench.meter.summary import compute_section, efficiency_section
from bench.model import CONFIG_OVERRIDES, count_parameters
from bench.results import SCHEMA
from bench.setup import setup_run
from bench.stats import prediction_problems
from bench.trainer import Progress, train


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def base_result(cfg: RunConfig) -> dict:
    return {
        "schema": SCHEMA,
        "run_id": cfg.config_hash(),
        "strategy": cfg.strategy,
        "seed": cfg.seed,
        "status": "failed",
        "error": None,
        "profile": cfg.profile,
        "model": {"name": cfg.model, "weights": None},
        "device": None,
        "metrics": None,
        "efficiency": None,
        "notes": [],
        "config": cfg.to_dict(),
        "environment": environment(),
        "started_at": _now(),
    }


def run_one(
    cfg: RunConfig, progress: Progress = lambda e: None, corpus: Corpus | None = None
) -> dict:
    """Train and measure one run. Exceptions propagate; `run_guarded` turns them into results."""
    t_run = time.perf_counter()
    result = base_result(cfg)
    ctx = setup_run(cfg, corpus)
    spec, device, corpus, model, loaded = ctx.spec, ctx.device, ctx.corpus, ctx.model, ctx.loaded
    precision, lr = ctx.precision, ctx.lr
    result["device"] = describe_device(device)
    total, trainable = count_parameters(model)
    notes = [loaded.note] if loaded.note else []
    result["model"] = {
        "name": cfg.model,
        "weights": loaded.weights,
        "weights_note": loaded.note,
        "architecture": model.architecture(),
        "params_total": total,
        "params_trainable": trainable,
        "trainable_share": trainable / total,
        "config_overrides": CONFIG_OVERRIDES,
        "frozen_prefix_layers": model.frozen_prefix_layers,
        "frozen_prefix_mode": "eval (no dropout), cached or not",
    }
    result["strategy_spec"] = spec.to_dict() | {"precision_resolved": precision.name, "lr": lr}
    result["data"] = corpus.summary()

    setup_s = time.perf_counter() - t_run  # corpus, model build, strategy; not the process start
    tracker = MemoryTracker(
        device, cfg.meter.nvml_interval_s, require_idle=cfg.meter.require_idle_gpu
    )
    with tracker.track():
        out = train(ctx, progress)
    thr = out.timer.report()
    mem = tracker.report()
    notes += list(mem.notes) + out.notes + ([thr.note] if thr.note else [])
    result["data"]["padding_fraction"] = out.padding_fraction
    result["data"]["distinct_input_lengths"] = out.distinct_input_lengths
    result["data"]["loader"] = asdict(out.loader)
    best = next((h for h in out.history if h.epoch == out.best_epoch), None)
    result["metrics"] = {
        "ccc": out.test_ccc,
        "ccc_mean": out.test_ccc_mean,
        "best_epoch": out.best_epoch,
        "val_ccc_best": best.val_ccc_mean if best else None,
        "history": [asdict(h) for h in out.history],
    }
    # The report names these (and its cross-run checks) in its warnings.
    result["metrics"]["degenerate"] = prediction_problems(
        out.test_predictions, corpus.dimensions, out.test_ccc_mean
    )
    result["efficiency"] = efficiency_section(
        thr,
        mem,
        epoch_times=[h.epoch_time_s for h in out.history],
        cache_build_s=out.cache_build_s,
        cache_mib=out.cache_mib,
        train_wall_s=out.train_wall_s,
        time_to_best_s=best.elapsed_s if best else None,
        samples_trained=len(ctx.data["train"]) * len(out.history),
        cpu_time_s=cpu_time_s(),
    )
    result["efficiency"]["setup_s"] = setup_s
    # How the prefix cache was obtained (key, memory/disk, reused or built, GB/s), or None.
    result["efficiency"]["cache"] = asdict(out.cache) if out.cache else None
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
        result["efficiency"]["ceiling"] = ceiling.to_dict()
        result["efficiency"]["harness_efficiency"] = thr.train_samples_per_s / ceiling.samples_per_s
    else:
        result["efficiency"]["ceiling"] = None
        result["efficiency"]["harness_efficiency"] = None
    padded = thr.padded_audio_s_per_sample
    flops = (
        None
        if padded is None
        else train_flops_per_clip(
            model,
            round(padded * 16_000),
            model.frozen_prefix_layers if spec.modifiers.cache else None,
        )
    )
    peak, peak_source = peak_tflops(
        result["device"].get("name") if device.type == "cuda" else None,
        precision.name,
        cfg.meter.peak_tflops,
    )
    real_per_sample = (
        None if not thr.samples_timed else thr.train_audio_s_per_s / thr.train_samples_per_s
    )
    result["compute"] = compute_section(
        flops, real_per_sample, thr.train_samples_per_s, peak, peak_source
    )
    result["predictions"] = {
        "split": "test",
        "dimensions": list(corpus.dimensions),
        "pred": out.test_predictions,
        "target": out.test_targets,
    }
    result["notes"] = notes
    diverged = diverged_reason(out.test_ccc, [h.train_loss for h in out.history])
    if diverged:
        result["status"] = "diverged"
        result["error"] = f"diverged: {diverged}"
    else:
        result["status"] = "ok"
    result["finished_at"] = _now()
    return result


def diverged_reason(test_ccc: dict[str, float], losses: list[float]) -> str | None:
    """Why a finished run diverged (a non-finite training loss or test CCC), or None."""
    import math

    bad_loss = [i for i, x in enumerate(losses) if not math.isfinite(x)]
    if bad_loss:
        return f"non-finite training loss in epoch {bad_loss[0]}"
    bad = [d for d, v in test_ccc.items() if not math.isfinite(v)]
    return f"non-finite test CCC ({', '.join(bad)})" if bad else None


def run_guarded(cfg: RunConfig, progress: Progress = lambda e: None) -> dict:
    """run_one, with every failure turned into a result that says what went wrong."""
    try:
        return run_one(cfg, progress)
    except torch.cuda.OutOfMemoryError as exc:
        result = base_result(cfg)
        result.update(status="oom", error=f"CUDA out of memory: {str(exc).splitlines()[0]}")
        result["notes"] = [
            "lower the batch size (--batch-size) or --max-seconds, or use a strategy that trains less"
        ]
    except BenchError as exc:
        result = base_result(cfg)
        result.update(status="failed", error=str(exc))
    except Exception as exc:
        result = base_result(cfg)
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        result["traceback"] = traceback.format_exc()
    result["efficiency"] = {"peak_rss_mib": peak_rss_mib()}
    if torch.cuda.is_available():
        result["efficiency"]["peak_vram_alloc_mib"] = torch.cuda.max_memory_allocated() / 2**20
    result["finished_at"] = _now()
    result["pid"] = os.getpid()
    return result
