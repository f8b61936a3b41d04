"""The adapter registry, and the whole command on a manifest of mixed rates, formats and channels."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.cli.args import configs_from_args
from bench.cli.run import build_parser, main
from bench.data.adapters.hf_options import HFOptions
from bench.data.adapters.label_range import parse_label_range
from bench.data.datasets import ADAPTERS, DataConfig, load_dataset
from bench.data.synthetic import SyntheticSpec
from bench.errors import BenchError
from bench.result.store import read_result
from bench.train.worker import run_one

SPEC = SyntheticSpec()


def test_every_corpus_layout_is_registered():
    assert list(ADAPTERS) == ["synthetic", "csv", "msp-podcast", "iemocap", "hf"]


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(
        BenchError, match="valid datasets: synthetic, csv, msp-podcast, iemocap, hf"
    ):
        load_dataset(DataConfig("librispeech", None, False, SPEC), 0)


@pytest.mark.parametrize("name", ["synthetic", "csv", "iemocap", "hf"])
def test_test_set_is_refused_outside_msp_podcast(name):
    with pytest.raises(BenchError, match="--test-set applies to --dataset msp-podcast only"):
        load_dataset(DataConfig(name, None, False, SPEC, test_set="Test2"), 0)


@pytest.mark.parametrize("name", ["synthetic", "msp-podcast", "iemocap"])
def test_label_range_and_hf_columns_are_refused_where_the_scale_is_known(name):
    with pytest.raises(BenchError, match="--label-range applies to --dataset csv and hf only"):
        load_dataset(DataConfig(name, None, False, SPEC, label_range=parse_label_range("1,7")), 0)
    with pytest.raises(BenchError, match=r"--audio-column, .* apply to --dataset hf only"):
        load_dataset(DataConfig(name, None, False, SPEC, hf=HFOptions()), 0)


def test_synthetic_corpus_loads_through_the_csv_reader(tiny_config):
    corpus = load_dataset(tiny_config.with_data(strict=True).data, 0)
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
    result = read_result(out / "results" / "partial1__seed0.json")
    assert result.status == "ok", result.error
    data = result.data
    assert data.name == "csv" and sum(data.n_utterances.values()) == 12
    assert data.skipped_rows == 1 and data.skipped_by_reason == {"missing file": 1}
    assert "gone.wav" in data.skipped_reasons[0]
    assert 0.0 <= data.padding_fraction < 1.0
    assert result.config["train"]["max_seconds"] == 0.5
    assert "skipped" in (out / "report.md").read_text()

    # --strict turns the same bad row into an error before anything trains.
    assert main([*args, "--strict", "--out", str(tmp_path / "strict")]) == 2
    assert "--strict" in capsys.readouterr().err
    assert not (tmp_path / "strict" / "results").exists()


def test_label_range_gives_the_same_ccc_as_a_prescaled_manifest(tmp_path, monkeypatch):
    """The same clips on 1..7 with --label-range 1,7, and pre-scaled to [-1, 1]: same CCC.

    Labels are multiples of 0.75 on 1..7 (quarters on [-1, 1]), so both manifests map to
    bit-identical targets and the runs must agree exactly, not merely closely. The runs go from
    the command line's plan to a trained result in this process (the sweep's fresh process per
    run is tested above and would only add its start-up time).
    """
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    (tmp_path / "clips").mkdir()
    header = "path,arousal,valence,dominance,speaker"
    native, scaled = [header], [header]
    for i in range(12):
        sf.write(tmp_path / "clips" / f"c{i}.wav", rng.normal(0, 0.1, 9_600), 16_000)
        steps = rng.integers(0, 9, 3)  # 0..8 quarters
        native.append(f"clips/c{i}.wav,{','.join(f'{1 + 0.75 * k:g}' for k in steps)},s{i % 6}")
        scaled.append(f"clips/c{i}.wav,{','.join(f'{k / 4 - 1:g}' for k in steps)},s{i % 6}")
    (tmp_path / "native.csv").write_text("\n".join(native) + "\n")
    (tmp_path / "scaled.csv").write_text("\n".join(scaled) + "\n")
    common = ["--dataset", "csv", "--profile", "smoke", "--strategies", "partial1",
              "--epochs", "1", "--max-seconds", "0.5", "--device", "cpu"]  # fmt: skip
    runs = {
        "native": ["--data-root", str(tmp_path / "native.csv"), "--label-range", "1,7"],
        "scaled": ["--data-root", str(tmp_path / "scaled.csv")],
    }
    results = {}
    for name, args in runs.items():
        (cfg,), _, _ = configs_from_args(build_parser().parse_args([*common, *args]))
        results[name] = run_one(cfg)
    assert results["native"].metrics.ccc == results["scaled"].metrics.ccc
    native_data = results["native"].data
    assert native_data.label_range == {d: [1.0, 7.0] for d in ("arousal", "valence", "dominance")}
    assert native_data.scale == "1 to 7 (--label-range), mapped to [-1, 1]"
    assert results["scaled"].data.label_range["arousal"] == [-1.0, 1.0]
