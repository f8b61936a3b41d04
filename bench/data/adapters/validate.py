"""From a listing to a corpus: check every row, map labels to [-1, 1], assign splits.

Every problem names its row and what is wrong. By default a bad row is left out and counted;
with `strict` any bad row stops the command before anything trains.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.data.adapters.base import (
    SPLITS,
    Corpus,
    Listing,
    Problem,
    Row,
    SplitRule,
    Utterance,
    count_kinds,
)
from bench.data.adapters.probe_cache import probe_many
from bench.data.audio import AudioInfo
from bench.errors import BenchError

_EXAMPLES = 3  # bad rows quoted in an error message; the rest are counted


def describe_problems(problems: list[Problem] | tuple[Problem, ...]) -> str:
    """One line: how many bad rows, how many of each kind, and the first few in full."""
    kinds = ", ".join(f"{n} {kind}" for kind, n in count_kinds(problems).items())
    examples = "; ".join(str(p) for p in problems[:_EXAMPLES])
    more = f"; and {len(problems) - _EXAMPLES} more" if len(problems) > _EXAMPLES else ""
    return f"{len(problems)} bad rows ({kinds}); e.g. {examples}{more}"


def _labels(row: Row, listing: Listing) -> tuple[float, ...] | Problem:
    out = []
    for i, (dim, text) in enumerate(zip(listing.dimensions, row.values, strict=True)):
        scale = listing.scale_of(i)
        text = (text or "").strip()
        if not text:
            return Problem(row.where, "missing label", f"{dim} is empty")
        try:
            value = float(text)
        except ValueError:
            return Problem(row.where, "non-numeric label", f"{dim}={text!r} is not a number")
        if not math.isfinite(value):
            kind = "NaN label" if math.isnan(value) else "infinite label"
            return Problem(row.where, kind, f"{dim}={text} is not a finite number")
        if not scale.contains(value):
            return Problem(
                row.where,
                "out-of-range label",
                f"{dim}={value:g} is outside the corpus scale {scale.low:g}..{scale.high:g}",
            )
        out.append(scale.to_unit(value))
    return tuple(out)


def check_rows(
    listing: Listing, cache_dir: Path | None = None
) -> tuple[list[tuple[Row, tuple[float, ...], AudioInfo]], list[Problem]]:
    """Rows that pass every check (with mapped labels and audio info), and a Problem per other row.

    Checks, in order: the path is listed once, every label is a finite number inside the scale,
    the audio file exists, is not empty, decodes, is complete and is long enough.
    """
    problems = list(listing.problems)
    first_seen: dict[str, str] = {}
    candidates: list[tuple[Row, tuple[float, ...]]] = []
    for row in listing.rows:
        if row.path in first_seen:
            problems.append(
                Problem(
                    row.where,
                    "duplicated path",
                    f"{row.path} is already listed at {first_seen[row.path]}",
                )
            )
            continue
        first_seen[row.path] = row.where
        labels = _labels(row, listing)
        if isinstance(labels, Problem):
            problems.append(labels)
        else:
            candidates.append((row, labels))
    verdicts = probe_many([row.path for row, _ in candidates], cache_dir)
    good = []
    for row, labels in candidates:
        v = verdicts[row.path]
        if isinstance(v, AudioInfo):
            good.append((row, labels, v))
        else:
            problems.append(Problem(row.where, v.kind, str(v)))
    return good, problems


def assemble(
    listing: Listing, split_rule: SplitRule, strict: bool, cache_dir: Path | None = None
) -> Corpus:
    """Check `listing`, then build the corpus with the splits `split_rule` assigns.

    Raises BenchError when `strict` and any row is bad, when no row is usable, or when a split
    comes out empty.
    """
    good, problems = check_rows(listing, cache_dir)
    if problems and strict:
        raise BenchError(
            f"{listing.source}: {describe_problems(problems)} "
            "(--strict: fix or remove these rows, or drop --strict to skip them)"
        )
    if not good:
        hint = ""
        if problems and all(p.kind == "out-of-range label" for p in problems):
            hint = (
                f"; every label is outside {listing.describe_scale()}: "
                "rescale the labels to that range"
            )
        why = (
            describe_problems(problems) if problems else "it lists none; add rows below its header"
        )
        raise BenchError(f"{listing.source}: no usable rows; {why}{hint}")
    splits, rule = split_rule([row for row, _, _ in good])
    utts = tuple(
        Utterance(row.path, labels, split, row.speaker, info.seconds)
        for (row, labels, info), split in zip(good, splits, strict=True)
        if split
    )
    corpus = Corpus(
        listing.name,
        listing.source,
        listing.dimensions,
        listing.describe_scale(),
        utts,
        tuple(problems),
        "; ".join(x for x in (rule, listing.left_out) if x),
        tuple((s.low, s.high) for s in map(listing.scale_of, range(len(listing.dimensions)))),
    )
    speakers = len({row.speaker or row.path for row, _, _ in good})
    for s in SPLITS:
        if not corpus.split(s) and speakers < len(SPLITS) and "seeded" in corpus.split_rule:
            raise BenchError(
                f"{listing.source}: the {s} split is empty: the {corpus.split_rule} keeps each "
                f"speaker in one split, and {speakers} speaker{'s' if speakers != 1 else ''} "
                f"cannot fill {len(SPLITS)} splits; add rows of more speakers (the 70/15/15 "
                "split needs about 7) or give the manifest a split column"
            )
        if not corpus.split(s):
            raise BenchError(
                f"{listing.source}: the {s} split is empty ({corpus.split_rule}); "
                f"add usable rows to it"
                + (f"; skipped as bad input: {describe_problems(problems)}" if problems else "")
            )
    return corpus
