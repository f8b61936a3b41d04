"""What a cached prefix depends on, hashed into one key.

A store is valid exactly for: the frozen modules' weights, what is cached (the hidden state
entering layer b, or the per-layer pooled states), the compute and storage precisions, the
preprocessing code and its settings, the model code that computes it, and the audio of every
clip (content hash plus crop window). Seeds and strategies that agree on all of these get the
same key and share the store; any change gives a new key, so a stale store is never opened.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bench.cache.store import temp_path
from bench.paths import prefix_cache_root

FORMAT_VERSION = 1  # bump when the store layout or the meaning of a key component changes
_FINGERPRINTS = "audio-fingerprints.json"


def default_cache_dir() -> Path:
    """Where prefix-cache stores live by default (`bench.paths.prefix_cache_root`)."""
    return prefix_cache_root()


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def weights_digest(modules: list[nn.Module]) -> str:
    """sha256 over names, dtypes, shapes and bytes of the modules' parameters and buffers."""
    h = hashlib.sha256()
    for i, module in enumerate(modules):
        for name, t in module.state_dict().items():
            t = t.detach().to("cpu").contiguous()
            h.update(f"{i}.{name}:{t.dtype}:{tuple(t.shape)}\0".encode())
            # bytes through a uint8 view: numpy has no bfloat16, and this copies nothing
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def source_digest(*objects: object) -> str:
    """sha256 of the source code of functions/classes: editing them invalidates the cache."""
    return _sha(*(inspect.getsource(o) for o in objects))  # type: ignore[arg-type]


class AudioFingerprints:
    """sha256 of audio files, remembered by (path, size, mtime, inode) in the cache directory,
    so that a corpus is read in full once, not on every run just to compute its key."""

    def __init__(self, directory: Path):
        self.path = directory / _FINGERPRINTS
        self.known: dict[str, list] = {}
        if self.path.is_file():
            try:
                self.known = json.loads(self.path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.known = {}  # a damaged memo only costs rehashing; it holds no cached data
        self.changed = False

    def remembers(self, path: str) -> bool:
        """Whether `path`'s digest is remembered for the file as it is now (no reading)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        entry = self.known.get(path)
        return entry is not None and entry[:3] == [st.st_size, st.st_mtime_ns, st.st_ino]

    def digest(self, path: str) -> str:
        st = os.stat(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        entry = self.known.get(path)
        if entry is not None and entry[:3] == stamp:
            return entry[3]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        self.known[path] = [*stamp, h.hexdigest()]
        self.changed = True
        return h.hexdigest()

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(self.path)
        tmp.write_text(json.dumps(self.known))
        os.replace(tmp, self.path)
        self.changed = False


def clip_key(audio_sha: str, seconds: float, max_seconds: float | None, offset: float) -> str:
    """One clip's input: its audio content and the crop window the dataset takes from it.

    A clip shorter than the crop is the same input for every seed and split, so its offset is
    left out (that is what lets seeds share a store); a cropped clip keys its exact offset.
    """
    # The loader crops when frames > max_seconds * rate; 1 ms of margin keeps clips at the
    # boundary on the safe side (keyed with their offset, at worst shared less).
    if max_seconds is None or seconds < max_seconds - 1e-3:
        window = "whole"
    else:
        window = f"crop {max_seconds!r}s at {offset!r}"
    return _sha(audio_sha, window)


@dataclass(frozen=True)
class CacheKey:
    """The components of a store's identity (all hex digests or short names), and their hash."""

    representation: str  # e.g. hidden-state-entering-layer-9
    weights: str
    compute_dtype: str  # precision the prefix ran in
    store_dtype: str  # precision it is stored in
    preprocessing: str  # code and settings that turn a file into model input
    model_code: str  # code that turns model input into the cached tensor
    clips: str  # the sorted set of clip keys
    format: int = FORMAT_VERSION

    @property
    def digest(self) -> str:
        return _sha(json.dumps(asdict(self), sort_keys=True))[:32]

    def components(self) -> dict:
        return asdict(self)
