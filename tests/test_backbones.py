"""Every backbone family: the split forward equals the family's own forward, a cached prefix
gives the trained layers what they would get uncached, adapters reach every target module,
checkpoints load through the auto classes, and unsupported families are refused."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel, Wav2Vec2ConformerConfig

from bench.errors import BenchError
from bench.model.backbones import (
    CONFIG_OVERRIDES,
    KNOWN_ARCHITECTURES,
    PRESETS,
    architecture_config,
    load_backbone,
    parameter_count,
)
from bench.model.families import FAMILIES, TARGET_NAMES
from bench.model.ser import SERModel, build_model
from strategies import parse_strategy
from tests.conftest import padded_pair as _inputs

TINY = [name for name in PRESETS if name.startswith("tiny-")]


def _config(case: str):
    """A tiny config: a preset, `preset+preln` for its pre-layer-norm (large) layout, or
    `preset+group` for the base models' CNN (GroupNorm over time after the first convolution)."""
    name, _, variant = case.partition("+")
    config = architecture_config(name)
    if variant == "preln":
        config.do_stable_layer_norm = True
    if variant == "group":
        config.feat_extract_norm = "group"
    return config


# Every family, the pre-LN layouts of those that have them (wav2vec2's is a preset), and the
# GroupNorm CNN of the base models (data2vec-audio has LayerNorm in every convolution).
CASES = [
    *TINY,
    "tiny-hubert+preln",
    "tiny-wavlm+preln",
    "tiny-w2v2+group",
    "tiny-hubert+group",
    "tiny-wavlm+group",
]


def _model(case: str, spelling: str = "full") -> SERModel:
    torch.manual_seed(0)
    model = SERModel(AutoModel.from_config(_config(case)), head_seed=1)
    for p in model.backbone.parameters():
        p.requires_grad = False
    strategy = parse_strategy(spelling).strategy
    strategy.apply(model)
    model.frozen_prefix_layers = strategy.first_trainable_layer(model.num_layers) or 0
    return model.eval()


def test_the_tiny_presets_cover_every_family():
    assert {architecture_config(n).model_type for n in TINY} == set(FAMILIES)


def _split_forward(model: SERModel, x: torch.Tensor, mask: torch.Tensor):
    """Encoder output through embed and two run_layers calls, and the frame mask."""
    hidden, frames = model.embed(x, mask)
    below = model.run_layers(hidden, frames, 0, 2)
    out = model.run_layers(below, frames, 2, model.num_layers)
    if model.stable_layer_norm:  # pre-LN: the encoder's LayerNorm follows the last layer
        out = model.backbone.encoder.layer_norm(out)
    return out, frames


@pytest.mark.parametrize("case", CASES)
def test_split_forward_equals_the_familys_own_forward(case):
    model = _model(case)
    assert model.stable_layer_norm == case.endswith("preln")
    if case.endswith("group"):
        assert isinstance(
            model.backbone.feature_extractor.conv_layers[0].layer_norm, torch.nn.GroupNorm
        )
    # The family's own model class, untouched (WavLM's attention is swapped in ours), same weights.
    reference = AutoModel.from_config(model.backbone.config).eval()
    reference.load_state_dict(model.backbone.state_dict())
    x, mask = _inputs()
    with torch.no_grad():
        out, frames = _split_forward(model, x, mask)
        assert frames.sum(1).tolist()[0] > frames.sum(1).tolist()[1]
        for i in range(2):  # each clip alone, unpadded, through the family's forward
            n = int(mask[i].sum())
            alone = reference(x[i : i + 1, :n]).last_hidden_state[0]
            # other shapes, other float summation order: ~1e-6 apart
            torch.testing.assert_close(out[i][frames[i]], alone, atol=1e-5, rtol=1e-5)
        if not (model.family.pos_conv_stack or case.endswith("group")):
            # The padded batch too. Not where the family's own batched forward carries the
            # padding into the last valid frames, through GroupNorm over time or
            # data2vec-audio's positional convolutions (ours does not: each clip equals its
            # forward alone, above).
            expected = reference(x, attention_mask=mask).last_hidden_state
            torch.testing.assert_close(out[frames], expected[frames], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_cached_prefix_gives_the_trained_layers_the_uncached_input(case):
    """What the cache does: the prefix of each clip alone (no padding), its valid frames stored,
    later padded into a batch and finished; equal to the uncached batched forward to 1e-5.
    For WavLM this needs the relative position bias from layer 0 above the prefix."""
    model = _model(case, "partial2")
    assert model.frozen_prefix_layers == model.num_layers - 2
    x, mask = _inputs()
    with torch.no_grad():
        uncached = model(x, mask)
        rows = []
        for i in range(2):
            n = int(mask[i].sum())
            feats, valid = model.frozen_features(x[i : i + 1, :n], mask[i : i + 1, :n])
            rows.append(feats[0, : int(valid.sum())])
        hidden = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        frames = torch.zeros(hidden.shape[:2], dtype=torch.bool)
        for i, r in enumerate(rows):
            frames[i, : len(r)] = True
        cached = model.forward_from_features(hidden, frames)
    torch.testing.assert_close(cached, uncached, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_every_target_is_a_linear_that_the_forward_calls(case):
    """Each short target name maps to a Linear in every layer of every family, and an adapter
    on it changes the output (WavLM's attention otherwise reads the projection weights
    directly and never calls an adapter)."""
    x, mask = _inputs()
    for target in TARGET_NAMES:
        model = _model(case)
        path = model.family.targets[target]
        for layer in model.layers:
            assert isinstance(layer.get_submodule(path), torch.nn.Linear)
        with torch.no_grad():
            before = model(x, mask)
        parse_strategy(f"lora:targets={target}").strategy.apply(model)
        lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
        assert len(lora_b) == model.num_layers
        with torch.no_grad():
            for p in lora_b:  # peft starts B at zero: make the adapters do something
                # random, not constant: a LayerNorm would remove a constant shift of the features
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
            after = model(x, mask)
        assert not torch.allclose(before, after), target


@pytest.mark.parametrize("name", TINY)
def test_save_pretrained_checkpoint_loads_as_its_own_family(name, tmp_path):
    torch.manual_seed(0)
    arch = PRESETS[name]  # as a user would build it: SpecAugment and LayerDrop on
    original = AutoModel.from_config(AutoConfig.for_model(arch.family, **arch.settings))
    original.save_pretrained(tmp_path)
    loaded = load_backbone(str(tmp_path), "pretrained", seed=0)
    assert loaded.weights == "pretrained" and loaded.note is None
    assert type(loaded.model) is type(original)
    for key, value in CONFIG_OVERRIDES.items():
        assert getattr(loaded.model.config, key) == value
    state = loaded.model.state_dict()
    for key, tensor in original.state_dict().items():
        if key in state:  # masked_spec_embed is not built with SpecAugment off
            assert torch.equal(state[key], tensor), key


def test_a_checkpoint_missing_the_familys_weights_is_never_silently_random(tmp_path):
    """A wav2vec2 checkpoint whose config says WavLM lacks WavLM's relative-position weights."""
    torch.manual_seed(0)
    AutoModel.from_config(architecture_config("tiny-w2v2")).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type="wavlm", num_buckets=32, max_bucket_distance=64)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BenchError, match=r"wavlm backbone tensors are not in the checkpoint"):
        load_backbone(str(tmp_path), "pretrained", seed=0)
    loaded = load_backbone(str(tmp_path), "auto", seed=0)
    assert "RANDOM-INIT" in loaded.note and "13 wavlm backbone tensors" in loaded.note


def test_unsupported_families_are_refused_with_the_supported_list(tmp_path):
    Wav2Vec2ConformerConfig(hidden_size=32, num_hidden_layers=1).save_pretrained(tmp_path)
    for call in (
        lambda: architecture_config(str(tmp_path)),
        lambda: build_model(str(tmp_path), "auto", 0, parse_strategy("full").strategy),
    ):
        with pytest.raises(BenchError) as err:
            call()
        msg = str(err.value)
        assert "'wav2vec2-conformer' checkpoint" in msg
        assert "wav2vec2, hubert, wavlm, data2vec-audio" in msg


@pytest.mark.parametrize(
    ("name", "family", "params"),
    [
        # Architecture only (meta device): what the README quotes for each real checkpoint.
        ("facebook/wav2vec2-base", "wav2vec2", 94_370_944),
        ("facebook/wav2vec2-large-robust", "wav2vec2", 315_437_696),
        ("facebook/hubert-base-ls960", "hubert", 94_370_944),
        ("microsoft/wavlm-base-plus", "wavlm", 94_381_168),
        ("microsoft/wavlm-large", "wavlm", 315_452_096),
        ("facebook/data2vec-audio-base", "data2vec-audio", 93_163_520),
    ],
)
def test_known_architectures_have_the_real_checkpoints_sizes(name, family, params):
    config = architecture_config(name)
    assert config.model_type == family
    assert parameter_count(config) == params


def test_every_known_architecture_is_a_supported_family():
    assert {a.family for a in KNOWN_ARCHITECTURES.values()} == set(FAMILIES)


@pytest.fixture(scope="module")
def smoke_corpus(synth_dir):
    from bench.data.datasets import DataConfig, load_dataset
    from tests.conftest import TINY_SPEC

    return load_dataset(DataConfig("synthetic", str(synth_dir), False, TINY_SPEC), 0)


@pytest.mark.parametrize("name", TINY)
def test_a_saved_checkpoint_of_every_family_trains_in_the_smoke_setup(
    name, tiny_config, smoke_corpus, tmp_path, monkeypatch
):
    """`--model DIR --weights pretrained` with full, partial2+amp+cache and lora."""
    import dataclasses

    from bench.train import worker

    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path / "cache"))
    arch = PRESETS[name]
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.for_model(arch.family, **arch.settings)).save_pretrained(
        tmp_path / "ckpt"
    )
    base = dataclasses.replace(
        tiny_config.with_train(max_epochs=1), model=str(tmp_path / "ckpt"), weights="pretrained"
    )
    for spelling in ("full", "partial2+amp+cache", "lora"):
        result = worker.run_one(dataclasses.replace(base, strategy=spelling), corpus=smoke_corpus)
        assert result.status == "ok", spelling
        assert result.model.weights == "pretrained"
        assert not any("RANDOM-INIT" in n for n in result.notes)
        assert result.model.architecture["family"] == arch.family
        assert (result.efficiency.cache is not None) == spelling.endswith("+cache")


def test_a_checkpoint_with_a_convolutional_adapter_is_refused(tmp_path):
    arch = PRESETS["tiny-w2v2"]
    AutoConfig.for_model(arch.family, **arch.settings, add_adapter=True).save_pretrained(tmp_path)
    with pytest.raises(BenchError, match=f"--model {tmp_path} has add_adapter=True"):
        architecture_config(str(tmp_path))
