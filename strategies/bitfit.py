"""BitFit (Ben Zaken et al., 2022): only the bias terms train. The CNN feature encoder stays
frozen, as in `full`; the feature projection's biases train, so nothing can be cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategies.base import Strategy, freeze_all_but
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model.ser import SERModel


@register_strategy("bitfit", summary="train only the bias terms of the transformer (CNN frozen)")
@dataclass(frozen=True)
class BitFit(Strategy):
    default_lr = 1e-3  # biases alone move slowly at full-finetuning rates (the paper uses 1e-3)

    def apply(self, model: SERModel) -> None:
        freeze_all_but(
            model,
            lambda name: name.endswith(".bias") and not name.startswith("feature_extractor."),
        )
