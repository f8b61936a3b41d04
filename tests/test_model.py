import pytest
import torch

from bench.errors import BenchError
from bench.model import build_model, load_backbone
from strategies import parse_strategy


def _inputs():
    x = torch.randn(2, 16_000, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 16_000, dtype=torch.long)
    mask[1, 9_000:] = 0
    x[1, 9_000:] = 0
    return x, mask


def test_split_forward_reproduces_wav2vec2model():
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("full").strategy)
    model.eval()
    x, mask = _inputs()
    ref = model.backbone(x, attention_mask=mask).last_hidden_state
    hidden, frames = model.embed(x, mask)
    mid = model.run_layers(hidden, frames, 0, 2)
    out = model.run_layers(mid, frames, 2, model.num_layers)
    assert torch.allclose(out, ref, atol=1e-6)
    assert frames.sum(1).tolist()[0] > frames.sum(1).tolist()[1]


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
