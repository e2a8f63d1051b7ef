"""The VS Code extension (editors/vscode) inside a real VS Code, used as a user would.

editors/vscode/e2e/run.sh installs code-server (VS Code 1.99) and playwright-core from npm
(cached, nothing fetched from outside npm/Debian), packages the extension (or takes
$CODEKIN_VSIX, or the .vsix that editors/ci.sh left in $CODEKIN_EDITORS_OUT), indexes a copy of
examples/ with the real CLI and drives VS Code in Debian's headless chromium: open the file,
wait for the code lenses, Find Similar Code on compute_backoff/1, Semantic Search, the status
bar, Retrain. The driver reads text from the DOM and prints one JSON line per step; this test
checks what each step saw. Screenshots go to $CODEKIN_E2E_SHOTS (default: this test's tmp dir).
Minutes long (install on a cold cache, indexing, a real retraining start): marked storm.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

RUN = REPO / "editors" / "vscode" / "e2e" / "run.sh"
LENS = re.compile(r"\d+ similar · best [01]\.\d\d|no similar code")
TWINS = ("kin_util:backoff_ms/3", "KinShop.Workers.StockSyncWorker.backoff_delay/1")
BACKOFF = ("compute_backoff/1", "backoff_ms/3", "backoff_delay/1", "open_delay/2")
STEPS = ["workbench", "code-lenses", "status-bar", "find-similar", "semantic-search", "retrain"]


def _vsix() -> str:
    """The .vsix CI already packaged, if any; empty: run.sh packages one."""
    if os.environ.get("CODEKIN_VSIX"):
        return os.environ["CODEKIN_VSIX"]
    out = os.environ.get("CODEKIN_EDITORS_OUT")
    found = sorted(Path(out).glob("codekin-*.vsix")) if out else []
    return str(found[-1]) if found else ""


def run_e2e(tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict, dict]:
    shots = Path(os.environ.get("CODEKIN_E2E_SHOTS") or tmp_path / "shots")
    env = {**os.environ, "CODEKIN_E2E_SHOTS": str(shots), "CODEKIN_PYTHON": sys.executable,
           "CODEKIN_VSIX": _vsix()}
    done = subprocess.run(["bash", str(RUN), "--retrain"], env=env, capture_output=True, text=True, timeout=1500)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = {line["step"]: line for line in lines if "step" in line}
    summary = next((line for line in lines if line.get("benchmark") == "vscode_first_code_lens"), {})
    return done, steps, summary


@pytest.mark.storm
@pytest.mark.timeout(1800)
def test_extension_in_real_vscode(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed (apt-get install nodejs npm)")
    done, steps, summary = run_e2e(tmp_path)
    failed = [step for step in steps.values() if not step["ok"]]
    context = f"failed: {json.dumps(failed, indent=1)}\nstdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0 and summary.get("ok") is True, context
    assert list(steps) == STEPS, context
    seen = {name: step["seen"] for name, step in steps.items()}

    # a screenshot of every step, kept outside the source tree
    for step in steps.values():
        shot = Path(step["screenshot"])
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not shot.resolve().is_relative_to(REPO), step

    # code lenses over the functions of webhook_retry_worker.ex, resolved by the server
    lenses = seen["code-lenses"]["lenses"]
    assert lenses and all(LENS.fullmatch(lens) for lens in lenses), lenses
    assert any(lens != "no similar code" for lens in lenses), lenses
    assert summary["start_to_first_lens_s"] > 0, summary

    # the status bar shows the index
    assert re.fullmatch(r"codekin: \d+ chunks", seen["status-bar"]["text"]), seen["status-bar"]

    # Find Similar Code on compute_backoff/1: its two backoff twins first, not itself
    similar = seen["find-similar"]
    assert similar["title"].endswith("similar to KinShop.Workers.WebhookRetryWorker.compute_backoff/1"), similar
    top = similar["results"][:2]
    assert all(any(twin in label for label in top) for twin in TWINS), similar["results"]
    assert not any("compute_backoff/1" in label for label in similar["results"]), similar["results"]

    # Semantic Search: live results while typing; the first (a backoff function) opens with its lines selected
    search = seen["semantic-search"]
    assert any(name in search["results"][0] for name in BACKOFF), search["results"]
    start, end = (int(n) for n in re.search(r":(\d+)-(\d+)$", search["chosen"]).groups())
    assert re.fullmatch(rf"Ln {end}, Col \d+ \(\d+ selected\)", search["selection"]) and start < end, search

    # Retrain answers with a notification (started, or why not); a started run shows its progress
    retrain = seen["retrain"]
    assert re.match(r"codekin: retraining (started|did not start)", retrain["notification"]), retrain
    if retrain["notification"].startswith("codekin: retraining started"):
        assert retrain["progress"].startswith("codekin: retraining ("), retrain
