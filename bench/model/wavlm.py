"""WavLM's attention with its projections called as modules, so adapters on them take effect.

transformers' `WavLMAttention` hands the *weights* of q_proj, k_proj, v_proj and out_proj to
`F.multi_head_attention_forward`. A peft adapter wraps the module and is only reached through its
forward, so LoRA, DoRA, (IA)^3, LoHa or AdaLoRA on a WavLM would never be called and would train
nothing. `ModuleCallingWavLMAttention` computes the same function with the operations of
`F.multi_head_attention_forward`'s need-weights path, in the same order, but through the modules;
a test checks it against the original forward.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.models.wavlm.modeling_wavlm import WavLMAttention


class ModuleCallingWavLMAttention(WavLMAttention):
    def torch_multi_head_self_attention(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        gated_position_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, None]:
        """(B, T, D) -> (B, T, D); `attention_mask` (B, T) is 1 on real frames,
        `gated_position_bias` (B * heads, T, T) is added to the attention scores."""
        bsz, length, dim = hidden_states.shape
        heads, head_dim = self.num_heads, dim // self.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B * heads, T, head_dim)
            return (
                x.view(bsz, length, heads, head_dim).transpose(1, 2).reshape(-1, length, head_dim)
            )

        # Scaled as torch's kernel does (sqrt(1/E), not E ** -0.5), for bit-level agreement.
        q = split(self.q_proj(hidden_states)) * math.sqrt(1.0 / head_dim)
        k = split(self.k_proj(hidden_states))
        v = split(self.v_proj(hidden_states))
        bias = gated_position_bias
        if attention_mask is not None:
            padded = attention_mask.ne(1).view(bsz, 1, 1, length).expand(bsz, heads, 1, length)
            bias = bias.masked_fill(padded.reshape(-1, 1, length), float("-inf"))
        weights = torch.softmax(torch.baddbmm(bias, q, k.transpose(-2, -1)), dim=-1)
        if self.training and self.dropout > 0.0:
            weights = nn.functional.dropout(weights, p=self.dropout)
        out = torch.bmm(weights, v).view(bsz, heads, length, head_dim).transpose(1, 2)
        # The averaged attention weights are not returned: nothing here uses them.
        return self.out_proj(out.reshape(bsz, length, dim)), None


def call_projection_modules(backbone: nn.Module) -> None:
    """Switch every WavLM attention of `backbone` to the module-calling version, in place
    (same parameters and names, so checkpoints and state dicts are unchanged)."""
    for module in backbone.modules():
        if type(module) is WavLMAttention:
            module.__class__ = ModuleCallingWavLMAttention
