"""AdaLoRA through peft: SVD-shaped adapters whose rank budget is reallocated during training by
importance. peft needs the planned number of steps and a call after every optimiser step, which
the two training hooks provide. The tuner object that owns the rank allocator is kept on the
model (`model.tuners`), since strategies are stateless.

Not applied: peft adds AdaLoRA's orthogonality penalty inside `PeftModel.forward` only when the
wrapped model returns a `.loss`; our loop computes the CCC loss itself, so the penalty is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strategies.adapters import AdapterStrategy, Selector
from strategies.registry import register_strategy

if TYPE_CHECKING:
    from bench.model.ser import SERModel


@register_strategy(
    "adalora",
    summary="AdaLoRA (peft): adaptive rank budget init_r -> target_r; adalora<k>: last k layers",
    shorthand="k",
)
@dataclass(frozen=True)
class AdaLora(AdapterStrategy):
    init_r: int = 12
    target_r: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ("q", "v")
    tinit: float = 0.1  # share of the planned steps before the budget starts shrinking
    tfinal: float = 0.2  # share of the planned steps at the end with the budget fixed

    def __post_init__(self) -> None:
        if not 1 <= self.target_r <= self.init_r:
            raise ValueError(f"need 1 <= target_r <= init_r, got {self.target_r}, {self.init_r}")
        if not (0 <= self.tinit < 1 and 0 <= self.tfinal < 1 and self.tinit + self.tfinal < 1):
            raise ValueError("tinit and tfinal are shares of the steps in [0, 1) with sum < 1")
        super().__post_init__()

    def peft_config(self, select: Selector) -> Any:
        from peft import AdaLoraConfig

        # total_step is a placeholder until begin_training knows the plan; peft requires > 0.
        return AdaLoraConfig(
            init_r=self.init_r,
            target_r=self.target_r,
            lora_alpha=self.alpha,
            target_modules=select(self.targets),
            total_step=1,
            tinit=0,
            tfinal=0,
        )

    def apply(self, model: SERModel) -> None:
        from peft.tuners import AdaLoraModel

        config = self.peft_config(self.selector(model))
        # Built directly (not inject_adapter_in_model), to keep the tuner and its rank allocator.
        model.tuners["adalora"] = AdaLoraModel(model.backbone, config, "default")

    def begin_training(self, model: SERModel, total_steps: int) -> None:
        config = model.tuners["adalora"].peft_config["default"]
        tinit, tfinal = int(self.tinit * total_steps), int(self.tfinal * total_steps)
        if tinit >= total_steps - tfinal:  # too few steps for a budgeting phase: prune from step 0
            tinit = tfinal = 0
        config.total_step, config.tinit, config.tfinal = total_steps, tinit, tfinal

    def after_step(self, model: SERModel, step: int) -> None:
        model.tuners["adalora"].update_and_allocate(step)
