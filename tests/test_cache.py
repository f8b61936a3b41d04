"""Caching the frozen prefix must not change what is computed, must be shared exactly when the
inputs agree, and must never serve a corrupt or stale store."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading

import numpy as np
import pytest
import torch

import bench.cache.prefix as prefix_mod
from bench.cache import StoreWriter, open_store, prepare_caches, resolve_place
from bench.cache.key import FORMAT_VERSION
from bench.cache.prefetch import prefetched
from bench.cache.store import CacheInvalid, DeviceStore
from bench.data.batching import AudioDataset, bucket_batches, collate
from bench.data.datasets import DataConfig, load_dataset
from bench.errors import BenchError
from bench.model.ser import build_model
from bench.train.setup import setup_run
from bench.train.trainer import train
from strategies import parse_strategy

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corpus(synth_dir):
    from tests.conftest import TINY_SPEC

    return load_dataset(DataConfig("synthetic", str(synth_dir), True, TINY_SPEC), 0)


def _data(corpus, seed=0, max_seconds=2.0):
    return {
        s: AudioDataset(corpus.split(s), max_seconds, seed, train=s == "train")
        for s in ("train", "val", "test")
    }


def _prepare(model, data, directory, **kw):
    kw.setdefault("cache_dtype", "fp32")
    return prepare_caches(model, data, CPU, 4, None, directory=directory, **kw)


def _model(spelling, seed=0, name="tiny-w2v2"):
    return build_model(name, "random", seed, parse_strategy(spelling).strategy)[0]


# --------------------------------------------------------------------------------------------
# What is computed


def test_cached_features_equal_the_uncached_prefix(corpus, tmp_path):
    data = _data(corpus)
    model = _model("partial2")
    views, report = _prepare(model, data, tmp_path)
    assert not report.reused and report.where == "memory" and report.clips == len(corpus.utterances)
    model.eval()
    for i in (0, 3, len(data["train"]) - 1):
        b = collate([data["train"][i]])
        with torch.no_grad():
            hidden, mask = model.prefix(b.inputs, b.attention_mask, 2)
        cached = views["train"].batch([i])
        assert cached.frame_mask.sum() == mask.sum()
        assert torch.allclose(cached.hidden[0], hidden[0, : mask.sum()], atol=1e-5)


def test_head_caches_one_pooled_vector_per_layer(corpus, tmp_path):
    data = _data(corpus)
    model = _model("head")
    views, _ = _prepare(model, data, tmp_path)
    b = collate([data["val"][1]])
    model.eval()
    with torch.no_grad():
        expected = model.pooled_hidden_states(b.inputs, b.attention_mask)[0]
    cached = views["val"].batch([1])
    assert cached.hidden.shape == (1, model.num_layers + 1, 32)
    assert torch.allclose(cached.hidden[0], expected, atol=1e-5)


def _trajectory(cfg, corpus, spelling, place="auto", name="tiny-w2v2"):
    run = dataclasses.replace(cfg, strategy=spelling, model=name).with_train(
        lr=1e-3, cache_store=place
    )
    ctx = setup_run(run, corpus)
    frozen_before = {
        n: p.detach().clone() for n, p in ctx.model.named_parameters() if not p.requires_grad
    }
    out = train(ctx)
    frozen_after = dict(ctx.model.named_parameters())
    for n, before in frozen_before.items():
        assert torch.equal(before, frozen_after[n]), f"frozen parameter {n} changed"
    return out


@pytest.mark.parametrize(
    ("plain", "cached", "places"),
    [
        ("partial2", "partial2+cache:fp32", ("memory", "disk", "device")),
        ("head", "head+cache:fp32", ("disk",)),
    ],
)
def test_cached_training_follows_the_uncached_loss_trajectory(
    tiny_config, corpus, tmp_path, monkeypatch, plain, cached, places
):
    """fp32 store, CPU, the frozen prefix in eval mode either way: equal to 1e-5, whether the
    store is in memory, memory-mapped and streamed, or one table on the device."""
    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path))
    a = _trajectory(tiny_config, corpus, plain)
    assert a.cache is None
    for place in places:
        b = _trajectory(tiny_config, corpus, cached, place)
        assert b.cache is not None and b.cache.where == place
        for x, y in zip(a.history, b.history, strict=True):
            assert abs(x.train_loss - y.train_loss) < 1e-5
            assert abs(x.val_ccc_mean - y.val_ccc_mean) < 1e-5
        assert abs(a.test_ccc_mean - b.test_ccc_mean) < 1e-5


@pytest.mark.parametrize("name", ["tiny-w2v2-preln", "tiny-hubert", "tiny-wavlm", "tiny-data2vec"])
def test_cached_training_follows_the_uncached_loss_trajectory_in_every_family(
    tiny_config, corpus, tmp_path, monkeypatch, name
):
    """The same for the other families: WavLM's layers above the prefix get layer 0's position
    bias, data2vec-audio's positional convolutions do not see the batch's padding."""
    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path))
    a = _trajectory(tiny_config, corpus, "partial2", name=name)
    b = _trajectory(tiny_config, corpus, "partial2+cache:fp32", name=name)
    assert b.cache is not None
    for x, y in zip(a.history, b.history, strict=True):
        assert abs(x.train_loss - y.train_loss) < 1e-5
        assert abs(x.val_ccc_mean - y.val_ccc_mean) < 1e-5
    assert abs(a.test_ccc_mean - b.test_ccc_mean) < 1e-5


# --------------------------------------------------------------------------------------------
# Who shares a store, and what invalidates it


def _key(model, data, **kw):
    kw.setdefault("cache_dtype", "fp16")
    plan = prefix_mod._plan(
        model,
        data,
        kw.pop("compute", None),
        prefix_mod.STORE_DTYPES[kw["cache_dtype"]],
        prefix_mod.AudioFingerprints(kw["directory"]),
    )
    return plan.key.digest


def test_strategies_and_seeds_that_share_a_prefix_share_the_store(corpus, tmp_path):
    partial3, lora3 = _model("partial3"), _model("lora3")  # tiny: both freeze layer 0 only
    data0, data1 = _data(corpus, seed=0), _data(corpus, seed=1)  # no clip is cropped at 2 s
    k = _key(partial3, data0, directory=tmp_path)
    assert _key(lora3, data0, directory=tmp_path) == k
    assert _key(partial3, data1, directory=tmp_path) == k
    # The same store on disk, too: the second run opens what the first built.
    _, first = _prepare(partial3, data0, tmp_path, cache_dtype="fp16")
    _, second = _prepare(lora3, data1, tmp_path, cache_dtype="fp16")
    assert not first.reused and second.reused and second.key == first.key


def test_any_change_to_what_the_prefix_sees_invalidates_the_key(corpus, tmp_path):
    model, data = _model("partial3"), _data(corpus)
    base = _key(model, data, directory=tmp_path)
    assert _key(_model("partial2"), data, directory=tmp_path) != base  # boundary
    assert _key(_model("head"), data, directory=tmp_path) != base  # what is cached
    assert _key(model, data, directory=tmp_path, cache_dtype="bf16") != base  # storage
    assert _key(model, data, directory=tmp_path, compute=torch.bfloat16) != base  # compute
    assert _key(model, _data(corpus, max_seconds=0.7), directory=tmp_path) != base  # crop
    # Crops differ between seeds only for clips longer than the crop.
    assert _key(model, _data(corpus, 0, 0.7), directory=tmp_path) != _key(
        model, _data(corpus, 1, 0.7), directory=tmp_path
    )
    # Another family with the same weights (wav2vec2 and HuBERT layers are built alike).
    hubert = _model("partial3", name="tiny-hubert")
    hubert.backbone.load_state_dict(model.backbone.state_dict())
    assert _key(hubert, data, directory=tmp_path) != base
    with torch.no_grad():
        model.layers[0].attention.q_proj.weight[0, 0] += 1e-3  # a frozen weight
    assert _key(model, data, directory=tmp_path) != base
    with torch.no_grad():
        model.layers[0].attention.q_proj.weight[0, 0] -= 1e-3
        model.layers[3].attention.q_proj.weight[0, 0] += 1.0  # a trained layer: same prefix
    assert _key(model, data, directory=tmp_path) == base


def test_changed_audio_changes_the_key(corpus, tmp_path):
    import soundfile as sf

    utt = corpus.split("test")[0]
    copy_dir = tmp_path / "audio"
    copy_dir.mkdir()
    wave, sr = sf.read(utt.path)
    path = copy_dir / "clip.wav"
    sf.write(path, wave, sr)
    moved = dataclasses.replace(utt, path=str(path))
    model = _model("partial3")

    def key():
        return _key(model, {"test": AudioDataset([moved], 2.0, 0, False)}, directory=tmp_path)

    before = key()
    sf.write(path, wave * 0.5, sr)  # same length, different content
    assert key() != before


# --------------------------------------------------------------------------------------------
# Corrupt and stale stores are detected and rebuilt, never used


@pytest.fixture(scope="module")
def good_store(corpus, tmp_path_factory):
    """A store built once; each damage test gets a copy."""
    directory = tmp_path_factory.mktemp("good-store")
    views, _ = _prepare(_model("partial2"), _data(corpus), directory)
    return {"dir": directory, "batch": views["val"].batch([0, 1, 2]).hidden.clone()}


def _flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def _stale_format(path):
    index = path.with_suffix(".json")
    meta = json.loads(index.read_text())
    meta["format"] = FORMAT_VERSION + 1
    index.write_text(json.dumps(meta))


def _garbage_index(path):
    path.with_suffix(".json").write_text("{not json")


def _other_inputs(path):
    index = path.with_suffix(".json")
    meta = json.loads(index.read_text())
    meta["components"]["weights"] = "0" * 64  # a consistent index, but for another model
    index.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "reason", "place"),
    [
        (_flip_a_byte, "fails its CRC32", "memory"),
        (_flip_a_byte, "fails its CRC32", "disk"),
        (_truncate, "the index says", "disk"),
        (_stale_format, "has format", "memory"),
        (_garbage_index, "unreadable", "memory"),
        (_other_inputs, "written for other inputs", "disk"),
    ],
)
def test_a_damaged_store_is_rebuilt_not_used(corpus, good_store, tmp_path, damage, reason, place):
    model, data = _model("partial2"), _data(corpus)
    shutil.copytree(good_store["dir"], tmp_path, dirs_exist_ok=True)
    views, first = _prepare(model, data, tmp_path, place=place)
    assert first.reused
    good = good_store["batch"]
    damage(tmp_path / f"{first.key}.bin")
    views, again = _prepare(model, data, tmp_path, place=place)
    assert again.rebuilt_because is not None and reason in again.rebuilt_because
    assert not again.reused and again.key == first.key
    assert torch.equal(views["val"].batch([0, 1, 2]).hidden, good)
    _, third = _prepare(model, data, tmp_path, place=place)
    assert third.reused and third.rebuilt_because is None


# --------------------------------------------------------------------------------------------
# Storage: memory vs memory-mapped, read ahead in a thread


def _store(tmp_path, clips=20, dim=8, dtype="float16"):
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(int(r), dim, generator=gen) for r in torch.randint(1, 30, (clips,))]
    with StoreWriter(tmp_path, "k", {"format": FORMAT_VERSION}, dtype, dim) as w:
        for i, f in enumerate(feats):
            w.add(f"clip{i}", f.to(torch.float16 if dtype == "float16" else torch.bfloat16), 100)
        w.commit()
    return feats


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_memory_and_disk_stores_serve_identical_batches(tmp_path, dtype):
    feats = _store(tmp_path, dtype=dtype)
    mem = open_store(tmp_path, "k", "memory", FORMAT_VERSION)
    disk = open_store(tmp_path, "k", "disk", FORMAT_VERSION)
    assert isinstance(disk.payload, np.memmap) and not isinstance(mem.payload, np.memmap)
    for clips in ([0], [3, 1, 7], list(range(20))):
        (hm, mm), (hd, md) = mem.gather(clips), disk.gather(clips)
        assert torch.equal(hm, hd) and torch.equal(mm, md)
        for j, c in enumerate(clips):
            n = feats[c].shape[0]
            assert mm[j].sum() == n and torch.equal(hm[j, :n], feats[c].to(hm.dtype))
            assert not hm[j, n:].any()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_device_store_gathers_what_the_host_store_does(tmp_path, dtype):
    _store(tmp_path, dtype=dtype)
    mem = open_store(tmp_path, "k", "memory", FORMAT_VERSION)
    dev = DeviceStore(mem, torch.device("cpu"))
    assert dev.where == "device" and dev.table.shape[0] == sum(mem.index.rows) + 1
    for clips, min_rows in (([0], 0), ([3, 1, 7], 0), (list(range(20)), 0), ([2, 5], 999)):
        (hm, mm), (hd, md) = (
            mem.gather(clips, min_rows=min_rows),
            dev.gather(clips, min_rows=min_rows),
        )
        assert hd.dtype == hm.dtype and torch.equal(hm, hd) and torch.equal(mm, md)


def test_an_interrupted_write_leaves_no_store(tmp_path):
    with pytest.raises(RuntimeError), StoreWriter(tmp_path, "k", {"format": 1}, "float16", 4) as w:
        w.add("a", torch.zeros(3, 4, dtype=torch.float16), 10)
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        open_store(tmp_path, "k", "memory", FORMAT_VERSION)


def test_prefetch_keeps_order_reads_ahead_and_forwards_errors():
    made: list[int] = []

    def make(i):
        made.append(i)
        if i == 7:
            raise ValueError("bad item 7")
        return i * i

    it = prefetched(make, list(range(10)), depth=3)
    assert [next(it) for _ in range(3)] == [0, 1, 4]
    with pytest.raises(ValueError, match="bad item 7"):
        list(it)
    threads = {t.name for t in threading.enumerate()}
    assert "cache-prefetch" not in threads
    early = prefetched(lambda i: i, list(range(1000)), depth=2)
    assert next(early) == 0
    early.close()  # an abandoned epoch must not leave a thread behind
    assert "cache-prefetch" not in {t.name for t in threading.enumerate()}


def test_store_place_follows_available_memory(monkeypatch):
    from bench.meter.host import AvailableMemory

    ten = AvailableMemory(10 * 2**30, "/proc/meminfo MemAvailable")
    monkeypatch.setattr(prefix_mod, "available_memory", lambda: ten)
    assert resolve_place("auto", 2**30) == "memory"
    assert resolve_place("auto", 8 * 2**30) == "disk"  # more than half of what is available
    assert resolve_place("disk", 1) == "disk"
    with pytest.raises(BenchError, match=r"only 10\.0 GiB of memory is available \(/proc/meminfo"):
        resolve_place("memory", 20 * 2**30)
    with pytest.raises(BenchError, match="cache_store must be one of"):
        resolve_place("ram", 1)
    assert resolve_place("device", 1) == "device"
    # On a GPU, auto takes the device for a store under 5% of its memory and a quarter of what
    # is free; larger ones stay on the host.
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (60 * gib, 80 * gib))
    gpu = torch.device("cuda", 0)
    assert resolve_place("auto", 2 * gib, gpu) == "device"
    assert resolve_place("auto", 5 * gib, gpu) == "memory"  # over 5% of 80 GiB
    assert resolve_place("auto", 2 * gib, torch.device("cpu")) == "memory"


def test_batch_order_is_a_function_of_seed_and_epoch():
    lengths = [5, 3, 9, 1, 7, 2, 8, 4, 6, 10] * 3
    a = bucket_batches(lengths, 4, seed=1, epoch=0)
    assert a == bucket_batches(lengths, 4, seed=1, epoch=0)
    assert a != bucket_batches(lengths, 4, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))


def test_open_rejects_an_index_for_another_key(tmp_path):
    _store(tmp_path)
    (tmp_path / "k.json").rename(tmp_path / "other.json")
    (tmp_path / "k.bin").rename(tmp_path / "other.bin")
    with pytest.raises(CacheInvalid, match="describes store k, not other"):
        open_store(tmp_path, "other", "memory", FORMAT_VERSION)


def test_bench_cache_measures_every_store_figure(tmp_path):
    from bench.cli.cache import store_throughput

    r = store_throughput(tmp_path, gib=0.002, dim=64, batch_size=4, seed=0)
    assert r["clips"] > 1 and r["store_gib"] >= 0.002
    rates = [k for k in r if k.endswith("_gbps")]
    assert len(rates) == 7 and all(0 < r[k] < float("inf") for k in rates)
