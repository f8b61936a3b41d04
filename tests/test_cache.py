"""Caching the frozen prefix must not change what is computed."""

import torch

from bench.batching import AudioDataset, bucket_batches, collate
from bench.cache import build_cache
from bench.datasets import load_dataset
from bench.model import build_model
from bench.trainer import resolve_precision, train
from strategies import parse_strategy


def _data(cfg):
    corpus = load_dataset("synthetic", cfg.data_root, seed=0, strict=True, synthetic=cfg.synthetic)
    return corpus, {
        s: AudioDataset(corpus.split(s), 2.0, 0, train=s == "train")
        for s in ("train", "val", "test")
    }


def test_cached_features_equal_the_uncached_prefix(tiny_config):
    _, data = _data(tiny_config)
    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("partial2").strategy)
    cache = build_cache(
        model, data["train"], 2, torch.device("cpu"), 4, None, store_dtype=torch.float32
    )
    model.eval()
    for i in (0, 3, len(data["train"]) - 1):
        b = collate([data["train"][i]])
        with torch.no_grad():
            hidden, mask = model.prefix(b.inputs, b.attention_mask, 2)
        assert torch.allclose(cache.features[i], hidden[0, : mask.sum()], atol=1e-5)


def _trajectory(cfg, data, dims, use_cache, store_dtype=torch.float32):
    import bench.cache as cache_mod

    model, _ = build_model("tiny-w2v2", "random", 0, parse_strategy("partial2").strategy)
    frozen_before = {
        n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad
    }
    original = cache_mod.build_cache

    def fp32_cache(*a, **k):
        return original(*a, **k, store_dtype=store_dtype)

    cache_mod_build = cache_mod.build_cache
    import bench.trainer as trainer_mod

    trainer_mod.build_cache = fp32_cache
    try:
        out = train(
            model,
            data,
            dims,
            cfg.train,
            1e-3,
            resolve_precision("fp32", torch.device("cpu")),
            use_cache,
            0,
            torch.device("cpu"),
        )
    finally:
        trainer_mod.build_cache = cache_mod_build
    frozen_after = dict(model.named_parameters())
    for n, before in frozen_before.items():
        assert torch.equal(before, frozen_after[n]), f"frozen parameter {n} changed"
    return out


def test_cached_training_follows_the_uncached_loss_trajectory(tiny_config):
    corpus, data = _data(tiny_config)
    plain = _trajectory(tiny_config, data, corpus.dimensions, use_cache=False)
    cached = _trajectory(tiny_config, data, corpus.dimensions, use_cache=True)
    for a, b in zip(plain.history, cached.history, strict=True):
        assert abs(a.train_loss - b.train_loss) < 1e-5
        assert abs(a.val_ccc_mean - b.val_ccc_mean) < 1e-5
    assert cached.cache_build_s is not None and plain.cache_build_s is None


def test_batch_order_is_a_function_of_seed_and_epoch():
    lengths = [5, 3, 9, 1, 7, 2, 8, 4, 6, 10] * 3
    a = bucket_batches(lengths, 4, seed=1, epoch=0)
    assert a == bucket_batches(lengths, 4, seed=1, epoch=0)
    assert a != bucket_batches(lengths, 4, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))
