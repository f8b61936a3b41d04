"""The plain-text parts of a GPU check's summary that come from results: the sweep table (with
harness efficiency), speed ratios between strategies, and each run's validation CCC per epoch.
Plain text, so that it reads the same in a terminal, a CI log and a note."""

from __future__ import annotations

from collections.abc import Sequence

from bench.result import RunResult

# (faster, slower): speed ratios a GPU check answers (does mixed precision pay, on top of what?)
RATIOS = (
    ("partial3+amp", "partial3"),
    ("full+amp", "full"),
    ("partial3+amp+graph", "partial3+amp"),
)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def sweep_table(results: Sequence[RunResult]) -> list[str]:
    """One line per run: status, steady samples/s, in-run ceiling, harness efficiency, step
    p50, steps timed / set aside as first visits, MFU, peak VRAM (NVML; the allocator's over
    the run and while building a prefix cache, apart), test CCC."""
    head = (
        f"{'strategy':<22} {'status':<8} {'samples/s':>9} {'ceiling':>8} {'harness':>7} "
        f"{'p50 s':>7} {'timed':>5} {'first':>5} {'MFU':>6} {'NVML MiB':>8} {'alloc MiB':>9} "
        f"{'test CCC':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        eff = r.efficiency
        thr = eff.throughput if eff else None
        ceiling = eff.ceiling if eff else None
        mfu = r.compute.mfu if r.compute else None
        lines.append(
            f"{r.strategy:<22} {r.status:<8} "
            f"{_fmt(thr and thr.train_samples_per_s, '.1f'):>9} "
            f"{_fmt(ceiling and ceiling.samples_per_s, '.1f'):>8} "
            f"{_fmt(eff and eff.harness_efficiency, '.2f'):>7} "
            f"{_fmt(thr and thr.step_time_p50_s, '.4f'):>7} "
            f"{(thr.steps_timed if thr else 0):>5} "
            f"{(thr.shape_warmup_steps if thr else 0):>5} "
            f"{'-' if mfu is None else f'{mfu:.1%}':>6} "
            f"{_fmt(eff and eff.memory and eff.memory.peak_vram_nvml_mib, '.0f'):>8} "
            f"{_fmt(eff and eff.allocator and eff.allocator.peak_vram_alloc_mib, '.0f'):>9} "
            f"{_fmt(eff and eff.allocator and eff.allocator.alloc_peak_cache_mib, '.0f'):>9} "
            f"{_fmt(r.metrics.ccc_mean if r.metrics else None, '.3f'):>8}"
        )
        if not r.ok and r.error:
            lines.append(f"    {r.error[:300]}")
    return lines


def ratio_lines(results: Sequence[RunResult]) -> list[str]:
    """faster/slower steady samples/s for each pair of RATIOS both measured; the others say why not."""
    speed = {
        r.strategy: r.efficiency.throughput.train_samples_per_s
        for r in results
        if r.ok and r.efficiency and r.efficiency.throughput
    }
    lines = []
    for fast, slow in RATIOS:
        a, b = speed.get(fast), speed.get(slow)
        if a is None or b is None:
            missing = " and ".join(n for n, v in ((fast, a), (slow, b)) if v is None)
            lines.append(f"{fast} / {slow}: not measured ({missing}: no steady samples/s)")
        else:
            lines.append(f"{fast} / {slow}: {a / b:.2f}x ({a:.1f} vs {b:.1f} samples/s)")
    return lines


def val_ccc_lines(results: Sequence[RunResult]) -> list[str]:
    """Each run's mean validation CCC per epoch (a collapse to constant predictions shows here)."""
    lines = []
    for r in results:
        history = r.metrics.history if r.metrics else ()
        epochs = (
            ", ".join(f"e{h.epoch} {_fmt(h.val_ccc_mean, '.3f')}" for h in history)
            or "no epoch finished"
        )
        lines.append(f"{r.strategy:<22} {epochs}")
    return lines
