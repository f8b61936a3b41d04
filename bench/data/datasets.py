"""Dataset adapters by name, and the one call that turns a `DataConfig` (name, data root,
options) into a validated `Corpus`. The adapters themselves live in `bench.data.adapters`, one module
per layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.config import DataConfig
from bench.data.adapters import csv_manifest, hf_dataset, iemocap, msp_podcast, synthetic
from bench.data.adapters.base import SPLITS, Corpus, Problem, Utterance
from bench.data.adapters.hf_options import HFOptions
from bench.errors import BenchError

__all__ = [
    "ADAPTERS",
    "SPLITS",
    "Corpus",
    "DataConfig",
    "Problem",
    "Utterance",
    "load_dataset",
]


@dataclass(frozen=True)
class Adapter:
    load: Callable[[DataConfig, int], Corpus]  # (what to read, the seed of the split)
    data_root: str  # what --data-root points at, for help and errors
    options: frozenset[str] = frozenset()  # which of fold / test_set / label_range / hf it reads


ADAPTERS: dict[str, Adapter] = {
    "synthetic": Adapter(synthetic.load, "cache folder (optional)"),
    "csv": Adapter(
        csv_manifest.load, "the manifest .csv", frozenset({"label_range", "label_columns"})
    ),
    "msp-podcast": Adapter(
        msp_podcast.load, "the folder holding Labels/ and Audios/", frozenset({"test_set"})
    ),
    "iemocap": Adapter(iemocap.load, "the folder holding Session1..Session5", frozenset({"fold"})),
    "hf": Adapter(
        hf_dataset.load,
        "a folder written by save_to_disk, or a hub name",
        frozenset({"label_range", "label_columns", "hf"}),
    ),
}
_FLAGS = {
    "fold": ("--fold applies", "iemocap"),
    "test_set": ("--test-set applies", "msp-podcast"),
    "label_range": ("--label-range applies", "csv and hf"),
    "label_columns": ("--label-columns applies", "csv and hf"),
    "hf": ("--audio-column, --speaker-column and --hf-splits apply", "hf"),
}


def load_dataset(data: DataConfig, seed: int) -> Corpus:
    """The validated corpus `data` names, split for `seed`. Raises BenchError naming what is
    wrong."""
    if data.dataset not in ADAPTERS:
        raise BenchError(f"unknown dataset {data.dataset!r}; valid datasets: {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[data.dataset]
    given = {
        "fold": data.fold,
        "test_set": data.test_set,
        "label_range": data.label_range,
        "label_columns": data.hf.label_columns or None if data.hf else None,
        # the hf options; csv reads the label columns of them, and nothing else
        "hf": None
        if data.hf is None or (data.dataset == "csv" and data.hf.with_labels(()) == HFOptions())
        else data.hf,
    }
    for option, value in given.items():
        if value is not None and option not in adapter.options:
            flag, owner = _FLAGS[option]
            raise BenchError(f"{flag} to --dataset {owner} only, not {data.dataset}")
    return adapter.load(data, seed)
