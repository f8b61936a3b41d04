"""The hf adapter on datasets built with `Dataset.from_dict` and saved to tmp_path; no network.

Audio is stored as the bytes of wav/flac files of mixed rates and channels, read undecoded, so
no audio decoder of `datasets` (torchcodec) is needed, here or by users.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, Dataset, DatasetDict, disable_progress_bars

import bench.data.adapters.hf_audio as hf_audio
import bench.data.adapters.probe_cache as probe_cache
from bench.cli.args import configs_from_args
from bench.cli.run import build_parser, main
from bench.config import RunConfig
from bench.data.adapters.hf_options import HFOptions
from bench.data.adapters.label_range import parse_label_range
from bench.data.audio import TARGET_SR, load_audio
from bench.data.datasets import DataConfig, load_dataset
from bench.data.synthetic import SyntheticSpec
from bench.errors import BenchError
from bench.result.store import read_result

disable_progress_bars()  # save_to_disk draws one per split

SPEC = SyntheticSpec()
MSP = HFOptions.parse(label_columns="arousal=EmoAct,valence=EmoVal", speaker_column="spk")
KINDS = [  # rate, channels, format, subtype
    (8_000, 1, "WAV", "PCM_16"),
    (22_050, 2, "FLAC", "PCM_16"),
    (44_100, 2, "FLAC", "PCM_24"),
    (48_000, 1, "WAV", "PCM_16"),
]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))


def encoded(seconds, sr=16_000, channels=1, fmt="WAV", subtype="PCM_16", seed=0):
    x = np.random.default_rng(seed).normal(0, 0.1, (int(sr * seconds), channels))
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def clips(n, first=0):
    """n good rows: mixed rates, formats and channels; labels on 1..7; two clips per speaker."""
    rows = {"audio": [], "EmoAct": [], "EmoVal": [], "spk": []}
    for i in range(first, first + n):
        sr, ch, fmt, subtype = KINDS[i % 4]
        name = f"clip{i}.{fmt.lower()}"
        rows["audio"].append(
            {"bytes": encoded(0.5 + 0.1 * (i % 3), sr, ch, fmt, subtype, i), "path": name}
        )
        rows["EmoAct"].append(1.0 + (i % 7))
        rows["EmoVal"].append(7.0 - (i % 5))
        rows["spk"].append(f"s{i // 2}")
    return rows


def save(parts, folder):
    """Save {split: rows} (or rows, for a dataset without splits) as save_to_disk does."""

    def build(rows):
        # Audio() encodes through torchcodec; a struct of bytes and path cast to Audio does not.
        return Dataset.from_dict(rows).cast_column("audio", Audio())

    if "audio" in parts:
        build(parts).save_to_disk(str(folder))
    else:
        DatasetDict({k: build(v) for k, v in parts.items()}).save_to_disk(str(folder))
    return folder


BAD = {  # kind -> (audio cell, EmoAct, EmoVal)
    "missing audio": (None, 4.0, 4.0),
    "unreadable format": ({"bytes": b"this is not audio", "path": "junk.wav"}, 4.0, 4.0),
    "empty file": ({"bytes": b"", "path": "empty.wav"}, 4.0, 4.0),
    "truncated file": ({"bytes": encoded(0.5)[:3000], "path": "cut.wav"}, 4.0, 4.0),
    "too short": ({"bytes": encoded(0.01), "path": "blip.wav"}, 4.0, 4.0),
    "NaN label": ({"bytes": encoded(0.5), "path": "nan.wav"}, float("nan"), 4.0),
    "missing label": ({"bytes": encoded(0.5), "path": "none.wav"}, 4.0, None),
    "out-of-range label": ({"bytes": encoded(0.5), "path": "nine.wav"}, 9.0, 4.0),
}


def with_bad_rows(rows):
    rows = {k: list(v) for k, v in rows.items()}
    for cell, act, val in BAD.values():
        rows["audio"].append(cell)
        rows["EmoAct"].append(act)
        rows["EmoVal"].append(val)
        rows["spk"].append("s0")
    return rows


@pytest.fixture
def saved(tmp_path):
    """train (12 good rows, then one bad row of each kind), validation and test (4 each)."""
    parts = {
        "train": with_bad_rows(clips(12)),
        "validation": clips(4, first=12),
        "test": clips(4, first=16),
    }
    return save(parts, tmp_path / "msp_hf")


def load(root, opts=MSP, label_range="1,7", strict=False, seed=0):
    return load_dataset(
        DataConfig(
            "hf",
            str(root),
            strict,
            SPEC,
            label_range=parse_label_range(label_range) if label_range else None,
            hf=opts,
        ),
        seed,
    )


def test_reads_a_saved_dataset_dict_with_its_splits_and_scale(saved):
    corpus = load(saved)
    assert corpus.name == "hf" and corpus.source == str(saved)
    assert corpus.dimensions == ("arousal", "valence")
    assert [len(corpus.split(s)) for s in ("train", "val", "test")] == [12, 4, 4]
    assert corpus.split_rule == (
        "the dataset's splits: train -> train, validation -> val, test -> test"
    )
    first = corpus.split("train")[0]  # clip0: EmoAct 1, EmoVal 7, 0.5 s at 8 kHz
    assert first.labels == (-1.0, 1.0) and first.speaker == "s0"
    assert first.seconds == pytest.approx(0.5, abs=1e-3)
    assert corpus.summary()["label_range"] == {"arousal": [1.0, 7.0], "valence": [1.0, 7.0]}
    assert corpus.scale == "1 to 7 (--label-range), mapped to [-1, 1]"


def test_audio_goes_through_the_projects_decoder(saved):
    corpus = load(saved)
    stereo_flac = corpus.split("train")[2]  # clip2: 44.1 kHz, 2 channels, FLAC, 0.7 s
    wave = load_audio(stereo_flac.path)
    assert wave.ndim == 1 and len(wave) == pytest.approx(0.7 * TARGET_SR, abs=2)
    rates = {sf.info(u.path).samplerate for u in corpus.utterances}
    assert rates == {8_000, 22_050, 44_100, 48_000}


def test_bad_rows_are_skipped_counted_and_named(saved):
    corpus = load(saved)
    summary = corpus.summary()
    assert summary["skipped_rows"] == len(BAD)
    assert summary["skipped_by_reason"] == {kind: 1 for kind in BAD}
    for row, (kind, (cell, _, _)) in enumerate(BAD.items(), start=12):
        (p,) = [p for p in corpus.problems if p.kind == kind]
        name = f" ({cell['path']})" if cell else ""
        assert p.where == f"{saved}[train] row {row}{name}"  # names the split and the row
    with pytest.raises(BenchError) as err:
        load(saved, strict=True)
    msg = str(err.value)
    assert f"{len(BAD)} bad rows" in msg and "--strict" in msg and "missing audio" in msg


def test_audio_is_written_and_checked_once_then_remembered(saved, monkeypatch):
    first = load(saved)

    def no_read(*args):
        raise AssertionError("read the audio column again")

    def no_probe(path):
        raise AssertionError(f"probed {path} again")

    with monkeypatch.context() as patch:
        patch.setattr(hf_audio, "_cell", no_read)
        patch.setattr(probe_cache, "probe_audio", no_probe)
        assert load(saved) == first  # a run's process: the stored index and audio check
    # A file removed from the cache is written again, not reported as missing.
    gone = first.split("test")[0].path
    (saved.parent / "cache").joinpath(gone).unlink()
    assert load(saved) == first


def test_a_dataset_without_splits_is_split_by_speaker(tmp_path):
    rows = clips(24)
    rows["speaker"] = rows.pop("spk")  # found without --speaker-column
    root = save(rows, tmp_path / "flat")
    opts = HFOptions.parse(label_columns="arousal=EmoAct,valence=EmoVal")
    a, b = load(root, opts, seed=0), load(root, opts, seed=0)
    assert [u.split for u in a.utterances] == [u.split for u in b.utterances]
    assert "speaker-independent split of the speakers" in a.split_rule
    by_speaker = {}
    for u in a.utterances:
        by_speaker.setdefault(u.speaker, set()).add(u.split)
    assert all(len(s) == 1 for s in by_speaker.values())
    assert all(a.split(s) for s in ("train", "val", "test"))
    with pytest.raises(BenchError, match="has no splits; leave the flag out"):
        load(root, HFOptions.parse(label_columns="arousal=EmoAct", splits="train=a,val=b,test=c"))


def test_split_names_the_dataset_chose(tmp_path):
    parts = {"tr": clips(8), "dev": clips(4, 8), "eval": clips(4, 12), "extra": clips(2, 16)}
    root = save(parts, tmp_path / "odd")
    with pytest.raises(
        BenchError, match=r"has splits tr, dev, eval, extra; say which.*--hf-splits"
    ):
        load(root)
    opts = HFOptions.parse(
        label_columns="arousal=EmoAct,valence=EmoVal",
        speaker_column="spk",
        splits="train=tr,val=dev,test=eval",
    )
    corpus = load(root, opts)
    assert [len(corpus.split(s)) for s in ("train", "val", "test")] == [8, 4, 4]
    assert "tr -> train, dev -> val, eval -> test" in corpus.split_rule
    assert "not used: splits extra (2 rows)" in corpus.split_rule
    wrong = HFOptions.parse(label_columns="arousal=EmoAct", splits="train=tr,val=dev,test=final")
    with pytest.raises(BenchError, match=r"--hf-splits: .* has no split 'final'; its splits are"):
        load(root, wrong)


def test_columns_by_name_or_flag_and_missing_ones_named(tmp_path):
    rows = clips(12)
    rows["Arousal"] = [(a - 4) / 3 for a in rows.pop("EmoAct")]  # 1..7 -> -1..1
    root = save(rows, tmp_path / "named")
    corpus = load(root, HFOptions(), label_range=None)  # arousal found by name, no speaker
    assert corpus.dimensions == ("arousal",)
    assert "by file (not speaker-independent)" in corpus.split_rule
    with pytest.raises(
        BenchError, match=r"--label-columns: .* has no column 'EmoDom'; its columns"
    ):
        load(root, HFOptions.parse(label_columns="dominance=EmoDom"), label_range=None)
    with pytest.raises(BenchError, match=r"--speaker-column: .* has no column 'who'"):
        load(root, HFOptions.parse(speaker_column="who"), label_range=None)
    with pytest.raises(BenchError, match=r"no audio column 'wav'.*--audio-column"):
        load(root, HFOptions.parse(audio_column="wav"), label_range=None)
    with pytest.raises(BenchError, match=r"column 'EmoVal' holds .* not audio files"):
        load(root, HFOptions.parse(audio_column="EmoVal"), label_range=None)
    rows.pop("Arousal")
    with pytest.raises(BenchError, match=r"no label columns named .*--label-columns arousal="):
        load(save(rows, tmp_path / "unlabelled"), HFOptions(), label_range=None)


def test_a_known_scale_without_the_flag_is_refused(saved):
    with pytest.raises(BenchError) as err:
        load(saved, label_range=None)
    msg = str(err.value)
    # One stray 9.0 keeps it off the 1..7 scale; most labels outside -1..1 still refuse it.
    assert msg.startswith(f"{saved}: 49 of 52 labels lie outside -1 to 1 (they span 1 to 9)")
    assert "pass the corpus' scale as --label-range LO,HI (1,7 for MSP-Podcast's" in msg


def test_audio_given_as_file_paths(tmp_path):
    paths = []
    for i in range(12):
        path = tmp_path / f"p{i}.wav"
        path.write_bytes(encoded(0.4, seed=i))
        paths.append(str(path))
    paths[5] = str(tmp_path / "gone.wav")
    rows = {
        "file": paths,
        "arousal": [0.1 * (i - 6) for i in range(12)],
        "speaker": list("aabbccddeeff"),
    }
    root = tmp_path / "paths"
    Dataset.from_dict(rows).save_to_disk(str(root))
    corpus = load(root, HFOptions.parse(audio_column="file"), label_range=None)
    assert len(corpus.utterances) == 11 and corpus.utterances[0].path == paths[0]  # used in place
    (p,) = corpus.problems
    assert p.kind == "missing audio" and "gone.wav does not exist" in p.detail


def test_wrong_data_root_or_missing_package(tmp_path, monkeypatch):
    with pytest.raises(BenchError, match="needs --data-root"):
        load_dataset(DataConfig("hf", None, False, SPEC), 0)
    (tmp_path / "plain").mkdir()
    with pytest.raises(BenchError, match="is not a dataset written by save_to_disk"):
        load(tmp_path / "plain")
    # Not a folder: a hub name, which cannot load offline (HF_HUB_OFFLINE=1 in conftest).
    with pytest.raises(
        BenchError, match=r"no such folder, and loading it from the Hugging Face hub"
    ):
        load("nobody-here/no-such-dataset")
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(BenchError, match=r"needs the `datasets` package: pip install"):
        load(tmp_path / "plain")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"label_columns": "arousal"}, "is not NAME=COLUMN"),
        ({"label_columns": "mood=EmoAct"}, "NAME one of arousal, valence, dominance"),
        ({"label_columns": "arousal=A,arousal=B"}, "arousal is given twice"),
        ({"splits": "train=a,val=b"}, "names train, val only"),
        ({"splits": "train=a,val=a,test=b"}, "one purpose only"),
        ({"audio_column": " "}, "--audio-column needs a column name"),
    ],
)
def test_malformed_flags_name_the_flag(flags, message):
    with pytest.raises(BenchError, match=message):
        HFOptions.parse(**flags)


def test_the_flags_reach_every_run_and_survive_the_result_json(tmp_path):
    args = build_parser().parse_args(
        ["--dataset", "hf", "--data-root", "d", "--profile", "smoke", "--strategies", "full",
         "--label-columns", "valence=EmoVal,arousal=EmoAct", "--speaker-column", "spk",
         "--hf-splits", "train=train,val=validation,test=test", "--out", str(tmp_path)]
    )  # fmt: skip
    (cfg,), _, _ = configs_from_args(args)
    assert cfg.data.hf == HFOptions(
        "audio",
        (("arousal", "EmoAct"), ("valence", "EmoVal")),
        "spk",
        (("train", "train"), ("val", "validation"), ("test", "test")),
    )
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_smoke_profile_end_to_end_on_a_saved_dataset(tmp_path, saved, capsys):
    out = tmp_path / "run"
    args = [
        "--dataset", "hf", "--data-root", str(saved), "--label-columns",
        "arousal=EmoAct,valence=EmoVal", "--speaker-column", "spk", "--label-range", "1,7",
        "--profile", "smoke", "--strategies", "partial1", "--epochs", "1",
        "--max-seconds", "0.5", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    assert f"skipped {len(BAD)} bad rows" in capsys.readouterr().err
    result = read_result(out / "results" / "partial1__seed0.json")
    assert result.status == "ok", result.error
    data = result.data
    assert data.name == "hf" and data.n_utterances == {"train": 12, "val": 4, "test": 4}
    assert data.skipped_by_reason == {kind: 1 for kind in BAD}
    assert set(result.metrics.ccc) == {"arousal", "valence"}
    report = (out / "report.md").read_text()
    assert "1 to 7 (--label-range)" in report and "skipped" in report

    # --strict refuses the same bad rows before anything trains.
    assert main([*args, "--strict", "--out", str(tmp_path / "strict")]) == 2
    assert "--strict" in capsys.readouterr().err
    assert not (tmp_path / "strict" / "results").exists()
