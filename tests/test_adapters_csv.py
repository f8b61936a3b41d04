"""The csv adapter on manifests built in tmp_path: columns, splits, and every kind of bad row."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import bench.data.adapters.probe_cache as probe_cache
from bench.data.adapters.label_range import parse_label_range
from bench.data.datasets import DataConfig, load_dataset
from bench.data.synthetic import SyntheticSpec
from bench.errors import BenchError

SPEC = SyntheticSpec()


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))


def tone(path, seconds=0.3, sr=16_000, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    sf.write(path, np.stack([x, x], 1) if channels == 2 else x, sr)
    return path


def write_manifest(folder, header, rows):
    path = folder / "manifest.csv"
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def load(path, **kw):
    return load_dataset(
        DataConfig("csv", str(path), kw.get("strict", False), SPEC), kw.get("seed", 0)
    )


@pytest.fixture
def corpus_dir(tmp_path):
    """Six speakers, two clips each, under audio/ (paths in the manifest are relative)."""
    (tmp_path / "audio").mkdir()
    for s in range(6):
        for c in range(2):
            tone(tmp_path / "audio" / f"s{s}_{c}.wav", 0.2 + 0.05 * c)
    return tmp_path


def good_rows(with_split=True):
    splits = ["train"] * 4 + ["val", "test"]
    return [
        [
            f"audio/s{s}_{c}.wav",
            0.1 * s,
            -0.1 * c,
            0.5,
            *([splits[s]] if with_split else []),
            f"spk{s}",
        ]
        for s in range(6)
        for c in range(2)
    ]


HEADER = ["path", "arousal", "valence", "dominance", "split", "speaker"]


def test_reads_paths_relative_to_the_manifest_and_its_splits(corpus_dir):
    corpus = load(write_manifest(corpus_dir, HEADER, good_rows()), strict=True)
    assert corpus.dimensions == ("arousal", "valence", "dominance")
    assert [len(corpus.split(s)) for s in ("train", "val", "test")] == [8, 2, 2]
    u = corpus.split("train")[0]
    assert u.path == str(corpus_dir / "audio" / "s0_0.wav")
    assert u.seconds == pytest.approx(0.2, abs=1e-3) and u.speaker == "spk0"
    assert corpus.summary()["split_rule"] == "split column of the manifest"
    assert "[-1, 1]" in corpus.scale


def test_any_subset_of_dimensions(corpus_dir):
    rows = [[r[0], r[2], r[4], r[5]] for r in good_rows()]
    corpus = load(write_manifest(corpus_dir, ["path", "valence", "split", "speaker"], rows))
    assert corpus.dimensions == ("valence",)
    assert all(len(u.labels) == 1 for u in corpus.utterances)


def test_missing_split_gives_a_seeded_speaker_independent_split(corpus_dir):
    header = ["path", "arousal", "valence", "dominance", "speaker"]
    manifest = write_manifest(corpus_dir, header, good_rows(with_split=False))
    a, b = load(manifest, seed=0), load(manifest, seed=0)
    assert [u.split for u in a.utterances] == [u.split for u in b.utterances]
    for corpus in (a, load(manifest, seed=3)):
        by_speaker = {}
        for u in corpus.utterances:
            by_speaker.setdefault(u.speaker, set()).add(u.split)
        assert all(len(s) == 1 for s in by_speaker.values())  # no speaker in two splits
        assert all(corpus.split(s) for s in ("train", "val", "test"))
    assert "speaker-independent" in a.split_rule
    splits_by_seed = {tuple(u.split for u in load(manifest, seed=s).utterances) for s in range(6)}
    assert len(splits_by_seed) > 1  # the seed picks the split


def test_bad_rows_are_skipped_counted_and_named(corpus_dir):
    d = corpus_dir
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("this is not audio")
    sf.write(d / "zero.wav", np.zeros(0, np.float32), 16_000)
    full = (d / "audio" / "s0_0.wav").read_bytes()
    (d / "cut.wav").write_bytes(full[: len(full) // 2])
    bad = {
        "missing file": ["gone.wav", 0, 0, 0, "train", "x"],
        "empty file": ["empty.wav", 0, 0, 0, "train", "x"],
        "unreadable format": ["text.wav", 0, 0, 0, "train", "x"],
        "truncated file": ["cut.wav", 0, 0, 0, "train", "x"],
        "zero-length audio": ["zero.wav", 0, 0, 0, "train", "x"],
        "NaN label": ["audio/s0_1.wav", "nan", 0, 0, "train", "x"],
        "out-of-range label": ["audio/s1_1.wav", 0, 1.5, 0, "train", "x"],
        "non-numeric label": ["audio/s2_1.wav", 0, 0, "high", "train", "x"],
        "duplicated path": ["audio/s0_0.wav", 0, 0, 0, "train", "x"],
    }
    rows = good_rows()
    rows = [r for r in rows if not r[0].endswith(("s0_1.wav", "s1_1.wav", "s2_1.wav"))]
    manifest = write_manifest(d, HEADER, rows + list(bad.values()))
    corpus = load(manifest)
    assert len(corpus.utterances) == len(rows)
    summary = corpus.summary()
    assert summary["skipped_rows"] == len(bad)
    assert summary["skipped_by_reason"] == {kind: 1 for kind in bad}
    first_bad_line = len(rows) + 2  # header is line 1
    for line, (kind, row) in enumerate(bad.items(), start=first_bad_line):
        (p,) = [p for p in corpus.problems if p.kind == kind]
        assert p.where == f"{manifest}:{line}"  # names the row
        if kind.endswith("file") or kind.endswith("audio") or kind == "unreadable format":
            assert row[0] in p.detail  # and the file
    dup = next(p for p in corpus.problems if p.kind == "duplicated path")
    assert f"{manifest}:2" in dup.detail  # points at the first listing

    with pytest.raises(BenchError) as err:
        load(manifest, strict=True)
    msg = str(err.value)
    assert f"{len(bad)} bad rows" in msg and "--strict" in msg and "missing file" in msg


def test_manifest_without_required_columns(corpus_dir):
    manifest = write_manifest(corpus_dir, ["file", "arousal"], [["audio/s0_0.wav", 0]])
    with pytest.raises(BenchError, match=r"missing required columns.*'path'"):
        load(manifest)
    manifest = write_manifest(corpus_dir, ["path", "emotion"], [["audio/s0_0.wav", "happy"]])
    with pytest.raises(BenchError, match="at least one of arousal, valence, dominance"):
        load(manifest)


def test_wrong_data_root(tmp_path):
    with pytest.raises(BenchError, match="does not exist"):
        load(tmp_path / "nope.csv")
    with pytest.raises(BenchError, match=r"folder without manifest\.csv"):
        load(tmp_path)
    with pytest.raises(BenchError, match="needs --data-root"):
        load_dataset(DataConfig("csv", None, False, SPEC), 0)


def test_labels_mostly_outside_minus_one_to_one_name_the_flag(corpus_dir):
    rows = [[r[0], 30 + s, 50, 70, r[4], r[5]] for s, r in enumerate(good_rows())]  # 0..100
    with pytest.raises(BenchError) as err:
        load(write_manifest(corpus_dir, HEADER, rows))
    msg = str(err.value)
    assert "36 of 36 labels lie outside -1 to 1 (they span 30 to 70)" in msg
    assert "pass the corpus' scale as --label-range LO,HI" in msg
    # One dimension on another scale: too few labels to refuse the corpus, but that dimension
    # has none inside -1..1, and that is said rather than skipping every row.
    rows = [[*r[:3], 2 + s % 4, *r[4:]] for s, r in enumerate(good_rows())]
    with pytest.raises(BenchError) as err:
        load(write_manifest(corpus_dir, HEADER, rows))
    msg = str(err.value)
    assert "no dominance label lies inside -1 to 1" in msg and "they span 2 to 5" in msg


def test_unknown_split_value_is_a_bad_row(corpus_dir):
    rows = [*good_rows(), ["audio/s0_0.wav", 0, 0, 0, "holdout", "x"]]
    corpus = load(write_manifest(corpus_dir, HEADER, rows))
    assert [p.kind for p in corpus.problems] == ["bad split"]


def test_audio_is_checked_once_then_remembered(corpus_dir, monkeypatch):
    manifest = write_manifest(corpus_dir, HEADER, good_rows())
    first = load(manifest)

    def no_probe(path):
        raise AssertionError(f"probed {path} again")

    with monkeypatch.context() as patch:
        patch.setattr(probe_cache, "probe_audio", no_probe)
        assert load(manifest) == first  # a later load (a run's process) reads the stored check
    # Changing a file invalidates what was remembered.
    tone(corpus_dir / "audio" / "s0_0.wav", seconds=0.5)
    again = load(manifest)
    assert again.utterances[0].seconds == pytest.approx(0.5, abs=1e-3)


def test_mixed_rates_formats_and_channels(tmp_path):
    kinds = [(8_000, "wav", 1), (22_050, "ogg", 1), (44_100, "flac", 2), (16_000, "wav", 2)]
    rows = []
    for i, (sr, ext, ch) in enumerate(kinds * 3):
        path = tmp_path / f"c{i}.{ext}"
        tone(path, 0.4, sr, ch)
        rows.append([path.name, -0.1, 0.2, 0.3, ["train", "train", "val", "test"][i % 4], "s"])
    corpus = load(write_manifest(tmp_path, HEADER, rows), strict=True)
    assert len(corpus.utterances) == 12
    assert all(u.seconds == pytest.approx(0.4, abs=0.01) for u in corpus.utterances)


def load_on(path, label_range, strict=False):
    return load_dataset(
        DataConfig(
            "csv",
            str(path),
            strict,
            SPEC,
            label_range=parse_label_range(label_range) if label_range else None,
        ),
        0,
    )


def msp_rows():
    """good_rows with arousal and valence on 1..7 and dominance on 1..5."""
    return [[r[0], 1 + 6 * r[1], 4 - 3 * r[2], 3, *r[4:]] for r in good_rows()]


def test_label_range_maps_each_dimension_onto_minus_one_to_one(corpus_dir):
    manifest = write_manifest(corpus_dir, HEADER, msp_rows())
    corpus = load_on(manifest, "arousal=1,7;valence=1,7;dominance=1,5", strict=True)
    first = corpus.split("train")[0]  # s0_0: arousal 1, valence 4, dominance 3
    assert first.labels == (-1.0, 0.0, 0.0)
    assert (
        corpus.scale
        == "arousal 1 to 7, valence 1 to 7, dominance 1 to 5 (--label-range), mapped to [-1, 1]"
    )
    assert corpus.summary()["label_range"] == {
        "arousal": [1.0, 7.0],
        "valence": [1.0, 7.0],
        "dominance": [1.0, 5.0],
    }
    # A bare range covers the dimensions not named.
    same = load_on(manifest, "1,7;dominance=1,5")
    assert [u.labels for u in same.utterances] == [u.labels for u in corpus.utterances]
    one = load_on(manifest, "1,7")
    assert one.scale == "1 to 7 (--label-range), mapped to [-1, 1]"
    assert one.split("train")[0].labels == pytest.approx((-1.0, 0.0, -1 / 3))


@pytest.mark.parametrize(
    ("low", "high", "flag", "also"),
    [
        (1.0, 7.0, "--label-range 1,7", "MSP-Podcast"),
        (1.0, 5.0, "--label-range 1,5", "--label-range 1,7 if your corpus rates on 1 to 7"),
        (0.0, 1.0, "--label-range 0,1", "--label-range=-1,1 if they are on -1 to 1"),
    ],
)
def test_a_known_corpus_scale_without_the_flag_is_refused(corpus_dir, low, high, flag, also):
    span = np.linspace(low, high, 12)
    rows = [[r[0], span[i], span[-1 - i], span[i], *r[4:]] for i, r in enumerate(good_rows())]
    with pytest.raises(BenchError) as err:
        load(write_manifest(corpus_dir, HEADER, rows))
    msg = str(err.value)
    assert f"every label lies between {low:g} and {high:g}" in msg
    assert f"pass {flag} to map them onto [-1, 1]" in msg and also in msg
    assert "'arousal=" in msg and "dominance=" in msg  # the per-dimension spelling too


def test_labels_inside_and_outside_the_range_report_the_rows(corpus_dir):
    rows = msp_rows()
    rows[3][1] = 9.5  # one arousal beyond 7
    corpus = load_on(write_manifest(corpus_dir, HEADER, rows), "1,7")
    (problem,) = corpus.problems
    assert problem.kind == "out-of-range label"
    assert problem.where.endswith("manifest.csv:5") and "arousal=9.5" in problem.detail
    assert "1..7" in problem.detail
    # Without the flag: 9.5 is on no known scale, but most labels lie outside -1..1.
    with pytest.raises(BenchError, match=r"34 of 36 labels lie outside -1 to 1.*--label-range LO"):
        load(write_manifest(corpus_dir, HEADER, rows))


def test_label_range_must_cover_every_dimension_and_hold_labels(corpus_dir):
    manifest = write_manifest(corpus_dir, HEADER, msp_rows())
    with pytest.raises(BenchError, match=r"gives no range for dominance.*dominance=LO,HI"):
        load_on(manifest, "arousal=1,7;valence=1,7")
    with pytest.raises(
        BenchError, match=r"no arousal label lies inside 10 to 20.*check --label-range"
    ):
        load_on(manifest, "10,20")


def test_a_header_only_manifest_says_it_lists_no_rows(tmp_path):
    manifest = write_manifest(tmp_path, HEADER, [])
    with pytest.raises(BenchError) as err:
        load(manifest)
    msg = str(err.value)
    assert "no usable rows; it lists none; add rows below its header" in msg
    assert "0 bad rows" not in msg and "e.g." not in msg


def test_too_few_speakers_for_the_split_says_so(corpus_dir):
    rows = [[*r[:4], r[5]] for r in good_rows() if r[5] in ("spk0", "spk1")]  # no split column
    manifest = write_manifest(corpus_dir, [*HEADER[:4], "speaker"], rows)
    with pytest.raises(BenchError) as err:
        load(manifest)
    msg = str(err.value)
    assert "2 speakers cannot fill 3 splits" in msg and "add rows of more speakers" in msg
    assert "split column" in msg


def test_an_infinite_label_is_not_called_nan(corpus_dir):
    rows = good_rows()
    rows[0][1], rows[1][1] = "inf", "nan"
    corpus = load(write_manifest(corpus_dir, HEADER, rows))
    assert corpus.summary()["skipped_by_reason"] == {"infinite label": 1, "NaN label": 1}
