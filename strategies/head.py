"""SUPERB-style probing: the whole encoder is frozen; a softmax-weighted sum of every layer's
output (the embedding output and each transformer layer's) feeds the regression head. Only the
L+1 layer weights and the head train, so the frozen part is the whole encoder and can be cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategies.base import Strategy
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model.ser import SERModel


@register_strategy(
    "head",
    summary="frozen encoder, learned softmax-weighted sum of all layers + head (SUPERB; cacheable)",
)
@dataclass(frozen=True)
class Head(Strategy):
    default_lr = 1e-3

    def apply(self, model: SERModel) -> None:
        model.enable_layer_weighting()

    def first_trainable_layer(self, num_layers: int) -> int | None:
        return num_layers

    def cacheable(self) -> bool:
        return True

    def trains_encoder_layers(self) -> bool:
        return False
