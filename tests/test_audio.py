"""Decoding any rate/format/channel count to mono 16 kHz, cropping, and naming every bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bench.data.audio import (
    TARGET_SR,
    AudioProblem,
    crop,
    load_audio,
    normalize,
    probe_audio,
)
from bench.errors import BenchError

FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def write_tone(path, sr, seconds, channels=1, hz=440.0, subtype=None):
    t = np.arange(int(sr * seconds)) / sr
    tone = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    data = np.stack([tone, np.zeros_like(tone)], 1) if channels == 2 else tone
    fmt, default_subtype = FORMATS[path.suffix[1:]]
    sf.write(path, data, sr, format=fmt, subtype=subtype or default_subtype)
    return path


def peak_hz(wave):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / TARGET_SR)[np.argmax(spectrum)]


@pytest.mark.parametrize(
    ("name", "sr", "channels"),
    [
        ("a.wav", 8_000, 1),
        ("b.ogg", 22_050, 1),
        ("c.flac", 44_100, 2),
        ("d.wav", 48_000, 2),
        ("e.wav", 16_000, 1),
    ],
)
def test_any_rate_format_and_channels_decode_to_mono_16k(tmp_path, name, sr, channels):
    path = write_tone(tmp_path / name, sr, 0.5, channels)
    wave = load_audio(path)
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - TARGET_SR // 2) <= 2  # 0.5 s at 16 kHz, whatever the source rate
    assert abs(peak_hz(wave) - 440.0) < 5  # the resampler kept the pitch
    # Stereo is the channel mean: the right channel is silent, so the tone comes out at half.
    expected_amp = 0.5 / channels
    assert np.percentile(np.abs(wave[200:-200]), 99.5) == pytest.approx(expected_amp, rel=0.1)
    assert probe_audio(path).samplerate == sr and probe_audio(path).channels == channels


def test_crop_reads_the_window_the_offset_names(tmp_path):
    sr = TARGET_SR
    ramp = np.linspace(-0.9, 0.9, 3 * sr).astype(np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, sr, subtype="FLOAT")
    full = load_audio(path)
    for offset in (0.0, 0.5, 1.0):
        window = load_audio(path, max_seconds=1.0, offset_fraction=offset)
        assert len(window) == sr
        np.testing.assert_array_equal(window, crop(full, sr, offset))
    assert len(load_audio(path, max_seconds=10.0)) == len(full)  # shorter than the crop: whole


def test_normalize_gives_zero_mean_unit_variance():
    wave = np.random.default_rng(0).normal(3.0, 0.01, 16_000).astype(np.float32)
    out = normalize(wave)
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


BAD_FILES = {
    "missing file": lambda d: d / "nothere.wav",
    "empty file": lambda d: _write(d / "empty.wav", b""),
    "unreadable format": lambda d: _write(d / "notes.wav", b"not audio at all"),
    "truncated file": lambda d: _truncate(write_tone(d / "cut.wav", 16_000, 1.0), 0.5),
    "zero-length audio": lambda d: write_tone(d / "zero.wav", 16_000, 0.0),
    "too short": lambda d: write_tone(d / "blip.wav", 16_000, 0.001),
    "non-finite samples": lambda d: _nan_file(d / "nan.wav"),
}


def _nan_file(path):
    data = np.zeros(1600, dtype=np.float32)
    data[100] = np.nan
    sf.write(path, data, 16_000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_probe_names_the_file_and_the_problem(tmp_path, kind):
    path = BAD_FILES[kind](tmp_path)
    with pytest.raises(AudioProblem) as err:
        probe_audio(path)
    assert err.value.kind == kind
    assert str(path) in str(err.value)


@pytest.mark.parametrize("suffix", ["flac", "ogg"])
def test_probe_catches_truncated_compressed_files(tmp_path, suffix):
    path = _truncate(write_tone(tmp_path / f"cut.{suffix}", 44_100, 2.0, channels=2), 0.5)
    with pytest.raises(AudioProblem) as err:
        probe_audio(path)
    assert err.value.kind == "truncated file"


def test_complete_files_pass_the_probe(tmp_path):
    for name in ("a.wav", "b.flac", "c.ogg"):
        info = probe_audio(write_tone(tmp_path / name, 22_050, 1.0))
        assert info.seconds == pytest.approx(1.0, abs=0.01)


def test_decode_failure_names_the_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    with pytest.raises(BenchError, match=r"notes\.wav"):
        load_audio(path)
