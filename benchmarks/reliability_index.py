"""Index fault injection (issue 19, items 1, 2, 3, 10): damaged LanceDB files, file names that
are not UTF-8 and LanceDB leftovers of a killed index, each on a fresh copy of a real indexed
git repository, then the real command line (tests/reliability/damage.py).

    python benchmarks/reliability_index.py                 # 10 trials per fault
    python benchmarks/reliability_index.py --trials 3 --faults scribble-vectors,non-utf8-name

A trial counts tracebacks, silently wrong answers (a command that exits 0 on a damaged index
with other answers, or says all is well) and commands that stay broken after the fix the
message names. Prints a table on stderr and one JSON line, appended to
benchmarks/results/reliability.jsonl. Exit status 1 when any trial failed.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reliability_common import (  # benchmarks/ is on sys.path when a script runs
    report,
    trial_parser,
)

from tests.reliability.damage import (
    FAULTS,
    Trial,
    answers,
    copy_index,
    damage_trial,
    leftovers_trial,
    name_trial,
)
from tests.reliability.harness import CrashBench, initial_files, make_repo

ALL = (*FAULTS, "non-utf8-name", "lance-leftovers")


def summarize(trials: list[Trial]) -> list[dict]:
    rows = []
    for fault in dict.fromkeys(t.fault for t in trials):
        mine = [t for t in trials if t.fault == fault]
        rows.append({"fault": fault, "trials": len(mine),
                     "tracebacks": sum(len(t.tracebacks) for t in mine),
                     "silently_wrong": sum(len(t.silently_wrong) for t in mine),
                     "still_broken": sum(len(t.still_broken) for t in mine),
                     "failed_trials": sum(not t.ok for t in mine),
                     "exit_codes": {command: sorted({t.exits[command] for t in mine if command in t.exits})
                                    for command in ("status", "doctor", "search") if any(command in t.exits for t in mine)}})
    return rows


def main() -> int:
    parser = trial_parser(__doc__ or "")
    parser.add_argument("--faults", default=",".join(ALL), help="comma-separated: " + ", ".join(ALL))
    parser.add_argument("--keep", action="store_true", help="keep the damaged repositories (default: removed)")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(ALL)
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    work = Path(tempfile.mkdtemp(prefix="codekin-reliability-index-"))
    bench = CrashBench.create(work, seed=args.seed)  # the tiny model as the user's primary model
    os.environ["XDG_CONFIG_HOME"] = str(work / "xdg")
    from codekin.config import load_config
    from codekin.indexer import Indexer

    base = make_repo(work / "base", initial_files(12))
    Indexer(base, load_config(base), embedder=bench.embedder).run()
    outcome, expected = answers(base)
    if outcome.code != 0:
        raise SystemExit(f"the undamaged index does not answer: {outcome.err}")
    rng = random.Random(args.seed)
    trials: list[Trial] = []
    started = time.perf_counter()
    for fault in faults:
        for number in range(args.trials):
            root = copy_index(base, work / f"{fault}-{number}")
            trial = (name_trial(root, rng) if fault == "non-utf8-name" else leftovers_trial(root, expected, rng)
                     if fault == "lance-leftovers" else damage_trial(fault, root, expected, rng))
            trials.append(trial)
            print(f"{'ok  ' if trial.ok else 'FAIL'} {fault} #{number + 1}: {trial.detail} "
                  f"{json.dumps(trial.to_dict()) if not trial.ok else ''}", file=sys.stderr, flush=True)
    rows = summarize(trials)
    print(f"{'fault':<30}{'trials':>7}{'tracebacks':>11}{'silently wrong':>15}{'still broken':>13}", file=sys.stderr)
    for row in rows:
        print(f"{row['fault']:<30}{row['trials']:>7}{row['tracebacks']:>11}{row['silently_wrong']:>15}"
              f"{row['still_broken']:>13}", file=sys.stderr)
    line = {"benchmark": "reliability-index", "date": datetime.date.today().isoformat(),
            "command": "python benchmarks/reliability_index.py " + " ".join(sys.argv[1:]),
            "trials_per_fault": args.trials, "results": rows, "seconds": round(time.perf_counter() - started, 1),
            "failures": [t.to_dict() for t in trials if not t.ok], "machine": f"{os.cpu_count()} shared CPU cores"}
    report(line, record=not args.no_record)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(not t.ok for t in trials) else 0


if __name__ == "__main__":
    sys.exit(main())
