"""`auto` picks cuda, then mps, then cpu.

torch is imported only when an accelerator could exist: on a Linux machine without a GPU
driver (no NVIDIA, WSL GPU or ROCm device node) `auto` is the CPU, and answering that does
not cost a torch import (~0.3 GB, seconds) to a process that runs the int8 backend.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from codekin.errors import ModelLoadError

# Present whenever torch could see a GPU: the NVIDIA driver, WSL2's GPU bridge, ROCm.
ACCELERATOR_NODES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")


def accelerator_possible() -> bool:
    """False only where no GPU can be visible to torch (checked without importing it)."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    if not sys.platform.startswith("linux"):
        return True
    return any(Path(node).exists() for node in ACCELERATOR_NODES)


def choose_device(preference: str = "auto") -> str:
    if preference == "cpu" or (preference == "auto" and not accelerator_possible()):
        return "cpu"
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device cuda requested but no CUDA GPU is visible", "use --device cpu or auto")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("device mps requested but MPS is not available", "use --device cpu or auto")
    return preference
