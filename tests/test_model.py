import pytest
import torch

from bench.errors import BenchError
from bench.model.ser import build_model, load_backbone
from strategies import parse_strategy
from tests.conftest import padded_pair as _inputs

# The split forward against each family's own forward: tests/test_backbones.py.


def test_padded_frames_do_not_enter_pooling():
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("full").strategy)
    model.eval()
    hidden = torch.randn(1, 10, 32)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, :6] = True
    garbage = hidden.clone()
    garbage[0, 6:] = 1e4
    assert torch.allclose(model.pool_head(hidden, mask), model.pool_head(garbage, mask))


def test_head_initialisation_depends_only_on_the_seed():
    a, _ = build_model("tiny-w2v2", "random", 3, parse_strategy("full").strategy)
    b, _ = build_model("tiny-w2v2", "random", 3, parse_strategy("lora").strategy)
    c, _ = build_model("tiny-w2v2", "random", 4, parse_strategy("full").strategy)
    for pa, pb, pc in zip(
        a.head.parameters(), b.head.parameters(), c.head.parameters(), strict=True
    ):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


def test_frozen_prefix_runs_in_eval_mode_during_training():
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("partial1").strategy)
    model.train()
    assert not model.layers[0].training and not model.layers[2].training
    assert model.layers[3].training and model.head.training


def test_offline_weights_policy():
    with pytest.raises(BenchError, match="no pretrained weights"):
        load_backbone("tiny-w2v2", "pretrained", 0)
    with pytest.raises(BenchError, match="cannot load pretrained weights"):
        load_backbone("facebook/wav2vec2-base", "pretrained", 0)


@pytest.mark.slow
def test_auto_weights_fall_back_loudly_to_random_init():
    loaded = load_backbone("facebook/wav2vec2-base", "auto", 0)
    assert loaded.weights == "random-init"
    assert "RANDOM-INIT" in loaded.note


def test_layer_weighting_pools_then_weights_exactly():
    """head caches per-layer pooled vectors: weighting after pooling must equal pooling the
    weighted frame-level states (masked mean pooling is linear)."""
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("head").strategy)
    model.eval()
    with torch.no_grad():
        model.layer_weights.copy_(torch.tensor([0.3, -1.0, 2.0, 0.1, 0.5]))
        x, mask = _inputs()
        hidden, frames = model.embed(x, mask)
        states = [hidden]
        for i in range(model.num_layers):
            states.append(model.run_layers(states[-1], frames, i, i + 1))
        w = torch.softmax(model.layer_weights, 0)
        mixed = sum(wi * h for wi, h in zip(w, states, strict=True))
        expected = model.head(model.pool(mixed, frames))
        assert torch.allclose(model(x, mask), expected, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    x, mask = _inputs()
    grads = []
    for ckpt in (False, True):
        model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("partial2").strategy)
        model.checkpoint_layers = ckpt
        model.train()
        torch.manual_seed(5)  # the same dropout masks; checkpointing restores the RNG to replay
        model(x, mask).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-6), name


def test_compile_runs_on_cpu_and_refuses_clearly_without_a_compiler(monkeypatch):
    from bench.model.ser import compile_model

    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("partial1").strategy)
    model.eval()
    x, mask = _inputs()
    with torch.no_grad():
        expected = model(x, mask)
    note = compile_model(model, "eager", torch.device("cpu"))  # dynamo tracing, no codegen
    assert "backend=eager" in note
    with torch.no_grad():
        assert torch.allclose(model(x, mask), expected, atol=1e-5)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(BenchError, match=r"needs a C\+\+ compiler.*compile:aot_eager"):
        compile_model(model, "inductor", torch.device("cpu"))


def test_forward_computes_the_prefix_through_the_models_prefix_runner():
    # +graph installs a runner (bench/model/graphs.py, CUDA only); the model must route its frozen
    # prefix through it, and gradients must still reach the trainable layers.
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("partial1").strategy)
    model.train()
    x, mask = _inputs()
    torch.manual_seed(0)
    expected = model(x, mask)
    calls = []

    def runner(inputs, attention_mask):
        calls.append(tuple(inputs.shape))
        return model.frozen_features(inputs, attention_mask)

    model.prefix_runner = runner
    torch.manual_seed(0)
    out = model(x, mask)
    assert calls == [(2, 16_000)]
    assert torch.equal(out, expected)
    out.sum().backward()
    assert all(p.grad is not None for p in model.layers[-1].parameters())


def test_graph_refuses_a_cpu_device_and_a_trainable_prefix():
    from bench.model.graphs import PrefixGraphs
    from bench.model.ser import prepare_forward

    spec = parse_strategy("partial1+graph")
    model, _ = build_model("tiny-w2v2", "random", 0, spec.strategy)
    with pytest.raises(BenchError, match=r"\+graph replays CUDA graphs and this run is on cpu"):
        prepare_forward(model, spec.modifiers, torch.device("cpu"))
    model.layers[0].feed_forward.intermediate_dense.weight.requires_grad = True
    # Checked before anything touches CUDA, so this runs on a CPU too.
    with pytest.raises(BenchError, match=r"trainable parameters \(feed_forward\.intermediate_d"):
        PrefixGraphs(model.frozen_features, model.frozen_modules(), torch.device("cuda"))


def test_full_and_lora_get_identical_heads_on_a_one_dimension_corpus():
    # The head is built with its output count, from its own seed, before the strategy (peft's
    # initialisation draws from the global RNG) touches anything.
    full, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("full").strategy, n_outputs=1)
    lora, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("lora").strategy, n_outputs=1)
    assert full.head[-1].out_features == 1
    for a, b in zip(full.head.state_dict().values(), lora.head.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_groupnorm_encoder_gives_a_padded_clip_its_unpadded_features():
    # small-w2v2 keeps wav2vec2-base's GroupNorm feature encoder, which normalises over time:
    # without masking, the zeros of a padded clip would change every valid frame.
    model, _ = build_model("small-w2v2", "random", 0, parse_strategy("full").strategy)
    model.eval()
    g = torch.Generator().manual_seed(2)
    short, long = torch.randn(1, 24_400, generator=g), torch.randn(1, 40_400, generator=g)
    alone, frames_alone = model.frozen_features(short, torch.ones_like(short, dtype=torch.long))
    batch = torch.zeros(2, 40_400)
    batch[0, :24_400], batch[1] = short[0], long[0]
    mask = torch.zeros(2, 40_400, dtype=torch.long)
    mask[0, :24_400], mask[1] = 1, 1
    padded, frames = model.frozen_features(batch, mask)
    n = int(frames_alone.sum())
    assert int(frames[0].sum()) == n
    assert torch.allclose(padded[0, :n], alone[0], atol=1e-5)
    assert torch.allclose(
        model(batch, mask)[0], model(short, torch.ones_like(mask[:1, :24_400]))[0], atol=1e-5
    )
