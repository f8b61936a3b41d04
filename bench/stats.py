"""Statistics over seeds and test utterances: pure functions on plain numbers and arrays.

Everything here is numpy only (no scipy, no torch), so the report can recompute any figure from the
stored result JSONs. Conventions: standard deviations are sample sd (ddof=1); confidence intervals
are two-sided 95% Student-t intervals of the mean over seeds; CCC is Lin's, with population
variances, as `bench.ccc.ccc` computes it during training.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

# ---------------------------------------------------------------------------------------------
# Student t quantile (scipy is not a dependency; this is the textbook route through the
# regularised incomplete beta function, accurate to ~1e-10, which is far below what a CI needs).


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-14
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    # The continued fraction converges fast only on one side of the mean; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile of Student's t (e.g. p=0.975, df=2 -> 4.3027), by bisection on t_cdf."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), not {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:  # df=1, p=0.9995 needs ~637: grow the bracket geometrically
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------------------
# Mean, sd and confidence interval over seeds


@dataclass(frozen=True)
class Summary:
    """A figure over seeds. `sd` and the interval are None below two values (nothing to spread)."""

    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    level: float = 0.95

    @property
    def ci_half_width(self) -> float | None:
        return None if self.ci_high is None or self.mean is None else self.ci_high - self.mean


def _finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize(values: Iterable[float | None], level: float = 0.95) -> Summary:
    """Mean, sample sd and a two-sided Student-t interval of the mean; None/NaN values are skipped
    (a figure that was not measured in one run is not a zero)."""
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return Summary(0, None, None, None, None, level)
    mean = sum(xs) / n
    if n == 1:
        return Summary(1, mean, None, None, None, level)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half, level)


def per_seed_ratio(
    values: Mapping[K, float | None], baseline: Mapping[K, float | None]
) -> dict[K, float]:
    """values[s] / baseline[s] for every seed where both are finite and the baseline is positive
    (keys: seeds, or whatever else pairs two runs, such as (seed, fold, device model)).

    Speed-ups are ratios at the same seed (same data order, same machine state) and only then
    summarised; a ratio of means would mix seeds and hide the spread."""
    out: dict[K, float] = {}
    for seed, v in values.items():
        b = baseline.get(seed)
        if v is None or b is None or not (math.isfinite(v) and math.isfinite(b)) or b <= 0:
            continue
        out[seed] = v / b
    return out


# ---------------------------------------------------------------------------------------------
# CCC on arrays, and a paired bootstrap over test utterances


def ccc_np(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """CCC along axis -2 of (..., N, D) arrays -> (..., D). Population moments, as in training.

    Where both series are constant the CCC is undefined; it is returned as NaN, not 0."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mp, mt = pred.mean(-2, keepdims=True), target.mean(-2, keepdims=True)
    vp = ((pred - mp) ** 2).mean(-2)
    vt = ((target - mt) ** 2).mean(-2)
    cov = ((pred - mp) * (target - mt)).mean(-2)
    denom = vp + vt + (mp - mt).squeeze(-2) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * cov / np.where(denom > 0, denom, 1.0), np.nan)


def _mean_over_dims(c: np.ndarray) -> np.ndarray:
    """Mean CCC over the last axis ignoring undefined dimensions; NaN where none is defined (a
    resample that repeats one utterance) — without numpy's "mean of empty slice" warning."""
    ok = np.isfinite(c)
    n = ok.sum(-1)
    total = np.where(ok, c, 0.0).sum(-1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


@dataclass(frozen=True)
class PairedBootstrap:
    """Mean-CCC difference (candidate - baseline) on the same test utterances, with a percentile
    interval from resampling utterances with replacement (both models see the same resample)."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_utterances: int
    n_resamples: int
    level: float = 0.95

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return self.ci_low > 0.0 or self.ci_high < 0.0


def paired_bootstrap(
    pred: Sequence[Sequence[float]] | np.ndarray,
    baseline_pred: Sequence[Sequence[float]] | np.ndarray,
    target: Sequence[Sequence[float]] | np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    chunk: int = 250,
) -> PairedBootstrap:
    """Paired bootstrap of mean CCC over dimensions, candidate `pred` vs `baseline_pred`.

    `pred`, `baseline_pred`, `target` are (N, D) per-utterance arrays in the same utterance order.
    The two-sided p-value is 2 * min(P(delta* <= 0), P(delta* >= 0)) over the resamples."""
    a = np.asarray(pred, dtype=np.float64)
    b = np.asarray(baseline_pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if a.ndim == 1:
        a, b, y = a[:, None], b[:, None], y[:, None]
    if not (a.shape == b.shape == y.shape) or a.shape[0] < 2:
        raise ValueError(
            f"paired bootstrap needs equal (N>=2, D) arrays, got {a.shape}, {b.shape}, {y.shape}"
        )
    n = a.shape[0]
    delta = float(_mean_over_dims(ccc_np(a, y)) - _mean_over_dims(ccc_np(b, y)))
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples)
    # Chunks bound memory: chunk x N x D floats at a time, whatever the test-set size.
    for start in range(0, n_resamples, chunk):
        k = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(k, n))
        ya = y[idx]
        deltas[start : start + k] = _mean_over_dims(ccc_np(a[idx], ya)) - _mean_over_dims(
            ccc_np(b[idx], ya)
        )
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0:
        raise ValueError("every bootstrap resample gave an undefined CCC (constant predictions?)")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(deltas, [alpha, 1.0 - alpha])
    p = min(1.0, 2.0 * min(float(np.mean(deltas <= 0)), float(np.mean(deltas >= 0))))
    return PairedBootstrap(delta, float(lo), float(hi), p, n, int(deltas.size), level)


def against_constant(
    pred: Sequence[Sequence[float]] | np.ndarray,
    target: Sequence[Sequence[float]] | np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
) -> PairedBootstrap:
    """The run's mean CCC against a constant predictor's (whose CCC is 0 on every resample),
    paired over the same test utterances: `significant` with `delta > 0` says the run learnt
    something a constant could not show."""
    y = np.asarray(target, dtype=np.float64)
    constant = np.broadcast_to(y.mean(0, keepdims=True), y.shape)
    return paired_bootstrap(pred, constant, y, n_resamples=n_resamples, seed=seed)


# ---------------------------------------------------------------------------------------------
# Degenerate runs


def prediction_problems(
    pred: Sequence[Sequence[float]] | np.ndarray | None,
    dimensions: Sequence[str],
    ccc_mean: float | None,
    rel_tol: float = 1e-6,
) -> list[str]:
    """What is wrong with one run's own test predictions (empty list: nothing).

    - an undefined CCC or NaN/inf predictions;
    - a dimension whose predictions are constant (the model learnt the mean: CCC ~ 0 by
      construction, not by lack of signal) — spread below `rel_tol` of its magnitude.
    The run records these itself (`metrics.degenerate`); the report recomputes them with this
    same function, so a defect is named once, in one wording."""
    reasons: list[str] = []
    if ccc_mean is None or not math.isfinite(ccc_mean):
        reasons.append("CCC is NaN")
    if pred is not None:
        p = np.asarray(pred, dtype=np.float64)
        if p.ndim == 1:
            p = p[:, None]
        if p.size and not np.all(np.isfinite(p)):
            reasons.append("NaN/inf predictions")
        elif p.shape[0] > 1:
            spread = p.max(0) - p.min(0)
            scale = np.maximum(np.abs(p).max(0), 1.0)
            flat = [
                d for d, s, m in zip(dimensions, spread, scale, strict=False) if s <= rel_tol * m
            ]
            if flat:
                reasons.append(f"constant predictions ({', '.join(flat)})")
    return reasons


def degenerate_reasons(
    pred: Sequence[Sequence[float]] | np.ndarray | None,
    dimensions: Sequence[str],
    ccc_mean: float | None,
    others_ccc_mean: Sequence[float],
    far_below: float = 0.2,
    rel_tol: float = 1e-6,
) -> list[str]:
    """Why a finished run's CCC cannot be taken at face value (empty list: nothing wrong): its
    `prediction_problems`, and a mean CCC more than `far_below` under the median of the other
    strategies at the same seed (a diverged or mis-configured run rather than a weaker method)."""
    reasons = prediction_problems(pred, dimensions, ccc_mean, rel_tol)
    others = _finite(others_ccc_mean)
    if others and ccc_mean is not None and math.isfinite(ccc_mean):
        ref = float(np.median(others))
        if ccc_mean < ref - far_below:
            reasons.append(
                f"CCC {ccc_mean:.3f} is more than {far_below:g} below the other strategies' "
                f"median {ref:.3f} at this seed"
            )
    return reasons
