"""Which columns and splits of a Hugging Face dataset to read, parsed from the command line.

Kept apart from the adapter so that planning a sweep (and the run config that records these
options) does not import `datasets`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.ccc import DIMENSIONS
from bench.data.adapters.base import SPLITS
from bench.errors import BenchError

Pairs = tuple[tuple[str, str], ...]


def _pairs(text: str, flag: str, keys: tuple[str, ...], example: str) -> Pairs:
    """`a=x,b=y` -> (("a", "x"), ("b", "y")) in the order of `keys`; each key at most once."""
    found: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, _, value = (x.strip() for x in part.partition("="))
        if key not in keys or not value:
            raise BenchError(
                f"{flag} {text!r}: {part!r} is not NAME=COLUMN with NAME one of "
                f"{', '.join(keys)}; e.g. {flag} {example}"
            )
        if key in found:
            raise BenchError(f"{flag} {text!r}: {key} is given twice")
        found[key] = value
    if not found:
        raise BenchError(f"{flag} needs NAME=VALUE pairs, e.g. {flag} {example}")
    return tuple((k, found[k]) for k in keys if k in found)


@dataclass(frozen=True)
class HFOptions:
    audio_column: str = "audio"
    # (dimension, column); () = the columns named arousal, valence, dominance (any case).
    label_columns: Pairs = ()
    speaker_column: str | None = None  # None: a column named `speaker` (any case), if there is one
    # (train/val/test, the dataset's split name); () = the dataset's own split names.
    splits: Pairs = ()

    @classmethod
    def parse(
        cls,
        audio_column: str | None = None,
        label_columns: str | None = None,
        speaker_column: str | None = None,
        splits: str | None = None,
    ) -> HFOptions:
        """From the flags' text; raises BenchError naming the flag that is malformed."""
        if audio_column is not None and not audio_column.strip():
            raise BenchError("--audio-column needs a column name (default: audio)")
        if speaker_column is not None and not speaker_column.strip():
            raise BenchError("--speaker-column needs a column name")
        split_pairs: Pairs = ()
        if splits is not None:
            split_pairs = _pairs(
                splits, "--hf-splits", SPLITS, "train=train,val=validation,test=test"
            )
            if len(split_pairs) != len(SPLITS):
                named = ", ".join(k for k, _ in split_pairs)
                raise BenchError(
                    f"--hf-splits {splits!r} names {named} only; name the dataset's split for "
                    "each of train, val and test, or leave the flag out to split a dataset "
                    "without splits by speaker"
                )
            theirs = [v for _, v in split_pairs]
            if len(set(theirs)) < len(theirs):
                raise BenchError(f"--hf-splits {splits!r}: each split may serve one purpose only")
        return cls(
            (audio_column or "audio").strip(),
            _pairs(label_columns, "--label-columns", DIMENSIONS, "arousal=EmoAct,valence=EmoVal")
            if label_columns is not None
            else (),
            speaker_column.strip() if speaker_column is not None else None,
            split_pairs,
        )

    def with_labels(self, label_columns: Pairs) -> HFOptions:
        return HFOptions(self.audio_column, label_columns, self.speaker_column, self.splits)

    @classmethod
    def from_dict(cls, d: dict) -> HFOptions:
        """Back from `dataclasses.asdict` after a JSON round trip (lists for tuples)."""
        return cls(
            d.get("audio_column") or "audio",
            tuple(tuple(p) for p in d.get("label_columns") or ()),  # type: ignore[misc]
            d.get("speaker_column"),
            tuple(tuple(p) for p in d.get("splits") or ()),  # type: ignore[misc]
        )
