"""Decoding and preprocessing: any soundfile format/rate/channels -> mono float32 at 16 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from bench.errors import BenchError

TARGET_SR = 16_000


def load_audio(path: str | Path) -> np.ndarray:
    """Decode `path` to mono float32 at 16 kHz. Raises BenchError naming the file on any problem."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise BenchError(
            f"{path}: cannot decode audio ({exc}); re-encode it as wav/flac or drop the row"
        ) from None
    if data.shape[0] == 0:
        raise BenchError(f"{path}: audio has zero samples; drop the row")
    mono = data.mean(axis=1)
    if sr != TARGET_SR:
        mono = AF.resample(torch.from_numpy(mono), sr, TARGET_SR).numpy()
    return mono


def normalize(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per utterance, as Wav2Vec2FeatureExtractor(do_normalize=True) does."""
    return (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)


def crop(wave: np.ndarray, max_samples: int | None, offset_fraction: float) -> np.ndarray:
    """Crop to at most `max_samples`, starting at `offset_fraction` of the slack (0.5 = centre)."""
    if max_samples is None or len(wave) <= max_samples:
        return wave
    start = int((len(wave) - max_samples) * offset_fraction)
    return wave[start : start + max_samples]
