"""Seconds as a function of padded input length, fitted to calibration timings.

A transformer layer costs a + b*T + c*T^2 for T frames (projections and feed-forward are linear in
T, attention scores quadratic), plus a per-step constant (optimiser, launch overhead). The fit
estimates all three coefficients by least squares and assumes none of them: on a short-clip corpus
the quadratic share may come out near zero (or slightly negative, within noise), and the fit says
so. Its error bound is the worst leave-one-out relative error over the calibration points: each
point is predicted by the fit of the others, so timing noise and a wrong functional form both show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.batching import frames_of


@dataclass(frozen=True)
class LengthFit:
    """seconds(T) = c0 + c1*x + c2*x^2 with x = T / scale_frames (T: frames of the padded input)."""

    coefficients: tuple[float, ...]  # c0, c1[, c2]: as many as the distinct lengths allowed
    scale_frames: int
    points: tuple[tuple[int, float], ...]  # (input samples, measured seconds)
    rel_error: float | None  # worst leave-one-out |predicted - measured| / measured; None: too few

    def seconds(self, samples: int) -> float:
        """Predicted seconds for one call at a padded input length of `samples` samples."""
        x = frames_of(samples) / self.scale_frames
        return float(sum(c * x**i for i, c in enumerate(self.coefficients)))

    def quadratic_share(self, samples: int) -> float | None:
        """The share of seconds(samples) that the fitted quadratic term accounts for."""
        if len(self.coefficients) < 3:
            return None
        x = frames_of(samples) / self.scale_frames
        total = self.seconds(samples)
        return self.coefficients[2] * x * x / total if total > 0 else None

    def describe(self) -> str:
        terms = ("const", "linear", "quadratic")
        fitted = ", ".join(f"{terms[i]} {c * 1000:.3g} ms" for i, c in enumerate(self.coefficients))
        bound = (
            f"leave-one-out error <= {self.rel_error:.1%}"
            if self.rel_error is not None
            else "too few lengths for a leave-one-out bound"
        )
        return (
            f"least squares in frames over {len(self.points)} lengths "
            f"({fitted} at {self.scale_frames} frames); {bound}"
        )

    @classmethod
    def from_dict(cls, d: dict) -> LengthFit:
        """The fit as `to_dict` wrote it (plan.json's calibrations)."""
        return cls(
            tuple(float(c) for c in d["coefficients"]),
            int(d["scale_frames"]),
            tuple((int(p["samples"]), float(p["seconds"])) for p in d["points"]),
            None if d.get("rel_error") is None else float(d["rel_error"]),
        )

    def to_dict(self) -> dict:
        return {
            "model": "seconds = c0 + c1*x + c2*x^2, x = frames / scale_frames",
            "coefficients": list(self.coefficients),
            "scale_frames": self.scale_frames,
            "points": [{"samples": s, "seconds": t} for s, t in self.points],
            "rel_error": self.rel_error,
        }


def _solve(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    design = np.vander(x, degree + 1, increasing=True)
    return np.linalg.lstsq(design, y, rcond=None)[0]


def fit_lengths(points: list[tuple[int, float]]) -> LengthFit:
    """Fit seconds against padded length. The degree is 2 where at least three distinct lengths
    were timed (fewer: 1 or 0, since a quadratic through two points is not a fit)."""
    if not points:
        raise ValueError("fit_lengths needs at least one (samples, seconds) point")
    samples = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points], dtype=np.float64)
    frames = np.array([frames_of(int(s)) for s in samples], dtype=np.float64)
    scale = int(frames.max()) or 1
    x = frames / scale
    degree = min(2, len(set(frames.tolist())) - 1)
    coef = _solve(x, y, degree)
    rel_error = None
    # Leave-one-out needs the remaining points to determine the same degree.
    if len(set(frames.tolist())) > degree + 1:
        errors = []
        for i in range(len(x)):
            keep = np.arange(len(x)) != i
            c = _solve(x[keep], y[keep], degree)
            pred = float(np.polyval(c[::-1], x[i]))
            errors.append(abs(pred - y[i]) / y[i])
        rel_error = float(max(errors))
    return LengthFit(
        tuple(float(c) for c in coef),
        scale,
        tuple((int(s), float(t)) for s, t in zip(samples, y, strict=True)),
        rel_error,
    )
