"""One training step per strategy on the tiny model (pytest-benchmark; `make bench-micro`).

The step is `bench.step.train_step`, the one the sweep times, on the fixed batch the ceiling
uses: loss scaling, the strategy's `after_step` and the head's learning rate included.
In the normal test run benchmarks are disabled and each step runs once, as a test that it works.
"""

import itertools

import pytest
import torch

from bench.ceiling import fixed_batch
from bench.model import build_model
from bench.run import ALL
from bench.step import make_stepper, resolve_precision, train_step
from strategies import parse_strategy

STRATEGIES = ALL  # what `--strategies all` runs
CPU = torch.device("cpu")


@pytest.mark.parametrize("spelling", STRATEGIES)
def test_train_step(benchmark, spelling):
    torch.manual_seed(0)
    spec = parse_strategy(spelling)
    model, _ = build_model("tiny-w2v2", "random", 0, spec.strategy)
    model.train()
    precision = resolve_precision(spec.modifiers.precision, CPU)
    stepper = make_stepper(model, spec.strategy, precision, CPU, 1e-4, 1e-3, 0.01)
    cache_dtype = spec.modifiers.cache_dtype if spec.modifiers.cache else None
    batch = fixed_batch(stepper, 4, 32_000, 3, cache_dtype)
    steps = itertools.count()

    loss = benchmark(lambda: train_step(stepper, batch, next(steps)).item())
    assert torch.isfinite(torch.tensor(loss))
