"""One training step per strategy on the tiny model (pytest-benchmark; `make bench-micro`).

In the normal test run benchmarks are disabled and each step runs once, as a test that it works.
"""

import pytest
import torch

from bench.batching import collate
from bench.ccc import ccc_loss
from bench.model import build_model
from bench.run import ALL
from bench.trainer import resolve_precision
from strategies import parse_strategy

STRATEGIES = ALL  # what `--strategies all` runs


def _batch(n=4, seconds=2.0):
    g = torch.Generator().manual_seed(0)
    items = [
        (torch.randn(int(seconds * 16_000), generator=g).numpy(), (0.1 * i, -0.2, 0.3), i)
        for i in range(n)
    ]
    return collate(items)


@pytest.mark.parametrize("spelling", STRATEGIES)
def test_train_step(benchmark, spelling):
    torch.manual_seed(0)
    spec = parse_strategy(spelling)
    model, _ = build_model("tiny-w2v2", "random", 0, spec.strategy)
    model.train()
    precision = resolve_precision(spec.modifiers.precision, torch.device("cpu"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = _batch()
    if spec.modifiers.cache:  # what a cached run reads: the frozen part's output, stored in fp16
        with torch.no_grad():
            features, rows = model.frozen_features(batch.inputs, batch.attention_mask)
        features = features.to(torch.float16)

    def step() -> float:
        with torch.autocast(
            "cpu",
            dtype=precision.autocast_dtype or torch.float32,
            enabled=precision.autocast_dtype is not None,
        ):
            if spec.modifiers.cache:
                pred = model.forward_from_features(features.float(), rows)
            else:
                pred = model(batch.inputs, batch.attention_mask)
        loss = ccc_loss(pred.float(), batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    loss = benchmark(step)
    assert torch.isfinite(torch.tensor(loss))
