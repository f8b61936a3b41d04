"""The synthetic corpus: each latent moves its documented cue, and the task is learnable but not
trivial (a linear model on hand-made features lands well between 0 and 1)."""

from __future__ import annotations

import numpy as np
import pytest

import bench.data.synthetic as synthetic
from bench.data.acoustic_baseline import FEATURES, acoustic_features, cross_validated_ccc
from bench.data.audio import normalize
from bench.data.synthetic import SyntheticSpec, generate, synthesize


def _mean_features(latent, n=6):
    feats = []
    for i in range(n):
        voice = synthetic._speaker(0, i % 3)
        wave = synthesize(np.array(latent), voice, 1.2, np.random.default_rng([99, i]))
        feats.append(acoustic_features(normalize(wave)))
    return dict(zip(FEATURES, np.mean(feats, 0), strict=True))


@pytest.mark.parametrize(
    ("dim", "cues"),
    [
        (0, {"f0_median_st": 2.0, "f0_spread_st": 1.0, "snr_db": 2.0}),  # arousal
        (1, {"centroid_khz": 0.05}),  # valence: brighter voice
        (2, {"snr_db": 2.0, "voiced_fraction": 0.03}),  # dominance: louder, fewer pauses
    ],
)
def test_each_latent_moves_its_documented_cues(dim, cues):
    """High minus low latent (+-0.8, the others 0), same speakers and noise draws."""
    hi, lo = np.zeros(3), np.zeros(3)
    hi[dim], lo[dim] = 0.8, -0.8
    f_hi, f_lo = _mean_features(hi), _mean_features(lo)
    for name, at_least in cues.items():
        assert f_hi[name] - f_lo[name] > at_least, name
    for word in ("arousal", "valence", "dominance", "F0", "tilt", "pauses", "noise"):
        assert word in synthetic.__doc__


def test_linear_baseline_is_clearly_positive_but_far_from_perfect(tmp_path):
    """Out-of-fold predictions, folds by speaker: every clip is scored by a model that never
    heard its speaker."""
    spec = SyntheticSpec(n_speakers=15, clips_per_speaker=8, min_seconds=1.0, max_seconds=1.5)
    result = cross_validated_ccc(generate(spec, tmp_path))
    assert 0.3 < result.ccc["arousal"] < 0.9
    assert result.n_test == 120


def test_generation_is_deterministic_and_cached(tmp_path):
    spec = SyntheticSpec(n_speakers=3, clips_per_speaker=2, min_seconds=0.3, max_seconds=0.4)
    a = generate(spec, tmp_path / "a")
    b = generate(spec, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    for rel in [line.split(",")[0] for line in a.read_text().splitlines()[1:]]:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    assert generate(spec, tmp_path / "a") == a  # second call: the cached folder
