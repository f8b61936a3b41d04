"""What every strategy family provides. Families are frozen dataclasses that inherit this mixin."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.model.ser import SERModel


class Strategy:
    """Decides, for a loaded model, which parameters train and where the frozen prefix ends.

    `apply` is called once on a model whose parameters all have requires_grad=False except the
    head; it turns on what the strategy trains (or wraps modules with PEFT adapters).
    `begin_training` and `after_step` are the only hooks the training loop calls; most
    strategies leave them empty (AdaLoRA reallocates its rank budget in them).
    """

    # Both set by @register_strategy, so that a strategy spells itself without the registry.
    family: ClassVar[str]
    shorthand: ClassVar[str | None] = None  # the int field written as a number suffix (partial3)
    default_lr: ClassVar[float] = 5e-5

    def apply(self, model: SERModel) -> None:
        raise NotImplementedError

    def first_trainable_layer(self, num_layers: int) -> int | None:
        """Index of the lowest encoder layer that trains; everything below is frozen and
        deterministic (run in eval mode), so it may be cached. None when something below the
        transformer layers trains, or every layer does (nothing to cache)."""
        return None

    def cacheable(self) -> bool:
        """Whether a frozen prefix of at least one transformer layer exists, for any model.
        Override it together with `first_trainable_layer`; `+cache` is refused while False."""
        return False

    def trains_encoder_layers(self) -> bool:
        """Whether any transformer layer has trainable parameters (else +ckpt is pointless)."""
        return True

    def validate(self, num_layers: int) -> None:
        """Raise BenchError when the strategy does not fit a model with `num_layers` layers."""

    def begin_training(self, model: SERModel, total_steps: int) -> None:
        """Called once before the first optimisation step, with the planned number of steps."""

    def after_step(self, model: SERModel, step: int) -> None:
        """Called after every optimiser step (0-based `step`), while gradients are still set."""

    def spelling(self) -> str:
        """Canonical command-line spelling; parse_strategy(spelling()) gives back an equal object."""
        parts = []
        prefix = self.family
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == self.shorthand:
                if value is not None:
                    prefix = f"{self.family}{value}"
            elif value != f.default:
                shown = ",".join(value) if isinstance(value, tuple) else str(value)
                parts.append(f"{f.name}={shown}")
        return prefix + (":" + ",".join(parts) if parts else "")


def check_layer_count(family: str, k: int, num_layers: int) -> None:
    if not 1 <= k <= num_layers:
        raise BenchError(
            f"{family}{k}: the model has {num_layers} transformer layers, so k must be 1..{num_layers}"
        )


def freeze_all_but(model: SERModel, predicate) -> None:
    """requires_grad on exactly the backbone parameters whose name satisfies `predicate`."""
    for name, p in model.backbone.named_parameters():
        p.requires_grad = bool(predicate(name))
