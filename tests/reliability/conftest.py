"""Fixtures of the reliability suite: a crash-trial workspace and the trial count.

CI runs a small sample (CODEKIN_RELIABILITY_TRIALS, default 2 per operation);
`python benchmarks/reliability.py` runs the full counts and prints the table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.harness import CrashBench


def trial_count() -> int:
    return max(1, int(os.environ.get("CODEKIN_RELIABILITY_TRIALS", "2")))


@pytest.fixture(scope="session")
def crash_bench(tmp_path_factory: pytest.TempPathFactory) -> CrashBench:
    """Repositories indexed with a tiny random-init model that the user config names as primary."""
    bench = CrashBench.create(tmp_path_factory.mktemp("crash"))
    bench.calibrate = trial_count() >= 5  # a clean timing run costs as much as a trial: only for big samples
    return bench


@pytest.fixture
def crash_xdg(crash_bench: CrashBench, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process code reads the same user config as the killed subprocesses."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(crash_bench.work / "xdg"))
    return crash_bench.work / "xdg"
