"""The stdlib WAV stand-in reads and writes what soundfile does, for 16-bit PCM."""

import numpy as np
import pytest
import soundfile

from bench.data import wavfile


def test_round_trip_matches_soundfile(tmp_path):
    rng = np.random.default_rng(0)
    mono = (0.5 * rng.standard_normal(1600)).clip(-1, 1).astype(np.float32)
    ours, theirs = tmp_path / "ours.wav", tmp_path / "theirs.wav"
    wavfile.write(ours, mono, 16_000)
    soundfile.write(theirs, mono, 16_000, subtype="PCM_16")
    back, sr = soundfile.read(ours, dtype="float32")  # soundfile reads what we wrote
    assert sr == 16_000 and np.abs(back - mono).max() <= 2 / 32_767  # write x32767, read /32768
    with wavfile.SoundFile(theirs) as f:
        assert (f.samplerate, f.channels, f.frames, f.subtype) == (16_000, 1, 1600, "PCM_16")
        f.seek(100)
        part = f.read(50, dtype="float32", always_2d=True)
    expected = soundfile.read(theirs, dtype="float32", always_2d=True)[0][100:150]
    assert np.array_equal(part, expected)


def test_stereo_and_unsupported_input(tmp_path):
    stereo = np.stack([np.linspace(-0.5, 0.5, 800), np.zeros(800)], axis=1).astype(np.float32)
    path = tmp_path / "st.wav"
    soundfile.write(path, stereo, 8_000, subtype="PCM_16")
    with wavfile.SoundFile(path) as f:
        data = f.read(dtype="float32")
    assert data.shape == (800, 2)
    (tmp_path / "x.flac").write_bytes(b"fLaC\x00\x00")
    with pytest.raises(wavfile.LibsndfileError, match="soundfile package"):
        wavfile.SoundFile(tmp_path / "x.flac")
