"""Imports every built-in strategy family so that each registers itself.

The import order is the --list-strategies order: the study's strategies first.
"""

# ruff: noqa: I001, F401
from strategies import full, partial, lora, head, bitfit, ia3, loha, adalora
