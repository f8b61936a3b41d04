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
    from bench.train.step import resolve_precision

    p = resolve_precision("auto", torch.device("cuda"))
    if torch.cuda.is_bf16_supported():
        assert p.name == "bf16" and not p.loss_scaling and p.autocast_dtype is torch.bfloat16
    else:
        assert p.name == "fp16" and p.loss_scaling and p.autocast_dtype is torch.float16
    fp16 = resolve_precision("fp16", torch.device("cuda"))
    assert fp16.loss_scaling and fp16.autocast_dtype is torch.float16


@pytest.mark.parametrize(
    "spelling", ["full", "partial3+amp", "partial3+amp:bf16+cache", "lora", "partial3+amp+graph"]
)
def test_one_training_run_per_precision_on_the_gpu(tiny_config, spelling):
    import dataclasses

    from bench.train.worker import run_one

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
    from bench.config import PROFILES
    from bench.data.batching import LengthGrid
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
    from bench.cli.ceiling import ceilings_for

    (c,) = ceilings_for("small-w2v2", "partial3+amp", 8, [48_000], torch.device("cuda"))
    gpu = c.profile.gpu
    print(
        f"\nsmall-w2v2 partial3+amp 8 x 3 s: {c.samples_per_s:.0f} samples/s, GPU busy "
        f"{gpu.busy:.0%}, {gpu.gpu_ops:.0f} GPU ops/step, {c.profile.host_ops:.0f} host ops/step, "
        f"top kernel {gpu.top[0]}"
    )
    assert gpu is not None and 0 < gpu.busy <= 1.05
    assert gpu.gpu_ops >= 1 and len(gpu.top) >= 1
    assert sum(ms for _, ms, _ in gpu.top) <= 1e3 * c.samples_per_s**-1 * 8 * 1.05


@pytest.mark.parametrize("amp", ["", "+amp"])
def test_graph_replay_computes_what_the_eager_prefix_computes(amp):
    # small-w2v2: the GroupNorm CNN of wav2vec2-base, so the masked first norm is captured too.
    from bench.model.ser import build_model, prepare_forward
    from bench.train.step import resolve_precision
    from strategies import parse_strategy

    device = torch.device("cuda")
    spec = parse_strategy(f"partial1{amp}+graph")
    eager, _ = build_model("small-w2v2", "random", 0, spec.strategy)
    graphed, _ = build_model("small-w2v2", "random", 0, spec.strategy)
    eager.to(device)
    graphed.to(device)
    prepare_forward(graphed, spec.modifiers, device)
    precision = resolve_precision(spec.modifiers.precision, device)
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 32_000), (4, 20_480), (4, 32_000)]  # the third revisits the first's graph
    for i, (b, n) in enumerate(shapes):
        x = torch.randn(b, n, generator=g).to(device)
        mask = torch.ones(b, n, dtype=torch.long)
        mask[1, n // 2 :] = 0
        mask = mask.to(device)
        outs, grads = [], []
        for model in (eager, graphed):
            model.train()
            model.zero_grad(set_to_none=True)
            torch.manual_seed(i)  # the trainable layer's dropout
            with precision.autocast(device):
                prefix = (
                    model.frozen_features if model.prefix_runner is None else model.prefix_runner
                )
                features = prefix(x, mask)
                pred = model.forward_from_features(*features)
            pred.float().sum().backward()
            outs.append((features[0], pred))
            grads.append([p.grad for p in model.parameters() if p.requires_grad])
        assert torch.equal(outs[0][0], outs[1][0]), f"prefix differs at shape {(b, n)}"
        assert torch.allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)
        for ge, gg in zip(*grads, strict=True):
            assert torch.allclose(ge, gg, rtol=1e-3, atol=1e-5)
    assert graphed.prefix_runner.count == 2  # one graph per shape, reused on the revisit
    print(f"\n{graphed.prefix_runner.note()}")
