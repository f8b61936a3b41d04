"""Finetuning strategies as registered plugins. See `registry.py` for the contract.

The imports run one way: the registry and `base` import nothing of the families; each family
imports them and registers itself; this package imports the built-in families (in the order
--list-strategies shows: the study's strategies first). Third-party families come through the
`serbench.strategies` entry-point group, loaded by the registry on first lookup.
"""

# ruff: noqa: I001, F401
from bench.config import Modifiers
from strategies.base import Strategy
from strategies.registry import (
    StrategySpec,
    list_strategies,
    parse_strategy,
    register_strategy,
    registered,
)
from strategies import full, partial, lora, head, bitfit, ia3, loha, adalora

__all__ = [
    "Modifiers",
    "Strategy",
    "StrategySpec",
    "list_strategies",
    "parse_strategy",
    "register_strategy",
    "registered",
]
