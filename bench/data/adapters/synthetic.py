"""`--dataset synthetic` (the default): the generated corpus of `bench.data.synthetic`, read back
through the csv manifest reader like any user's corpus. `--data-root` is its cache folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.adapters.base import Corpus, LabelScale
from bench.data.adapters.csv_manifest import read_manifest, split_rule
from bench.data.adapters.validate import assemble
from bench.data.synthetic import generate

if TYPE_CHECKING:  # the config names the corpus; no adapter needs more of it
    from bench.config import DataConfig

SCALE = LabelScale(-1.0, 1.0, "synthetic latents plus rater noise")


def load(data: DataConfig, seed: int) -> Corpus:
    manifest = generate(data.synthetic, Path(data.root) if data.root else None)
    # Strict: a bad row in generated data is our bug, not the user's input.
    return assemble(read_manifest(manifest, "synthetic", SCALE), split_rule(seed), True)
