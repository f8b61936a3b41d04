"""Backbone architectures by name, and loading them.

Every checkpoint is loaded through transformers' auto classes, so a hub id or a folder written by
`save_pretrained` gets its own model class: a WavLM loads as a WavLM, never as a wav2vec2 that
silently drops WavLM's weights. A checkpoint of a family the split forward does not know
(bench/model/families.py) is refused with the list of those it does.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig
from transformers.utils import logging as hf_logging

from bench.errors import BenchError
from bench.model.families import family_of, supported


@dataclass(frozen=True)
class Architecture:
    """A named architecture: a family and its config settings over the family's defaults."""

    family: str
    settings: Mapping[str, object] = field(default_factory=dict)


def _scaled(
    family: str,
    width: int,
    layers: int,
    heads: int,
    ffn: int,
    pos: tuple[int, int],
    **extra: object,
) -> Architecture:
    """A base architecture scaled down; the CNN has `width` channels; `pos`: positional
    convolution (kernel, groups)."""
    settings: dict[str, object] = dict(
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        conv_dim=(width,) * 7,
        num_conv_pos_embeddings=pos[0],
        num_conv_pos_embedding_groups=pos[1],
    )
    return Architecture(family, settings | extra)


def _tiny(family: str, **extra: object) -> Architecture:
    # tiny-* (tests, smoke) use the per-frame LayerNorm CNN of the large checkpoints, as
    # tiny-w2v2 always has; tests switch the base models' GroupNorm on where it matters.
    # data2vec's CNN has LayerNorm in every convolution, no option.
    norm = {} if family == "data2vec-audio" else {"feat_extract_norm": "layer"}
    return _scaled(family, 32, 4, 2, 64, (16, 4), **(norm | extra))


# Built without the network and never pretrained.
PRESETS: dict[str, Architecture] = {
    "tiny-w2v2": _tiny("wav2vec2"),
    "tiny-w2v2-preln": _tiny("wav2vec2", do_stable_layer_norm=True),
    "tiny-hubert": _tiny("hubert"),
    "tiny-wavlm": _tiny("wavlm", num_buckets=32, max_bucket_distance=64),
    "tiny-data2vec": _tiny("data2vec-audio", num_conv_pos_embeddings=2, conv_pos_kernel_size=5),
    # wav2vec2-base scaled down, GroupNorm feature encoder included (per-frame LayerNorm also
    # removes the energy contour, which made it learn the synthetic corpus's arousal and
    # dominance cues far worse).
    "small-w2v2": _scaled("wav2vec2", 128, 6, 4, 512, (32, 8)),
}

# The large checkpoints' layout: 24 pre-LN layers of width 1024, per-frame LayerNorm CNN.
_LARGE = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
)
_LARGE_PRELN = _LARGE | dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)

# Hub ids whose architecture is known offline: they fall back to it (random init, said loudly)
# when their weights cannot be downloaded. Each family's config defaults are its base model.
KNOWN_ARCHITECTURES: dict[str, Architecture] = {
    "facebook/wav2vec2-base": Architecture("wav2vec2"),
    "facebook/wav2vec2-base-960h": Architecture("wav2vec2"),
    "facebook/wav2vec2-large": Architecture("wav2vec2", _LARGE),
    "facebook/wav2vec2-large-lv60": Architecture("wav2vec2", _LARGE_PRELN),
    "facebook/wav2vec2-large-robust": Architecture("wav2vec2", _LARGE_PRELN),
    "facebook/wav2vec2-large-xlsr-53": Architecture("wav2vec2", _LARGE_PRELN),
    # large-robust pruned to 12 layers and finetuned on MSP-Podcast's dimensions
    "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim": Architecture(
        "wav2vec2", _LARGE_PRELN | dict(num_hidden_layers=12)
    ),
    "facebook/hubert-base-ls960": Architecture("hubert"),
    "facebook/hubert-large-ll60k": Architecture("hubert", _LARGE_PRELN),
    "microsoft/wavlm-base": Architecture("wavlm"),
    "microsoft/wavlm-base-plus": Architecture("wavlm"),
    "microsoft/wavlm-large": Architecture("wavlm", _LARGE_PRELN | dict(conv_bias=False)),
    "facebook/data2vec-audio-base": Architecture("data2vec-audio"),
    "facebook/data2vec-audio-base-960h": Architecture("data2vec-audio"),
    "facebook/data2vec-audio-large": Architecture("data2vec-audio", _LARGE),
}

# Recorded in every result: the places we deviate from the checkpoint's training config.
# SpecAugment and LayerDrop off, so every strategy trains the same function and a cached
# prefix equals the uncached one.
CONFIG_OVERRIDES = {"mask_time_prob": 0.0, "mask_feature_prob": 0.0, "layerdrop": 0.0}


@dataclass(frozen=True)
class LoadedBackbone:
    model: nn.Module
    weights: str  # "pretrained" | "random-init"
    note: str | None  # why random-init (or partly), when it was not asked for


def _build(arch: Architecture) -> PretrainedConfig:
    return AutoConfig.for_model(arch.family, **arch.settings, **CONFIG_OVERRIDES)


def architecture_config(name: str) -> PretrainedConfig:
    """Config of a preset, known hub id or loadable name (local folder, or hub id online).

    Raises BenchError for an unsupported family, OSError when the config cannot be obtained."""
    arch = PRESETS.get(name) or KNOWN_ARCHITECTURES.get(name)
    if arch is not None:
        return _build(arch)
    try:
        config = AutoConfig.from_pretrained(name, **CONFIG_OVERRIDES)
    except ValueError as exc:  # a config.json whose model_type transformers does not know
        raise BenchError(f"--model {name}: {exc}. serbench supports {supported()}") from None
    family_of(config, name)
    return config


def config_fingerprint(config: PretrainedConfig) -> str:
    """The settings that determine what the backbone computes, independent of where it was
    loaded from (for cache keys)."""
    d = config.to_dict()
    for k in ("_name_or_path", "transformers_version", "architectures"):
        d.pop(k, None)
    return json.dumps(d, sort_keys=True, default=str)


def _check_policy(name: str, weights: str) -> bool:
    """Refuse an unknown weights policy, and `pretrained` for a preset (which has no weights);
    True when `name` is a preset."""
    if weights not in ("auto", "pretrained", "random"):
        raise BenchError(f"--weights must be auto, pretrained or random, not {weights!r}")
    if name in PRESETS and weights == "pretrained":
        raise BenchError(
            f"model preset {name!r} has no pretrained weights; use --weights random or auto"
        )
    return name in PRESETS


def decide_weights(name: str, weights: str) -> tuple[str, str | None]:
    """The weights policy every run of `name` should use, decided once before the first run:
    (policy, note). `auto` becomes `random` with a note saying why when the checkpoint's
    config cannot be had (offline, a wrong name); `pretrained` then raises BenchError, so a
    sweep fails before it starts instead of in every run."""
    if _check_policy(name, weights) or weights == "random":  # a preset: random init only
        return weights, None
    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        if weights == "pretrained":
            raise BenchError(
                f"--weights pretrained: cannot load {name!r}: {str(exc).splitlines()[0]}. Check "
                "the name or path and the network (HF_HUB_OFFLINE=1 forbids downloads), or pass "
                "--weights auto to run with random init"
            ) from None
        return "random", (
            f"pretrained weights for {name!r} unavailable ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]}): every run uses RANDOM-INIT weights of the same "
            "architecture (--weights auto, decided before the first run)"
        )
    return weights, None


def load_backbone(name: str, weights: str, seed: int) -> LoadedBackbone:
    """Load `name` (preset, local path or hub id) under the weights policy auto|pretrained|random."""
    if _check_policy(name, weights):
        return _random_init(architecture_config(name), seed, None)
    note = None
    if weights != "random":
        try:
            config = AutoConfig.from_pretrained(name, **CONFIG_OVERRIDES)
        except (OSError, ValueError) as exc:
            if weights == "pretrained":
                raise BenchError(
                    f"cannot load pretrained weights for {name!r}: {exc}. Check the name/path and "
                    f"the network, or pass --weights auto to fall back to random init"
                ) from None
            note = f"pretrained weights for {name!r} unavailable ({type(exc).__name__}); using RANDOM-INIT weights of the same architecture"
        else:
            return _pretrained(name, config, weights)
    try:
        config = architecture_config(name)
    except OSError as exc:
        raise BenchError(
            f"cannot get the architecture of {name!r} offline: {exc}. Use a local path, a preset "
            f"({', '.join(PRESETS)}) or one of {', '.join(KNOWN_ARCHITECTURES)}"
        ) from None
    return _random_init(config, seed, note)


def _random_init(config: PretrainedConfig, seed: int, note: str | None) -> LoadedBackbone:
    torch.manual_seed(seed)
    return LoadedBackbone(AutoModel.from_config(config), "random-init", note)


@contextlib.contextmanager
def _quiet_load_report() -> Iterator[None]:
    """transformers prints a load report per model; the missing tensors it lists are handled
    below (named, an error or a RANDOM-INIT note), and its unexpected ones are expected: the
    task head of a finetuned checkpoint and SpecAugment's mask embedding, which we leave out."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _pretrained(name: str, config: PretrainedConfig, weights: str) -> LoadedBackbone:
    family_of(config, name)
    with _quiet_load_report():
        model, info = AutoModel.from_pretrained(name, config=config, output_loading_info=True)
    missing = list(info.get("missing_keys") or [])
    if not missing:
        return LoadedBackbone(model, "pretrained", None)
    shown = ", ".join(sorted(missing)[:3]) + (", ..." if len(missing) > 3 else "")
    what = (
        f"{len(missing)} {config.model_type} backbone tensors are not in the checkpoint {name!r} "
        f"({shown})"
    )
    if weights == "pretrained":
        raise BenchError(
            f"{what}: it does not hold this architecture's weights. Check that --model names the "
            f"checkpoint you mean, or pass --weights auto to train with those tensors random"
        )
    return LoadedBackbone(model, "pretrained", f"{what}; they are RANDOM-INIT")


def parameter_count(config: PretrainedConfig) -> int:
    """Backbone parameters of an architecture (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())
