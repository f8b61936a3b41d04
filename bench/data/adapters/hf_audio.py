"""A Hugging Face dataset's audio column as files that the project's own audio pipeline reads.

An audio column holds encoded files (wav, flac, ogg, ...) as bytes, or paths to them. It is read
undecoded (`Audio(decode=False)`), so `datasets` needs no audio decoder of its own (torchcodec);
the bytes are written once to files under the cache folder, and from there on the audio check,
the loader (soundfile, any rate, downmix, resample) and the prefix cache's content hash treat
them like any corpus' files. A cell holding only the path of an existing local file is used where
it is. Which row is which file is remembered under a key of the dataset's arrow files (path,
size, modification time), so each run's process finds the files without reading the audio again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.adapters.probe_cache import write_json
from bench.errors import BenchError
from bench.paths import cache_root

INDEX_VERSION = 1  # bump when what a cell becomes changes, so old indexes are not reused
BATCH_ROWS = 64  # rows read at a time: memory holds a few dozen clips, not the column


@dataclass(frozen=True)
class AudioCell:
    """One row's audio: a file soundfile can open, or why there is none."""

    path: str | None
    name: str  # the file name the dataset gives the clip, for messages ("" when it gives none)
    missing: str = ""  # why there is no audio, when `path` is None


def _check_feature(feature: Any, column: str, source: str) -> bool:
    """Whether `column` is an Audio feature (to be read undecoded); refuse what holds no files."""
    from datasets import Audio, Value

    if isinstance(feature, Audio):
        return True
    if isinstance(feature, Value) and feature.dtype in (
        "string",
        "large_string",
        "binary",
        "large_binary",
    ):
        return False
    if isinstance(feature, dict) and {"bytes", "path"} & set(feature):
        return False
    raise BenchError(
        f"{source}: column {column!r} holds {feature}, not audio files; --audio-column must name "
        "an Audio column, or a column of file paths or of encoded file bytes"
    )


def _key(ds: Any, source: str, split: str, column: str) -> str:
    files = [f["filename"] for f in ds.cache_files]
    stats = []
    for f in files:
        st = os.stat(f)
        stats.append([f, st.st_size, st.st_mtime_ns])
    # A dataset held only in memory has no files to stat; its fingerprint is all there is.
    ident = stats or [ds._fingerprint]
    text = json.dumps([INDEX_VERSION, source, split, column, ident])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    # soundfile recognises wav/flac/ogg by their content; the suffix only helps a human reading.
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".audio"


def _cell(value: Any, row: int, folder: Path, base: Path) -> AudioCell:
    if value is None:
        return AudioCell(None, "", "the audio cell is empty")
    if isinstance(value, bytes | bytearray):
        data, path = value, None
    elif isinstance(value, str):
        data, path = None, value
    else:  # an Audio feature read undecoded, or any struct of bytes and path
        data, path = value.get("bytes"), value.get("path")
    name = os.path.basename(path or "")
    if data is not None:
        file = folder / f"{row:07d}{_suffix(name)}"
        # Via a rename: another process checking the corpus never sees half a file.
        tmp = file.with_name(f".{file.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, file)
        return AudioCell(str(file), name)
    if path:
        local = Path(path).expanduser()
        local = local if local.is_absolute() else base / local
        if local.is_file():
            return AudioCell(str(local), name)
        return AudioCell(None, name, f"the cell holds no audio bytes and {path} does not exist")
    return AudioCell(None, name, "the audio cell holds neither bytes nor a path")


def _stored(index: Path, n_rows: int) -> list[AudioCell] | None:
    try:
        cells = [AudioCell(*item) for item in json.loads(index.read_text())]
    except (OSError, ValueError, TypeError):
        return None
    if len(cells) != n_rows or any(c.path and not os.path.exists(c.path) for c in cells):
        return None  # a file was removed from the cache: write them again
    return cells


def audio_cells(
    ds: Any, column: str, split: str, source: str, cache_dir: Path | None = None
) -> list[AudioCell]:
    """One AudioCell per row of `ds` (a `datasets.Dataset`), from its column `column`.

    `split` and `source` (the data root) name the dataset in the cache key and in errors; a
    relative path in a cell is read relative to `source` when that is a folder.
    """
    if column not in ds.column_names:
        raise BenchError(
            f"{source}: no audio column {column!r}; its columns are {ds.column_names}; "
            "pass --audio-column NAME"
        )
    folder = (cache_dir or cache_root()) / "hf-audio" / _key(ds, source, split, column)
    index = folder / "index.json"
    cells = _stored(index, ds.num_rows) if index.is_file() else None
    if cells is not None:
        return cells
    view = ds.select_columns([column])
    if _check_feature(ds.features[column], column, source):
        from datasets import Audio

        view = view.cast_column(column, Audio(decode=False))
    base = Path(source) if Path(source).is_dir() else Path.cwd()
    cells: list[AudioCell] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for batch in view.iter(batch_size=BATCH_ROWS):
            cells += [_cell(v, len(cells) + i, folder, base) for i, v in enumerate(batch[column])]
        write_json(index, [[c.path, c.name, c.missing] for c in cells])
    except OSError as exc:
        raise BenchError(
            f"cannot write the audio of {source} to {folder} ({exc}); free space there or "
            "point $SERBENCH_CACHE at a disk with room"
        ) from None
    return cells
