"""Dataset adapters by name, and the one call that turns (name, data root, options) into a
validated `Corpus`. The adapters themselves live in `bench.adapters`, one module per layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.adapters import csv_manifest, hf_dataset, iemocap, msp_podcast, synthetic
from bench.adapters.base import SPLITS, Corpus, DataOptions, Problem, Utterance
from bench.adapters.hf_options import HFOptions
from bench.adapters.label_range import LabelRange
from bench.errors import BenchError
from bench.synthetic import SyntheticSpec

if TYPE_CHECKING:
    from bench.config import RunConfig

__all__ = [
    "ADAPTERS",
    "SPLITS",
    "Corpus",
    "DataOptions",
    "Problem",
    "Utterance",
    "corpus_of",
    "load_dataset",
]


@dataclass(frozen=True)
class Adapter:
    load: Callable[[str | None, DataOptions], Corpus]
    data_root: str  # what --data-root points at, for help and errors
    options: frozenset[str] = frozenset()  # which of fold / test_set / label_range / hf it reads


ADAPTERS: dict[str, Adapter] = {
    "synthetic": Adapter(synthetic.load, "cache folder (optional)"),
    "csv": Adapter(csv_manifest.load, "the manifest .csv", frozenset({"label_range"})),
    "msp-podcast": Adapter(
        msp_podcast.load, "the folder holding Labels/ and Audios/", frozenset({"test_set"})
    ),
    "iemocap": Adapter(iemocap.load, "the folder holding Session1..Session5", frozenset({"fold"})),
    "hf": Adapter(
        hf_dataset.load,
        "a folder written by save_to_disk, or a hub name",
        frozenset({"label_range", "hf"}),
    ),
}
_FLAGS = {
    "fold": ("--fold applies", "iemocap"),
    "test_set": ("--test-set applies", "msp-podcast"),
    "label_range": ("--label-range applies", "csv and hf"),
    "hf": ("--audio-column, --label-columns, --speaker-column and --hf-splits apply", "hf"),
}


def load_dataset(
    name: str,
    data_root: str | None,
    *,
    seed: int,
    strict: bool,
    synthetic: SyntheticSpec,
    fold: int | None = None,
    test_set: str | None = None,
    label_range: LabelRange | None = None,
    hf: HFOptions | None = None,
) -> Corpus:
    """The validated corpus `name` at `data_root`. Raises BenchError naming what is wrong."""
    if name not in ADAPTERS:
        raise BenchError(f"unknown dataset {name!r}; valid datasets: {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[name]
    given = {"fold": fold, "test_set": test_set, "label_range": label_range, "hf": hf}
    for option, value in given.items():
        if value is not None and option not in adapter.options:
            flag, owner = _FLAGS[option]
            raise BenchError(f"{flag} to --dataset {owner} only, not {name}")
    opts = DataOptions(seed, strict, fold, test_set, synthetic, label_range, hf)
    return adapter.load(data_root, opts)


def corpus_of(cfg: RunConfig, seed: int | None = None) -> Corpus:
    """The corpus `cfg` names, split for `seed` (default: the config's own seed)."""
    return load_dataset(
        cfg.dataset,
        cfg.data_root,
        seed=cfg.seed if seed is None else seed,
        strict=cfg.strict,
        synthetic=cfg.synthetic,
        fold=cfg.fold,
        test_set=cfg.test_set,
        label_range=cfg.label_range,
        hf=cfg.hf,
    )
