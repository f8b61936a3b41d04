"""GPU-only checks, run for real by `make gpu-check`; skipped cleanly on machines without CUDA."""

import os

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device (run `make gpu-check` on a GPU machine)",
    ),
]


def test_nvml_sees_this_process_allocate_a_gibibyte():
    pytest.importorskip("pynvml", reason="nvidia-ml-py not installed")
    from bench.meter import MemoryTracker

    tracker = MemoryTracker(torch.device("cuda"), interval_s=0.005)
    with tracker.track():
        x = torch.empty(1024 * 2**20, dtype=torch.uint8, device="cuda")
        x.fill_(1)
        torch.cuda.synchronize()
        import time

        time.sleep(0.2)  # several sampling periods
        del x
    report, energy = tracker.report(), tracker.energy(epochs=1, samples=1)
    print(
        f"\nNVML peak {report.peak_vram_nvml_mib} MiB ({report.nvml_source}); util "
        f"{energy.gpu_util_mean_pct}%; energy {energy.energy_j} J; "
        f"samples {report.nvml_samples}; notes {report.notes}"
    )
    assert report.peak_vram_nvml_mib is not None and report.peak_vram_nvml_mib >= 1024
    assert report.nvml_samples >= 10
    assert energy.energy_j is None or energy.energy_j > 0


def test_amp_resolves_to_bf16_where_the_gpu_has_it_else_fp16_with_loss_scaling():
    from bench.step import resolve_precision

    p = resolve_precision("auto", torch.device("cuda"))
    if torch.cuda.is_bf16_supported():
        assert p.name == "bf16" and not p.loss_scaling and p.autocast_dtype is torch.bfloat16
    else:
        assert p.name == "fp16" and p.loss_scaling and p.autocast_dtype is torch.float16
    fp16 = resolve_precision("fp16", torch.device("cuda"))
    assert fp16.loss_scaling and fp16.autocast_dtype is torch.float16


@pytest.mark.parametrize("spelling", ["full", "partial3+amp", "partial3+amp:bf16+cache", "lora"])
def test_one_training_run_per_precision_on_the_gpu(tiny_config, spelling):
    import dataclasses

    from bench.worker import run_one

    cfg = dataclasses.replace(tiny_config, strategy=spelling, device="cuda").with_train(
        max_epochs=3
    )
    result = run_one(cfg)
    eff = result.efficiency
    print(
        f"\n{spelling}: {eff.throughput.train_samples_per_s} samples/s, harness efficiency "
        f"{eff.harness_efficiency}, alloc peak {eff.allocator.peak_vram_alloc_mib:.1f} MiB, "
        f"NVML {eff.memory.peak_vram_nvml_mib} MiB, energy {eff.energy.energy_j} J, "
        f"notes {result.notes}"
    )
    assert result.status == "ok"
    assert result.device["type"] == "cuda"
    assert eff.allocator.peak_vram_alloc_mib > 0 and eff.allocator.alloc_peak_eval_mib is not None
    assert eff.throughput.train_samples_per_s > 0 and eff.harness_efficiency > 0


def test_cuda_device_order_matches_nvml_by_uuid():
    pynvml = pytest.importorskip("pynvml")
    from bench.meter.nvml import handle_for

    pynvml.nvmlInit()
    uuid = str(torch.cuda.get_device_properties(0).uuid)
    handle = handle_for(pynvml, 0, uuid)
    name = pynvml.nvmlDeviceGetName(handle)
    name = name.decode() if isinstance(name, bytes) else name
    assert torch.cuda.get_device_name(0) in name or name in torch.cuda.get_device_name(0)
    assert os.environ.get("CUDA_VISIBLE_DEVICES", "0") is not None


def test_plan_measures_memory_at_the_longest_bucket_and_the_largest_batch():
    from bench.batching import LengthGrid
    from bench.config import PROFILES
    from bench.plan.calibrate import calibrate

    grid = LengthGrid.from_lengths([32_000, 48_000, 64_000, 80_000])
    cal = calibrate(
        "partial3+amp", "small-w2v2", PROFILES["quick"].train, grid, 3, torch.device("cuda"),
        points=3, point_seconds=0.2,
    )  # fmt: skip
    print(f"\nplan memory: {cal.memory}; power {cal.power_w} W ({cal.power_note})")
    assert cal.memory.peak_mib is not None and cal.memory.peak_mib > 0
    assert cal.memory.fits and cal.memory.max_batch >= cal.batch_size
    assert cal.train is not None and len(cal.train.points) == 3


def test_gpu_busy_share_is_a_share_of_the_step():
    from bench.bench_ceiling import ceilings_for

    (c,) = ceilings_for("small-w2v2", "partial3+amp", 8, [48_000], torch.device("cuda"))
    print(
        f"\nsmall-w2v2 partial3+amp 8 x 3 s: {c.samples_per_s:.0f} samples/s, GPU busy {c.gpu_busy:.0%}"
    )
    assert c.gpu_busy is not None and 0 < c.gpu_busy <= 1.05
