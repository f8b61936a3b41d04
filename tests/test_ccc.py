import math

import pytest
import torch

from bench.ccc import ccc, ccc_loss


def test_ccc_matches_hand_computed_value():
    # x = [1, 2, 3, 4], y = [2, 2, 3, 5]
    # means 2.5, 3.0; population var x = 1.25, var y = 1.5; cov = (−1.5·−1 + −0.5·−1 + 0 + 1.5·2)/4 = 1.25
    # CCC = 2·1.25 / (1.25 + 1.5 + 0.25) = 2.5 / 3.0
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    y = torch.tensor([2.0, 2.0, 3.0, 5.0])
    assert ccc(x, y).item() == pytest.approx(2.5 / 3.0, abs=1e-6)


def test_ccc_is_one_for_identity_and_penalises_bias_and_scale():
    y = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ccc(y, y), torch.ones(3), atol=1e-6)
    assert (ccc(y + 1.0, y) < 0.7).all()  # a shift lowers CCC although Pearson r stays 1
    assert (ccc(2 * y, y) < 0.9).all()


def test_ccc_per_column_and_loss():
    pred = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    target = torch.tensor([[1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])
    values = ccc(pred, target)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(1.0, abs=1e-6)
    assert values[1].item() < 0
    assert ccc_loss(pred, target).item() == pytest.approx(1 - values.mean().item(), abs=1e-6)
    assert not math.isnan(ccc(torch.zeros(4), torch.zeros(4)).item())
