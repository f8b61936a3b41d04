"""Where serbench keeps what it can rebuild: one root for every cache, set by environment."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$SERBENCH_CACHE, default ~/.cache/serbench: the synthetic corpus, the audio index, decoded
    Hugging Face audio and (unless $SERBENCH_PREFIX_CACHE says otherwise) the prefix cache."""
    return Path(os.environ.get("SERBENCH_CACHE", Path.home() / ".cache" / "serbench"))


def prefix_cache_root() -> Path:
    """$SERBENCH_PREFIX_CACHE, else prefix-cache/ under `cache_root()`.

    A machine-wide default so that separate runs and sweeps share stores; point it at a fast
    local disk with room for the corpus (about 66 GB for MSP-Podcast at layer 9 in fp16).
    """
    if env := os.environ.get("SERBENCH_PREFIX_CACHE"):
        return Path(env)
    return cache_root() / "prefix-cache"
