"""The dashboard: one self-contained HTML page from metrics.db, the model registry and the index.

`collect(root)` gathers plain data (also served as JSON); `render(data)` turns it into
HTML with inline SVG charts and inline CSS (nothing is fetched: it works offline).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from html import escape
from pathlib import Path
from typing import Any

from codekin import __version__
from codekin.dashboard.svg import Series, bar_chart, line_chart
from codekin.state import INDEX_STATE, LANCE_DIR, METRICS_DB, state_path

PROMOTED, REJECTED, FAILED = "#54a24b", "#e45756", "#9e9e9e"
RUNS_SHOWN = 60


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def collect(root: Path) -> dict[str, Any]:
    """Runs (with before/after evaluation and epochs), embedding jobs, model versions, index size."""
    from codekin.errors import RegistryError
    from codekin.metrics import MetricsStore
    from codekin.models.registry import ModelRegistry

    root = Path(root)
    data: dict[str, Any] = {"root": str(root), "generated_at": time.time(), "runs": [], "embedding_jobs": [],
                            "versions": [], "active": "base", "index": None}
    if state_path(root, METRICS_DB).is_file():
        with MetricsStore(root) as metrics:
            for run in reversed(metrics.runs(limit=RUNS_SHOWN)):
                evals = metrics.evals(run_id=run["id"])
                run["before"] = {e["metric"]: e["value"] for e in evals if e["model_version"] == run["base_version"]}
                run["after"] = {e["metric"]: e["value"] for e in evals if e["model_version"] == run["new_version"]}
                run["epoch_rows"] = metrics.epochs(run["id"])
                data["runs"].append(run)
            data["embedding_jobs"] = list(reversed(metrics.embedding_jobs(limit=RUNS_SHOWN)))
    registry = ModelRegistry(root)
    try:
        data["active"] = registry.active_ref()
    except RegistryError as exc:
        data["active"] = f"unreadable ({exc.message})"
    data["versions"] = [{"version": v.id, **{k: v.manifest.get(k) for k in (
        "parent", "status", "created_at", "triplets", "reason", "dim", "base_model")},
        "candidate": v.manifest.get("metrics", {}).get("candidate", {})} for v in registry.versions()]
    data["index"], data["index_problem"] = _index(root)
    return data


def _index(root: Path) -> tuple[dict[str, Any] | None, str]:
    """The index's size and model, and what is wrong with it ("" when nothing is): a damaged or
    foreign index is said on the page, never raised inside it."""
    from codekin.errors import CodekinError
    from codekin.index import integrity
    from codekin.index.store import IndexStore

    state_dir = state_path(root)
    if not (state_dir / INDEX_STATE).is_file():
        return None, ""
    store = IndexStore(root)
    try:
        state = store.state()
        with integrity.guard():
            counts = store.counts()
    except CodekinError as exc:
        return None, f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    return {"chunks": counts.get("chunks", 0), "files": counts.get("files", 0),
            "active_table": f"vectors_{state.get('active_key')}", "model": state.get("model"),
            "bytes": _dir_bytes(state_dir / LANCE_DIR), "updated_at": state.get("updated_at")}, ""


def _when(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _charts(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(id, title, svg) of every chart."""
    runs = [r for r in data["runs"] if r["before"] or r["after"] or r["epoch_rows"] or r["status"] != "running"]
    labels = [f"#{r['id']}" for r in runs]

    def pairs(which: str, metric: str) -> list[tuple[float, float]]:  # runs without the metric are skipped
        return [(i, r[which][metric]) for i, r in enumerate(runs) if math.isfinite(r[which].get(metric, math.nan))]

    charts = [
        ("search", "Held-out MRR@10 through search, per query kind and run (doc->code before and after; "
                   "the other kinds after)", line_chart(
            "search MRR@10", labels,
            [Series("doc before", pairs("before", "search_doc_to_code_mrr@10")),
             Series("doc after", pairs("after", "search_doc_to_code_mrr@10")),
             *(Series(name, pairs("after", f"search_{kind}_mrr@10")) for name, kind in
               (("module", "module"), ("symbol", "symbol"), ("code", "code_to_code"), ("commit", "commit")))],
            "MRR@10", y_min=0)),
        ("mrr", "Held-out MRR@10 per run: before (active) and after (candidate)", line_chart(
            "MRR@10", labels, [Series("before", pairs("before", "mrr@10")), Series("after", pairs("after", "mrr@10"))],
            "MRR@10")),
        ("accuracy", "Held-out triplet accuracy per run: before and after", line_chart(
            "triplet accuracy", labels, [Series("before", pairs("before", "triplet_accuracy")),
                                         Series("after", pairs("after", "triplet_accuracy"))], "accuracy")),
    ]
    loss_runs = [r for r in runs if r["epoch_rows"]][-8:]
    epochs = max((len(r["epoch_rows"]) for r in loss_runs), default=0)
    charts.append(("loss", "Training loss per epoch (one line per run)", line_chart(
        "loss per epoch", [f"epoch {i + 1}" for i in range(epochs)],
        [Series(f"#{r['id']}", [(e["epoch"] - 1, e["loss"]) for e in r["epoch_rows"] if e["loss"] is not None])
         for r in loss_runs], "loss", y_min=0)))
    decided = [r for r in runs if r["status"] in ("completed", "failed")]
    colors = [PROMOTED if r["promoted"] else (REJECTED if r["status"] == "completed" else FAILED) for r in decided]
    gains = [max(0.0, _decided(r["after"])) for r in decided]
    charts.append(("decisions", "Runs: promoted vs rejected (bar height: the candidate's MRR@10 the gate "
                                "decided on)", bar_chart(
        "promoted vs rejected", [f"#{r['id']}" for r in decided], gains, colors, "MRR@10",
        [Series("promoted", [], PROMOTED), Series("rejected", [], REJECTED), Series("failed", [], FAILED)])))
    jobs = [j for j in data["embedding_jobs"] if j["status"] == "completed"]
    job_labels = [_when(j["started_at"])[5:] for j in jobs]
    index_points: list[tuple[float, float]] = [(i, float(j["chunks"] or 0)) for i, j in enumerate(jobs)]
    if data["index"] is not None:
        job_labels.append("now")
        index_points.append((len(job_labels) - 1, float(data["index"]["chunks"])))
    charts.append(("index", "Index size (chunks) at each re-embed and now", line_chart(
        "index size", job_labels, [Series("chunks", index_points)], "chunks", y_min=0)))
    charts.append(("throughput", "Embedding throughput of re-embedding jobs", line_chart(
        "embedding throughput", job_labels[:len(jobs)],
        [Series("embeddings/s", [(i, float(j["embeddings_per_second"] or 0)) for i, j in enumerate(jobs)])],
        "embeddings/s", y_min=0)))
    return charts


def _decided(metrics: dict[str, float]) -> float:
    """The candidate MRR@10 the gate decided on (codekin.metrics.deciding_metric), 0 when none."""
    from codekin.metrics import deciding_metric

    name = deciding_metric(metrics)
    return float(metrics[name]) if name else 0.0


def _versions_table(data: dict[str, Any]) -> str:
    head = ("<tr><th>version</th><th>parent</th><th>created</th><th>triplets</th><th>accuracy</th>"
            "<th>MRR@10</th><th>recall@10</th><th>status</th></tr>")
    rows = [f'<tr class="{"active" if data["active"] == "base" else ""}"><td>base</td><td>-</td><td>-</td>'
            f'<td>-</td><td>-</td><td>-</td><td>-</td><td>configured model</td></tr>']
    for v in reversed(data["versions"]):
        active = data["active"].split("/")[0] == v["version"]
        status = escape(str(v["status"])) + (f": {escape(str(v['reason']))}" if v.get("reason") and
                                             v["status"] in ("rejected", "failed") else "")
        c = v["candidate"]
        rows.append(f'<tr class="{"active" if active else ""}"><td>{escape(v["version"])}{" ★" if active else ""}</td>'
                    f'<td>{escape(str(v["parent"] or "-"))}</td><td>{_when(v["created_at"])}</td>'
                    f'<td>{v["triplets"] or 0}</td><td>{_num(c.get("triplet_accuracy"))}</td>'
                    f'<td>{_num(_decided(c) if c else None)}</td><td>{_num(c.get("recall@10"))}</td><td>{status}</td></tr>')
    return f'<table id="versions">{head}{"".join(rows)}</table>'


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}.sub{color:#666;margin:0 0 18px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:18px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:16px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px}figcaption{font-weight:600;margin-bottom:4px}
table{border-collapse:collapse;margin-top:18px}td,th{border-bottom:1px solid #eee;padding:4px 10px;text-align:left}
tr.active{background:#eef6ee}
.problem{border:1px solid #e45756;border-radius:6px;padding:8px 12px;background:#fdf0f0}
"""


def render(data: dict[str, Any]) -> str:
    index = data["index"] or {}
    runs = data["runs"]
    promoted = sum(1 for r in runs if r["promoted"])
    rejected = sum(1 for r in runs if r["status"] == "completed" and not r["promoted"])
    cards = [("active model", escape(str(data["active"]))), ("runs", str(len(runs))),
             ("promoted / rejected", f"{promoted} / {rejected}"), ("chunks", str(index.get("chunks", "-"))),
             ("index size", f"{index.get('bytes', 0) / 1e6:.1f} MB" if index else "-")]
    figures = "".join(f'<figure id="chart-{cid}"><figcaption>{escape(title)}</figcaption>{svg}</figure>'
                      for cid, title, svg in _charts(data))
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>codekin dashboard</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>codekin — learning dashboard</h1><p class=\"sub\">{escape(data['root'])} · generated "
            f"{_when(data['generated_at'])} UTC · codekin {__version__}</p>"
            + (f"<p class=\"problem\" id=\"index-problem\">index: {escape(data['index_problem'])}</p>"
               if data.get("index_problem") else "")
            + "<div class=\"cards\">" + "".join(f'<div class="card">{k}<b>{v}</b></div>' for k, v in cards) + "</div>"
            f"<div class=\"grid\">{figures}</div><h2>Model versions</h2>{_versions_table(data)}</body></html>")


def render_dashboard(root: Path) -> str:
    return render(collect(root))
