"""A synthetic emotional-speech corpus, generated deterministically from a seed.

Each clip is built like voiced speech: a glottal-like harmonic source whose F0 follows a contour,
shaped by formant-like resonances of a vowel per syllable, cut into syllables by an amplitude
envelope, with phrase pauses, short noise bursts at syllable onsets (consonant-like) and a constant
background noise floor. Every speaker has its own pitch, vocal-tract length (formant scale), habitual
rate, loudness and voice brightness, so cues are confounded by who speaks, as in real corpora.

Three latent attributes in [-1, 1] drive different cues:

- arousal   -> F0 level (+-4 semitones), F0 range (accent size 2-7 semitones), energy (+-6 dB),
               speaking rate (+-25 % syllables/s).
- valence   -> contour shape (declination from falling, -3 st over the clip, to rising, +1 st)
               and spectral tilt (positive valence is brighter: -3..+3 dB/octave change).
- dominance -> loudness (+-4 dB) and timing (dominant speech pauses less and more briefly).

Latents are correlated as in real data (dominance follows arousal, r ~ 0.6; valence weakly, r ~ 0.2).
The labels written to the manifest are the latents plus Gaussian rater noise (sd 0.2, clipped to
[-1, 1]), so even a perfect model cannot reach CCC 1. Loudness survives the per-utterance
normalisation the model applies because the background noise floor is fixed in absolute level:
louder speech means a higher signal-to-noise ratio.

Learnable, not trivial: `bench/data/acoustic_baseline.py` fits a linear model on a few hand-made
features of the normalised audio (SNR, F0, voicing, centroid, zero crossings); a test holds its
arousal CCC between 0.3 and 0.9, and `python -m bench.data.acoustic_baseline` prints the figure a
finetuned model should beat on the `quick` corpus.

The corpus is written as 16 kHz 16-bit WAV files plus `manifest.csv`
(path, arousal, valence, dominance, split, speaker) and read back through the `csv` adapter.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.paths import cache_root

try:
    import soundfile as sf
except ImportError:  # a bare CUDA image (make gpu-check): PCM WAV through the stdlib
    from bench.data import wavfile as sf

SAMPLE_RATE = 16_000
# (F1, F2, F3) in Hz of a few vowels of an average adult voice.
VOWELS = np.array(
    [
        [730, 1090, 2440],
        [270, 2290, 3010],
        [300, 870, 2240],
        [530, 1840, 2480],
        [570, 840, 2410],
        [440, 1020, 2240],
        [660, 1720, 2410],
    ],
    dtype=np.float64,
)
BANDWIDTHS = np.array([90.0, 110.0, 170.0])
SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.15), ("test", 0.15))


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. The cache folder is keyed by a hash of these fields (and the version)."""

    n_speakers: int = 12
    clips_per_speaker: int = 4
    min_seconds: float = 1.0
    max_seconds: float = 2.0
    seed: int = 0
    version: int = 1  # bump when the generator changes, so stale caches are not reused

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def speaker_splits(n_speakers: int, seed: int) -> dict[int, str]:
    """Speaker-independent split: each speaker's clips all land in one of train/val/test."""
    order = np.random.default_rng([seed, 7]).permutation(n_speakers)
    n_val = max(1, round(n_speakers * SPLIT_FRACTIONS[1][1]))
    n_test = max(1, round(n_speakers * SPLIT_FRACTIONS[2][1]))
    out = {}
    for rank, spk in enumerate(order):
        out[int(spk)] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def _speaker(seed: int, spk: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, 1, spk])
    female = rng.random() < 0.5
    return {
        "f0": float(rng.uniform(185, 235) if female else rng.uniform(95, 135)),
        "formant_scale": float(rng.uniform(1.05, 1.18) if female else rng.uniform(0.88, 1.0)),
        "rate": float(rng.uniform(3.6, 5.0)),
        "gain_db": float(rng.normal(0, 2.0)),
        "tilt": float(rng.uniform(0.9, 1.4)),
        "noise_db": float(rng.uniform(-52, -46)),
    }


def _latents(rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(0, 0.45)
    d = 0.6 * a + rng.normal(0, 0.35)
    v = 0.2 * a + rng.normal(0, 0.45)
    return np.clip(np.array([a, v, d]), -1, 1)


def synthesize(
    latent: np.ndarray, spk: dict[str, float], seconds: float, rng: np.random.Generator
) -> np.ndarray:
    """One clip (float32, 16 kHz) for latent (arousal, valence, dominance) and a speaker."""
    a, v, d = (float(x) for x in latent)
    sr = SAMPLE_RATE
    n = int(seconds * sr)
    t = np.arange(n) / sr

    # Syllable and pause timing: arousal speeds up, dominance shortens and thins pauses.
    rate = spk["rate"] * (1 + 0.25 * a) * rng.uniform(0.92, 1.08)
    pause_prob = np.clip(0.22 - 0.14 * d, 0.03, 0.4)
    bounds, pos = [], 0.05 * sr
    while pos < n:
        if rng.random() < pause_prob:
            pos += rng.uniform(0.12, 0.35) * (1 - 0.35 * d) * sr
            continue
        dur = rng.uniform(0.75, 1.25) * sr / rate
        bounds.append((int(pos), int(min(pos + dur, n))))
        pos += dur
    env = np.zeros(n)
    syl_id = np.full(n, -1)
    accents = np.zeros(n)
    for i, (s, e) in enumerate(bounds):
        if e - s < 16:
            continue
        w = np.sin(np.linspace(0, np.pi, e - s)) ** 0.7
        env[s:e] = w
        syl_id[s:e] = i
        accents[s:e] = w * rng.uniform(0.2, 1.0)

    # F0 contour: level and range from arousal, declination shape from valence.
    level_st = 4.0 * a + rng.normal(0, 0.5)
    range_st = 2.0 + 2.5 * (a + 1)
    slope_st = -3.0 + 2.0 * (v + 1)
    contour_st = level_st + range_st * accents + slope_st * (t / max(seconds, 1e-3) - 0.5)
    contour_st += 0.3 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 6.28))  # vibrato-like jitter
    f0 = spk["f0"] * 2 ** (contour_st / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr

    # Formants: one vowel per syllable, smoothed at the joins.
    vowel_idx = rng.integers(0, len(VOWELS), size=max(len(bounds), 1))
    formants = VOWELS[vowel_idx[np.clip(syl_id, 0, None)]] * spk["formant_scale"]
    kernel = np.hanning(401) / np.hanning(401).sum()
    formants = np.stack([np.convolve(formants[:, j], kernel, mode="same") for j in range(3)], 1)

    # Additive synthesis of harmonics below 5 kHz, weighted by the resonances and a tilt.
    tilt_db_oct = -(spk["tilt"] * 6.0) + 3.0 * v  # valence brightens the voice
    n_harm = int(5000 // spk["f0"] / 1.3)
    signal = np.zeros(n)
    for h in range(1, n_harm + 1):
        fh = h * f0
        resonance = np.zeros(n)
        for j in range(3):
            resonance += 1.0 / (1.0 + ((fh - formants[:, j]) / BANDWIDTHS[j]) ** 2)
        amp = resonance * 2 ** (tilt_db_oct * np.log2(h) / 6.0)
        amp[fh > 7000] = 0.0
        signal += amp * np.sin(h * phase)
    signal *= env

    # Consonant-like noise bursts at syllable onsets.
    for s, e in bounds:
        m = min(int(0.03 * sr), e - s)
        if m > 8 and rng.random() < 0.6:
            signal[s : s + m] += rng.normal(0, 0.3, m) * np.hanning(m)

    signal /= np.sqrt(np.mean(signal**2)) + 1e-9
    gain_db = -20.0 + 6.0 * a + 4.0 * d + spk["gain_db"]
    signal *= 10 ** (gain_db / 20)
    noise_db = spk["noise_db"] + rng.normal(0, 1.0)
    signal += rng.normal(0, 10 ** (noise_db / 20), n)
    peak = np.abs(signal).max()
    if peak > 0.99:
        signal *= 0.99 / peak
    return signal.astype(np.float32)


def _speaker_clips(job: tuple[SyntheticSpec, int, str]) -> list[list[str]]:
    """Write one speaker's clips under `root`/wav; return their manifest rows."""
    spec, spk, root = job
    split = speaker_splits(spec.n_speakers, spec.seed)[spk]
    voice = _speaker(spec.seed, spk)
    rows = []
    for c in range(spec.clips_per_speaker):
        rng = np.random.default_rng([spec.seed, 2, spk, c])
        latent = _latents(rng)
        seconds = float(rng.uniform(spec.min_seconds, spec.max_seconds))
        audio = synthesize(latent, voice, seconds, rng)
        label = np.clip(latent + rng.normal(0, 0.2, 3), -1, 1)
        rel = f"wav/spk{spk:03d}_{c:04d}.wav"
        sf.write(Path(root) / rel, audio, SAMPLE_RATE, subtype="PCM_16")
        rows.append([rel, *(f"{x:.4f}" for x in label), split, f"spk{spk:03d}"])
    return rows


def generate(spec: SyntheticSpec, cache_dir: Path | None = None) -> Path:
    """Generate the corpus (once; cached by spec) and return the path of its manifest.csv."""
    root = (cache_dir or cache_root()) / "synthetic" / spec.key()
    manifest = root / "manifest.csv"
    if manifest.exists():
        return manifest
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root.parent))
    try:
        (tmp / "wav").mkdir()
        jobs = [(spec, spk, str(tmp)) for spk in range(spec.n_speakers)]
        workers = min(len(jobs), os.cpu_count() or 1)
        if workers > 1:
            # Every clip has its own seeded RNG, so the corpus is the same however it is split
            # among processes (800 clips: ~60 s on one core).
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                per_speaker = pool.map(_speaker_clips, jobs)
        else:
            per_speaker = [_speaker_clips(job) for job in jobs]
        rows = [row for rows_of in per_speaker for row in rows_of]
        with open(tmp / "manifest.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "arousal", "valence", "dominance", "split", "speaker"])
            w.writerows(rows)
        (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
        try:
            os.replace(tmp, root)
        except OSError:  # another process generated it first; theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
