"""`--dataset synthetic` (the default): the generated corpus of `bench.data.synthetic`, read back
through the csv manifest reader like any user's corpus. `--data-root` is its cache folder."""

from __future__ import annotations

from pathlib import Path

from bench.data.adapters.base import Corpus, DataOptions, LabelScale
from bench.data.adapters.csv_manifest import read_manifest, split_rule
from bench.data.adapters.validate import assemble
from bench.data.synthetic import generate

SCALE = LabelScale(-1.0, 1.0, "synthetic latents plus rater noise")


def load(data_root: str | None, opts: DataOptions) -> Corpus:
    manifest = generate(opts.synthetic, Path(data_root) if data_root else None)
    # Strict: a bad row in generated data is our bug, not the user's input.
    return assemble(read_manifest(manifest, "synthetic", SCALE), split_rule(opts.seed), True)
