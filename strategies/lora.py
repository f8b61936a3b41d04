"""LoRA and DoRA through peft: low-rank adapters (DoRA: plus a learned magnitude per output) on
the attention projections, backbone frozen. `lora3` puts them in the last 3 layers only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from strategies.adapters import AdapterStrategy, Selector
from strategies.registry import register_strategy

__all__ = ["Dora", "Lora"]


@register_strategy(
    "lora",
    summary="LoRA adapters (peft), backbone frozen; lora<k>: last k layers only (cacheable)",
    shorthand="k",
)
@dataclass(frozen=True)
class Lora(AdapterStrategy):
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q", "v")

    use_dora: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"r must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:  # peft accepts any float; torch fails in the first step
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout:g}")
        super().__post_init__()

    def peft_config(self, select: Selector) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=select(self.targets),
            bias="none",
            use_dora=self.use_dora,
        )


@register_strategy(
    "dora",
    summary="DoRA (peft): LoRA on the direction + a learned magnitude per output; dora<k> as lora<k>",
    shorthand="k",
)
@dataclass(frozen=True)
class Dora(Lora):
    use_dora: ClassVar[bool] = True
