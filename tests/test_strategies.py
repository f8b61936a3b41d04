"""The registry contract, parsing, refusals, every registered strategy training in the smoke
setup, and trainable-parameter counts on the wav2vec2-base architecture and on a tiny
architecture of every backbone family."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from transformers import AutoModel, Wav2Vec2Config, Wav2Vec2Model

import bench.train.setup
from bench.data.datasets import DataConfig, load_dataset
from bench.errors import BenchError
from bench.model.backbones import CONFIG_OVERRIDES, architecture_config
from bench.model.ser import SERModel, build_model, count_parameters
from bench.train import worker
from strategies import list_strategies, parse_strategy, register_strategy
from strategies.registry import describe, registered


@pytest.mark.parametrize(
    "spelling",
    [
        "full",
        "full:cnn=train",
        "partial3",
        "partial3+amp",
        "partial3+amp+cache",
        "partial1+amp:bf16",
        "partial3+cache:bf16+ckpt+compile",
        "partial2+compile:aot_eager",
        "lora",
        "lora:r=16,alpha=32,targets=q,k,v",
        "lora3+amp+cache",
        "dora",
        "dora2:r=4",
        "ia3",
        "ia3:k=2,targets=k,v",
        "loha3:r=4",
        "adalora:init_r=8,target_r=4",
        "head",
        "head+cache",
        "bitfit+amp:bf16",
        "partial3+amp+graph",
        "lora3+graph",
        "head+amp:bf16+graph",
    ],
)
def test_spelling_round_trips(spelling):
    spec = parse_strategy(spelling)
    assert spec.name == spelling
    assert parse_strategy(spec.name) == spec


def test_unknown_strategy_names_the_valid_ones():
    with pytest.raises(BenchError) as err:
        parse_strategy("partiall3")
    msg = str(err.value)
    assert "unknown strategy 'partiall3'" in msg
    for name in ("full", "partial", "lora", "head", "bitfit", "dora", "ia3", "loha", "adalora"):
        assert name in msg


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("full+cache", "no frozen prefix to cache"),
        ("lora+cache", "no frozen prefix to cache"),  # adapters in every layer
        ("bitfit+cache", "no frozen prefix to cache"),  # the projection's biases train
        ("dora+amp+cache", "no frozen prefix to cache"),
        ("head+ckpt", "trains no transformer layer"),
        ("partial3+amp+amp:bf16", "modifier 'amp' is given twice"),
        ("partial3+turbo", "unknown modifier 'turbo'"),
        ("partial3+amp:fp8", "amp takes fp16 or bf16"),
        ("partial3+cache:int8", "cache takes fp16 or bf16 or fp32"),
        ("partial3+compile:tvm", "compile takes one of inductor"),
        ("partial3+ckpt:all", "ckpt takes no argument"),
        ("lora:rank=4", "has no parameter 'rank'"),
        ("lora:r=big", "not a valid int"),
        ("lora:targets=q,x", "targets \\['x'\\] unknown"),
        ("full:cnn=maybe", "cnn must be one of frozen, train"),
        ("adalora:init_r=4,target_r=8", "target_r <= init_r"),
        ("head3", "takes no number suffix"),
        ("ia33", "unknown strategy 'ia33'"),
        ("lora3:k=2", "k is given twice"),
        ("full+graph", "no frozen prefix to replay"),
        ("lora+amp+graph", "no frozen prefix to replay"),
        ("partial3+cache+graph", "nothing to replay"),
        ("partial3+compile+graph", "keep one of them"),
        ("partial3+graph:all", "graph takes no argument"),
    ],
)
def test_impossible_and_malformed_combinations_are_refused(spelling, reason):
    with pytest.raises(BenchError, match=reason):
        parse_strategy(spelling)


@pytest.mark.parametrize("spelling", ["partial13", "lora13+cache", "dora0"])
def test_layer_counts_are_checked_against_the_model(spelling):
    with pytest.raises(BenchError, match=r"k must be (1\.\.12|>= 1)"):
        parse_strategy(spelling).strategy.validate(12)


def test_cacheable_strategies_say_where_their_prefix_ends():
    assert parse_strategy("partial3").strategy.first_trainable_layer(12) == 9
    assert parse_strategy("lora3").strategy.first_trainable_layer(12) == 9
    assert parse_strategy("head").strategy.first_trainable_layer(12) == 12
    assert parse_strategy("lora").strategy.first_trainable_layer(12) is None
    assert parse_strategy("full").strategy.first_trainable_layer(12) is None


def test_registering_a_name_twice_is_loud():
    with pytest.raises(ValueError, match="registered twice"):

        @register_strategy("full", summary="again")
        class Again:
            pass


def test_a_name_ending_in_a_digit_cannot_take_a_number_suffix():
    with pytest.raises(ValueError, match="cannot take a number suffix"):
        register_strategy("vera2", summary="x", shorthand="k")


def test_list_strategies_filters_with_wildcards():
    expected = {"full", "partial", "lora", "dora", "ia3", "loha", "adalora", "head", "bitfit"}
    assert expected <= set(list_strategies())
    assert list_strategies("part*") == ["partial"]
    assert list_strategies("*lora") == ["adalora", "lora"]


def test_describe_shows_parameters_in_command_line_spelling():
    line = describe(registered()["lora"])
    assert line.startswith("lora<k>:r=8,alpha=16,dropout=0.0,targets=q,v")
    assert describe(registered()["partial"]).startswith("partial<k> ")
    assert "last k layers" in line


# --------------------------------------------------------------------------------------------
# Every registered family (and the modifiers) trains in the smoke setup.

EXTRA_SPELLINGS = ["full:cnn=train", "lora3+amp+cache", "head+cache", "lora+ckpt"]


@pytest.fixture(scope="module")
def smoke_corpus(synth_dir):
    from tests.conftest import TINY_SPEC

    return load_dataset(DataConfig("synthetic", str(synth_dir), False, TINY_SPEC), 0)


@pytest.mark.parametrize("spelling", list_strategies() + EXTRA_SPELLINGS)
def test_strategy_runs_in_the_smoke_setup_and_trains_only_what_it_says(
    spelling, tiny_config, smoke_corpus, tmp_path, monkeypatch
):
    """The whole run path (worker, trainer, result) for every registered family; then the
    model it trained: every trainable tensor moved, every frozen one is bit-identical."""
    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path))
    built = {}

    def build_and_keep(*args, **kwargs):
        model, loaded = build_model(*args, **kwargs)
        built["model"] = model
        built["before"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        return model, loaded

    monkeypatch.setattr(bench.train.setup, "build_model", build_and_keep)
    spec = parse_strategy(spelling)
    result = worker.run_one(
        dataclasses.replace(tiny_config, strategy=spec.name), corpus=smoke_corpus
    )

    assert result.status == "ok"
    history = result.metrics.history
    assert len(history) == tiny_config.train.max_epochs
    assert all(math.isfinite(h.train_loss) for h in history)
    cache = result.efficiency.cache
    assert (cache is not None) == spec.modifiers.cache
    if cache:
        assert cache.bytes > 0 and cache.where == "memory"

    model = built["model"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert result.model.params_trainable == sum(
        p.numel() for n, p in model.named_parameters() if n in trainable
    )
    assert any(not n.startswith("head.") for n in trainable), "trains nothing but the head"
    for name, p in model.named_parameters():
        moved = not torch.equal(built["before"][name], p.detach())
        assert moved == (name in trainable), f"{spelling}: {name} trainable={name in trainable}"


# --------------------------------------------------------------------------------------------
# Trainable parameters on wav2vec2-base, computed by hand from the architecture (hidden 768,
# FFN 3072, 12 layers, 12 heads, conv_bias=False, GroupNorm in the first conv layer, weight-norm
# positional conv with kernel 128 in 16 groups; SpecAugment off, so no masked_spec_embed).
#
# One encoder layer:
#   q, k, v, out projections   4 x (768*768 + 768)        = 2,362,368
#   attention LayerNorm        2 x 768                    =     1,536
#   FFN intermediate_dense     768*3072 + 3072            = 2,362,368
#   FFN output_dense           3072*768 + 768             = 2,360,064
#   final LayerNorm            2 x 768                    =     1,536
#                                                     sum = 7,087,872
LAYER = 7_087_872
# LoRA r=8 on q and v: A (8 x 768) + B (768 x 8) = 12,288 per projection, 2 per layer.
LORA_PER_LAYER = 2 * (8 * 768 + 768 * 8)  # 24,576
# BitFit, the CNN frozen: feature projection LayerNorm bias 512 + projection bias 768,
# positional conv bias 768, encoder LayerNorm bias 768, and per layer the biases of
# q,k,v,out (4 x 768), attention LN (768), FFN (3072 + 768), final LN (768) = 8,448.
BITFIT = 512 + 768 + 768 + 768 + 12 * (4 * 768 + 768 + 3072 + 768 + 768)  # 104,192
# head: one softmax weight per hidden state: the embedding output + 12 layer outputs.
HEAD_WEIGHTS = 13
# DoRA adds a magnitude per output feature of each adapted projection: 768 x 2 per layer.
DORA_PER_LAYER = LORA_PER_LAYER + 2 * 768  # 26,112
# (IA)^3: a vector over k's outputs (768), v's outputs (768) and ff2's inputs (3072).
IA3_PER_LAYER = 768 + 768 + 3072  # 4,608
# LoHa r=8 on q, v: two Hadamard factors, each A (768 x 8) + B (8 x 768), per projection.
LOHA_PER_LAYER = 2 * 2 * (768 * 8 + 8 * 768)  # 49,152
# AdaLoRA init_r=12 on q, v: P (12 x 768) + Q (768 x 12) + the 12 singular values.
ADALORA_PER_LAYER = 2 * (12 * 768 + 768 * 12 + 12)  # 36,888
# The CNN feature encoder: 7 convs without bias, 512 channels, kernels 10,3,3,3,3,2,2, and
# GroupNorm (weight + bias, 512 each) after the first one.
CNN = 512 * 1 * 10 + 4 * (512 * 512 * 3) + 2 * (512 * 512 * 2) + 2 * 512  # 4,200,448

EXPECTED = {
    "partial1": LAYER,
    "partial3": 3 * LAYER,
    "partial12": 12 * LAYER,  # 85,054,464
    "lora": 12 * LORA_PER_LAYER,  # 294,912
    "lora3": 3 * LORA_PER_LAYER,  # 73,728
    "bitfit": BITFIT,
    "head": HEAD_WEIGHTS,
    "dora": 12 * DORA_PER_LAYER,  # 313,344
    "ia3": 12 * IA3_PER_LAYER,  # 55,296
    "loha": 12 * LOHA_PER_LAYER,  # 589,824
    "adalora": 12 * ADALORA_PER_LAYER,  # 442,656
}


@pytest.fixture(scope="module")
def base_backbone():
    torch.manual_seed(0)
    return Wav2Vec2Model(Wav2Vec2Config(**CONFIG_OVERRIDES))


def _trainable_outside_head(backbone, spelling):
    model = SERModel(copy.deepcopy(backbone), head_seed=0)
    for p in model.backbone.parameters():
        p.requires_grad = False
    spec = parse_strategy(spelling)
    spec.strategy.validate(model.num_layers)
    spec.strategy.apply(model)
    head = sum(p.numel() for p in model.head.parameters())
    return count_parameters(model)[1] - head


@pytest.mark.slow
@pytest.mark.parametrize("spelling", list(EXPECTED))
def test_trainable_counts_on_wav2vec2_base(base_backbone, spelling):
    assert _trainable_outside_head(base_backbone, spelling) == EXPECTED[spelling]


@pytest.mark.slow
def test_full_trains_everything_but_the_cnn_unless_asked(base_backbone):
    total = sum(p.numel() for p in base_backbone.parameters())
    assert _trainable_outside_head(base_backbone, "full") == total - CNN
    assert _trainable_outside_head(base_backbone, "full:cnn=train") == total


# --------------------------------------------------------------------------------------------
# Trainable parameters on the tiny architecture of every family, from the same hand count
# generalised to width d, FFN width f, L layers, H heads, and what each family adds:
#   WavLM, per layer: the bias gate (gru_rel_pos_const: H; gru_rel_pos_linear: head_dim*8 + 8),
#          and in layer 0 the relative-position embedding (num_buckets x H);
#   data2vec-audio: num_conv_pos_embeddings positional convolutions, each with a bias d
#          (their LayerNorms have no parameters).
# Pre-LN layouts have the same parameters in another order.
TINY_FAMILIES = ["tiny-w2v2", "tiny-w2v2-preln", "tiny-hubert", "tiny-wavlm", "tiny-data2vec"]


def _expected_tiny(config, spelling: str) -> int:
    d, f, n, h = (
        config.hidden_size,
        config.intermediate_size,
        config.num_hidden_layers,
        config.num_attention_heads,
    )
    wavlm = config.model_type == "wavlm"
    gate = (h + (d // h) * 8 + 8) if wavlm else 0

    def layer(i: int) -> int:
        own = 4 * (d * d + d) + 2 * (2 * d) + (d * f + f) + (f * d + d) + gate
        return own + (config.num_buckets * h if wavlm and i == 0 else 0)

    n_pos = config.num_conv_pos_embeddings if config.model_type == "data2vec-audio" else 1
    lora = 2 * (8 * d + d * 8)  # r=8 on q and v
    bitfit = (
        config.conv_dim[-1]
        + d  # feature projection: LayerNorm and Linear biases
        + n_pos * d  # positional convolution(s)
        + d  # encoder LayerNorm
        + n * (4 * d + d + f + d + d + (8 if wavlm else 0))
    )
    return {
        "partial1": layer(n - 1),
        "partial3": sum(layer(i) for i in range(n - 3, n)),
        "lora": n * lora,
        "lora3": 3 * lora,
        "dora": n * (lora + 2 * d),
        "ia3": n * (d + d + f),
        "loha": n * 2 * 2 * (d * 8 + 8 * d),
        "adalora": n * 2 * (12 * d + d * 12 + 12),
        "head": n + 1,
        "bitfit": bitfit,
    }[spelling]


@pytest.mark.parametrize("name", TINY_FAMILIES)
@pytest.mark.parametrize(
    "spelling",
    ["partial1", "partial3", "lora", "lora3", "dora", "ia3", "loha", "adalora", "head", "bitfit"],
)
def test_trainable_counts_on_every_family(name, spelling):
    config = architecture_config(name)
    torch.manual_seed(0)
    backbone = AutoModel.from_config(config)
    assert _trainable_outside_head(backbone, spelling) == _expected_tiny(config, spelling)


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_full_trains_everything_but_the_cnn_in_every_family(name):
    backbone = AutoModel.from_config(architecture_config(name))
    cnn = sum(p.numel() for p in backbone.feature_extractor.parameters())
    total = sum(p.numel() for p in backbone.parameters())
    assert _trainable_outside_head(backbone, "full") == total - cnn
    assert _trainable_outside_head(backbone, "full:cnn=train") == total
