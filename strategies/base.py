"""What every strategy family provides. Families are frozen dataclasses that inherit this mixin."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.model import SERModel


class Strategy:
    """Decides, for a loaded model, which parameters train and where the frozen prefix ends.

    `apply` is called once on a model whose parameters all have requires_grad=False except the
    head; it turns on what the strategy trains (or wraps modules with PEFT adapters).
    """

    family: ClassVar[str]
    default_lr: ClassVar[float] = 5e-5
    # Trainable parameters when the whole backbone is frozen typically need a larger step.
    head_lr: ClassVar[float] = 1e-3

    def apply(self, model: SERModel) -> None:
        raise NotImplementedError

    def first_trainable_layer(self, num_layers: int) -> int | None:
        """Index of the lowest encoder layer that trains; everything below is frozen and
        deterministic (run in eval mode), so it may be cached. None when something below the
        transformer layers trains (nothing to cache)."""
        return None

    def cacheable(self) -> bool:
        return True

    def validate(self, num_layers: int) -> None:
        """Raise BenchError when the strategy does not fit a model with `num_layers` layers."""

    def spelling(self) -> str:
        """Canonical command-line spelling; parse_strategy(spelling()) gives back an equal object."""
        from strategies.registry import registered

        info = registered()[self.family]
        parts = []
        prefix = self.family
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == info.shorthand:
                prefix = f"{self.family}{value}"
            elif value != f.default:
                shown = ",".join(value) if isinstance(value, tuple) else str(value)
                parts.append(f"{f.name}={shown}")
        return prefix + (":" + ",".join(parts) if parts else "")


def check_layer_count(family: str, k: int, num_layers: int) -> None:
    if not 1 <= k <= num_layers:
        raise BenchError(
            f"{family}{k}: the model has {num_layers} transformer layers, so k must be 1..{num_layers}"
        )
