"""`--dataset iemocap --data-root IEMOCAP_full_release`: the IEMOCAP release layout.

Labels come from `SessionN/dialog/EmoEvaluation/*.txt`, one line per turn:
`[START - END]<tab>Ses01F_impro01_F000<tab>neu<tab>[V, A, D]` with valence, activation (arousal)
and dominance averaged over raters on a 1-5 scale; the audio is
`SessionN/sentences/wav/<dialog>/<turn>.wav`. The speaker is the session plus the letter that
starts the turn's last part (F000 -> Ses01F). Splits are leave-one-session-out: `--fold N` tests on
session N and validates on the session before it (N-1, session 5 for N=1); the default fold 5
trains on sessions 1-3, validates on 4 and tests on 5. Each session holds two speakers of its own,
so every split is speaker-independent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.adapters.base import Corpus, LabelScale, Listing, Problem, Row, SplitRule
from bench.data.adapters.validate import assemble
from bench.errors import BenchError

if TYPE_CHECKING:  # the config names the corpus; no adapter needs more of it
    from bench.config import DataConfig

SESSIONS = (1, 2, 3, 4, 5)
DEFAULT_FOLD = 5
SCALE = LabelScale(1.0, 5.0, "IEMOCAP rater means")
DIMENSIONS = ("arousal", "valence", "dominance")
_TURN = re.compile(
    r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(?P<turn>Ses\S+)\s+\S+\s+"
    r"\[(?P<v>[^,\]]*),(?P<a>[^,\]]*),(?P<d>[^,\]]*)\]\s*$"
)


def _session_dir(root: Path, n: int) -> Path:
    return root / f"Session{n}"


def corpus_root(data_root: str | None) -> Path:
    """The folder holding Session1..Session5 (IEMOCAP_full_release)."""
    if not data_root:
        raise BenchError(
            "--dataset iemocap needs --data-root PATH/TO/IEMOCAP_full_release "
            "(the folder holding Session1..Session5)"
        )
    root = Path(data_root).expanduser()
    if not any((_session_dir(root, n) / "dialog" / "EmoEvaluation").is_dir() for n in SESSIONS):
        nested = root / "IEMOCAP_full_release"
        hint = f"; did you mean {nested}?" if nested.is_dir() else ""
        raise BenchError(
            f"--data-root {root} does not look like IEMOCAP: no SessionN/dialog/EmoEvaluation "
            f"folder in it; point it at the folder holding Session1..Session5{hint}"
        )
    return root


def read_evaluations(root: Path) -> Listing:
    rows: list[Row] = []
    problems: list[Problem] = []
    for n in SESSIONS:
        folder = _session_dir(root, n) / "dialog" / "EmoEvaluation"
        if not folder.is_dir():
            continue  # a missing session shows up as an empty split, named there
        # Copies made on macOS carry "._name.txt" resource forks next to the real files.
        for txt in sorted(p for p in folder.glob("*.txt") if not p.name.startswith(".")):
            for line_no, line in enumerate(
                txt.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
            ):
                if not line.startswith("["):
                    continue  # rater lines (C-E2:, A-F1:) and the "%" header
                where = f"{txt}:{line_no}"
                m = _TURN.match(line)
                if m is None:
                    problems.append(
                        Problem(where, "unparseable label line", f"cannot parse {line.strip()!r}")
                    )
                    continue
                turn = m["turn"]
                dialog, last = turn.rsplit("_", 1) if "_" in turn else (turn, "?")
                rows.append(
                    Row(
                        where,
                        os.path.abspath(
                            _session_dir(root, n) / "sentences" / "wav" / dialog / f"{turn}.wav"
                        ),
                        (m["a"], m["v"], m["d"]),  # the file says [V, A, D]
                        f"Session{n}",
                        f"{turn[:5]}{last[:1]}",
                    )
                )
    return Listing("iemocap", str(root), DIMENSIONS, SCALE, tuple(rows), tuple(problems))


def fold_sessions(fold: int | None) -> tuple[int, int]:
    """(test session, validation session) of a leave-one-session-out fold."""
    test = DEFAULT_FOLD if fold is None else fold
    if test not in SESSIONS:
        raise BenchError(f"--fold {fold}: IEMOCAP folds are 1-5 (the session held out for test)")
    return test, SESSIONS[(test - 2) % len(SESSIONS)]


def split_rule(fold: int | None) -> SplitRule:
    test, val = fold_sessions(fold)

    def rule(rows: list[Row]) -> tuple[list[str], str]:
        splits = [
            "test"
            if r.group == f"Session{test}"
            else "val"
            if r.group == f"Session{val}"
            else "train"
            for r in rows
        ]
        train = ", ".join(str(n) for n in SESSIONS if n not in (test, val))
        return splits, (
            f"leave-one-session-out fold {test}: sessions {train} train, "
            f"session {val} val, session {test} test"
        )

    return rule


def load(data: DataConfig, seed: int) -> Corpus:
    rule = split_rule(data.fold)  # a bad --fold fails before any file is read
    return assemble(read_evaluations(corpus_root(data.root)), rule, data.strict)
