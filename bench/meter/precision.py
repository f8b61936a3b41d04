"""The device's precision facts: what decides what `+amp` costs on it.

On a CPU, bf16 and fp16 run natively only with their instructions (AVX512-BF16 or AMX for bf16,
AVX512-FP16 or AMX-FP16 for fp16); elsewhere oneDNN emulates them, on an AVX2-only CPU about ten
times slower than fp32, so a `+amp` run there measures the emulation, not mixed precision. What
oneDNN may use is both the hardware and its limits (`ONEDNN_MAX_CPU_ISA`, `ATEN_CPU_CAPABILITY`), so
"native" is oneDNN's own answer, confirmed by the CPU's flags where they can be read. On CUDA,
bf16 needs compute capability 8.0 (Ampere) and TF32 and cuDNN settings decide what "fp32" is.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

# /proc/cpuinfo flags that carry reduced precision in hardware.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FP16_FLAGS = ("avx512_fp16", "amx_fp16")
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux), or None where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def _mkldnn(check: str) -> bool:
    fn = getattr(torch.ops.mkldnn, check, None)
    try:
        return bool(fn()) if fn is not None else False
    except RuntimeError:  # a build without oneDNN
        return False


def cpu_precision_facts() -> dict:
    flags = _cpu_flags()
    has = (lambda names: any(n in flags for n in names)) if flags is not None else (lambda n: True)
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # what ATen dispatches to
        "isa_flags": sorted(f for f in ISA_FLAGS if flags and f in flags) if flags else None,
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "bf16_native": _mkldnn("_is_mkldnn_bf16_supported") and has(BF16_FLAGS),
        "fp16_native": _mkldnn("_is_mkldnn_fp16_supported") and has(FP16_FLAGS),
    }


def cuda_precision_facts(device: torch.device) -> dict:
    major, minor = torch.cuda.get_device_capability(device)
    return {
        "compute_capability": f"{major}.{minor}",
        "bf16_native": major >= 8,
        "fp16_native": (major, minor) >= (5, 3),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cudnn_version": torch.backends.cudnn.version(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def precision_facts(device: torch.device) -> dict:
    """Plain data for results and reports; keys as in `cpu_precision_facts` or
    `cuda_precision_facts`, both with `bf16_native` and `fp16_native`."""
    if device.type == "cuda":
        return cuda_precision_facts(device)
    if device.type == "cpu":
        return cpu_precision_facts()
    return {"bf16_native": None, "fp16_native": None}


def is_emulated(precision: str, facts: dict) -> bool:
    """Whether `precision` (fp32, bf16, fp16: what `+amp` resolved to) has no hardware support
    on the device these facts describe. Unknown support is not called emulated."""
    if precision not in ("bf16", "fp16"):
        return False
    return facts.get(f"{precision}_native") is False


def describe_facts(facts: dict) -> str:
    """The facts in one line for consoles and report headers."""

    def native(p: str) -> str:
        v = facts.get(f"{p}_native")
        return f"{p} {'native' if v else 'emulated' if v is False else 'unknown'}"

    if "compute_capability" in facts:
        return (
            f"compute capability {facts['compute_capability']}, {native('bf16')}, "
            f"TF32 matmul {'on' if facts.get('tf32_matmul') else 'off'} / cuDNN "
            f"{'on' if facts.get('tf32_cudnn') else 'off'}, cuDNN {facts.get('cudnn_version')}, "
            f"cudnn.benchmark {'on' if facts.get('cudnn_benchmark') else 'off'}"
        )
    isa = facts.get("isa_flags")
    return (
        f"ATen {facts.get('cpu_capability')}"
        + (f" (CPU flags: {', '.join(isa)})" if isa else "")
        + (
            f", ONEDNN_MAX_CPU_ISA={facts['onednn_max_cpu_isa']}"
            if facts.get("onednn_max_cpu_isa")
            else ""
        )
        + f"; {native('bf16')}, {native('fp16')}"
    )


EMULATED_MEANING = (
    "reduced precision without hardware support on this device: the figure measures software "
    "emulation (often several times slower than fp32) and says nothing about mixed precision "
    "on a GPU or a CPU with AVX512-BF16/AMX"
)


def emulated_note(precision: str, device: dict) -> str:
    """The note an emulated-precision run carries (`device`: `describe_device`'s dict)."""
    facts = device.get("precision", {})
    return (
        f"EMULATED {precision}: {device.get('name') or device.get('type')} has no {precision} "
        f"hardware support ({describe_facts(facts)}); this run's speed is {EMULATED_MEANING}"
    )
