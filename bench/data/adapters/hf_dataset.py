"""`--dataset hf --data-root FOLDER_OR_NAME`: a Hugging Face `datasets` dataset.

From a folder written by `save_to_disk` (a Dataset or a DatasetDict) or a hub name (`load_dataset`;
needs the network or the hub's cache). Columns: `--audio-column` (default `audio`: an Audio
feature, file paths or file bytes, read undecoded, see `hf_audio`); `--label-columns
arousal=EmoAct,valence=EmoVal` (any subset; default: columns named arousal, valence, dominance);
`--speaker-column` (default: a column named speaker). Splits: `--hf-splits
train=train,val=validation,test=test`; without it, splits named train, val(idation) and test are
used as such, and a dataset of one split is split by speaker as a csv manifest without a split
column is. Labels are read on [-1, 1] unless `--label-range` gives their scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.ccc import DIMENSIONS
from bench.data.adapters import csv_manifest
from bench.data.adapters.base import (
    SPLITS,
    Corpus,
    LabelScale,
    Listing,
    Problem,
    Row,
    SplitRule,
)
from bench.data.adapters.hf_audio import audio_cells
from bench.data.adapters.hf_options import HFOptions
from bench.data.adapters.label_range import apply_label_range
from bench.data.adapters.validate import assemble
from bench.errors import BenchError

if TYPE_CHECKING:  # the config names the corpus; no adapter needs more of it
    from bench.config import DataConfig

SCALE = LabelScale(-1.0, 1.0, "dataset labels, read as given")
INSTALL_HINT = "--dataset hf needs the `datasets` package: pip install 'serbench[hf]' (or pip install datasets)"


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise BenchError(INSTALL_HINT) from None
    return datasets


def open_dataset(data_root: str | None) -> tuple[str, dict[str, Any]]:
    """The data root in words (an absolute folder, or the hub name) and its splits by name.

    A dataset without splits comes back as one split named "".
    """
    if not data_root:
        raise BenchError(
            "--dataset hf needs --data-root: a folder written by save_to_disk, or a hub name"
        )
    hf = _datasets()
    folder = Path(data_root).expanduser()
    if folder.exists():
        source = str(folder.resolve())
        try:
            loaded = hf.load_from_disk(source)
        except (OSError, ValueError) as exc:
            raise BenchError(
                f"--data-root {source} is not a dataset written by save_to_disk ({exc}); "
                "point it at the folder save_to_disk wrote"
            ) from None
    else:
        source = data_root
        try:
            loaded = hf.load_dataset(data_root)
        except Exception as exc:  # the hub client raises many kinds: offline, not found, gated
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BenchError(
                f"--data-root {data_root}: no such folder, and loading it from the Hugging Face "
                f"hub failed ({type(exc).__name__}: {first}); pass a folder written by "
                "save_to_disk, or a hub name while online (or cached, with HF_HUB_OFFLINE=1)"
            ) from None
    if isinstance(loaded, hf.Dataset):
        return source, {"": loaded}
    if isinstance(loaded, hf.DatasetDict):
        return source, dict(loaded)
    raise BenchError(f"--data-root {data_root}: {type(loaded).__name__} is not a Dataset")


def pick_splits(
    parts: dict[str, Any], opts: HFOptions, source: str
) -> tuple[list[tuple[str, str]], str]:
    """(the dataset's split, ours: train/val/test, or "" to split by speaker) for each split
    read, and a note naming the splits not read."""
    if opts.splits:
        if list(parts) == [""]:
            raise BenchError(
                f"--hf-splits: {source} has no splits; leave the flag out to split it by speaker"
            )
        unknown = [theirs for _, theirs in opts.splits if theirs not in parts]
        if unknown:
            raise BenchError(
                f"--hf-splits: {source} has no split {unknown[0]!r}; its splits are "
                f"{', '.join(parts) or 'none'}"
            )
        chosen = [(theirs, ours) for ours, theirs in opts.splits]
    elif len(parts) == 1:
        chosen = [(next(iter(parts)), "")]
    else:
        ours = {name: csv_manifest.SPLIT_NAMES.get(name.lower()) for name in parts}
        found = [o for o in ours.values() if o]
        if sorted(found) != sorted(SPLITS):
            raise BenchError(
                f"{source} has splits {', '.join(parts)}; say which is which: "
                "--hf-splits train=NAME,val=NAME,test=NAME"
            )
        chosen = [(name, o) for name, o in ours.items() if o]
    read = {theirs for theirs, _ in chosen}
    unused = [f"{name} ({parts[name].num_rows} rows)" for name in parts if name not in read]
    return chosen, f"not used: splits {', '.join(unused)}" if unused else ""


def _columns(ds: Any, opts: HFOptions, source: str) -> tuple[tuple[str, ...], list[str], str]:
    """The label dimensions, their columns, and the speaker column ("" when none)."""
    names = ds.column_names
    lower = {c.lower(): c for c in names}
    pairs = opts.label_columns or tuple((d, lower[d]) for d in DIMENSIONS if d in lower)
    if not pairs:
        raise BenchError(
            f"{source}: no label columns named {', '.join(DIMENSIONS)}; its columns are {names}; "
            "map yours: --label-columns arousal=EmoAct,valence=EmoVal,dominance=EmoDom"
        )
    wanted = [("--label-columns", c) for _, c in pairs]
    for flag, col in [*wanted, ("--speaker-column", opts.speaker_column or "")]:
        if col and col not in names:
            raise BenchError(f"{flag}: {source} has no column {col!r}; its columns are {names}")
    speaker = opts.speaker_column or lower.get("speaker", "")
    return tuple(d for d, _ in pairs), [c for _, c in pairs], speaker


def _text(value: Any) -> str:
    """A label cell as the text validation parses (repr keeps every digit of a float)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def read_dataset(data_root: str | None, opts: HFOptions) -> tuple[Listing, list[tuple[str, str]]]:
    """The rows of every split read, and (the dataset's split, ours) for each; a missing column
    is an error, a row without audio a Problem."""
    source, parts = open_dataset(data_root)
    chosen, left_out = pick_splits(parts, opts, source)
    rows, problems, layout = [], [], None
    for theirs, ours in chosen:
        ds = parts[theirs]
        at = f"{source}[{theirs}]" if theirs else source
        dims, label_cols, speaker = _columns(ds, opts, at)
        if layout not in (None, (dims, label_cols, speaker)):
            raise BenchError(f"{at}: its label and speaker columns differ from the other splits'")
        layout = (dims, label_cols, speaker)
        cells = audio_cells(ds, opts.audio_column, theirs, source)
        # Labels and speakers only: arrow reads these columns without touching the audio.
        table = ds.select_columns([*label_cols, *([speaker] if speaker else [])]).to_dict()
        for i, cell in enumerate(cells):
            where = f"{at} row {i}" + (f" ({cell.name})" if cell.name else "")
            if cell.path is None:
                problems.append(Problem(where, "missing audio", cell.missing))
                continue
            values = tuple(_text(table[c][i]) for c in label_cols)
            who = _text(table[speaker][i]) if speaker else ""
            rows.append(Row(where, cell.path, values, ours, who))
    assert layout is not None  # pick_splits chose at least one split
    listing = Listing("hf", source, layout[0], SCALE, tuple(rows), tuple(problems), left_out)
    return listing, chosen


def split_rule(seed: int, chosen: list[tuple[str, str]]) -> SplitRule:
    """The dataset's own splits where it has them, else csv's seeded split by speaker."""
    by_speaker = csv_manifest.split_rule(seed)
    named = ", ".join(f"{theirs} -> {ours}" for theirs, ours in chosen)

    def rule(rows: list[Row]) -> tuple[list[str], str]:
        if rows and all(r.group for r in rows):
            return [r.group for r in rows], f"the dataset's splits: {named}"
        return by_speaker(rows)

    return rule


def load(data: DataConfig, seed: int) -> Corpus:
    listing, chosen = read_dataset(data.root, data.hf or HFOptions())
    listing = apply_label_range(listing, data.label_range)
    return assemble(listing, split_rule(seed, chosen), data.strict)
