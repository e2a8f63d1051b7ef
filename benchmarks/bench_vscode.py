"""VS Code start to the first codekin code lens, in a real VS Code (the end-to-end driver).

Runs editors/vscode/e2e/run.sh (code-server from npm in Debian's headless chromium, the
packaged extension, a copy of examples/ indexed once before the rounds) and prints one JSON line: seconds from
starting code-server (the browser starts beside it) to the first "N similar · best 0.xx" lens over
webhook_retry_worker.ex (target <= 10 s), from opening the page, and to each phase on the way.
With --append the line is added to benchmarks/results/vscode.jsonl.

    python benchmarks/bench_vscode.py [--rounds 1] [--note TEXT] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "editors" / "vscode" / "e2e" / "run.sh"
RESULTS = REPO / "benchmarks" / "results" / "vscode.jsonl"


def one_round(env: dict[str, str]) -> dict:
    done = subprocess.run(["bash", str(RUN)], env=env, capture_output=True, text=True, timeout=1800)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summary = next((line for line in lines if line.get("benchmark") == "vscode_first_code_lens"), None)
    if done.returncode != 0 or summary is None:
        sys.exit(f"bench_vscode: run.sh failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="VS Code starts, each on a fresh profile")
    parser.add_argument("--note", default="", help="what the machine was doing, who ran it")
    parser.add_argument("--append", action="store_true", help=f"append the line to {RESULTS.relative_to(REPO)}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="codekin-bench-vscode-") as tmp:
        workspace = Path(tmp) / "examples"
        shutil.copytree(REPO / "examples", workspace, ignore=shutil.ignore_patterns(".codekin"))
        env = {**os.environ, "CODEKIN_PYTHON": sys.executable, "CODEKIN_E2E_SHOTS": str(Path(tmp) / "shots"),
               "CODEKIN_E2E_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        subprocess.run([sys.executable, "-m", "codekin.cli", "index", "."], cwd=workspace, env=env, check=True,
                       capture_output=True, timeout=1800)
        load_before = os.getloadavg()[0]
        rounds = [one_round(env) for _ in range(args.rounds)]
    starts = [r["start_to_first_lens_s"] for r in rounds]
    result = {
        "benchmark": "vscode_first_code_lens",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "vscode": "code-server 4.99.4 (VS Code 1.99.3), Debian chromium, headless",
        "rounds": args.rounds,
        "start_to_first_lens_s": min(starts),
        "start_to_first_lens_s_all": starts,
        "open_to_first_lens_s_all": [r["open_to_first_lens_s"] for r in rounds],
        "start_to_server_spawn_s_all": [r.get("start_to_server_spawn_s") for r in rounds],
        # seconds from starting code-server to: listening, browser up, workbench shown, extension
        # activated, `codekin serve` spawned, initialize answered, file open, first lens
        "phases_s_all": [r.get("phases_s") for r in rounds],
        "target_s": 10,
        "cpus": os.cpu_count(),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "note": args.note,
    }
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


if __name__ == "__main__":
    main()
