"""Full finetuning: every transformer parameter trains; the CNN feature encoder stays frozen,
as is standard for wav2vec 2.0 finetuning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategies.base import Strategy
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model import SERModel


@register_strategy("full", summary="finetune the whole transformer (CNN feature encoder frozen)")
@dataclass(frozen=True)
class Full(Strategy):
    def apply(self, model: SERModel) -> None:
        for name, p in model.backbone.named_parameters():
            p.requires_grad = not name.startswith("feature_extractor.")

    def cacheable(self) -> bool:
        return False
