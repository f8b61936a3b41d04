"""Dataset adapters: each turns a corpus on disk into a validated `Corpus` of utterances.

Adapters are plain functions in one dict; the synthetic corpus is generated to disk and read
back through the same CSV loader a user's own manifest goes through.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.ccc import DIMENSIONS
from bench.errors import BenchError
from bench.synthetic import SyntheticSpec, generate

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Utterance:
    path: str  # absolute
    labels: tuple[float, ...]  # one per corpus dimension, mapped to [-1, 1]
    split: str
    speaker: str
    seconds: float  # duration before any crop


@dataclass(frozen=True)
class Corpus:
    name: str
    source: str  # manifest path or folder
    dimensions: tuple[str, ...]
    scale: str  # the corpus' native label scale
    utterances: tuple[Utterance, ...]
    skipped: tuple[str, ...] = field(default=())  # "file/row: reason" for every row left out

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "dimensions": list(self.dimensions),
            "scale": self.scale,
            "n_utterances": {s: len(self.split(s)) for s in SPLITS},
            "hours": round(sum(u.seconds for u in self.utterances) / 3600, 4),
            "skipped_rows": len(self.skipped),
            "skipped_reasons": list(self.skipped[:20]),
        }


def _seeded_split(speakers: list[str], seed: int) -> dict[str, str]:
    uniq = sorted(set(speakers))
    order = np.random.default_rng([seed, 11]).permutation(len(uniq))
    n_val = max(1, round(0.15 * len(uniq)))
    n_test = max(1, round(0.15 * len(uniq)))
    return {
        uniq[i]: "test" if r < n_test else "val" if r < n_test + n_val else "train"
        for r, i in enumerate(order)
    }


def load_csv(
    manifest: str | Path,
    *,
    seed: int = 0,
    strict: bool = False,
    name: str = "csv",
    scale: tuple[float, float] = (-1.0, 1.0),
) -> Corpus:
    """Read `path,arousal,valence,dominance[,split,speaker]`; paths relative to the manifest.

    Bad rows (missing/unreadable/empty audio, non-finite or out-of-scale labels, duplicated paths)
    are skipped and listed in `Corpus.skipped`, or raise BenchError at once when `strict`.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise BenchError(
            f"manifest {manifest} does not exist; pass --data-root PATH/TO/manifest.csv"
        )
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        rows = list(reader)
    dims = tuple(d for d in DIMENSIONS if d in cols)
    if "path" not in cols or not dims:
        raise BenchError(
            f"{manifest}: needs a 'path' column and at least one of {', '.join(DIMENSIONS)}; found columns {cols}"
        )
    lo, hi = scale
    skipped: list[str] = []
    seen: set[str] = set()
    parsed: list[tuple[str, tuple[float, ...], str | None, str]] = []
    for i, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"{manifest}:{i}"
        try:
            rel = (row.get("path") or "").strip()
            if not rel:
                raise BenchError(f"{where}: empty path")
            path = (manifest.parent / rel).resolve()
            if str(path) in seen:
                raise BenchError(f"{where}: duplicated path {rel}")
            labels = []
            for d in dims:
                try:
                    v = float(row[d])
                except (TypeError, ValueError):
                    raise BenchError(f"{where}: {d}={row[d]!r} is not a number") from None
                if not math.isfinite(v) or not lo <= v <= hi:
                    raise BenchError(
                        f"{where}: {d}={v} is outside the scale [{lo}, {hi}] or not finite"
                    )
                labels.append(2 * (v - lo) / (hi - lo) - 1)
            if not path.is_file():
                raise BenchError(f"{where}: audio file {path} does not exist")
            try:
                info = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise BenchError(f"{where}: cannot read {path} ({exc})") from None
            if info.frames == 0:
                raise BenchError(f"{where}: {path} has zero samples")
            split = (row.get("split") or "").strip() or None
            if split is not None and split not in SPLITS:
                raise BenchError(f"{where}: split {split!r} must be one of {', '.join(SPLITS)}")
            seen.add(str(path))
            parsed.append(
                (
                    str(path),
                    tuple(labels),
                    split,
                    (row.get("speaker") or "").strip(),
                    info.frames / info.samplerate,
                )
            )
        except BenchError as exc:
            if strict:
                raise BenchError(f"{exc} (--strict: fix or remove the row)") from None
            skipped.append(str(exc))
    if not parsed:
        raise BenchError(
            f"{manifest}: no usable rows ({len(skipped)} skipped; first: {skipped[:1]})"
        )
    if any(p[2] is None for p in parsed):
        speakers = [p[3] or p[0] for p in parsed]  # no speaker: each file its own group
        assign = _seeded_split(speakers, seed)
        parsed = [
            (p, lab, s or assign[p_spk], spk, sec)
            for (p, lab, s, spk, sec), p_spk in zip(parsed, speakers, strict=True)
        ]
    utts = tuple(Utterance(p, lab, s, spk, sec) for p, lab, s, spk, sec in parsed)
    corpus = Corpus(name, str(manifest), dims, f"[{lo:g}, {hi:g}]", utts, tuple(skipped))
    for s in SPLITS:
        if not corpus.split(s):
            raise BenchError(
                f"{manifest}: the {s} split is empty; add rows with split={s} or speakers to split"
            )
    return corpus


def load_synthetic(
    data_root: str | None, *, seed: int, strict: bool, spec: SyntheticSpec
) -> Corpus:
    manifest = generate(spec, Path(data_root) if data_root else None)
    corpus = load_csv(manifest, seed=seed, strict=True, name="synthetic")
    return corpus


def _csv_adapter(data_root: str | None, *, seed: int, strict: bool, spec: SyntheticSpec) -> Corpus:
    if not data_root:
        raise BenchError("--dataset csv needs --data-root PATH/TO/manifest.csv")
    return load_csv(data_root, seed=seed, strict=strict)


ADAPTERS: dict[str, Callable[..., Corpus]] = {
    "synthetic": load_synthetic,
    "csv": _csv_adapter,
}


def load_dataset(
    name: str, data_root: str | None, *, seed: int, strict: bool, synthetic: SyntheticSpec
) -> Corpus:
    if name not in ADAPTERS:
        raise BenchError(f"unknown dataset {name!r}; valid datasets: {', '.join(ADAPTERS)}")
    return ADAPTERS[name](data_root, seed=seed, strict=strict, spec=synthetic)
