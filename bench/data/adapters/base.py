"""The plain data an adapter produces: listed rows, problems found, and the validated corpus."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelScale:
    """A corpus' native label range; labels are mapped linearly onto [-1, 1] for training."""

    low: float
    high: float
    origin: str  # where the range comes from, for the report

    def to_unit(self, value: float) -> float:
        return 2.0 * (value - self.low) / (self.high - self.low) - 1.0

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def span(self) -> str:
        return f"{self.low:g} to {self.high:g}"

    def describe(self) -> str:
        return f"{self.span()} ({self.origin}), mapped to [-1, 1]"


@dataclass(frozen=True)
class Row:
    """One utterance as the corpus lists it, before any check."""

    where: str  # "file:line", names the row in every message about it
    path: str  # absolute audio path
    values: tuple[str, ...]  # raw label text, one per listing dimension, native scale
    group: str  # the corpus' own split tag: csv split, MSP Split_Set, IEMOCAP session
    speaker: str


@dataclass(frozen=True)
class Problem:
    """Why a row was left out. `kind` is one of a few fixed words, so problems can be counted."""

    where: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass(frozen=True)
class Listing:
    """What an adapter read from a corpus' label files; no audio has been opened yet."""

    name: str
    source: str
    dimensions: tuple[str, ...]
    scale: LabelScale
    rows: tuple[Row, ...]
    problems: tuple[Problem, ...] = ()  # rows the label files themselves got wrong
    left_out: str = ""  # rows not used on purpose (another test set), said in the summary
    scales: tuple[LabelScale, ...] = ()  # one per dimension where they differ; () = `scale` for all

    def scale_of(self, i: int) -> LabelScale:
        """The scale of dimension `i` (an index into `dimensions`)."""
        return self.scales[i] if self.scales else self.scale

    def describe_scale(self) -> str:
        """The label scale in words, per dimension where they differ."""
        scales = [self.scale_of(i) for i in range(len(self.dimensions))]
        if len(set(scales)) <= 1:
            return (scales[0] if scales else self.scale).describe()
        spans = ", ".join(f"{d} {s.span()}" for d, s in zip(self.dimensions, scales, strict=True))
        return f"{spans} ({scales[0].origin}), mapped to [-1, 1]"


# Given the rows that passed every check: the split of each ("" leaves a row out) and a sentence
# saying how splits were made.
SplitRule = Callable[[list[Row]], tuple[list[str], str]]


@dataclass(frozen=True)
class Utterance:
    path: str  # absolute
    labels: tuple[float, ...]  # one per corpus dimension, mapped to [-1, 1]
    split: str
    speaker: str
    seconds: float  # duration before any crop


def count_kinds(problems: tuple[Problem, ...] | list[Problem]) -> dict[str, int]:
    return dict(Counter(p.kind for p in problems).most_common())


@dataclass(frozen=True)
class Corpus:
    name: str
    source: str  # manifest path or corpus folder
    dimensions: tuple[str, ...]
    scale: str  # the corpus' native label scale, in words
    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...] = ()  # every row left out as bad input
    split_rule: str = ""  # how train/val/test were made, in words
    label_ranges: tuple[tuple[float, float], ...] = ()  # native (low, high) per dimension

    @property
    def skipped(self) -> tuple[str, ...]:
        """One message per row left out as bad input: `file:line: what is wrong`."""
        return tuple(str(p) for p in self.problems)

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    def fingerprint(self) -> str:
        """A content hash of what a run trains on: every utterance's path, size and modification
        time, duration, labels, speaker and split (16 hex digits). Equal for runs on the same
        data; a clip deleted, added, replaced or relabelled between runs changes it."""
        h = hashlib.sha256()
        for u in sorted(self.utterances, key=lambda u: u.path):
            try:
                st = os.stat(u.path)
                stamp = [st.st_size, st.st_mtime_ns]
            except OSError:  # gone since it was checked: the hash still says so
                stamp = [-1, -1]
            h.update(json.dumps([u.path, stamp, u.seconds, u.labels, u.speaker, u.split]).encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "dimensions": list(self.dimensions),
            "scale": self.scale,
            "label_range": {
                d: list(r) for d, r in zip(self.dimensions, self.label_ranges, strict=True)
            },
            "split_rule": self.split_rule,
            "n_utterances": {s: len(self.split(s)) for s in SPLITS},
            "hours": round(sum(u.seconds for u in self.utterances) / 3600, 4),
            "skipped_rows": len(self.problems),
            "skipped_by_reason": count_kinds(self.problems),
            "skipped_reasons": list(self.skipped[:20]),
            "fingerprint": self.fingerprint(),
        }
