"""Run the relevance benchmark (issue 18): every query in every mode, one JSON line.

For each corpus repository: copy the files its include/exclude globs keep (from the
checkout prepare.py made) into ~/.cache/codekin-relevance/work/<label>/<name>, with the
docs of up to 30 documented Elixir/Erlang functions blanked (doc -> code queries; the
same copies for every label), commit it, index it with codekin's Python API (default
config; an existing index is brought up to date, which embeds nothing when nothing
changed), then score queries/<name>.jsonl in each mode:

- dense, lexical, hybrid: `Engine.search(query, limit=50, mode=m)`; code queries
  `Engine.similar(path, start, end, limit=50, mode=m)` (the query's own span left out);
- bm25-windows: plain BM25 (codekin's Bm25 and terms, no name field) over 40-line
  windows with stride 30 of the same files, the baseline of the issue;
- files: `Engine.search_files(query, limit=10)` at file level, when the engine has it.

Metrics are in scoring.py. Prints one JSON line (stdout) and appends it to
benchmarks/results/relevance.jsonl unless --no-record; progress goes to stderr.

Usage: python benchmarks/relevance/run.py [--code PATH] [--label NAME] [--only a,b]
       [--half tune|held|all] [--dump FILE] [--note TEXT] [--no-record] [--index-from LABEL]
  --code: a codekin checkout whose server/ is imported (e.g. a `git worktree add
  /tmp/codekin-main <commit>` of main); default: this working tree.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # nothing of the benchmark's own lands in the project tree
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import doc2code  # noqa: E402
import prepare  # noqa: E402
import scoring  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "relevance.jsonl"
WORK_RECIPE = 1  # bump when the work tree's contents change for the same corpus entry
ENGINE_MODES = ("dense", "lexical", "hybrid")
BASELINE = "bm25-windows"
KINDS = ("symbol", "semantic", "architecture", "code")
LEVELS = ("function", "module")
LIMIT = 50
WINDOW_LINES, WINDOW_STRIDE = 40, 30
MAX_FILE_BYTES = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the code under test ----------------------------------------------------------------------
def import_codekin(code: Path):
    """Put code/server first on sys.path and import codekin from there."""
    server = (code / "server").resolve()
    if not (server / "codekin" / "__init__.py").is_file():
        raise SystemExit(f"--code {code}: no server/codekin here; give a codekin checkout")
    sys.path.insert(0, str(server))
    import codekin

    if not Path(codekin.__file__).resolve().is_relative_to(server):
        raise SystemExit(f"codekin was imported from {codekin.__file__}, not {server}")
    return codekin


def code_identity(code: Path) -> dict:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(code), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short=7", "HEAD")
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "server"))
    return {"path": str(code), "head": head, "branch": "" if branch == "HEAD" else branch, "dirty": dirty}


def default_label(identity: dict) -> str:
    label = "-".join(p for p in (identity["branch"].replace("/", "_"), identity["head"] or "nogit") if p)
    return label + ("-dirty" if identity["dirty"] else "")


def construct(cls, *args, **kwargs):
    """cls(*args, **kwargs) without the keyword arguments its signature does not take."""
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return cls(*args, **kwargs)


class StderrProgress:
    """codekin's progress protocol, as a line on stderr every 20 s (runs in the background)."""

    def __init__(self, repo: str, title: str, total: int) -> None:
        self.repo, self.title, self.total, self.done = repo, title, total, 0
        self.started = self.last = time.perf_counter()

    @classmethod
    def factory(cls, repo: str):
        return lambda title, total: cls(repo, title, total)

    def __enter__(self) -> StderrProgress:
        log(f"  {self.repo}: {self.title.lower()} {self.total} ...")
        return self

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= 20:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            log(f"  {self.repo}: {self.title.lower()} {self.done}/{self.total} ({rate:.0f}/s)")

    def __exit__(self, *exc: object) -> None:
        log(f"  {self.repo}: {self.title.lower()} {self.done}/{self.total} in "
            f"{time.perf_counter() - self.started:.0f} s")


# -- work trees ---------------------------------------------------------------------------------
def read_source(path: Path) -> str | None:
    """UTF-8 text as codekin reads it (None: binary, not UTF-8, empty or over 1 MB)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n") if text.strip() else None


def line_count(text: str) -> int:
    return len(text.split("\n")) - (1 if text.endswith("\n") else 0)


def doc_functions(entry: dict, files: list[str], queries: list[dict]) -> list[doc2code.DocFunction]:
    """The doc -> code functions of an Elixir/Erlang repository: seeded; none whose doc another
    function's nearly repeats (doc2code.without_twins), and none that makes up half or more of a
    span a written query names (a target or its query span), so no written query about one
    function loses that function's doc (a module-wide span does not count)."""
    if entry["language"] not in ("elixir", "erlang"):
        return []
    used = [(t["path"], t["start"], t["end"]) for q in queries
            for t in [*q["relevant"], *(q.get("secondary") or []), *([q["query_span"]] if "query_span" in q else [])]
            if t.get("start") is not None]
    src = prepare.src_dir(entry["name"])
    documented = []
    for rel in files:
        if doc2code.language_of(rel) is None or (src / rel).is_symlink():
            continue
        text = read_source(src / rel)
        if text is not None:
            documented += doc2code.documented_functions(rel, text)
    candidates = [f for f in documented
                  if not any(_mostly(span, (f.path, min(f.doc_lines), f.end)) for span in used)]
    return doc2code.select(entry["name"], doc2code.without_twins(candidates, documented))


def _mostly(span: scoring.Hit, function: scoring.Hit) -> bool:
    """At least half of `span` is `function` (a module-wide span holding it is not)."""
    if span[0] != function[0]:
        return False
    overlap = min(span[2], function[2]) - max(span[1], function[1]) + 1
    return overlap * 2 >= span[2] - span[1] + 1


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)


def build_work_tree(entry: dict, label: str, files: list[str], docs: list[doc2code.DocFunction],
                    index_from: str | None = None) -> Path:
    """cache/work/<label>/<name>: the included files (docs blanked), one commit. Rebuilt only
    when its recipe changes; an existing .codekin index is kept across a rebuild. A new work
    tree may start from a copy of label `index_from`'s index (same sources): codekin's
    incremental indexing then embeds only the chunks this code makes differently."""
    root = prepare.cache_root() / "work" / label / entry["name"]
    digest = hashlib.sha256(json.dumps([
        WORK_RECIPE, entry["commit"], entry.get("include"), entry.get("exclude"),
        [(f.path, f.doc_lines) for f in docs]]).encode()).hexdigest()
    marker = root / ".git" / "codekin-relevance.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("digest") == digest:
        return root
    log(f"  {entry['name']}: copying {len(files)} files into {root}")
    kept = root.parent / f".{entry['name']}.codekin-kept"
    if (root / ".codekin").is_dir():
        shutil.rmtree(kept, ignore_errors=True)
        (root / ".codekin").rename(kept)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    src = prepare.src_dir(entry["name"])
    by_path: dict[str, list[doc2code.DocFunction]] = {}
    for function in docs:
        by_path.setdefault(function.path, []).append(function)
    for rel in files:
        source, dest = src / rel, root / rel
        if source.is_symlink() or not source.is_file():
            continue  # codekin never follows symlinks; submodules are no files
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel in by_path:
            text = source.read_bytes().decode("utf-8-sig")
            dest.write_bytes(doc2code.strip_docs(text, by_path[rel]).encode("utf-8"))
        else:
            shutil.copyfile(source, dest)
    _git(root, "init", "-q", "-b", "main")
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text(".codekin/\n", encoding="utf-8")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", f"{entry['name']} {entry['commit']}")
    if kept.is_dir():
        kept.rename(root / ".codekin")
    elif index_from:
        seed = prepare.cache_root() / "work" / index_from / entry["name"]
        seed_marker = seed / ".git" / "codekin-relevance.json"
        if not (seed_marker.is_file() and (seed / ".codekin").is_dir()):
            log(f"  {entry['name']}: --index-from {index_from}: no index at {seed}; indexing from scratch")
        elif json.loads(seed_marker.read_text(encoding="utf-8")).get("digest") != digest:
            log(f"  {entry['name']}: --index-from {index_from}: its copy of the sources differs; indexing from scratch")
        else:
            log(f"  {entry['name']}: starting from the index of {index_from}")
            shutil.copytree(seed / ".codekin", root / ".codekin", symlinks=True)
    marker.write_text(json.dumps({"digest": digest, "commit": entry["commit"]}), encoding="utf-8")
    return root


# -- queries ------------------------------------------------------------------------------------
def load_queries(entry: dict, lines_of: dict[str, int], seen_ids: set[str]) -> tuple[list[dict], int]:
    """The repository's valid queries, and how many were skipped (each one said on stderr)."""
    path = prepare.QUERIES_DIR / f"{entry['name']}.jsonl"
    name = entry["name"]
    queries, skipped = [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            query = json.loads(line)
            if not isinstance(query, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log(f"{name}: queries/{name}.jsonl:{number}: skipped, not a JSON object ({exc})")
            skipped += 1
            continue
        problem = validate(query, lines_of, entry)
        if problem is None and query["id"] in seen_ids:
            problem = "the id is used by another query"
        if problem:
            log(f"{name}: query {query.get('id', f'at line {number}')!s}: skipped, {problem}")
            skipped += 1
            continue
        seen_ids.add(query["id"])
        queries.append(query)
    return queries, skipped


def _span_problem(what: str, span: object, lines_of: dict[str, int], entry: dict, need_span: bool) -> str | None:
    if not isinstance(span, dict) or not isinstance(span.get("path"), str):
        return f"{what} has no path"
    path = span["path"]
    if path not in lines_of:
        return (f"{what} path {path} is not among the indexed files "
                f"(include {entry.get('include')}, exclude {entry.get('exclude')})")
    start, end = span.get("start"), span.get("end")
    if start is None and end is None and not need_span:
        return None
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        return f"{what} {path} needs integer start and end (got {start!r}, {end!r})"
    if not 1 <= start <= end <= lines_of[path]:
        return f"{what} span {path}:{start}-{end} is outside 1-{lines_of[path]} or reversed"
    return None


def validate(query: dict, lines_of: dict[str, int], entry: dict) -> str | None:
    """None when the query is usable, else what is wrong with it."""
    if not isinstance(query.get("id"), str) or not query["id"].strip():
        return "it has no id"
    kind = query.get("kind")
    if kind not in KINDS:
        return f"kind {kind!r} is not one of {', '.join(KINDS)}"
    if kind == "code":
        problem = _span_problem("query_span", query.get("query_span"), lines_of, entry, need_span=True)
        if problem:
            return problem
        if query.get("level") not in LEVELS:
            return f"level {query.get('level')!r} is not one of {', '.join(LEVELS)}"
    elif not isinstance(query.get("query"), str) or not query["query"].strip():
        return "the query text is empty"
    relevant = query.get("relevant")
    if not isinstance(relevant, list) or not relevant:
        return "it lists no relevant target"
    secondary = query.get("secondary") or []
    if not isinstance(secondary, list):
        return "secondary is not a list"
    for key, targets in (("relevant", relevant), ("secondary", secondary)):
        for i, target in enumerate(targets):
            problem = _span_problem(f"{key}[{i}]", target, lines_of, entry, need_span=False)
            if problem:
                return problem
    return None


# -- the BM25-over-windows baseline ---------------------------------------------------------------
class WindowsBaseline:
    """Plain BM25 over 40-line windows (stride 30) of the work tree's files."""

    def __init__(self, texts: dict[str, str], bm25_cls, terms) -> None:
        self.terms = terms
        self.windows: list[scoring.Hit] = []
        documents = []
        for path, text in sorted(texts.items()):
            lines = text.split("\n")
            n = line_count(text)
            for start in range(0, max(n, 1), WINDOW_STRIDE):
                end = min(start + WINDOW_LINES, n)
                self.windows.append((path, start + 1, end))
                documents.append(terms("\n".join(lines[start:end])))
                if end >= n:
                    break
        try:
            self.bm25 = bm25_cls(documents, prose=True)
        except TypeError:
            self.bm25 = bm25_cls(documents)

    def search(self, text: str, limit: int, exclude: scoring.Hit | None = None) -> list[scoring.Hit]:
        import numpy as np

        scores = np.asarray(self.bm25.scores(self.terms(text)))
        order = np.argsort(-scores, kind="stable")
        out = []
        for i in order:
            if scores[i] <= 0 or len(out) >= limit:
                break
            hit = self.windows[int(i)]
            if exclude is not None and _overlaps(hit, exclude):
                continue
            out.append(hit)
        return out


def _overlaps(hit: scoring.Hit, span: scoring.Hit) -> bool:
    return hit[0] == span[0] and hit[1] <= span[2] and span[1] <= hit[2]


# -- running ------------------------------------------------------------------------------------
def _hits(items) -> list[tuple]:
    return [(h.path, int(h.start_line), int(h.end_line), getattr(h, "symbol", "")) for h in items]


class Runner:
    def __init__(self, args: argparse.Namespace, codekin_modules: dict) -> None:
        self.args = args
        self.ck = codekin_modules
        self.embedder = None
        self.learned: set[str] = set()  # work trees whose index follows their own promoted model
        self.mode_seconds: Counter[str] = Counter()
        self.errors = 0

    def engine_query(self, engine, query: dict, root: Path, mode: str) -> list[tuple]:
        started = time.perf_counter()
        try:
            if mode == "files":
                items = engine.search_files(query["query"], limit=10)
                return [(getattr(item, "path", item), 0, 0, "") for item in items]
            if query["kind"] == "code":
                span = query["query_span"]
                result = engine.similar(str(root / span["path"]), span["start"], span["end"], limit=LIMIT, mode=mode)
                items = result[1] if isinstance(result, tuple) else result
                own = (span["path"], span["start"], span["end"])
                return [h for h in _hits(items) if not _overlaps(h[:3], own)]
            return _hits(engine.search(query["query"], limit=LIMIT, mode=mode))
        except Exception as exc:  # noqa: BLE001 - one failing query must not end the run
            self.errors += 1
            log(f"  query {query['id']} ({mode}) failed: {type(exc).__name__}: {exc}")
            return []
        finally:
            self.mode_seconds[mode] += time.perf_counter() - started

    def baseline_query(self, baseline: WindowsBaseline, query: dict, root: Path) -> list[tuple]:
        started = time.perf_counter()
        if query["kind"] == "code":
            span = query["query_span"]
            text = "\n".join((root / span["path"]).read_text(encoding="utf-8", errors="replace")
                             .replace("\r\n", "\n").split("\n")[span["start"] - 1:span["end"]])
            hits = baseline.search(text, LIMIT, exclude=(span["path"], span["start"], span["end"]))
        else:
            hits = baseline.search(query["query"], LIMIT)
        self.mode_seconds[BASELINE] += time.perf_counter() - started
        return [(*h, "") for h in hits]

    def index(self, entry: dict, root: Path) -> dict:
        ck = self.ck
        config = ck["load_config"](root)
        if self.embedder is None:
            started = time.perf_counter()
            self.embedder = ck["load_embedder"](config.model)
            log(f"model {getattr(self.embedder, 'name', '?')} on {getattr(self.embedder, 'device', '?')} "
                f"loaded in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        try:
            summary = construct(ck["Indexer"], root, config, embedder=self.embedder,
                                progress=StderrProgress.factory(entry["name"])).run()
        except ck["StaleModelError"]:  # the work tree learned (`codekin train`, the nightly): its own model answers
            self.learned.add(str(root))
            log(f"  {entry['name']}: the index follows a promoted model; indexing and queries use it")
            summary = construct(ck["Indexer"], root, config, progress=StderrProgress.factory(entry["name"])).run()
        seconds = time.perf_counter() - started
        info = {"files": summary.files, "chunks": summary.chunks, "new": summary.new_embeddings,
                "s": round(seconds, 1)}
        if summary.skipped:
            info["skipped"] = dict(summary.skipped)
        log(f"  {entry['name']}: {summary.files} files, {summary.chunks} chunks, {summary.new_embeddings} new "
            f"embeddings in {seconds:.1f} s")
        return info

    def run_repo(self, entry: dict, queries: list[dict], docs: list[dict], root: Path, modes: list[str],
                 texts: dict[str, str]) -> list[dict]:
        engine = construct(self.ck["Engine"], root, self.ck["load_config"](root),
                           embedder=None if str(root) in self.learned else self.embedder)
        if "files" in modes and not hasattr(engine, "search_files"):
            modes = [m for m in modes if m != "files"]
        with contextlib.suppress(Exception):  # load the index snapshot outside the timed queries
            engine.search("warm up", limit=1, mode="lexical")
        baseline = WindowsBaseline(texts, self.ck["Bm25"], self.ck["terms"])
        rows = []
        for query in [*queries, *docs]:
            targets = scoring.targets_of(query)
            module = query.get("level") == "module"
            row = {"id": query["id"], "repo": entry["name"], "lang": entry["language"], "kind": query["kind"],
                   "level": query.get("level"), "half": scoring.half_of(query["id"]),
                   "doc2code": bool(query.get("doc2code")), "scores": {}, "top": {},
                   "query": _query_text(query)}
            for mode in modes:
                if mode == "files" and (query["kind"] == "code" or row["doc2code"]):
                    continue
                if mode == BASELINE:
                    hits = self.baseline_query(baseline, query, root)
                else:
                    hits = self.engine_query(engine, query, root, mode)
                if mode == "files":
                    row["scores"][mode] = scoring.score_files([h[0] for h in hits], targets, module)
                    row["top"][mode] = [h[0] for h in hits[:10]]
                else:
                    row["scores"][mode] = scoring.score_chunks([h[:3] for h in hits], targets, module)
                    row["top"][mode] = [f"{p}:{s}-{e} {sym}".rstrip() for p, s, e, sym in hits[:10]]
            rows.append(row)
        del engine, baseline
        gc.collect()
        return rows


def _query_text(query: dict) -> str:
    if query["kind"] == "code":
        span = query["query_span"]
        return f"{span['path']}:{span['start']}-{span['end']}"
    return query["query"] if len(query["query"]) <= 300 else query["query"][:300] + "..."


def doc_query(entry: dict, function: doc2code.DocFunction) -> dict:
    return {"id": f"{entry['name']}-{function.id}", "kind": "doc2code", "query": function.doc, "doc2code": True,
            "relevant": [{"path": function.path, "start": function.start, "end": function.end}]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=REPO, help="codekin checkout to measure (default: this tree)")
    parser.add_argument("--label", help="name of this run's work trees and results (default: branch-HEAD)")
    parser.add_argument("--only", help="comma-separated repository names")
    parser.add_argument("--half", choices=("tune", "held", "all"), default="all")
    parser.add_argument("--dump", type=Path, help="write per-query results of the tune half here (JSON lines)")
    parser.add_argument("--note", default="", help="free text stored with the result")
    parser.add_argument("--index-from", metavar="LABEL",
                        help="start new work trees from LABEL's indexes (re-embeds only what differs)")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    code = args.code.expanduser().resolve()
    codekin = import_codekin(code)
    identity = code_identity(code)
    label = args.label or default_label(identity)
    if not label or "/" in label or label.startswith("."):
        parser.error(f"--label {label!r} must be a plain name")

    from codekin.config import load_config
    from codekin.embedding import load_embedder
    from codekin.engine import Engine
    from codekin.errors import StaleModelError
    from codekin.index.lexical import Bm25, terms
    from codekin.indexer import Indexer

    modules = {"load_config": load_config, "load_embedder": load_embedder, "Engine": Engine,
               "Indexer": Indexer, "Bm25": Bm25, "terms": terms, "StaleModelError": StaleModelError}
    runner = Runner(args, modules)
    modes = [*ENGINE_MODES, BASELINE] + (["files"] if hasattr(Engine, "search_files") else [])
    halves = ["tune", "held", "all"] if args.half == "all" else [args.half]
    log(f"codekin {getattr(codekin, '__version__', '?')} from {code / 'server'} (label {label}); modes {', '.join(modes)}")

    rows: list[dict] = []
    repos, missing, unprepared = [], [], []
    index_info: dict[str, dict] = {}
    skipped = 0
    seen_ids: set[str] = set()
    query_seconds = 0.0
    run_started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the result line only
        for entry in prepare.load_corpus(args.only.split(",") if args.only else None):
            name = entry["name"]
            log(f"{name} ({entry['language']})")
            if not prepare.is_ready(entry):
                try:
                    log(f"  {name}: {prepare.ensure_source(entry)}")
                except prepare.PrepareError as exc:
                    log(str(exc))
                    unprepared.append(name)
                    continue
            files = prepare.included_files(entry)
            texts = {}
            for rel in files:
                source = prepare.src_dir(name) / rel
                if not source.is_symlink():
                    text = read_source(source)
                    if text is not None:
                        texts[rel] = text
            lines_of = {rel: line_count(text) for rel, text in texts.items()}
            queries_path = prepare.QUERIES_DIR / f"{name}.jsonl"
            if queries_path.is_file():
                queries, bad = load_queries(entry, lines_of, seen_ids)
                skipped += bad
            else:
                log(f"  {name}: no queries/{name}.jsonl, its written queries are skipped"
                    + (" (doc -> code still runs)" if entry["language"] in ("elixir", "erlang") else ""))
                queries = []
                missing.append(name)
            functions = doc_functions(entry, files, queries)
            root = build_work_tree(entry, label, files, functions, args.index_from)
            if functions:  # the baseline reads what codekin indexes: the copies with docs blanked
                for rel in {f.path for f in functions}:
                    texts[rel] = read_source(root / rel) or ""
            index_info[name] = runner.index(entry, root)
            docs = [doc_query(entry, f) for f in functions]
            chosen = [q for q in [*queries, *docs] if args.half == "all" or scoring.half_of(q["id"]) == args.half]
            started = time.perf_counter()
            repo_rows = runner.run_repo(entry, [q for q in chosen if not q.get("doc2code")],
                                        [q for q in chosen if q.get("doc2code")], root, modes, texts)
            query_seconds += time.perf_counter() - started
            log(f"  {name}: {sum(not r['doc2code'] for r in repo_rows)} queries + "
                f"{sum(r['doc2code'] for r in repo_rows)} doc -> code in {time.perf_counter() - started:.1f} s")
            rows += repo_rows
            repos.append(name)
    if not repos:
        log("no repository could run")
        return 1
    result = summarize(args, label, identity, modes, halves, rows, repos, missing, unprepared, skipped,
                       index_info, query_seconds, runner, time.perf_counter() - run_started)
    line = json.dumps(result, separators=(",", ":"))
    print(line, flush=True)
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
    if args.dump:
        write_dump(args.dump, rows)
    return 0


def summarize(args, label, identity, modes, halves, rows, repos, missing, unprepared, skipped, index_info,
              query_seconds, runner, wall) -> dict:
    written = [r for r in rows if not r["doc2code"]]
    result = {
        "benchmark": "relevance", "label": label, "date": time.strftime("%Y-%m-%d %H:%M"),
        "code": {k: v for k, v in identity.items() if k != "path" and v != ""}, "half": args.half,
        "repos": len(repos),
        "queries": {"written": len(written), "tune": sum(r["half"] == "tune" for r in written),
                    "held": sum(r["half"] == "held" for r in written),
                    "doc2code": len(rows) - len(written),
                    "kind": dict(sorted(Counter(r["kind"] for r in written).items())),
                    "lang": dict(sorted(Counter(r["lang"] for r in written).items())),
                    "module_code": sum(r["level"] == "module" for r in written),
                    "skipped_invalid": skipped, "errors": runner.errors},
        "modes": scoring.aggregate(rows, modes, halves),
        "index": {"seconds": round(sum(i["s"] for i in index_info.values()), 1),
                  "chunks": sum(i["chunks"] for i in index_info.values()),
                  "new_embeddings": sum(i["new"] for i in index_info.values()),
                  "repos": index_info},
        "query_seconds": round(query_seconds, 1),
        "mode_seconds": {m: round(runner.mode_seconds[m], 1) for m in modes if m in runner.mode_seconds},
        "seconds": round(wall, 1), "cpus": os.cpu_count(),
    }
    if missing:
        result["missing_queries"] = missing
    if unprepared:
        result["unprepared"] = unprepared
    if args.note:
        result["note"] = args.note
    return result


def write_dump(path: Path, rows: list[dict]) -> None:
    """Per-query scores and top hits of the tune half (the held half is never shown per query)."""
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            if row["half"] == "tune":
                scores = {m: {k: round(v, 4) for k, v in s.items()} for m, s in row["scores"].items()}
                out.write(json.dumps({**{k: v for k, v in row.items() if k != "half"}, "scores": scores}) + "\n")
    log(f"per-query results of the tune half: {path}")


if __name__ == "__main__":
    sys.exit(main())
