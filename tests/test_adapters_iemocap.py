"""The iemocap adapter on a tiny corpus in the IEMOCAP release layout, built in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.data.datasets import DataConfig, load_dataset
from bench.data.synthetic import SyntheticSpec
from bench.errors import BenchError


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))


def evaluation_text(turns):
    """An EmoEvaluation file: header, then per turn its line and a few rater lines."""
    out = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for i, (turn, (v, a, d)) in enumerate(turns):
        out += [
            f"[{i * 3.0 + 0.5:.4f} - {i * 3.0 + 2.5:.4f}]\t{turn}\tneu\t[{v:.4f}, {a:.4f}, {d:.4f}]",
            "C-E2:\tNeutral;\t()",
            "A-E3:\tval 3; act 2; dom  2;\t()",
            "",
        ]
    return "\n".join(out)


def build(root, sessions=(1, 2, 3, 4, 5)):
    """Per session one dialog with two turns of each speaker; valence 1, arousal 5, dominance 3."""
    for n in sessions:
        dialog = f"Ses0{n}F_impro01"
        turns = [(f"{dialog}_{g}00{k}", (1.0, 5.0, 3.0)) for g in "FM" for k in range(2)]
        ev = root / f"Session{n}" / "dialog" / "EmoEvaluation"
        ev.mkdir(parents=True)
        (ev / f"{dialog}.txt").write_text(evaluation_text(turns))
        (ev / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
        (ev / "Categorical").mkdir()  # the release has rater subfolders; they are not read
        wav = root / f"Session{n}" / "sentences" / "wav" / dialog
        wav.mkdir(parents=True)
        for turn, _ in turns:
            sf.write(wav / f"{turn}.wav", np.full(3_200, 0.1, np.float32), 16_000)
    return root


def load(root, fold=None, strict=False):
    return load_dataset(DataConfig("iemocap", str(root), strict, SyntheticSpec(), fold=fold), 0)


def sessions(utts):
    return sorted({int(u.path.split("Session")[1][0]) for u in utts})


def test_default_fold_trains_on_1_to_3_validates_on_4_tests_on_5(tmp_path):
    corpus = load(build(tmp_path), strict=True)
    assert sessions(corpus.split("train")) == [1, 2, 3]
    assert sessions(corpus.split("val")) == [4]
    assert sessions(corpus.split("test")) == [5]
    assert len(corpus.utterances) == 20
    assert "fold 5" in corpus.split_rule and corpus.scale.startswith("1 to 5")


def test_labels_are_read_as_v_a_d_and_mapped_from_1_5(tmp_path):
    u = load(build(tmp_path)).utterances[0]
    # The file says [V=1, A=5, D=3]; ours is (arousal, valence, dominance) on [-1, 1].
    assert u.labels == pytest.approx((1.0, -1.0, 0.0))


def test_speakers_are_session_and_gender(tmp_path):
    corpus = load(build(tmp_path))
    assert {u.speaker for u in corpus.split("test")} == {"Ses05F", "Ses05M"}


@pytest.mark.parametrize(("fold", "val"), [(1, 5), (3, 2)])
def test_other_folds(tmp_path, fold, val):
    corpus = load(build(tmp_path), fold=fold)
    assert sessions(corpus.split("test")) == [fold]
    assert sessions(corpus.split("val")) == [val]
    assert sessions(corpus.split("train")) == sorted({1, 2, 3, 4, 5} - {fold, val})


def test_bad_fold_and_wrong_root(tmp_path):
    with pytest.raises(BenchError, match="folds are 1-5"):
        load(tmp_path, fold=7)
    build(tmp_path / "IEMOCAP_full_release")
    with pytest.raises(BenchError, match=r"does not look like IEMOCAP.*did you mean"):
        load(tmp_path)


def test_missing_session_is_an_empty_split_named(tmp_path):
    with pytest.raises(BenchError, match=r"test split is empty.*session 5 test"):
        load(build(tmp_path, sessions=(1, 2, 3, 4)))


def test_missing_wav_and_broken_line_are_skipped_and_named(tmp_path):
    root = build(tmp_path)
    (root / "Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_M001.wav").unlink()
    txt = root / "Session3/dialog/EmoEvaluation/Ses03F_impro01.txt"
    lines = txt.read_text().splitlines()
    lines[2] = lines[2].replace("[1.0000, 5.0000, 3.0000]", "[1.0000, 5.0000]")
    txt.write_text("\n".join(lines))
    corpus = load(root)
    kinds = corpus.summary()["skipped_by_reason"]
    assert kinds == {"missing file": 1, "unparseable label line": 1}
    assert any(p.where == f"{txt}:3" for p in corpus.problems)
    assert len(corpus.utterances) == 18
