"""Shared fixtures: tiny corpora and models built in tmp_path; no network, no GPU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.config import PROFILES, DataConfig, RunConfig
from bench.data.synthetic import SyntheticSpec, generate
from bench.result import RunResult, migrate
from bench.result.store import write_result

FIXTURES = Path(__file__).parent / "fixtures" / "results"
TINY_SPEC = SyntheticSpec(
    n_speakers=8, clips_per_speaker=3, min_seconds=0.6, max_seconds=1.2, seed=0
)


def padded_pair():
    """Two 1 s waveforms in a batch, the second padded after 9,000 samples: (inputs, mask)."""
    import torch

    x = torch.randn(2, 16_000, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 16_000, dtype=torch.long)
    mask[1, 9_000:] = 0
    x[1, 9_000:] = 0
    return x, mask


def ok_result(strategy: str, seed: int, **sections) -> dict:
    """A minimal ok result as stored (schema 1): who ran, on what, with which config; the
    `sections` (metrics, efficiency, data, ...) a test needs go on top."""
    return {
        "schema": 1,
        "strategy": strategy,
        "seed": seed,
        "status": "ok",
        "profile": "test",
        "model": {
            "name": "m",
            "weights": "pretrained",
            "params_total": 100,
            "params_trainable": 10,
        },
        "device": {"type": "cuda", "name": "GPU"},
        "config": {"profile": "test", "strategy": strategy, "seed": seed},
        **sections,
    }


def fixture_results() -> list[dict]:
    """The fixture sweep as stored (schema 1): plain dicts, for tests to edit."""
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


def typed(results: list[dict]) -> list[RunResult]:
    """Stored dicts (any schema) as the report reads them."""
    return [RunResult.from_dict(migrate(r)) for r in results]


def write_run(folder: Path, results: list[dict]) -> Path:
    """Write `results` in the current schema, as a sweep does."""
    for r in typed(results):
        write_result(folder / "results" / f"{r.strategy}__seed{r.seed}.json", r)
    return folder


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A tiny synthetic corpus shared by the session (generation is deterministic)."""
    root = tmp_path_factory.mktemp("cache")
    generate(TINY_SPEC, root)
    return root


@pytest.fixture
def tiny_config(synth_dir) -> RunConfig:
    """A smoke-sized run config on the tiny corpus; tests replace() what they need."""
    p = PROFILES["smoke"]
    return RunConfig(
        profile="smoke",
        strategy="partial2",
        seed=0,
        model="tiny-w2v2",
        weights="random",
        device="cpu",
        train=p.train,
        data=DataConfig("synthetic", str(synth_dir), False, TINY_SPEC),
    )
