"""The held-out queries a promotion is judged on, built from the repository itself.

Only held-out files (split by file, never by chunk: splits.py) take part. Their chunks,
with every function's doc comment stripped, are the corpus; the queries are of the kinds
users ask:
- doc_to_code: a function's `@doc`/`-doc`/`%% @doc`/Doxygen comment -> that function
  (whose doc is no longer in the corpus);
- module: the first sentence of a file's module doc (`@moduledoc`, the comment at the top of
  an Erlang or C/C++ file) -> any chunk of that file, the doc blanked before chunking (so no
  chunk carries it as context either): the "how does X work" questions, which a model trained
  toward function docs can lose while doc->code gains;
- symbol: a function's name -> its definition;
- code_to_code: a function with its identifiers renamed and comments dropped -> the
  original; a module -> the other modules adopting the same `use`/`@behaviour` set;
- commit: a commit's subject -> the functions it changed (files unchanged since).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from codekin import git
from codekin.chunking import Chunk, chunk_text
from codekin.chunking.chunk import base_symbol
from codekin.chunking.languages import language_for
from codekin.chunking.spec import spec_for
from codekin.config import Config
from codekin.index.definitions import HEAD_KINDS
from codekin.training.mining.cutting import MIN_DOC_WORDS, cut
from codekin.training.mining.positives import _ERL_BEHAVIOUR, _EX_USE
from codekin.training.mining.texts import _WORD, doc_query
from codekin.training.pairs.renaming import IDENT, renamed

DOC_TO_CODE, MODULE, SYMBOL, CODE_TO_CODE, COMMIT = "doc_to_code", "module", "symbol", "code_to_code", "commit"
QUERY_KINDS = (DOC_TO_CODE, MODULE, SYMBOL, CODE_TO_CODE, COMMIT)
MAX_PER_KIND = 60
MAX_DISTRACTORS = 1500  # training-file chunks in the corpus (each model embeds them: the cost of a run)
MIN_FUNCTION_LINES = 3
@dataclass(frozen=True)
class EvalQuery:
    kind: str
    text: str
    targets: tuple[tuple[str, int, int], ...]  # (path, start, end); end 0 = any chunk of the file
    exclude: str = ""  # a path whose chunks may not answer (the query's own module)
    search_kind: str | None = None  # passed to index.query.parse (None: guessed as for the user)

    def answered_by(self, path: str, start: int, end: int) -> bool:
        for t_path, t_start, t_end in self.targets:
            if path == t_path and (t_end == 0 or (t_start <= start and end <= t_end)):
                return True
        return False


@dataclass
class EvalSet:
    chunks: list[Chunk] = field(default_factory=list)  # the corpus (held-out files, docs stripped)
    queries: list[EvalQuery] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(QUERY_KINDS, 0)
        for q in self.queries:
            out[q.kind] += 1
        return out


def build_eval_set(root: Path, files: dict[str, str], config: Config, seed: int = 13,
                   history_commits: int = 50, per_kind: int = MAX_PER_KIND,
                   distractors: dict[str, str] | None = None) -> EvalSet:
    """The corpus and queries of the held-out `files` (path -> text). The chunks of
    `distractors` (the training files, as the user's index holds them) join the corpus, up
    to MAX_DISTRACTORS of them, so answers compete with the rest of the repository."""
    rng = random.Random(f"search-eval:{seed}")
    found = EvalSet()
    functions: list[Chunk] = []
    by_kind: dict[str, list[EvalQuery]] = {k: [] for k in QUERY_KINDS}
    for path in sorted(files):
        text, module = _without_module_doc(path, files[path])
        if module is not None:
            by_kind[MODULE].append(module)
        for chunk in chunk_text(path, text, config.index):
            if chunk.kind == "window":
                continue
            doc = cut(chunk.language, chunk.text)
            is_function = chunk.kind not in HEAD_KINDS and chunk.kind != "block"
            if doc.doc and is_function:
                chunk = replace(chunk, text=doc.code(without_doc=True))
                query = doc_query(doc.doc)
                if len(_WORD.findall(query)) >= MIN_DOC_WORDS:
                    by_kind[DOC_TO_CODE].append(EvalQuery(DOC_TO_CODE, query, (_span(chunk),)))
            found.chunks.append(chunk)
            if is_function and chunk.text.count("\n") + 1 >= MIN_FUNCTION_LINES:
                functions.append(chunk)
    others = _distractors(distractors or {}, config, rng)
    found.chunks += others
    by_kind[SYMBOL] = _symbol_queries(functions, {function_name(c.symbol) for c in others})
    by_kind[CODE_TO_CODE] = [q for q in (_renamed_copy(c) for c in functions) if q is not None]
    behaviour = _behaviour_queries(found.chunks)
    by_kind[COMMIT] = commit_queries(root, found.chunks, history_commits)
    for kind, queries in by_kind.items():
        share = per_kind - min(len(behaviour), per_kind // 3) if kind == CODE_TO_CODE else per_kind
        picked = rng.sample(queries, min(share, len(queries)))
        if kind == CODE_TO_CODE:
            picked += rng.sample(behaviour, min(per_kind - len(picked), len(behaviour)))
        found.queries += picked
    return found


def _distractors(files: dict[str, str], config: Config, rng: random.Random) -> list[Chunk]:
    chunks = [c for path in sorted(files) for c in chunk_text(path, files[path], config.index) if c.kind != "window"]
    return sorted(rng.sample(chunks, MAX_DISTRACTORS), key=lambda c: (c.path, c.start_line)) \
        if len(chunks) > MAX_DISTRACTORS else chunks


def _without_module_doc(path: str, text: str) -> tuple[str, EvalQuery | None]:
    """The file's text with its module doc's rows blanked (line numbers kept), and the module
    query that doc makes; the text as it is and None without a doc worth asking."""
    doc = spec_for(language_for(path)).module_doc(text)
    query = doc_query(doc.text) if doc.text else ""
    if len(_WORD.findall(query)) < MIN_DOC_WORDS:
        return text, None
    lines = text.split("\n")
    for row in doc.rows:
        lines[row] = ""
    return "\n".join(lines), EvalQuery(MODULE, query, ((path, 0, 0),))


def _span(chunk: Chunk) -> tuple[str, int, int]:
    return chunk.path, chunk.start_line, chunk.end_line


def function_name(symbol: str) -> str:
    """`KinShop.Orders.place/2` -> `place`; `kin_util:clamp/3` -> `clamp`; `ns::Book::add` -> `add`."""
    name = base_symbol(symbol).split("/")[0]
    return re.split(r"::|[.:#]", name)[-1]


def _symbol_queries(functions: list[Chunk], elsewhere: set[str]) -> list[EvalQuery]:
    """A name defined once in the corpus (not `elsewhere` either) -> its definition (all its parts)."""
    spans: dict[str, list[tuple[str, int, int]]] = {}
    owners: dict[str, set[str]] = {}
    for chunk in functions:
        name = function_name(chunk.symbol)
        if len(name) < 4:
            continue
        spans.setdefault(name, []).append(_span(chunk))
        owners.setdefault(name, set()).add(base_symbol(chunk.symbol))
    return [EvalQuery(SYMBOL, name, tuple(spans[name]), search_kind="symbol")
            for name in sorted(spans) if len(owners[name]) == 1 and name not in elsewhere]


def _renamed_copy(chunk: Chunk) -> EvalQuery | None:
    copy = renamed(chunk.text)
    if copy.strip() == chunk.text.strip() or len(IDENT.findall(copy)) < 6:
        return None
    return EvalQuery(CODE_TO_CODE, copy, (_span(chunk),), search_kind="code")


def _behaviour_queries(chunks: list[Chunk]) -> list[EvalQuery]:
    """A module's head -> the other held-out modules adopting the same behaviours/uses."""
    adopted: dict[str, set[str]] = {}
    heads: dict[str, Chunk] = {}
    for chunk in chunks:
        pattern = _ERL_BEHAVIOUR if chunk.language == "erlang" else _EX_USE if chunk.language == "elixir" else None
        if pattern is None:
            continue
        found = {b.lstrip(":") for b in pattern.findall(chunk.text)}
        if found:
            adopted.setdefault(chunk.path, set()).update(found)
        if chunk.kind in HEAD_KINDS and chunk.path not in heads:
            heads[chunk.path] = chunk
    groups: dict[frozenset[str], list[str]] = {}
    for path, names in adopted.items():
        groups.setdefault(frozenset(names), []).append(path)
    out = []
    for paths in groups.values():
        for path in paths:
            others = tuple((p, 0, 0) for p in paths if p != path)
            if others and path in heads:
                out.append(EvalQuery(CODE_TO_CODE, heads[path].text, others, exclude=path, search_kind="code"))
    return out


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def commit_queries(root: Path, chunks: list[Chunk], max_commits: int) -> list[EvalQuery]:
    """Commit subject -> the held-out functions it changed, for files no later commit touched
    (so its line numbers are those of today's file). None without git history."""
    if max_commits <= 0:
        return []
    log = git.output(root, "-c", "core.quotepath=off", "log", f"-n{max_commits}", "--no-merges", "--no-renames",
                     "-U0", "--format=commit %H%n%s", timeout=120)
    if log is None:
        return []
    by_path: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_path.setdefault(chunk.path, []).append(chunk)
    touched: set[str] = set()  # paths a newer commit already changed
    commits: list[tuple[str, dict[str, list[int]]]] = []  # (subject, path -> changed lines)
    path = ""
    for line in log.decode("utf-8", "replace").split("\n"):
        if line.startswith("commit "):
            touched |= set(commits[-1][1]) if commits else set()
            commits.append(("", {}))
            path = ""
        elif commits and not commits[-1][0] and line.strip() and not line.startswith(("diff ", "@@", "+++", "---")):
            commits[-1] = (line.strip(), commits[-1][1])
        elif line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") and line[6:] not in touched else ""
            if path and commits:
                commits[-1][1].setdefault(path, [])
        elif path and commits and (m := _HUNK.match(line)) is not None:
            start, count = int(m.group(1)), int(m.group(2) or 1)
            commits[-1][1][path] += list(range(start, start + max(count, 1)))
    return [q for subject, changed in commits for q in _commit_query(subject, by_path, changed)]


def _commit_query(subject: str, by_path: dict[str, list[Chunk]], changed: dict[str, list[int]]) -> list[EvalQuery]:
    if len(_WORD.findall(subject)) < 3:
        return []
    targets = tuple(_span(c) for path, lines in changed.items() for c in by_path.get(path, [])
                    if c.kind not in HEAD_KINDS and any(c.start_line <= n <= c.end_line for n in lines))
    return [EvalQuery(COMMIT, subject, targets)] if targets else []
