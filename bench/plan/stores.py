"""Which runs of a sweep will find their prefix store already built (by an earlier sweep or
`make bench-cache`), so that the plan counts no cache build for them: the same key the run
computes (bench/cache/prefix.py `find_store`), from the model and datasets the run would set up.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

from bench.cache.prefix import find_store
from bench.config import RunConfig
from bench.data.datasets import Corpus
from bench.train.setup import setup_run
from strategies import parse_strategy


def existing_stores(
    configs: Sequence[RunConfig], corpus: Corpus, directory: Path
) -> dict[tuple[str, int], Path]:
    """(strategy, seed) -> the built store each cached run would reuse; runs that would build
    one are left out. Sets up each cached run's model (no audio is read, nothing is trained)."""
    found: dict[tuple[str, int], Path] = {}
    seen: set[tuple[str, int]] = set()
    for cfg in configs:
        spec = parse_strategy(cfg.strategy)
        if not spec.modifiers.cache or (cfg.strategy, cfg.seed) in seen:
            continue  # grid points of one (strategy, seed) share its store
        seen.add((cfg.strategy, cfg.seed))
        ctx = setup_run(cfg, corpus)
        path = find_store(
            ctx.model,
            ctx.data,
            ctx.precision.autocast_dtype,
            spec.modifiers.cache_dtype,
            directory,
        )
        if path is not None:
            found[(cfg.strategy, cfg.seed)] = path
        del ctx
        gc.collect()
    return found
