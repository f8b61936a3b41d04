"""The frozen prefix replayed as CUDA graphs (`+graph`).

Why: on an H100, a bf16 step of partial3 on wav2vec2-base took ~24 ms whatever the clip length
(3.6 s or 5 s), while fp32 scaled with the length: the host, dispatching kernels one by one, was
the floor. Counted on a CPU (`bench-ceiling --lengths`, host ops/step), a bf16 partial3 step
dispatches 6,145 aten operators, and 4,215 when it reads the prefix's output from a cache: about
1,930 are the frozen prefix (CNN, projection, positional convolution, 9 layers). It has no
gradient, runs in eval mode (no dropout) and sees a bounded set of input shapes (the length
grid), so each shape is captured once and then replayed with one launch.

A replay runs the kernels the eager forward ran, on the same inputs, so it returns the same
numbers. A shape's first visit pays for the capture; the step timer sets first visits apart
(`shape_warmup_s`), and with them the step after each capture, wherever it happened (training,
evaluation): entering `torch.cuda.graph` empties the allocator's cache, so that step
reallocates (`capture_warmup_steps`; the trainer hands the timer `count`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bench.errors import BenchError

# Eager runs before a capture: cuBLAS, cuDNN and the allocator initialise outside the graph.
WARMUP_RUNS = 2

Prefix = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def require_cuda(device: torch.device, strategies: str = "") -> None:
    """Refuse `+graph` off CUDA. The sweep calls this before any run starts (naming its
    `strategies`); `PrefixGraphs` calls it for every other entry point."""
    if device.type != "cuda":
        raise BenchError(
            (f"{strategies}: " if strategies else "")
            + f"+graph replays CUDA graphs and this run is on {device}; drop '+graph' or run on "
            "a CUDA device (--device cuda)"
        )


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, torch.Tensor]
    outputs: tuple[torch.Tensor, torch.Tensor]


class PrefixGraphs:
    """Calls `prefix(input_values, attention_mask)` by replaying a CUDA graph captured for the
    inputs' shape, dtype and autocast state; captures one at a shape's first call.

    All graphs share one memory pool. That is safe because they replay one at a time on one
    stream and every graph's inputs and outputs stay allocated, so one graph's intermediates can
    only reuse another's intermediates, never a tensor still read.
    """

    def __init__(self, prefix: Prefix, frozen: list[nn.Module], device: torch.device):
        require_cuda(device)
        trainable = [n for m in frozen for n, p in m.named_parameters() if p.requires_grad]
        if trainable:
            raise BenchError(
                f"+graph: the frozen prefix has trainable parameters ({', '.join(trainable[:3])}"
                f"{', ...' if len(trainable) > 3 else ''}); a graph would replay stale weights"
            )
        self.prefix, self.frozen, self.device = prefix, frozen, device
        self.graphs: dict[tuple, _Captured] = {}
        self.stream: torch.cuda.Stream | None = None
        self.pool = None
        self.capture_s = 0.0  # host seconds spent capturing, over all shapes

    @property
    def count(self) -> int:
        """Graphs captured so far. (A property, not `__len__`: a runner with none captured yet
        must not be falsy where the model picks it.)"""
        return len(self.graphs)

    def __call__(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (
            tuple(input_values.shape),
            input_values.dtype,
            tuple(attention_mask.shape),
            attention_mask.dtype,
            torch.is_autocast_enabled("cuda"),
            torch.get_autocast_dtype("cuda"),
        )
        captured = self.graphs.get(key)
        if captured is None:
            captured = self.graphs[key] = self._capture(input_values, attention_mask)
        captured.inputs[0].copy_(input_values)
        captured.inputs[1].copy_(attention_mask)
        captured.graph.replay()
        # Copies: the next replay of this shape overwrites the graph's output buffers.
        return captured.outputs[0].clone(), captured.outputs[1].clone()

    def _capture(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> _Captured:
        t0 = time.perf_counter()
        training = [n for m in self.frozen for n, sub in m.named_modules() if sub.training]
        if training:
            raise BenchError(
                f"+graph: frozen module {training[0]!r} runs in training mode, so a graph would "
                "replay one dropout mask for ever; +graph needs a frozen prefix of at least one "
                "transformer layer (partial3, not partial12)"
            )
        if self.stream is None:
            self.stream = torch.cuda.Stream(self.device)
        inputs = (input_values.clone(), attention_mask.clone())
        # The caller's autocast state, without its weight cache: a cast cached during capture
        # would live in the graph's pool and be freed when autocast exits.
        autocast = torch.autocast(
            "cuda",
            dtype=torch.get_autocast_dtype("cuda"),
            enabled=torch.is_autocast_enabled("cuda"),
            cache_enabled=False,
        )
        # Warm-up and capture on the same stream: handles that libraries create lazily per stream
        # exist before the capture starts.
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        try:
            with torch.no_grad(), autocast:
                with torch.cuda.stream(self.stream):
                    for _ in range(WARMUP_RUNS):
                        self.prefix(*inputs)
                torch.cuda.current_stream(self.device).wait_stream(self.stream)
                graph = torch.cuda.CUDAGraph()
                # thread_local: the loader's pin-memory thread may allocate pinned memory
                # meanwhile, which the default (global) mode would turn into a capture error.
                with torch.cuda.graph(
                    graph, pool=self.pool, stream=self.stream, capture_error_mode="thread_local"
                ):
                    outputs = self.prefix(*inputs)
        except RuntimeError as exc:
            raise BenchError(
                f"+graph: capturing the frozen prefix as a CUDA graph failed for input shape "
                f"{tuple(input_values.shape)}: {exc}. Run the strategy without '+graph'."
            ) from exc
        if self.pool is None:
            self.pool = graph.pool()
        self.capture_s += time.perf_counter() - t0
        return _Captured(graph, inputs, tuple(outputs))

    def buffers_mib(self) -> float:
        """Memory the graphs' own inputs and outputs hold (their intermediates share one pool)."""
        tensors = [t for c in self.graphs.values() for t in (*c.inputs, *c.outputs)]
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20

    def note(self) -> str:
        """One line for the result: what ran as graphs, and what capturing cost."""
        return (
            f"+graph: the frozen prefix ran as {self.count} CUDA graphs (one per input shape and "
            f"precision), captured in {self.capture_s:.2f} s at their shapes' first visits; "
            f"their input and output buffers hold {self.buffers_mib():.0f} MiB (in peak VRAM)"
        )
