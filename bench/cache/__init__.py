"""Caching the frozen prefix: keyed (key.py), stored and verified (store.py), read ahead
(prefetch.py), built and served to the trainer (prefix.py)."""

from bench.cache.key import CacheKey, default_cache_dir
from bench.cache.prefix import (
    CachedBatch,
    CacheReport,
    CacheView,
    build_store,
    prepare_caches,
    resolve_place,
)
from bench.cache.store import CacheInvalid, FeatureStore, StoreWriter, open_store

__all__ = [
    "CacheInvalid",
    "CacheKey",
    "CacheReport",
    "CacheView",
    "CachedBatch",
    "FeatureStore",
    "StoreWriter",
    "build_store",
    "default_cache_dir",
    "open_store",
    "prepare_caches",
    "resolve_place",
]
