"""What the peft-based families share: target names, the last-k-layers restriction, injection.

Every adapter family here builds a peft config and lets peft inject and mark the trainable
parameters; nothing adapter-specific is written by hand. With `k` set, adapters go only into the
last k transformer layers, so the layers below stay frozen and deterministic and can be cached
(`lora3+cache`); with `k` unset (the default) they go into every layer, as in the papers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.model.families import TARGET_NAMES
from strategies.base import Strategy, check_layer_count

if TYPE_CHECKING:
    from bench.model.ser import SERModel

# A peft `target_modules` regex for the given short target names (q, k, v, o, ff1, ff2) in the
# layers the strategy adapts, spelled with the loaded backbone family's module names.
Selector = Callable[[tuple[str, ...]], str]


def target_regex(targets: tuple[str, ...], layers: range, modules: Mapping[str, str]) -> str:
    """A peft `target_modules` regex (matched with re.fullmatch against module names of the
    backbone) selecting `targets`, through the family's map `modules` from short names to module
    paths inside a layer, in exactly the encoder layers `layers`."""
    layer_alt = "|".join(str(i) for i in layers)
    mod_alt = "|".join(modules[t].replace(".", r"\.") for t in targets)
    return rf"encoder\.layers\.(?:{layer_alt})\.(?:{mod_alt})"


@dataclass(frozen=True)
class AdapterStrategy(Strategy):
    """Base of the peft families: subclasses add their own fields (always including `targets`)
    and build the peft config in `peft_config`."""

    k: int | None = None  # adapters only in the last k layers; None = every layer

    default_lr = 5e-4

    def __post_init__(self) -> None:
        if self.k is not None and self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        targets: tuple[str, ...] = self.targets  # type: ignore[attr-defined]
        unknown = [t for t in targets if t not in TARGET_NAMES]
        if unknown or not targets:
            raise BenchError(
                f"{self.family} targets {unknown or '(none)'} unknown; choose from {', '.join(TARGET_NAMES)}"
            )

    def validate(self, num_layers: int) -> None:
        if self.k is not None:
            check_layer_count(self.family, self.k, num_layers)

    def adapted_layers(self, num_layers: int) -> range:
        return range(num_layers - (self.k or num_layers), num_layers)

    def first_trainable_layer(self, num_layers: int) -> int | None:
        return None if self.k is None else num_layers - self.k

    def cacheable(self) -> bool:
        return self.k is not None

    def selector(self, model: SERModel) -> Selector:
        """Target names -> peft regex for the layers this strategy adapts in `model`."""
        layers = self.adapted_layers(model.num_layers)
        return lambda targets: target_regex(targets, layers, model.family.targets)

    def peft_config(self, select: Selector) -> Any:
        """The peft config that puts this family's adapters where `select(self.targets)` says."""
        raise NotImplementedError

    def apply(self, model: SERModel) -> None:
        from peft import inject_adapter_in_model

        config = self.peft_config(self.selector(model))
        # In place, so the model keeps its own forward (and the layer-wise split caching needs);
        # peft marks exactly its adapter parameters trainable.
        inject_adapter_in_model(config, model.backbone)
