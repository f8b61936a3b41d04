"""Check many audio files once, and remember the answer.

The command line checks the corpus before the sweep, and every run (a fresh process) loads it
again; for a corpus of 100k files the header reads would cost each run tens of seconds. The
answers are stored under the cache folder, keyed by every file's path, size and modification
time, so a later load reads one small file instead of every header, and any change to any audio
file makes it check them all again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.data.audio import AudioInfo, AudioProblem, probe_audio
from bench.paths import cache_root

INDEX_VERSION = 1  # bump when probe_audio's verdicts change, so stale answers are not reused
# Header reads wait on the disk and libsndfile releases the GIL: threads overlap them.
PROBE_THREADS = 8

Verdict = AudioInfo | AudioProblem


def _stat(path: str) -> list[int]:
    try:
        st = os.stat(path)
    except OSError:
        return [-1, -1]  # missing: probe_audio says so and why
    return [st.st_size, st.st_mtime_ns]


def _key(paths: list[str]) -> str:
    h = hashlib.sha256(str(INDEX_VERSION).encode())
    for p in sorted(paths):
        h.update(json.dumps([p, _stat(p)]).encode())
    return h.hexdigest()[:24]


def _probe(path: str) -> Verdict:
    try:
        return probe_audio(path)
    except AudioProblem as problem:
        return problem


def _encode(v: Verdict) -> list:
    if isinstance(v, AudioInfo):
        return ["ok", v.seconds, v.samplerate, v.channels]
    return ["bad", v.kind, v.detail]


def _decode(path: str, item: list) -> Verdict:
    if item[0] == "ok":
        return AudioInfo(float(item[1]), int(item[2]), int(item[3]))
    return AudioProblem(path, item[1], item[2])


def write_json(file: Path, payload: dict | list) -> None:
    """Write `payload` to `file` via a temporary file and a rename: never half a file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=file.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, file)


def probe_many(paths: list[str], cache_dir: Path | None = None) -> dict[str, Verdict]:
    """probe_audio for every path (AudioInfo, or the AudioProblem it raised), remembered on disk."""
    index = (cache_dir or cache_root()) / "audio-index" / f"{_key(paths)}.json"
    if index.is_file():
        try:
            stored = json.loads(index.read_text())
            return {p: _decode(p, stored[p]) for p in paths}
        except (OSError, ValueError, KeyError, IndexError) as exc:
            warnings.warn(f"unreadable audio index {index} ({exc}); checking again", stacklevel=2)
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        verdicts = dict(zip(paths, pool.map(_probe, paths), strict=True))
    try:
        write_json(index, {p: _encode(v) for p, v in verdicts.items()})
    except OSError as exc:
        # The answers are right either way; only the next load will be slower.
        warnings.warn(f"cannot store the audio check in {index.parent} ({exc})", stacklevel=2)
    return verdicts
