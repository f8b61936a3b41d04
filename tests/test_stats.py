"""bench/stats.py against values computed by hand (closed forms, small examples worked on paper)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import (
    ccc_np,
    degenerate_reasons,
    paired_bootstrap,
    per_seed_ratio,
    summarize,
    t_cdf,
    t_quantile,
)

# Closed forms of the 97.5% Student t quantile: df=1 is Cauchy, tan(pi (p - 1/2));
# df=2 is (2p - 1) / sqrt(2 p (1 - p)).
T1 = math.tan(math.pi * 0.475)  # 12.7062...
T2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # 4.3027...


def test_t_quantile_matches_closed_forms_and_tables():
    assert t_quantile(0.975, 1) == pytest.approx(T1, rel=1e-9)
    assert t_quantile(0.975, 2) == pytest.approx(T2, rel=1e-9)
    # Printed tables (Abramowitz & Stegun 26.10): df 3, 4, 10, 30.
    for df, table in ((3, 3.182446), (4, 2.776445), (10, 2.228139), (30, 2.042272)):
        assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-6)
    assert t_quantile(0.975, 10_000) == pytest.approx(1.959964, abs=1e-3)  # -> normal
    assert t_quantile(0.025, 5) == pytest.approx(-t_quantile(0.975, 5))
    assert t_cdf(0.0, 7) == pytest.approx(0.5)


def test_t_quantile_refuses_nonsense():
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_cdf(1.0, 0)


def test_summary_of_three_values_by_hand():
    # [1, 2, 6]: mean 3, deviations -2, -1, 3 -> sd = sqrt(14 / 2) = sqrt(7);
    # 95% CI half-width = t(0.975, 2) * sqrt(7) / sqrt(3).
    s = summarize([1.0, 2.0, 6.0])
    half = T2 * math.sqrt(7) / math.sqrt(3)
    assert (s.n, s.mean) == (3, 3.0)
    assert s.sd == pytest.approx(math.sqrt(7))
    assert s.ci_low == pytest.approx(3.0 - half)
    assert s.ci_high == pytest.approx(3.0 + half)
    assert s.ci_half_width == pytest.approx(half)


def test_summary_skips_unmeasured_values_and_needs_two_for_a_spread():
    s = summarize([0.5, None, float("nan")])
    assert (s.n, s.mean, s.sd, s.ci_low, s.ci_high) == (1, 0.5, None, None, None)
    empty = summarize([None])
    assert (empty.n, empty.mean) == (0, None)


def test_speedups_are_ratios_at_the_same_seed_then_summarised():
    # seed 0: 15/10 = 1.5, seed 1: 20/20 = 1.0; seed 2 has no baseline, seed 3 a zero one.
    ratios = per_seed_ratio({0: 15.0, 1: 20.0, 2: 5.0, 3: 7.0}, {0: 10.0, 1: 20.0, 3: 0.0})
    assert ratios == {0: 1.5, 1: 1.0}
    s = summarize(ratios.values())
    # mean 1.25, sd = sqrt(((0.25)^2 * 2) / 1) = sqrt(0.125); half = t(0.975, 1) * sd / sqrt(2)
    assert s.mean == pytest.approx(1.25)
    assert s.sd == pytest.approx(math.sqrt(0.125))
    assert s.ci_high - s.mean == pytest.approx(T1 * math.sqrt(0.125) / math.sqrt(2))
    # The ratio of means would be 40/30 = 1.333: not what we report.
    assert s.mean != pytest.approx((15 + 20) / (10 + 20))


def test_ccc_by_hand():
    y = np.array([[1.0], [2.0], [3.0]])
    assert ccc_np(y, y)[0] == pytest.approx(1.0)
    # Shift by one: var 2/3 each, cov 2/3, mean gap 1 -> 2(2/3) / (2/3 + 2/3 + 1) = 4/7.
    assert ccc_np(y + 1.0, y)[0] == pytest.approx(4 / 7)
    # Reversed: cov -2/3, same means -> -1.
    assert ccc_np(y[::-1], y)[0] == pytest.approx(-1.0)
    # Both constant: undefined, NaN (not 0).
    assert math.isnan(ccc_np(np.ones((3, 1)), np.ones((3, 1)))[0])


def test_ccc_np_agrees_with_the_training_metric():
    import torch

    from bench.ccc import ccc

    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    expected = ccc(torch.tensor(pred), torch.tensor(target)).numpy()
    np.testing.assert_allclose(ccc_np(pred, target), expected, rtol=1e-5)


def test_paired_bootstrap_identical_models_are_not_different():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(40, 2))
    p = y + rng.normal(scale=0.5, size=y.shape)
    b = paired_bootstrap(p, p, y, n_resamples=300)
    assert (b.delta, b.ci_low, b.ci_high, b.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not b.significant


def test_paired_bootstrap_perfect_vs_shifted_by_hand():
    # Candidate = target (CCC 1); baseline = target + 1. On [1, 2, 3] the baseline's CCC is
    # 4/7 (see above), so delta = 3/7. In every resample with a non-constant target the
    # candidate scores 1 and the shifted baseline 2v / (2v + 1) < 1: every delta is > 0,
    # so the interval excludes 0 and p = 0.
    y = np.array([1.0, 2.0, 3.0])
    b = paired_bootstrap(y, y + 1.0, y, n_resamples=500, seed=3)
    assert b.delta == pytest.approx(3 / 7)
    assert b.ci_low > 0 and b.significant and b.p_value == 0.0
    assert b.n_resamples < 500  # resamples of one repeated utterance have no CCC and are dropped
    again = paired_bootstrap(y, y + 1.0, y, n_resamples=500, seed=3)
    assert again == b  # seeded: the same answer every time


def test_paired_bootstrap_refuses_mismatched_test_sets():
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap(np.zeros((5, 3)), np.zeros((4, 3)), np.zeros((5, 3)))


def test_degenerate_runs_are_flagged_with_the_reason():
    dims = ("arousal", "valence")
    good = np.array([[0.1, 0.2], [0.3, -0.1], [0.5, 0.4]])
    assert degenerate_reasons(good, dims, 0.5, [0.55, 0.6]) == []
    flat = good.copy()
    flat[:, 1] = 0.25
    assert degenerate_reasons(flat, dims, 0.5, []) == ["constant predictions (valence)"]
    nan = good.copy()
    nan[0, 0] = np.nan
    assert "NaN/inf predictions" in degenerate_reasons(nan, dims, float("nan"), [])
    assert "CCC is NaN" in degenerate_reasons(nan, dims, float("nan"), [])
    # Far below: 0.1 against a median of 0.55 with a 0.2 margin.
    far = degenerate_reasons(good, dims, 0.1, [0.5, 0.55, 0.6], far_below=0.2)
    assert len(far) == 1 and "below the other strategies' median 0.550" in far[0]
    assert degenerate_reasons(good, dims, 0.4, [0.5, 0.55, 0.6], far_below=0.2) == []
