"""The msp-podcast adapter on a tiny corpus in the MSP-Podcast layout, built in tmp_path."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from bench.data.datasets import DataConfig, load_dataset
from bench.data.synthetic import SyntheticSpec
from bench.errors import BenchError

COLUMNS = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
SPLIT_SETS = ["Train"] * 4 + ["Development"] * 2 + ["Test1"] * 2 + ["Test2"] * 2


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))


def build(root, rows=None, columns=COLUMNS):
    """Labels/labels_consensus.csv and Audios/*.wav (16 kHz mono, as MSP-Podcast ships)."""
    (root / "Labels").mkdir(parents=True)
    (root / "Audios").mkdir()
    if rows is None:
        rows = []
        for i, split_set in enumerate(SPLIT_SETS):
            name = f"MSP-PODCAST_{i:04d}_0001.wav"
            rows.append(
                [name, "N", 1 + 0.6 * i, 7 - 0.6 * i, 4.0, str(100 + i % 3), "Female", split_set]
            )
    for row in rows:
        sf.write(root / "Audios" / row[0], np.full(4_000, 0.1, np.float32), 16_000)
    with open(root / "Labels" / "labels_consensus.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)
    return root


def load(root, **kw):
    return load_dataset(
        DataConfig(
            "msp-podcast",
            str(root),
            kw.get("strict", False),
            SyntheticSpec(),
            test_set=kw.get("test_set"),
        ),
        0,
    )


def names(utts):
    return sorted(int(u.path.split("_")[-2]) for u in utts)


def test_reads_the_layout_with_test1_as_default(tmp_path):
    corpus = load(build(tmp_path / "MSP"), strict=True)
    assert names(corpus.split("train")) == [0, 1, 2, 3]
    assert names(corpus.split("val")) == [4, 5]
    assert names(corpus.split("test")) == [6, 7]
    summary = corpus.summary()
    assert "Test1 -> test" in summary["split_rule"] and "Test2 (2 rows)" in summary["split_rule"]
    assert corpus.scale.startswith("1 to 7")


def test_labels_map_from_1_7_onto_minus_1_1(tmp_path):
    corpus = load(build(tmp_path / "MSP"))
    first = next(u for u in corpus.utterances if u.path.endswith("_0000_0001.wav"))
    # EmoAct 1, EmoVal 7, EmoDom 4 -> arousal -1, valence +1, dominance 0
    assert first.labels == pytest.approx((-1.0, 1.0, 0.0))
    assert corpus.dimensions == ("arousal", "valence", "dominance")


def test_test_set_is_selectable(tmp_path):
    root = build(tmp_path / "MSP")
    corpus = load(root, test_set="test2")
    assert names(corpus.split("test")) == [8, 9]
    assert "Test1 (2 rows)" in corpus.split_rule
    with pytest.raises(BenchError, match=r"Test3.*Test1, Test2"):
        load(root, test_set="Test3")


def test_the_labels_file_itself_is_accepted_as_data_root(tmp_path):
    root = build(tmp_path / "MSP")
    assert load(root / "Labels" / "labels_consensus.csv").source == str(root)


def test_wrong_data_root_and_missing_columns(tmp_path):
    with pytest.raises(BenchError, match="does not look like MSP-Podcast"):
        load(tmp_path)
    bad = build(tmp_path / "MSP", rows=[], columns=["FileName", "EmoAct", "Split_Set"])
    with pytest.raises(BenchError, match=r"missing required columns \['EmoVal', 'EmoDom'\]"):
        load(bad)


def test_bad_rows_name_the_labels_file_line(tmp_path):
    root = build(tmp_path / "MSP")
    labels = root / "Labels" / "labels_consensus.csv"
    lines = labels.read_text().splitlines()
    lines[1] = lines[1].replace(
        "MSP-PODCAST_0000_0001.wav,N,1.0", "MSP-PODCAST_0000_0001.wav,N,9.5"
    )
    lines.append("MSP-PODCAST_9999_0001.wav,N,4,4,4,1,Male,Train")
    labels.write_text("\n".join(lines) + "\n")
    corpus = load(root)
    assert corpus.summary()["skipped_by_reason"] == {"out-of-range label": 1, "missing file": 1}
    wheres = sorted(p.where for p in corpus.problems)
    assert wheres == [f"{labels}:{len(lines)}", f"{labels}:2"]
    with pytest.raises(BenchError, match="2 bad rows"):
        load(root, strict=True)


def test_fold_is_refused_for_msp_podcast(tmp_path):
    with pytest.raises(BenchError, match="--fold applies to --dataset iemocap only"):
        load_dataset(DataConfig("msp-podcast", str(tmp_path), False, SyntheticSpec(), fold=2), 0)
