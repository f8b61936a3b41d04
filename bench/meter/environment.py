"""What machine and software produced a result."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from bench.meter.host import cpu_model
from bench.meter.precision import precision_facts


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def describe_device(device: torch.device) -> dict:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {
            "type": "cuda",
            "name": props.name,
            "memory_mib": props.total_memory // 2**20,
            "cuda": torch.version.cuda,
            "capability": f"{props.major}.{props.minor}",
            # Which physical GPU: a launcher pins each run to one device through
            # CUDA_VISIBLE_DEVICES, so cuda:0 here can be any GPU of the machine.
            "uuid": str(getattr(props, "uuid", "")) or None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "precision": precision_facts(device),
        }
    return {
        "type": device.type,
        "name": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "precision": precision_facts(device),
    }


def gpu_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # no NVIDIA driver here: nothing to record
        return None
    return version.decode() if isinstance(version, bytes) else version


def environment() -> dict:
    return {
        "host": socket.gethostname(),  # which node of a cluster ran it
        "cpu": cpu_model(),
        "cuda": torch.version.cuda,
        "gpu_driver": gpu_driver() if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "serbench": _version("serbench"),
        "git_commit": git_commit(),
    }
