"""What a plan needs of a corpus: every clip's input length per split, nothing decoded.

Either a real corpus (its durations come from the audio index the corpus check keeps, so no audio
is read twice) or a corpus of durations alone, drawn like MSP-Podcast's, to ask what a corpus of
that size would cost before holding it. Lengths are after the run's crop, in 16 kHz samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.data.adapters.base import SPLITS, Corpus
from bench.data.audio import TARGET_SR
from bench.data.batching import AudioDataset
from bench.data.durations import msp_like_durations
from bench.data.synthetic import SPLIT_FRACTIONS
from bench.errors import BenchError

MSP_LIKE_MAX = 2_000_000  # clips; a typo's guard, ~18x MSP-Podcast


@dataclass(frozen=True)
class PlanCorpus:
    name: str
    source: str  # where the durations came from, in words
    dimensions: int  # outputs of the regression head
    lengths: dict[str, tuple[int, ...]]  # split -> samples of each clip after the crop
    cropped: dict[str, int]  # split -> clips longer than the crop (their window depends on seed)
    hours: float  # before the crop

    def clips(self) -> int:
        return sum(len(v) for v in self.lengths.values())

    def all_lengths(self) -> list[int]:
        return [n for s in SPLITS for n in self.lengths[s]]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "clips": {s: len(self.lengths[s]) for s in SPLITS},
            "cropped": self.cropped,
            "hours": round(self.hours, 2),
        }


def from_corpus(corpus: Corpus, max_seconds: float | None) -> PlanCorpus:
    """The lengths a run of `corpus` trains and evaluates on (the datasets' own crop rule)."""
    lengths, cropped = {}, {}
    for s in SPLITS:
        utts = corpus.split(s)
        ds = AudioDataset(utts, max_seconds, seed=0, train=s == "train")
        lengths[s] = tuple(ds.lengths())
        cropped[s] = sum(1 for u in utts if max_seconds and u.seconds >= max_seconds - 1e-3)
    return PlanCorpus(
        corpus.name,
        f"{corpus.source} (durations from the audio index; nothing decoded)",
        len(corpus.dimensions),
        lengths,
        cropped,
        sum(u.seconds for u in corpus.utterances) / 3600,
    )


def msp_like(n_clips: int, max_seconds: float | None, seed: int = 0) -> PlanCorpus:
    """`n_clips` durations drawn like MSP-Podcast's, split 70/15/15; no audio exists."""
    if not 1 <= n_clips <= MSP_LIKE_MAX:
        raise BenchError(f"--msp-like takes a clip count from 1 to {MSP_LIKE_MAX}, not {n_clips}")
    seconds = msp_like_durations(n_clips, seed)
    cap = round(max_seconds * TARGET_SR) if max_seconds else 10**12
    lengths, cropped, start = {}, {}, 0
    for i, (s, share) in enumerate(SPLIT_FRACTIONS):
        end = n_clips if i == len(SPLIT_FRACTIONS) - 1 else start + round(share * n_clips)
        part = seconds[start:end]
        lengths[s] = tuple(min(round(x * TARGET_SR), cap) for x in part)
        cropped[s] = int(sum(max_seconds is not None and x >= max_seconds - 1e-3 for x in part))
        start = end
    return PlanCorpus(
        f"msp-like-{n_clips}",
        f"{n_clips} durations drawn like MSP-Podcast's (bench.data.durations); no audio written",
        3,
        lengths,
        cropped,
        float(seconds.sum()) / 3600,
    )
