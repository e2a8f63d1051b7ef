"""Fault injection for damaged state, broken clients and hostile settings (issue 19, items 4-11):
malformed LSP frames, damaged active.json / manifests / weights / state.json / metrics.db, a
registry shipped by the repository, stale temporaries of a killed write, bad configuration,
a foreign Host header. Each trial damages a fresh real git repository (or writes to a running
`codekin serve`) with random detail and runs the real command (tests/reliability/state_faults.py).

    python benchmarks/reliability_state.py                 # 10 trials per fault
    python benchmarks/reliability_state.py --trials 3 --faults lsp-length-abc,config

Prints a table and one JSON line (trials and outcomes per fault), appended to
benchmarks/results/reliability.jsonl. Exit status 1 when any trial failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from reliability_common import (  # benchmarks/ is on sys.path when a script runs
    report,
    trial_parser,
)

from tests.reliability import state_faults as faults
from tests.reliability.harness import (
    codekin_command,
    make_tiny_model,
    tiny_embedder,
    write_user_config,
)
from tests.reliability.rawclient import RawClient
from tests.reliability.test_lsp_framing import FAULTS as FRAME_FAULTS


def catalogue(bench: faults.StateBench, index: Callable[[Path], None]) -> dict[str, Callable[[], faults.Outcome]]:
    table: dict[str, Callable[[], faults.Outcome]] = {}
    for damage in ("truncated", "not_utf8", "wrong_shape"):
        table[f"active-json-{damage.replace('_', '-')}"] = partial(faults.active_json, bench, damage)
        table[f"state-json-{damage.replace('_', '-')}"] = partial(faults.state_json, bench, damage, index)
    for damage in ("truncated", "not_utf8"):
        table[f"manifest-{damage.replace('_', '-')}"] = partial(faults.manifest, bench, damage)
    table.update({
        "weights-damaged": partial(faults.weights, bench),
        "registry-tracked-by-git": partial(faults.shipped_registry, bench, "tracked"),
        "registry-from-another-machine": partial(faults.shipped_registry, bench, "foreign"),
        "index-tracked-by-git": partial(faults.shipped_index, bench, "tracked", index),
        "index-from-another-machine": partial(faults.shipped_index, bench, "foreign", index),
        "manifest-wrong-types": partial(faults.manifest_types, bench),
        "metrics-db-damaged": partial(faults.metrics_db, bench),
        "config": partial(faults.bad_config, bench),
        "promote-base": partial(faults.promote_base, bench),
        "stale-json-temporary": partial(faults.stale_temporary, bench),
        "dashboard-host": partial(faults.dashboard_host, bench),
    })
    return table


def serve(bench: faults.StateBench) -> RawClient:
    root = bench.repo(promoted=False)
    client = RawClient(codekin_command("serve", "--no-watch"), bench.env, root, bench.work / "serve.log")
    client.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    client.probe()
    return client


def main() -> int:
    parser = trial_parser(__doc__ or "")
    parser.add_argument("--faults", default="", help="comma-separated fault names or prefixes (default: all)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="codekin-state-faults-"))
    bench = faults.StateBench.create(work, args.seed)
    model = make_tiny_model(work / "tiny")
    write_user_config(work / "xdg", model)
    os.environ["XDG_CONFIG_HOME"] = str(work / "xdg")
    embedder = tiny_embedder(model)

    def index(root: Path) -> None:
        from codekin.config import load_config
        from codekin.indexer import Indexer

        Indexer(root, load_config(root), embedder=embedder).run()

    table = catalogue(bench, index)
    wanted = [w for w in args.faults.split(",") if w]
    names = [f"lsp-{f}" for f in FRAME_FAULTS] + list(table)
    names = [n for n in names if not wanted or any(n.startswith(w) for w in wanted)]
    client = serve(bench) if any(n.startswith("lsp-") for n in names) else None
    started, rows = time.perf_counter(), []
    for name in names:
        outcomes: Counter[str] = Counter()
        problems: list[str] = []
        for trial in range(args.trials):
            if client is not None and name.startswith("lsp-"):
                outcome, trouble = faults.lsp_frame(client, name[4:], bench.rng)
            else:
                outcome, trouble = table[name]()
            outcomes[outcome if not trouble else "FAILED"] += 1
            problems += [f"#{trial}: {p}" for p in trouble]
            print(f"{'FAIL' if trouble else 'ok  '} {name} #{trial}: {outcome} {'; '.join(trouble)}",
                  file=sys.stderr, flush=True)
        rows.append({"fault": name, "trials": args.trials, "failures": outcomes["FAILED"],
                     "outcomes": dict(outcomes), "problems": problems[:5]})
    if client is not None:
        client.close()
    print(f"{'fault':<32}{'trials':>7}{'failures':>9}  outcomes")
    for row in rows:
        print(f"{row['fault']:<32}{row['trials']:>7}{row['failures']:>9}  {row['outcomes']}")
    line = {"benchmark": "reliability-state", "date": time.strftime("%Y-%m-%d"), "trials_per_fault": args.trials,
            "command": "python benchmarks/reliability_state.py " + " ".join(sys.argv[1:]),
            "seconds": round(time.perf_counter() - started, 1), "results": rows}
    report(line, record=not args.no_record)
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
