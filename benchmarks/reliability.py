"""Reliability figures: SIGKILL at random moments of `codekin index`, `codekin sync`,
`codekin train` (mid-epoch and mid-checkpoint write) and promotion + `codekin reembed`, restart,
check (tests/reliability/harness.py, reembed_trials.py); then the concurrency storm: the server,
`codekin index` and N commits through the hooks at once, with a promotion (concurrency.py).

    python benchmarks/reliability.py                  # 50 trials per operation + a 1,000-commit storm
    python benchmarks/reliability.py --trials 10 --ops index,sync
    python benchmarks/reliability.py --ops concurrency --commits 200

Prints a table (scenario, trials, failures, kills that landed mid-run) and one JSON line.
Exit status 1 when any trial failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.reliability.concurrency import run_storm  # noqa: E402
from tests.reliability.harness import CrashBench, Trial, summarize  # noqa: E402
from tests.reliability.reembed_trials import reembed_trial  # noqa: E402

GUARANTEES = {
    "index": "rows = a fresh full index; every chunk embedded; search answers; no temp files",
    "sync": "no queued path lost; rows = a fresh full index after the restart; queue empty",
    "train-epoch": "active model loads and matches its manifest sha256; the run resumes",
    "train-checkpoint": "same, killed while a checkpoint is written; no .tmp-/.old- dirs left",
    "reembed": "killed promote + re-embed: one vector space before and after the restart; rows = a fresh index; "
               "the active model loads and matches its sha256; no temp files",
    "concurrency": "server + codekin index + N hook commits + a promotion at once: no failed git command, "
                   "no failed or mixed answer, no lost path, bounded time",
}
OPERATIONS = ("index", "sync", "train-epoch", "train-checkpoint", "reembed", "concurrency")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="trials per operation (default 50)")
    parser.add_argument("--ops", default=",".join(OPERATIONS), help="comma-separated: " + ", ".join(OPERATIONS))
    parser.add_argument("--commits", type=int, default=1000, help="commits of the concurrency storm (default 1000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    ops = [op for op in args.ops.split(",") if op]
    unknown = set(ops) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operation(s) {', '.join(sorted(unknown))}; known: {', '.join(OPERATIONS)}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="codekin-reliability-"))
    bench = CrashBench.create(work, seed=args.seed)
    os.environ["XDG_CONFIG_HOME"] = str(work / "xdg")  # the restarts read the same user config
    started = time.perf_counter()
    storm = None
    for op in ops:
        if op == "concurrency":
            storm = run_storm(bench, work / "storm", args.commits, deadline_s=max(1500.0, 3.0 * args.commits))
            bench.trials.append(Trial("concurrency", 1, problems=storm.failures))
            print(f"{'ok  ' if storm.ok else 'FAIL'} concurrency: {json.dumps(storm.to_dict())}", file=sys.stderr,
                  flush=True)
            continue
        for _ in range(args.trials):
            trial = (bench.index_trial() if op == "index" else bench.sync_trial() if op == "sync"
                     else reembed_trial(bench) if op == "reembed" else bench.train_trial(op.split("-", 1)[1]))
            mark = "ok  " if trial.ok else "FAIL"
            print(f"{mark} {op} #{trial.number}: kill after {trial.kill.delay:.3f} s "
                  f"({'mid-run' if trial.kill.killed else 'had finished'}) {'; '.join(trial.problems)}",
                  file=sys.stderr, flush=True)
    rows = summarize(bench.trials)
    print(f"{'scenario':<18}{'trials':>7}{'failures':>9}{'killed mid-run':>16}  guarantee")
    for row in rows:
        print(f"{row['scenario']:<18}{row['trials']:>7}{row['failures']:>9}{row['killed_mid_run']:>16}  "
              f"{GUARANTEES[row['scenario']]}")
    growth = {op: [sizes[0], sizes[-1]] for op, sizes in bench.index_growth.items() if sizes}
    print(json.dumps({"benchmark": "reliability", "trials_per_operation": args.trials, "results": rows,
                      "lance_bytes_first_last": growth, "calibration_s": bench.calibration,
                      "seconds": round(time.perf_counter() - started, 1),
                      "concurrency": storm.to_dict() if storm else None,
                      "failures": [t.to_dict() for t in bench.trials if not t.ok]}))
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
