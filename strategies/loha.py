"""LoHa through peft: low-rank Hadamard-product adapters (LyCORIS) on the attention projections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies.adapters import AdapterStrategy, Selector
from strategies.registry import register_strategy


@register_strategy(
    "loha",
    summary="LoHa Hadamard-product adapters (peft), backbone frozen; loha<k>: last k layers",
    shorthand="k",
)
@dataclass(frozen=True)
class LoHa(AdapterStrategy):
    r: int = 8
    alpha: int = 8
    targets: tuple[str, ...] = ("q", "v")

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        super().__post_init__()

    def peft_config(self, select: Selector) -> Any:
        from peft import LoHaConfig

        return LoHaConfig(r=self.r, alpha=self.alpha, target_modules=select(self.targets))
