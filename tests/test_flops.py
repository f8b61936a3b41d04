"""Analytic FLOPs against torch's FlopCounterMode on a tiny model of every backbone family (and
wav2vec2's pre-layer-norm layout), and the MFU peak table."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.model.backbones import PRESETS
from bench.model.flops import cnn_lengths, peak_tflops, train_flops_per_clip
from bench.model.ser import build_model
from strategies import parse_strategy


def _counted(model, cached: bool) -> float:
    x = torch.randn(1, 16_000, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(1, 16_000, dtype=torch.long)
    model.train()
    start = model.frozen_prefix_layers
    if cached:
        with torch.no_grad():
            hidden, frames = model.prefix(x, mask, start)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model.forward_from(hidden, frames, start) if cached else model(x, mask)
        out.sum().backward()
    return counter.get_total_flops()


def test_wav2vec2_frame_rate():
    from transformers import Wav2Vec2Config

    assert cnn_lengths(Wav2Vec2Config(), 16_000)[-1] == 49  # ~50 frames per second


TINY = [name for name in PRESETS if name.startswith("tiny-")]


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("spelling", ["partial1", "partial3", "partial4"])
def test_cached_training_flops_match_the_counter(name, spelling):
    model, _ = build_model(name, "random", 0, parse_strategy(spelling).strategy)
    expected = _counted(model, cached=True)
    estimate = train_flops_per_clip(model, 16_000, cached_layers=model.frozen_prefix_layers)
    assert estimate == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name", TINY)
def test_uncached_flops_match_the_counter_when_every_layer_trains(name):
    # With frozen layers in eval mode the CPU attention kernel is one the counter cannot see, and it
    # overcounts grouped-convolution backward (pos_conv in `full`), so compare where neither occurs.
    model, _ = build_model(name, "random", 0, parse_strategy("partial4").strategy)
    assert train_flops_per_clip(model, 16_000) == pytest.approx(
        _counted(model, cached=False), rel=0.01
    )


def test_cost_ordering_between_strategies():
    def flops(spelling, cached=False):
        model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy(spelling).strategy)
        return train_flops_per_clip(model, 16_000, model.frozen_prefix_layers if cached else None)

    assert flops("partial1", cached=True) < flops("partial3", cached=True) < flops("partial3")
    assert flops("partial3") < flops("full")
    assert flops("lora") < flops("full")


def test_peak_table_and_override():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16", None)[0] == 989.0
    assert peak_tflops("NVIDIA H100 PCIe", "fp16", None)[0] == 756.0
    assert peak_tflops("NVIDIA A100-SXM4-40GB", "fp32", None)[0] == 19.5
    assert peak_tflops("x86_64", "fp32", 1.5) == (1.5, "--peak-tflops")
    value, why = peak_tflops("Mystery GPU", "fp16", None)
    assert value is None and "--peak-tflops" in why


def test_mfu_is_rated_against_the_peak_that_matches_the_tf32_choice():
    h100 = "NVIDIA H100 80GB HBM3"
    assert peak_tflops(h100, "fp32", None) == (67.0, "H100 fp32 spec (TF32 off)")
    assert peak_tflops(h100, "fp32", None, tf32=True) == (
        494.7,
        "H100 TF32 tensor spec (--tf32 on)",
    )
    assert peak_tflops("NVIDIA H200", "fp32", None, tf32=True)[0] == 494.7
    assert peak_tflops(h100, "bf16", None, tf32=True)[0] == 989.0  # autocast: the half peak
    value, why = peak_tflops("Tesla V100-SXM2-16GB", "fp32", None, tf32=True)
    assert value == 15.7 and "has no TF32" in why
