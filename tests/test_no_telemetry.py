"""codekin stays local: loading the int8 model starts no telemetry and no child process."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

PROBE = """
import multiprocessing, sys
from codekin.config import ModelConfig
from codekin.embedding import load_embedder
embedder = load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))
embedder.encode(["def f(x), do: x"])
print(sys.modules.get("openvino_telemetry"), len(multiprocessing.active_children()))
"""


def test_openvino_backend_loads_without_telemetry():
    pytest.importorskip("openvino")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "0"]
    assert "fork" not in out.stderr
