"""`--dataset csv --data-root manifest.csv`: any corpus described by one CSV file.

Columns (names case-insensitive): `path` (relative to the manifest's folder, or absolute) and any
non-empty subset of `arousal`, `valence`, `dominance` (labels on [-1, 1], or on the scale
`--label-range` gives; CCC is reported for the dimensions present; `--label-columns
arousal=EmoAct,valence=EmoVal,dominance=EmoDom` reads them from other columns); optional `split`
(train, val, test; also training/validation/dev/development and MSP-Podcast's Train,
Development, Test1, whose other test sets Test2/Test3 are left out, said in the summary) and
`speaker`. Rows without a split get a seeded speaker-independent one (70/15/15 of the speakers),
or a seeded split by file when the speaker is unknown.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.ccc import DIMENSIONS
from bench.data.adapters.base import Corpus, LabelScale, Listing, Problem, Row, SplitRule
from bench.data.adapters.label_range import apply_label_range
from bench.data.adapters.validate import assemble
from bench.errors import BenchError

if TYPE_CHECKING:  # the config names the corpus; no adapter needs more of it
    from bench.config import DataConfig

SCALE = LabelScale(-1.0, 1.0, "csv manifest labels, read as given")
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "development": "val",
    "test": "test",
    "testing": "test",
    "test1": "test",  # MSP-Podcast's Split_Set: Test1 is its standard test set
}
# Split names of other test sets (MSP-Podcast's Test2, Test3): left out on purpose, not bad rows.
OTHER_TEST_SETS = ("test2", "test3")
VAL_SHARE = TEST_SHARE = 0.15  # of the speakers, when the manifest has no split


def find_manifest(data_root: str | None) -> Path:
    """The manifest file `data_root` names (or `manifest.csv` inside a folder)."""
    if not data_root:
        raise BenchError("--dataset csv needs --data-root PATH/TO/manifest.csv")
    path = Path(data_root).expanduser()
    if path.is_dir():
        if (path / "manifest.csv").is_file():
            return path / "manifest.csv"
        raise BenchError(
            f"--data-root {path} is a folder without manifest.csv; "
            "pass the manifest file itself: --data-root PATH/TO/manifest.csv"
        )
    if not path.is_file():
        raise BenchError(f"manifest {path} does not exist; pass --data-root PATH/TO/manifest.csv")
    return path


def _cell(rec: dict, cols: dict[str, str], name: str) -> str:
    """The stripped text of column `name` ("" when the column or the cell is missing)."""
    return (rec.get(cols[name]) or "").strip() if name in cols else ""


def read_manifest(
    manifest: Path,
    name: str = "csv",
    scale: LabelScale = SCALE,
    label_columns: tuple[tuple[str, str], ...] = (),
) -> Listing:
    """The manifest's rows. A missing column or unreadable file is an error; a bad row a Problem.
    `label_columns`: (dimension, column) pairs (--label-columns) instead of columns named
    arousal, valence, dominance."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            cols = {c.strip().lower(): c for c in header if c}
            if label_columns:
                missing = [col for _, col in label_columns if col.strip().lower() not in cols]
                if missing:
                    raise BenchError(
                        f"{manifest}: --label-columns names {', '.join(missing)}, not in its "
                        f"header {header}"
                    )
                for dim, col in label_columns:  # a dimension read from the column it names
                    cols[dim] = cols[col.strip().lower()]
            dims = tuple(d for d in DIMENSIONS if d in cols)
            if "path" not in cols or not dims:
                raise BenchError(
                    f"{manifest}: missing required columns: a manifest needs 'path' and at "
                    f"least one of {', '.join(DIMENSIONS)} (optional: split, speaker); "
                    f"its header has {header or 'nothing'}"
                )
            rows, problems = [], []
            other_tests: dict[str, int] = {}
            for rec in reader:
                where = f"{manifest}:{reader.line_num}"
                rel = _cell(rec, cols, "path")
                if not rel:
                    problems.append(Problem(where, "empty path", "the path cell is empty"))
                    continue
                split_text = _cell(rec, cols, "split")
                if split_text.lower() in OTHER_TEST_SETS:
                    other_tests[split_text] = other_tests.get(split_text, 0) + 1
                    continue
                group = SPLIT_NAMES.get(split_text.lower(), "?") if split_text else ""
                if group == "?":
                    problems.append(
                        Problem(
                            where,
                            "bad split",
                            f"split {split_text!r} is not train, val or test (nor {', '.join(sorted({k for k in SPLIT_NAMES if k not in ('train', 'val', 'test')}))})",
                        )
                    )
                    continue
                rows.append(
                    Row(
                        where,
                        os.path.abspath(manifest.parent / rel),
                        tuple(_cell(rec, cols, d) for d in dims),
                        group,
                        _cell(rec, cols, "speaker"),
                    )
                )
    except UnicodeDecodeError as exc:
        raise BenchError(f"{manifest}: not a UTF-8 text CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise BenchError(f"{manifest}: not a readable CSV ({exc})") from None
    left_out = ", ".join(f"{n} rows of {s}" for s, n in other_tests.items())
    return Listing(
        name,
        str(manifest),
        dims,
        scale,
        tuple(rows),
        tuple(problems),
        left_out=f"{left_out} (other test sets; Test1 is the test set)" if left_out else "",
    )


def seeded_split(keys: list[str], seed: int) -> dict[str, str]:
    """Each distinct key (speaker) to train/val/test: 15% val, 15% test (at least one each)."""
    uniq = sorted(set(keys))
    order = np.random.default_rng([seed, 11]).permutation(len(uniq))
    n_val = max(1, round(VAL_SHARE * len(uniq)))
    n_test = max(1, round(TEST_SHARE * len(uniq)))
    return {
        uniq[i]: "test" if r < n_test else "val" if r < n_test + n_val else "train"
        for r, i in enumerate(order)
    }


def split_rule(seed: int) -> SplitRule:
    def rule(rows: list[Row]) -> tuple[list[str], str]:
        given = [r for r in rows if r.group]
        if len(given) == len(rows):
            return [r.group for r in rows], "split column of the manifest"
        keys = [r.speaker or r.path for r in rows]
        assign = seeded_split([k for k, r in zip(keys, rows, strict=True) if not r.group], seed)
        by = (
            "speaker-independent split of the speakers"
            if all(r.speaker for r in rows if not r.group)
            else "split by speaker where given, else by file (not speaker-independent)"
        )
        text = f"seeded (seed {seed}) 70/15/15 {by}"
        if given:
            text = f"split column where given; other rows: {text}"
        return [r.group or assign[k] for r, k in zip(rows, keys, strict=True)], text

    return rule


def load(data: DataConfig, seed: int) -> Corpus:
    columns = data.hf.label_columns if data.hf else ()
    listing = read_manifest(find_manifest(data.root), label_columns=columns)
    listing = apply_label_range(listing, data.label_range)
    return assemble(listing, split_rule(seed), data.strict)
