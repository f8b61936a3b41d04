"""What differs between the speech SSL backbone families serbench runs, in one table.

The split forward (bench/model/ser.py), the strategies' target names (strategies/adapters.py) and
the FLOP count (bench/model/flops.py) read a model's `Family` instead of testing its class. This module
imports nothing heavy, so strategies can validate their targets without loading transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bench.errors import BenchError


def _call_wavlm_projection_modules(backbone: Any) -> None:
    from bench.model.wavlm import call_projection_modules  # imports transformers: only for a WavLM

    call_projection_modules(backbone)


# Strategies' short target names -> module path inside one encoder layer. The four families
# share transformers' wav2vec2 naming today; each family still carries its own map, and a test
# checks every name resolves to a Linear in every layer of every family.
WAV2VEC2_TARGETS: Mapping[str, str] = MappingProxyType(
    {
        "q": "attention.q_proj",
        "k": "attention.k_proj",
        "v": "attention.v_proj",
        "o": "attention.out_proj",
        "ff1": "feed_forward.intermediate_dense",
        "ff2": "feed_forward.output_dense",
    }
)
TARGET_NAMES: tuple[str, ...] = tuple(WAV2VEC2_TARGETS)


@dataclass(frozen=True)
class Family:
    """What differs between backbone families, for the split forward and the FLOP count."""

    name: str  # transformers' model_type, as reports show it
    summary: str
    targets: Mapping[str, str] = field(default_factory=lambda: WAV2VEC2_TARGETS, hash=False)
    # WavLM: layer 0 turns a relative-position embedding into an attention bias that every layer
    # gates with its own input and adds to its attention scores.
    relative_position_bias: bool = False
    # data2vec-audio: a stack of `num_conv_pos_embeddings` convolutions of width
    # `conv_pos_kernel_size`; the others: one convolution of width `num_conv_pos_embeddings`.
    pos_conv_stack: bool = False
    # Makes the loaded backbone fit the split forward and the strategies (in place).
    prepare: Callable[[Any], None] | None = None

    def stable_layer_norm(self, config: Any) -> bool:
        """Pre-layer-norm layers with the encoder's LayerNorm after the last layer (large models)."""
        return bool(getattr(config, "do_stable_layer_norm", False))

    def pos_conv(self, config: Any) -> tuple[int, int]:
        """(number of positional convolutions, kernel width)."""
        if self.pos_conv_stack:
            return config.num_conv_pos_embeddings, config.conv_pos_kernel_size
        return 1, config.num_conv_pos_embeddings


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("wav2vec2", "wav2vec 2.0: base (post-LN), large / large-robust (pre-LN)"),
        Family("hubert", "HuBERT: wav2vec2's layers, feature projection LayerNorm optional"),
        Family(
            "wavlm",
            "WavLM: gated relative position bias computed in layer 0",
            relative_position_bias=True,
            prepare=_call_wavlm_projection_modules,
        ),
        Family(
            "data2vec-audio",
            "data2vec-audio: post-LN layers, stack of positional convolutions",
            pos_conv_stack=True,
        ),
    )
}


def supported() -> str:
    return ", ".join(FAMILIES)


def family_of(config: Any, name: str | None = None) -> Family:
    """The family of `config` (of `--model name`); BenchError for one the split forward does
    not support."""
    what = f"--model {name}" if name else "the backbone"
    family = FAMILIES.get(config.model_type)
    if family is None:
        raise BenchError(
            f"{what} is a {config.model_type!r} checkpoint; serbench supports the speech SSL "
            f"families {supported()} (any hub id or save_pretrained folder of these)"
        )
    if getattr(config, "add_adapter", False):
        # The convolutional adapter after the encoder is not part of the split forward.
        raise BenchError(
            f"{what} has add_adapter=True (a convolutional adapter after the encoder), which "
            f"serbench does not run; use the checkpoint without it"
        )
    return family
