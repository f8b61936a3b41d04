"""Concordance correlation coefficient (Lin, 1989), the metric and the training loss."""

from __future__ import annotations

import torch

DIMENSIONS: tuple[str, ...] = ("arousal", "valence", "dominance")


def ccc(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """CCC per column of (N, D) tensors (or one value for 1-D inputs), differentiable.

    Uses population (biased) variances and covariance, as Lin's definition does:
    2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2).
    """
    pred = pred.float()
    target = target.float()
    mp, mt = pred.mean(0), target.mean(0)
    vp = ((pred - mp) ** 2).mean(0)
    vt = ((target - mt) ** 2).mean(0)
    cov = ((pred - mp) * (target - mt)).mean(0)
    return 2 * cov / (vp + vt + (mp - mt) ** 2 + eps)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean CCC over the label dimensions: the study's training objective."""
    return 1.0 - ccc(pred, target).mean()
