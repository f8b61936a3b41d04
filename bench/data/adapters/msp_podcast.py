"""`--dataset msp-podcast --data-root MSP-PODCAST`: the MSP-Podcast layout (release 1.11 and later).

Reads `Labels/labels_consensus.csv` (FileName, EmoAct, EmoVal, EmoDom on the 1-7 consensus
scale, SpkrID, Split_Set) and the audio under `Audios/`. Split_Set Train -> train,
Development -> val, and the test set chosen with `--test-set` (Test1 by default) -> test; rows of
the other test sets are not used (the summary says how many).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.adapters.base import Corpus, LabelScale, Listing, Problem, Row
from bench.data.adapters.validate import assemble
from bench.errors import BenchError

if TYPE_CHECKING:  # the config names the corpus; no adapter needs more of it
    from bench.config import DataConfig

LABELS = Path("Labels") / "labels_consensus.csv"
AUDIO = "Audios"
SCALE = LabelScale(1.0, 7.0, "MSP-Podcast consensus ratings")
COLUMNS = {"arousal": "EmoAct", "valence": "EmoVal", "dominance": "EmoDom"}
REQUIRED = ("FileName", *COLUMNS.values(), "Split_Set")
FIXED_SPLITS = {"Train": "train", "Development": "val"}
DEFAULT_TEST_SET = "Test1"


def corpus_root(data_root: str | None) -> Path:
    """The MSP-Podcast folder; the labels file itself is accepted too."""
    if not data_root:
        raise BenchError(
            "--dataset msp-podcast needs --data-root PATH/TO/MSP-PODCAST "
            f"(the folder holding {LABELS} and {AUDIO}/)"
        )
    root = Path(data_root).expanduser()
    if root.is_file() and root.name == LABELS.name:
        root = root.parent.parent
    if not (root / LABELS).is_file():
        raise BenchError(
            f"--data-root {root} does not look like MSP-Podcast: {root / LABELS} is missing; "
            f"point it at the folder holding {LABELS} and {AUDIO}/"
        )
    return root


def read_labels(root: Path, test_set: str | None) -> Listing:
    labels = root / LABELS
    with open(labels, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise BenchError(
                f"{labels}: missing required columns {missing}; an MSP-Podcast labels file "
                f"has {', '.join(REQUIRED)} (and SpkrID); its header has {header}"
            )
        records = [({k.strip(): v for k, v in rec.items() if k}, reader.line_num) for rec in reader]
    present = sorted({(r.get("Split_Set") or "").strip() for r, _ in records})
    tests = [s for s in present if s.lower().startswith("test")]
    wanted = test_set or DEFAULT_TEST_SET
    chosen = next((s for s in tests if s.lower() == wanted.lower()), None)
    if chosen is None:
        raise BenchError(
            f"--test-set {wanted}: {labels} has no rows with Split_Set={wanted}; "
            f"its test sets are {', '.join(tests) or 'none'}"
        )
    rows, problems, unused = [], [], Counter()
    for rec, line in records:
        where = f"{labels}:{line}"
        split_set = (rec.get("Split_Set") or "").strip()
        if split_set not in FIXED_SPLITS and split_set != chosen:
            unused[split_set or "(empty)"] += 1
            continue
        name = (rec.get("FileName") or "").strip()
        if not name:
            problems.append(Problem(where, "empty path", "FileName is empty"))
            continue
        rows.append(
            Row(
                where,
                os.path.abspath(root / AUDIO / name),
                tuple((rec.get(col) or "") for col in COLUMNS.values()),
                split_set,
                (rec.get("SpkrID") or "").strip(),
            )
        )
    left_out = ", ".join(f"{s} ({n} rows)" for s, n in sorted(unused.items()))
    return Listing(
        "msp-podcast",
        str(root),
        tuple(COLUMNS),
        SCALE,
        tuple(rows),
        tuple(problems),
        f"not used: {left_out}" if left_out else "",
    )


def split_rule(rows: list[Row]) -> tuple[list[str], str]:
    # read_labels kept only Train, Development and the chosen test set.
    tests = sorted({r.group for r in rows if r.group not in FIXED_SPLITS})
    splits = [FIXED_SPLITS.get(r.group, "test") for r in rows]
    return splits, f"Split_Set: Train -> train, Development -> val, {'/'.join(tests)} -> test"


def load(data: DataConfig, seed: int) -> Corpus:
    return assemble(read_labels(corpus_root(data.root), data.test_set), split_rule, data.strict)
