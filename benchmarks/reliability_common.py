"""What the fault-injection scripts share (reliability_index.py, reliability_state.py): the
start-up (the repository on sys.path for `tests.reliability`, everything offline), their common
arguments and where their JSON line goes. Import it before anything of `tests` or `codekin`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = REPO / "benchmarks" / "results" / "reliability.jsonl"


def trial_parser(doc: str) -> argparse.ArgumentParser:
    """--trials, --seed and --no-record, as every fault-injection script takes them."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="trials per fault (default 10)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    return parser


def report(line: dict, record: bool) -> None:
    """Print the JSON line (naming the machine, when the script did not); with `record`, append it
    to benchmarks/results/reliability.jsonl."""
    line.setdefault("machine", f"{os.cpu_count()} shared CPU cores (other work may run at the same time)")
    print(json.dumps(line))
    if record:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
