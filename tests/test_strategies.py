"""The registry contract, parsing, refusals, and trainable-parameter counts on wav2vec2-base."""

import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from bench.errors import BenchError
from bench.model import CONFIG_OVERRIDES, SERModel, count_parameters
from strategies import list_strategies, parse_strategy, register_strategy

ENCODER_LAYER_PARAMS = 7_087_872  # one wav2vec2-base transformer layer


@pytest.mark.parametrize(
    "spelling",
    [
        "full",
        "partial3",
        "partial3+amp",
        "partial3+amp+cache",
        "lora",
        "lora:r=16,alpha=32,targets=q,k,v",
        "partial1+amp:bf16",
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
    for name in ("full", "partial", "lora"):
        assert name in msg


def test_impossible_and_malformed_combinations_are_refused():
    with pytest.raises(BenchError, match="no frozen prefix to cache"):
        parse_strategy("full+cache")
    with pytest.raises(BenchError, match="unknown modifier 'turbo'"):
        parse_strategy("partial3+turbo")
    with pytest.raises(BenchError, match="has no parameter 'rank'"):
        parse_strategy("lora:rank=4")
    with pytest.raises(BenchError, match="not a valid int"):
        parse_strategy("lora:r=big")
    with pytest.raises(BenchError, match="amp takes fp16 or bf16"):
        parse_strategy("partial3+amp:fp8")
    with pytest.raises(BenchError, match=r"k must be 1\.\.12"):
        parse_strategy("partial13").strategy.validate(12)


def test_registering_a_name_twice_is_loud():
    with pytest.raises(ValueError, match="registered twice"):

        @register_strategy("full", summary="again")
        class Again:
            pass


def test_list_strategies_filters_with_wildcards():
    assert {"full", "partial", "lora"} <= set(list_strategies())
    assert list_strategies("part*") == ["partial"]


@pytest.fixture(scope="module")
def base_backbone():
    torch.manual_seed(0)
    return Wav2Vec2Model(Wav2Vec2Config(**CONFIG_OVERRIDES))


def _trainable(backbone, spelling):
    import copy

    model = SERModel(copy.deepcopy(backbone), head_seed=0)
    for p in model.backbone.parameters():
        p.requires_grad = False
    spec = parse_strategy(spelling)
    spec.strategy.validate(model.num_layers)
    spec.strategy.apply(model)
    head = sum(p.numel() for p in model.head.parameters())
    return count_parameters(model)[1] - head


@pytest.mark.slow
def test_trainable_counts_on_wav2vec2_base(base_backbone):
    assert _trainable(base_backbone, "partial3") == 3 * ENCODER_LAYER_PARAMS
    assert _trainable(base_backbone, "partial1") == ENCODER_LAYER_PARAMS
    assert _trainable(base_backbone, "lora") == 294_912  # 12 layers x {q,v} x (768*8 + 8*768)
    total = sum(p.numel() for p in base_backbone.parameters())
    cnn = sum(p.numel() for p in base_backbone.feature_extractor.parameters())
    assert _trainable(base_backbone, "full") == total - cnn
