"""Imports every built-in strategy family so that each registers itself."""

from strategies import full, lora, partial  # noqa: F401
