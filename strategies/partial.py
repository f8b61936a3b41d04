"""Partial finetuning: only the last k transformer layers (and the head) train. The frozen
prefix (CNN, projection, positional convolution, the first L-k layers) runs in eval mode and can
be cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategies.base import Strategy, check_layer_count
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model.ser import SERModel


@register_strategy(
    "partial",
    summary="finetune the last k transformer layers + head; k=3 if omitted (cacheable)",
    shorthand="k",
)
@dataclass(frozen=True)
class Partial(Strategy):
    k: int = 3

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    def validate(self, num_layers: int) -> None:
        check_layer_count("partial", self.k, num_layers)

    def first_trainable_layer(self, num_layers: int) -> int | None:
        return num_layers - self.k

    def cacheable(self) -> bool:
        return True

    def apply(self, model: SERModel) -> None:
        for layer in model.layers[model.num_layers - self.k :]:
            for p in layer.parameters():
                p.requires_grad = True
