"""fp8 training: refused with a reason where it cannot run; the layer swap is reversible."""

from __future__ import annotations

from pathlib import Path

import pytest

from codekin.errors import TrainingError
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.fp8 import fp8_unavailable, from_fp8, to_fp8
from codekin.training.trainer.trainer import Trainer
from tests.test_torch_encode import TEXTS, tiny_qwen2


def test_fp8_is_refused_on_a_cpu_with_a_reason(tmp_path: Path):
    assert fp8_unavailable("cpu") == "fp8 training needs a CUDA GPU"
    trainer = Trainer(tiny_qwen2(tmp_path), device="cpu", args=TrainingArguments(precision="fp8", device="cpu"),
                      out=lambda line: None)
    with pytest.raises(TrainingError) as error:
        trainer.train([(TEXTS[0], TEXTS[1], TEXTS[2])] * 4)
    assert "CUDA" in str(error.value) and "--precision bf16" in error.value.hint


def test_auto_precision_never_picks_fp8_off_cuda(tmp_path: Path):
    trainer = Trainer(tiny_qwen2(tmp_path), device="cpu", out=lambda line: None)
    assert trainer._precision() in ("bf16", "fp32")


def test_fp8_linear_matches_plain_linear_and_swaps_back(tmp_path: Path):
    """Forward and both gradients within fp8's error of the plain products (CPU runs _scaled_mm too)."""
    import torch

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32)
    x = torch.randn(8, 5, 64, requires_grad=True)
    expected = layer(x)
    expected.square().sum().backward()
    grads = (x.grad.clone(), layer.weight.grad.clone())
    x.grad = layer.weight.grad = None

    holder = torch.nn.Sequential(layer)
    assert to_fp8(holder) == 1 and type(layer).__name__ == "Fp8Linear"
    got = layer(x)
    got.float().square().sum().backward()

    def close(a, b):  # relative error of the whole tensor: fp8 keeps ~2-3 significant bits
        return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())

    assert close(got, expected) < 0.08
    assert close(x.grad, grads[0]) < 0.15 and close(layer.weight.grad, grads[1]) < 0.15
    assert layer.weight.grad.dtype == torch.float32 and x.grad.dtype == x.dtype
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert from_fp8(holder) == 1 and type(layer) is torch.nn.Linear
    assert torch.equal(layer(x), expected)


def test_fp8_skips_layers_of_odd_sizes():
    import torch

    holder = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 10), torch.nn.Linear(10, 16))
    assert to_fp8(holder) == 1
    assert [type(m).__name__ for m in holder] == ["Fp8Linear", "Linear", "Linear"]


def test_doctor_says_what_training_runs_in():
    from codekin.doctor import _training_check

    check = _training_check()
    assert check.ok and check.detail.startswith("CPU: ") and "128-token" in check.detail
