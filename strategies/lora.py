"""LoRA through peft: low-rank adapters on the attention projections, backbone frozen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.errors import BenchError
from strategies.base import Strategy
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model import SERModel

# Short names on the command line -> module names in transformers' Wav2Vec2 attention/FFN.
TARGET_MODULES = {
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "o": "out_proj",
    "ff1": "intermediate_dense",
    "ff2": "output_dense",
}


@register_strategy("lora", summary="LoRA adapters (peft) on attention projections, backbone frozen")
@dataclass(frozen=True)
class Lora(Strategy):
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q", "v")

    default_lr = 5e-4

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        unknown = [t for t in self.targets if t not in TARGET_MODULES]
        if unknown or not self.targets:
            raise BenchError(
                f"lora targets {unknown or '(none)'} unknown; choose from {', '.join(TARGET_MODULES)}"
            )

    def cacheable(self) -> bool:
        return False

    def apply(self, model: SERModel) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=[TARGET_MODULES[t] for t in self.targets],
            bias="none",
        )
        # In place, so the model keeps its own forward (and the layer-wise split caching needs).
        inject_adapter_in_model(config, model.backbone)
        for name, p in model.backbone.named_parameters():
            p.requires_grad = "lora_" in name
