"""A floor for the synthetic corpus: least squares on a few hand-made acoustic features.

If this linear baseline reaches CCC near 1, the corpus is trivial and strategy rankings on it mean
little; if it reaches ~0, the cues are not in the audio. A test holds arousal between the two, and
`python -m bench.data.acoustic_baseline --profile quick` prints the figure a finetuned model should beat
on the same test split.

Features are computed on what the model sees, the 16 kHz mono waveform after per-utterance
normalisation, so absolute level is gone and loudness survives only as signal-to-noise ratio:
SNR (loudest frames over the quietest, dB), zero-crossing rate, spectral centroid (kHz), voiced
fraction, and an autocorrelation F0 estimate (median and 10-90% spread over voiced frames, in
semitones re 100 Hz).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.adapters.csv_manifest import read_manifest
from bench.data.audio import TARGET_SR, load_audio, normalize

FEATURES = (
    "snr_db",
    "zcr",
    "centroid_khz",
    "voiced_fraction",
    "f0_median_st",
    "f0_spread_st",
)
FRAME = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
F0_MIN, F0_MAX = 70.0, 400.0  # Hz: the search range of the pitch tracker


def _frames(wave: np.ndarray) -> np.ndarray:
    if len(wave) < FRAME:
        wave = np.pad(wave, (0, FRAME - len(wave)))
    n = 1 + (len(wave) - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return wave[idx]


def acoustic_features(wave: np.ndarray, sr: int = TARGET_SR) -> np.ndarray:
    """The FEATURES of one mono clip at `sr` Hz (16 kHz expected), as a float64 vector."""
    frames = _frames(wave.astype(np.float64))
    energy = np.mean(frames**2, axis=1) + 1e-12
    energy_db = 10 * np.log10(energy)
    # Every synthetic clip starts with 50 ms of background, so the quietest frame is the floor.
    snr_db = np.percentile(energy_db, 95) - np.min(energy_db)
    zcr = np.mean(np.abs(np.diff(np.sign(frames), axis=1)) > 0)

    window = np.hanning(FRAME)
    spec = np.abs(np.fft.rfft(frames * window, n=1024, axis=1)) ** 2
    freqs = np.fft.rfftfreq(1024, 1 / sr)
    loud = energy_db > np.percentile(energy_db, 95) - 25  # frames that are not background
    centroid = np.sum(spec[loud] * freqs, axis=1) / (np.sum(spec[loud], axis=1) + 1e-12)

    # Autocorrelation pitch: the strongest lag in the F0 range, voiced when its peak is clear.
    ac = np.fft.irfft(spec, axis=1)[:, : FRAME // 2 + 1]
    lo, hi = int(sr / F0_MAX), int(sr / F0_MIN)
    lag = lo + np.argmax(ac[:, lo : hi + 1], axis=1)
    peak = ac[np.arange(len(ac)), lag] / (ac[:, 0] + 1e-12)
    voiced = loud & (peak > 0.4)
    f0_st = 12 * np.log2(sr / lag[voiced] / 100.0) if voiced.any() else np.zeros(1)
    return np.array(
        [
            snr_db,
            zcr,
            float(np.mean(centroid)) / 1000 if len(centroid) else 0.0,
            float(np.mean(voiced)),
            float(np.median(f0_st)),
            float(np.percentile(f0_st, 90) - np.percentile(f0_st, 10)),
        ]
    )


def _ccc(pred: np.ndarray, target: np.ndarray) -> float:
    mp, mt = pred.mean(), target.mean()
    cov = np.mean((pred - mp) * (target - mt))
    return float(2 * cov / (pred.var() + target.var() + (mp - mt) ** 2 + 1e-12))


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Ordinary least squares with an intercept, on features standardised with train statistics."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-9
    design = np.column_stack([np.ones(len(x_train)), (x_train - mu) / sd])
    coef, *_ = np.linalg.lstsq(design, y_train, rcond=None)
    return np.column_stack([np.ones(len(x_test)), (x_test - mu) / sd]) @ coef


@dataclass(frozen=True)
class BaselineResult:
    """Test-split CCC per dimension of the linear model, and how many clips it saw."""

    ccc: dict[str, float]
    n_train: int
    n_test: int


def _features_of(
    manifest: str | Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    listing = read_manifest(Path(manifest))
    x = np.array([acoustic_features(normalize(load_audio(r.path))) for r in listing.rows])
    y = np.array([[float(v) for v in r.values] for r in listing.rows])
    splits = np.array([r.group for r in listing.rows])
    speakers = np.array([r.speaker for r in listing.rows])
    return x, y, splits, speakers, listing.dimensions


def baseline_ccc(
    manifest: str | Path,
    fit_splits: tuple[str, ...] = ("train", "val"),
    eval_split: str = "test",
) -> BaselineResult:
    """Fit on `fit_splits` of a csv manifest (its split column), score CCC on `eval_split`:
    the same test clips a finetuned model is scored on."""
    x, y, splits, _, dims = _features_of(manifest)
    train, test = np.isin(splits, fit_splits), splits == eval_split
    pred = fit_predict(x[train], y[train], x[test])
    ccc = {d: _ccc(pred[:, j], y[test, j]) for j, d in enumerate(dims)}
    return BaselineResult(ccc, int(train.sum()), int(test.sum()))


def cross_validated_ccc(manifest: str | Path, folds: int = 5) -> BaselineResult:
    """CCC of out-of-fold predictions for every clip, folds split by speaker: held-out speakers
    every time, and a steadier estimate than one small test split."""
    x, y, _, speakers, dims = _features_of(manifest)
    uniq = np.unique(speakers)
    fold_of = {s: i % folds for i, s in enumerate(uniq)}
    fold = np.array([fold_of[s] for s in speakers])
    pred = np.zeros_like(y)
    for k in range(folds):
        held = fold == k
        pred[held] = fit_predict(x[~held], y[~held], x[held])
    ccc = {d: _ccc(pred[:, j], y[:, j]) for j, d in enumerate(dims)}
    return BaselineResult(ccc, int(len(y) - len(y) / folds), len(y))


def baseline_lines(profile: str, manifest: Path) -> list[str]:
    """The baseline's CCC on `manifest` (a profile's synthetic corpus), one line per estimate."""
    lines = []
    for what, result in (
        ("test split", baseline_ccc(manifest)),
        ("5-fold by speaker", cross_validated_ccc(manifest)),
    ):
        cells = ", ".join(f"{d} {v:.3f}" for d, v in result.ccc.items())
        mean = float(np.mean(list(result.ccc.values())))
        lines.append(
            f"linear acoustic baseline, {profile} synthetic corpus, {what} "
            f"({result.n_test} clips scored): CCC {cells} (mean {mean:.3f})"
        )
    return lines
