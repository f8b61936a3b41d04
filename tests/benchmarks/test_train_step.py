"""One training step per strategy on the tiny model (pytest-benchmark; `make bench-micro`).

The run is set up by `bench.train.setup.setup_run` and the step is `bench.train.step.train_step`, as in a
sweep (loss scaling, warm-up schedule, clipping, the strategy's `after_step`, the head's learning
rate), on the fixed batch the ceiling uses. In the normal test run benchmarks are disabled and
each step runs once, as a test that it works.
"""

import dataclasses
import itertools

import pytest
import torch

from bench.cli.args import ALL
from bench.train.ceiling import fixed_batch
from bench.train.setup import setup_run
from bench.train.step import train_step

STRATEGIES = ALL  # what `--strategies all` runs


@pytest.mark.parametrize("spelling", STRATEGIES)
def test_train_step(benchmark, tiny_config, spelling):
    ctx = setup_run(dataclasses.replace(tiny_config, strategy=spelling))
    ctx.model.train()
    mods = ctx.spec.modifiers
    batch = fixed_batch(ctx.stepper, 4, 32_000, 3, mods.cache_dtype if mods.cache else None)
    steps = itertools.count()

    loss = benchmark(lambda: train_step(ctx.stepper, batch, next(steps)).item())
    assert torch.isfinite(torch.tensor(loss))
