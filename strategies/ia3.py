"""(IA)^3 through peft: learned rescaling vectors on keys, values and the FFN input of the second
projection; the fewest trainable parameters of the adapter families."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies.adapters import AdapterStrategy, Selector
from strategies.registry import register_strategy

# The FFN projection whose *input* (not output) is rescaled, as (IA)^3 does for T5's `wo`.
FEEDFORWARD = ("ff2",)


# "ia3" ends in a digit, so the last-k restriction is spelled ia3:k=3 rather than ia33.
@register_strategy(
    "ia3", summary="(IA)^3 rescaling (peft) of keys, values, FFN input; ia3:k=3: last 3 layers"
)
@dataclass(frozen=True)
class IA3(AdapterStrategy):
    targets: tuple[str, ...] = ("k", "v", "ff2")

    default_lr = 3e-3  # a few thousand scalars initialised at 1 need a larger step

    def peft_config(self, select: Selector) -> Any:
        from peft import IA3Config

        ff = tuple(t for t in self.targets if t in FEEDFORWARD)
        return IA3Config(
            target_modules=select(self.targets),
            # a regex that matches nothing when ff2 is not a target (peft wants a pattern)
            feedforward_modules=select(ff) if ff else r"(?!)",
        )
