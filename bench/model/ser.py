"""The SER model: a speech SSL backbone (bench/model/backbones.py), mean pooling over valid frames, a
small head.

The forward pass is split at transformer-layer boundaries (`embed` -> `run_layers` -> `pool_head`)
so that a strategy's frozen prefix can run once and be cached, and the rest trained on its output.
The split reproduces each family's own forward exactly (a test per family checks it) with
recorded choices: SpecAugment and LayerDrop are switched off, so that every strategy trains the
same function and a cached prefix equals the uncached one; and padded frames are kept out of
data2vec-audio's positional convolutions, so a clip computes the same in any batch.
"""

from __future__ import annotations

import inspect
import os
import shutil

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.masking_utils import create_bidirectional_mask

from bench.config import Modifiers
from bench.errors import BenchError
from bench.model import families
from bench.model.backbones import CONFIG_OVERRIDES as CONFIG_OVERRIDES  # recorded in results
from bench.model.backbones import LoadedBackbone, config_fingerprint, load_backbone
from bench.model.families import family_of
from bench.model.graphs import Prefix, PrefixGraphs


class SERModel(nn.Module):
    """Backbone + masked mean pooling + regression head with `n_outputs` outputs.

    The forward pass is `frozen_features` (what a cache may store) then `forward_from_features`.
    Two shapes of frozen features exist: the hidden state entering layer `frozen_prefix_layers`
    (B, T, D) with its frame mask, or, with layer weighting (the `head` strategy), every layer's
    pooled output (B, L+1, D) with an all-true mask.
    """

    def __init__(
        self, backbone: nn.Module, head_seed: int, n_outputs: int = 3, head_hidden: int = 256
    ):
        super().__init__()
        cfg = backbone.config
        self.family = family_of(cfg)
        if self.family.prepare is not None:
            self.family.prepare(backbone)
        self.backbone = backbone
        self.stable_layer_norm = self.family.stable_layer_norm(cfg)
        # The head's initialisation depends only on the seed, never on the strategy or the backbone.
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(head_seed)
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden_size, head_hidden),
            nn.GELU(),
            nn.Dropout(0.1),
            nn.Linear(head_hidden, n_outputs),
        )
        torch.random.set_rng_state(gen_state)
        # Lowest encoder layer that trains; everything below runs in eval mode (set by the strategy).
        self.frozen_prefix_layers = 0
        # SUPERB layer weights (one per hidden state: embedding output + each layer), or None.
        self.layer_weights: nn.Parameter | None = None
        # Recompute trainable layers' activations in backward (+ckpt), set before training.
        self.checkpoint_layers = False
        # peft tuner objects a strategy keeps for its training hooks. A plain dict, not
        # submodules: they wrap self.backbone, which is registered already.
        self.tuners: dict[str, nn.Module] = {}
        # What computes `frozen_features` in `forward` when not the eager method: CUDA graphs
        # (+graph, bench/model/graphs.py). Caches and evaluation of the prefix alone call the method.
        self.prefix_runner: Prefix | None = None

    @property
    def layers(self) -> nn.ModuleList:
        return self.backbone.encoder.layers

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def architecture(self) -> dict:
        """The backbone in plain data, for results and the report's header."""
        cfg = self.backbone.config
        return {
            "family": self.family.name,
            "layers": self.num_layers,
            "hidden_size": cfg.hidden_size,
            "pre_layer_norm": self.stable_layer_norm,
            "params_backbone": sum(p.numel() for p in self.backbone.parameters()),
        }

    def code_fingerprint(self) -> str:
        """Source of the code and the settings that turn a waveform into `frozen_features`
        (for cache keys): this class, the family's adaptations, and the backbone's config."""
        sources = [inspect.getsource(type(self)), inspect.getsource(families)]
        if self.family.prepare is not None:
            sources.append(inspect.getsource(inspect.getmodule(self.family.prepare)))
        return "\0".join([*sources, config_fingerprint(self.backbone.config)])

    def enable_layer_weighting(self) -> None:
        """Pool a learned softmax-weighted sum of all L+1 hidden states (zeros = uniform, as SUPERB)."""
        self.layer_weights = nn.Parameter(torch.zeros(self.num_layers + 1))

    def train(self, mode: bool = True) -> SERModel:
        super().train(mode)
        if mode:
            # Frozen modules run in eval mode (no dropout) so their output is deterministic and
            # a cached prefix equals the uncached one.
            self.backbone.feature_extractor.eval()
            if self.frozen_prefix_layers > 0:
                enc = self.backbone.encoder
                for m in (
                    self.backbone.feature_projection,
                    enc.pos_conv_embed,
                    enc.layer_norm,
                    enc.dropout,
                ):
                    m.eval()
                for layer in self.layers[: self.frozen_prefix_layers]:
                    layer.eval()
        return self

    def frozen_modules(self) -> list[nn.Module]:
        """The modules whose weights determine `frozen_features` (what a cache key must hash)."""
        enc = self.backbone.encoder
        stop = self.num_layers if self.layer_weights is not None else self.frozen_prefix_layers
        return [
            self.backbone.feature_extractor,
            self.backbone.feature_projection,
            enc.pos_conv_embed,
            enc.layer_norm,
            *self.layers[:stop],
        ]

    def cached_representation(self) -> str:
        """Names what `frozen_features` returns, for cache keys: the same name, the same tensor."""
        if self.layer_weights is not None:
            return f"pooled-hidden-states-0..{self.num_layers}"
        return f"hidden-state-entering-layer-{self.frozen_prefix_layers}"

    def frame_mask(self, attention_mask: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, samples) sample mask -> (B, frames) bool mask of frames that see real audio."""
        return self.backbone._get_feature_vector_attention_mask(n_frames, attention_mask).bool()

    def embed(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveform (B, S) -> hidden state entering layer 0 (B, T, D) and the frame mask (B, T)."""
        bb = self.backbone
        feats = self.encode_waveform(input_values, attention_mask).transpose(1, 2)
        mask = self.frame_mask(attention_mask, feats.shape[1])
        projected = bb.feature_projection(feats)
        # wav2vec2, WavLM, data2vec also return the normalised CNN features; HuBERT does not.
        hidden = projected[0] if isinstance(projected, tuple) else projected
        hidden = hidden.masked_fill(~mask.unsqueeze(-1), 0.0)
        enc = bb.encoder
        hidden = hidden + self.positional(hidden, mask)
        if not self.stable_layer_norm:
            hidden = enc.layer_norm(hidden)
        return enc.dropout(hidden), mask

    def encode_waveform(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The CNN feature encoder, (B, S) -> (B, C, T), blind to padding.

        The base models' first convolution (wav2vec2, HuBERT, WavLM; data2vec-audio has
        per-frame LayerNorms) is followed by a GroupNorm with one group per channel:
        it normalises each channel over time, padding included, so a zero-padded clip's valid
        frames would depend on how much padding its batch mates forced on it. Here the first
        layer is normalised over each clip's own samples only, which makes every valid frame equal
        to the clip's unpadded forward (a test checks it), and padding to bounded lengths free.
        Models with per-frame LayerNorm (stable layer norm) need nothing: padding never reaches
        a valid frame.
        """
        fe = self.backbone.feature_extractor
        first = fe.conv_layers[0]
        norm = getattr(first, "layer_norm", None)
        if not isinstance(norm, nn.GroupNorm):
            return fe(input_values)
        hidden = first.conv(input_values[:, None])
        kernel, stride = first.conv.kernel_size[0], first.conv.stride[0]
        valid = ((attention_mask.sum(1) - kernel) // stride + 1).clamp_min(1)
        hidden = masked_instance_norm(hidden, valid, norm)
        hidden = first.activation(hidden)
        for layer in fe.conv_layers[1:]:
            hidden = layer(hidden)
        return hidden

    def positional(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The positional convolution's output for `hidden` (B, T, D) whose padded frames are 0."""
        pos = self.backbone.encoder.pos_conv_embed
        if not self.family.pos_conv_stack:
            return pos(hidden)
        # data2vec-audio's stack: each convolution (+ LayerNorm, GELU) makes the padded frames
        # non-zero, and the next one carries them into the last valid frames, so in the
        # family's own forward a clip's features depend on its batch mates' lengths. Zeroing
        # the padded frames between the convolutions makes a padded clip compute exactly what
        # it computes alone, so a prefix cached clip by clip equals the uncached batch.
        keep = mask.unsqueeze(1).to(hidden.dtype)
        x = hidden.transpose(1, 2)
        for layer in pos.layers:
            x = layer(x) * keep
        return x.transpose(1, 2)

    def layer_inputs(self, hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """What every encoder layer takes besides the hidden state, for a batch of `hidden`."""
        if not self.family.relative_position_bias:
            if self.backbone.config._attn_implementation == "sdpa":
                # What transformers builds for SDPA (True = attend), without its check whether
                # the mask may be dropped: that check reads the mask on the host, a
                # synchronisation that idled the GPU once every step.
                return {"attention_mask": mask[:, None, None, :]}
            attn = create_bidirectional_mask(
                config=self.backbone.config, inputs_embeds=hidden, attention_mask=mask
            )
            return {"attention_mask": attn}
        # WavLM: layer 0 turns its relative-position embedding into a bias (heads, T, T) that
        # every layer gates with its own input. It depends on the frame count only, so it is
        # computed here from layer 0 for whichever layer runs first: layers above a cached
        # prefix get the bias they would get uncached, and its gradient reaches layer 0's
        # embedding from every layer when layer 0 trains.
        attention = self.layers[0].attention
        b, t = hidden.shape[:2]
        bias = attention.compute_bias(t, t).unsqueeze(0).expand(b, -1, -1, -1)
        return {"attention_mask": mask, "position_bias": bias.reshape(-1, t, t)}

    def run_layer(
        self, i: int, hidden: torch.Tensor, inputs: dict[str, torch.Tensor], ckpt: bool = False
    ) -> torch.Tensor:
        """Encoder layer `i` on `hidden`; `ckpt`: recompute its activations in backward."""
        layer = self.layers[i]
        if ckpt:
            # Non-reentrant checkpointing restores the RNG state for the recomputation, so
            # dropout masks, and therefore gradients, equal those without checkpointing.
            out = checkpoint(layer, hidden, use_reentrant=False, **inputs)
        else:
            out = layer(hidden, **inputs)
        return out[0] if isinstance(out, tuple) else out  # WavLM also returns its bias

    def run_layers(
        self, hidden: torch.Tensor, mask: torch.Tensor, start: int, stop: int
    ) -> torch.Tensor:
        """Run encoder layers [start, stop) on `hidden`."""
        inputs = self.layer_inputs(hidden, mask)
        checkpointing = self.checkpoint_layers and self.training and torch.is_grad_enabled()
        for i in range(start, stop):
            ckpt = checkpointing and i >= self.frozen_prefix_layers
            hidden = self.run_layer(i, hidden, inputs, ckpt)
        return hidden

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over valid frames: (B, T, D) -> (B, D). Padded frames never enter."""
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

    def pool_head(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.stable_layer_norm:
            hidden = self.backbone.encoder.layer_norm(hidden)
        return self.head(self.pool(hidden, mask))

    def prefix(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden state entering layer `stop`, and the frame mask."""
        hidden, mask = self.embed(input_values, attention_mask)
        return self.run_layers(hidden, mask, 0, stop), mask

    def pooled_hidden_states(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Every hidden state (embedding output, then each layer's output; the last after the
        final LayerNorm in stable-layer-norm models, as HF's hidden_states), mean-pooled: (B, L+1, D).

        Pooling each state before weighting them is exact: masked mean pooling is linear, so
        sum_l w_l * pool(h_l) == pool(sum_l w_l * h_l). It is what lets `head` cache 13 vectors per
        clip instead of 13 frame-level tensors.
        """
        hidden, mask = self.embed(input_values, attention_mask)
        inputs = self.layer_inputs(hidden, mask)
        pooled = [self.pool(hidden, mask)]  # pooled as they come: one frame-level state alive
        for i in range(self.num_layers):
            hidden = self.run_layer(i, hidden, inputs)
            if self.stable_layer_norm and i == self.num_layers - 1:
                hidden = self.backbone.encoder.layer_norm(hidden)
            pooled.append(self.pool(hidden, mask))
        return torch.stack(pooled, dim=1)

    def frozen_features(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What the frozen part computes from a waveform, and its row mask (what a cache stores)."""
        if self.layer_weights is not None:
            pooled = self.pooled_hidden_states(input_values, attention_mask)
            return pooled, torch.ones(pooled.shape[:2], dtype=torch.bool, device=pooled.device)
        return self.prefix(input_values, attention_mask, self.frozen_prefix_layers)

    def forward_from_features(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Finish the forward pass from `frozen_features` (computed now or read from a cache)."""
        if self.layer_weights is not None:
            w = torch.softmax(self.layer_weights, 0).to(features.dtype)
            return self.head((features * w[None, :, None]).sum(1))
        return self.forward_from(features, mask, self.frozen_prefix_layers)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        prefix = self.frozen_features if self.prefix_runner is None else self.prefix_runner
        return self.forward_from_features(*prefix(input_values, attention_mask))

    def forward_from(self, hidden: torch.Tensor, mask: torch.Tensor, start: int) -> torch.Tensor:
        """Finish the forward pass from a (cached) hidden state entering layer `start`."""
        return self.pool_head(self.run_layers(hidden, mask, start, self.num_layers), mask)


def masked_instance_norm(
    hidden: torch.Tensor, valid: torch.Tensor, norm: nn.GroupNorm
) -> torch.Tensor:
    """`norm` (a GroupNorm with one group per channel) over each clip's first `valid` frames
    only: (B, C, T) -> (B, C, T), float32. Frames past `valid` hold values no valid frame of the
    next layers reads. Computed on the device without reading `valid` on the host (no
    synchronisation), in float32 whatever the autocast dtype, as GroupNorm itself is."""
    if norm.num_groups != norm.num_channels:
        raise BenchError(
            f"the feature encoder's GroupNorm has {norm.num_groups} groups for "
            f"{norm.num_channels} channels; only one group per channel (wav2vec2-base) is supported"
        )
    with torch.autocast(hidden.device.type, enabled=False):
        h = hidden.float()
        m = (torch.arange(h.shape[-1], device=h.device)[None, :] < valid[:, None]).float()
        n = m.sum(1)[:, None, None]  # (B, 1, 1)
        # Masked sums as batched matrix products: no (B, C, T) temporary for h * mask.
        mean = torch.bmm(h, m[:, :, None]) / n
        centred = h - mean
        var = torch.bmm(centred * centred, m[:, :, None]) / n
        scale = torch.rsqrt(var + norm.eps) * norm.weight[None, :, None]
        return torch.addcmul(norm.bias[None, :, None], centred, scale)


def compile_model(model: SERModel, backend: str, device: torch.device) -> str:
    """torch.compile the feature encoder, every encoder layer and the head, in place, and say
    how (a note for the result).

    Module by module rather than the whole model: the split forward (cached or not) calls them
    separately, and `Module.compile` keeps parameter names, so checkpoints and the best-epoch
    copy are unchanged. Shapes are marked dynamic from the start because every batch has its
    own length; otherwise each new length would recompile.
    Raises BenchError when the backend cannot work here, before anything trains.
    """
    if backend == "inductor" and device.type == "cpu":
        compiler = os.environ.get("CXX") or next(
            (c for c in ("g++", "c++", "clang++") if shutil.which(c)), None
        )
        if compiler is None or not shutil.which(compiler):
            raise BenchError(
                "+compile on CPU needs a C++ compiler for the inductor backend and none was found "
                "(g++, c++, clang++ or $CXX); install one, or use +compile:aot_eager"
            )
    modules = [model.backbone.feature_extractor, *model.layers, model.head]
    for m in modules:
        m.compile(backend=backend, dynamic=True)
    note = f"torch.compile backend={backend} on the CNN, {model.num_layers} layers and the head"
    if device.type == "cpu" and backend == "inductor":
        note += "; CPU inductor compilation takes minutes in the first steps (warm-up)"
    return note


def prepare_forward(model: SERModel, mods: Modifiers, device: torch.device) -> list[str]:
    """Set up how the forward pass executes for `mods` (checkpointing, compilation, CUDA
    graphs), and say so in notes for the result. Training, the ceiling tools and the plan's
    calibration all call this, so they time the same execution."""
    notes = []
    model.checkpoint_layers = mods.ckpt
    if mods.compile is not None:
        notes.append(compile_model(model, mods.compile, device))
    if mods.graph:
        model.prefix_runner = PrefixGraphs(model.frozen_features, model.frozen_modules(), device)
    return notes


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def build_model(
    name: str, weights: str, seed: int, strategy, n_outputs: int = 3
) -> tuple[SERModel, LoadedBackbone]:
    """Load the backbone, attach the seeded head with `n_outputs` outputs (one per label
    dimension), freeze everything, then let the strategy unfreeze. The head is built before the
    strategy touches anything, so every strategy starts from the same head for a seed."""
    loaded = load_backbone(name, weights, seed)
    model = SERModel(loaded.model, head_seed=seed + 1_000_003, n_outputs=n_outputs)
    for p in model.backbone.parameters():
        p.requires_grad = False
    strategy.validate(model.num_layers)
    strategy.apply(model)
    model.frozen_prefix_layers = strategy.first_trainable_layer(model.num_layers) or 0
    return model, loaded
