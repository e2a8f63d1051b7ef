"""fp8 training on GPUs with fp8 tensor cores (H100/H200, L4/L40, RTX 40xx).

Every linear layer of the transformer runs its three matrix products (forward, input and
weight gradients) in float8 through `torch._scaled_mm`, with one dynamic scale per tensor
(its absolute maximum mapped to the format's largest value): inputs and weights in e4m3,
gradients in e5m2 (more range, less precision). Weights, optimizer state and everything
around the linear layers stay as they were (fp32 master weights, bf16 autocast).

A plain autograd function rather than torchao's tensor subclasses: torch.compile caches
its graphs across processes (a warm nightly run compiles in ~2 s instead of ~7 s), and
nothing else needs installing. Measured on one H100 with the Qwen2-1.5B shape
(benchmarks/gpu_train.py): see README "Training".

fp8 pays only for big matrices under torch.compile (the casts are fused into the
neighbouring kernels): `auto` picks it for models of at least FP8_MIN_PARAMS parameters on
GPUs of compute capability 8.9 or more; otherwise training stays in bf16.
"""

from __future__ import annotations

from typing import Any

FP8_MIN_PARAMS = 500_000_000
FP8_MIN_CAPABILITY = (8, 9)


def fp8_unavailable(device: str) -> str:
    """Why fp8 training cannot run here ("" when it can)."""
    if device != "cuda":
        return "fp8 training needs a CUDA GPU"
    import torch

    capability = torch.cuda.get_device_capability()
    if capability < FP8_MIN_CAPABILITY:
        return f"this GPU (compute capability {capability[0]}.{capability[1]}) has no fp8 tensor cores"
    return ""


def _cast(tensor: Any, dtype: Any) -> tuple[Any, Any]:
    """(tensor scaled into dtype's range and cast, the scale that undoes it)."""
    import torch

    top = torch.finfo(dtype).max
    amax = tensor.detach().abs().amax().float().clamp(min=1e-12)
    scale = amax / top
    return (tensor.float() / scale).clamp(-top, top).to(dtype), scale


def _column_major(tensor: Any) -> Any:
    """The same matrix laid out column by column (what _scaled_mm wants as its second operand)."""
    return tensor.t().contiguous().t()


def _fp8_linear_class() -> Any:
    import torch

    class Fp8Matmul(torch.autograd.Function):
        """y = x @ w.T in float8; x: (..., in), w: (out, in); returns bf16."""

        @staticmethod
        def forward(ctx: Any, x: Any, weight: Any) -> Any:
            shape = x.shape
            x8, sx = _cast(x.reshape(-1, shape[-1]), torch.float8_e4m3fn)
            w8, sw = _cast(weight, torch.float8_e4m3fn)
            ctx.save_for_backward(x8, sx, w8, sw)
            ctx.shape, ctx.x_dtype = shape, x.dtype
            out = torch._scaled_mm(x8, w8.t(), sx, sw, out_dtype=torch.bfloat16)
            return out.reshape(*shape[:-1], weight.shape[0])

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[Any, Any]:
            x8, sx, w8, sw = ctx.saved_tensors
            g8, sg = _cast(grad.reshape(-1, grad.shape[-1]), torch.float8_e5m2)
            grad_x = torch._scaled_mm(g8, _column_major(w8), sg, sw, out_dtype=torch.bfloat16)
            grad_w = torch._scaled_mm(g8.t().contiguous(), _column_major(x8), sg, sx, out_dtype=torch.float32)
            return grad_x.reshape(ctx.shape).to(ctx.x_dtype), grad_w

    class Fp8Linear(torch.nn.Linear):
        """An nn.Linear whose products run in fp8 (same parameters, same state dict)."""

        def forward(self, x: Any) -> Any:
            out = Fp8Matmul.apply(x, self.weight)
            return out if self.bias is None else out + self.bias.to(out.dtype)

    return Fp8Linear


_FP8_LINEAR: Any = None


def _eligible(module: Any) -> bool:
    """Linear layers whose dimensions fp8 matrix products accept (multiples of 16)."""
    import torch

    return (type(module) is torch.nn.Linear and module.in_features % 16 == 0
            and module.out_features % 16 == 0)


def to_fp8(module: Any) -> int:
    """Make the eligible linear layers of `module` compute in fp8; returns how many.
    The layers keep their parameters (an optimizer built before or after sees the same ones)."""
    global _FP8_LINEAR
    if _FP8_LINEAR is None:
        _FP8_LINEAR = _fp8_linear_class()
    count = 0
    for child in module.modules():
        if _eligible(child):
            child.__class__ = _FP8_LINEAR
            count += 1
    return count


def from_fp8(module: Any) -> int:
    """Undo to_fp8 (evaluation and inference after training run the plain layers); returns how many."""
    import torch

    count = 0
    for child in module.modules():
        if _FP8_LINEAR is not None and type(child) is _FP8_LINEAR:
            child.__class__ = torch.nn.Linear
            count += 1
    return count
