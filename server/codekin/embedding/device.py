"""`auto` picks cuda, then mps, then cpu."""

from __future__ import annotations

from codekin.errors import ModelLoadError


def choose_device(preference: str = "auto") -> str:
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
