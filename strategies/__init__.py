"""Finetuning strategies as registered plugins. See `registry.py` for the contract."""

from strategies.base import Strategy
from strategies.registry import (
    Modifiers,
    StrategySpec,
    list_strategies,
    parse_strategy,
    register_strategy,
    registered,
)

__all__ = [
    "Modifiers",
    "Strategy",
    "StrategySpec",
    "list_strategies",
    "parse_strategy",
    "register_strategy",
    "registered",
]
