"""The adapter registry, and the whole command on a manifest of mixed rates, formats and channels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from bench.datasets import ADAPTERS, load_dataset
from bench.errors import BenchError
from bench.run import main
from bench.synthetic import SyntheticSpec

SPEC = SyntheticSpec()


def test_every_corpus_layout_is_registered():
    assert list(ADAPTERS) == ["synthetic", "csv", "msp-podcast", "iemocap"]


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(BenchError, match="valid datasets: synthetic, csv, msp-podcast, iemocap"):
        load_dataset("librispeech", None, seed=0, strict=False, synthetic=SPEC)


@pytest.mark.parametrize("name", ["synthetic", "csv", "iemocap"])
def test_test_set_is_refused_outside_msp_podcast(name):
    with pytest.raises(BenchError, match="--test-set applies to --dataset msp-podcast only"):
        load_dataset(name, None, seed=0, strict=False, synthetic=SPEC, test_set="Test2")


def test_synthetic_corpus_loads_through_the_csv_reader(tiny_config):
    cfg = tiny_config
    corpus = load_dataset("synthetic", cfg.data_root, seed=0, strict=True, synthetic=cfg.synthetic)
    assert corpus.name == "synthetic" and not corpus.problems
    assert all(corpus.split(s) for s in ("train", "val", "test"))
    assert "synthetic" in corpus.scale


@pytest.fixture
def mixed_manifest(tmp_path):
    """12 clips over 6 speakers: 8 / 22.05 / 44.1 / 48 kHz, wav / ogg / flac, mono and stereo;
    no split column (a seeded speaker split) and one row whose file is missing."""
    kinds = [
        (8_000, "wav", "WAV", "PCM_16", 1),
        (22_050, "ogg", "OGG", "VORBIS", 1),
        (44_100, "flac", "FLAC", "PCM_24", 2),
        (48_000, "wav", "WAV", "PCM_16", 2),
    ]
    rng = np.random.default_rng(0)
    (tmp_path / "clips").mkdir()
    lines = ["path,arousal,valence,dominance,speaker"]
    for i in range(12):
        sr, ext, fmt, subtype, ch = kinds[i % 4]
        seconds = 0.6 + 0.1 * (i % 3)
        x = rng.normal(0, 0.1, (int(sr * seconds), ch)).astype(np.float32)
        sf.write(tmp_path / "clips" / f"c{i}.{ext}", x, sr, format=fmt, subtype=subtype)
        lines.append(
            f"clips/c{i}.{ext},{rng.uniform(-1, 1):.3f},{rng.uniform(-1, 1):.3f},0.0,s{i % 6}"
        )
    lines.append("clips/gone.wav,0.1,0.2,0.3,s0")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_end_to_end_on_a_mixed_manifest(tmp_path, mixed_manifest, monkeypatch, capsys):
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = [
        "--dataset", "csv", "--data-root", str(mixed_manifest), "--profile", "smoke",
        "--strategies", "partial1", "--epochs", "1", "--max-seconds", "0.5",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 1 bad rows (1 missing file)" in err and "gone.wav" in err
    result = json.loads((out / "results" / "partial1__seed0.json").read_text())
    assert result["status"] == "ok", result.get("error")
    data = result["data"]
    assert data["name"] == "csv" and sum(data["n_utterances"].values()) == 12
    assert data["skipped_rows"] == 1 and data["skipped_by_reason"] == {"missing file": 1}
    assert "gone.wav" in data["skipped_reasons"][0]
    assert 0.0 <= data["padding_fraction"] < 1.0
    assert result["config"]["train"]["max_seconds"] == 0.5
    assert "skipped" in (out / "report.md").read_text()

    # --strict turns the same bad row into an error before anything trains.
    assert main([*args, "--strict", "--out", str(tmp_path / "strict")]) == 2
    assert "--strict" in capsys.readouterr().err
    assert not (tmp_path / "strict" / "results").exists()
