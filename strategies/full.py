"""Full finetuning: every transformer parameter trains; the CNN feature encoder stays frozen,
as is standard for wav2vec 2.0 finetuning (`full:cnn=train` trains it too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategies.base import Strategy, freeze_all_but
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model.ser import SERModel

CNN_MODES = ("frozen", "train")


@register_strategy(
    "full", summary="finetune the whole transformer; cnn=train also trains the CNN feature encoder"
)
@dataclass(frozen=True)
class Full(Strategy):
    cnn: str = "frozen"

    def __post_init__(self) -> None:
        if self.cnn not in CNN_MODES:
            raise ValueError(f"cnn must be one of {', '.join(CNN_MODES)}, got {self.cnn!r}")

    def apply(self, model: SERModel) -> None:
        train_cnn = self.cnn == "train"
        freeze_all_but(model, lambda name: train_cnn or not name.startswith("feature_extractor."))
