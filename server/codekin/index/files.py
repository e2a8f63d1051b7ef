"""Files as answers: a file-level ranking for whole-file questions ("how does the router
dispatch to controllers") and module-level code -> code.

A file of many small, similar functions never wins with any single chunk, so a file's
score adds its best chunks' scores (the k-th counts decay^k), a text match with its own
summary (path words, module doc, what it defines) and the cosine of the query with the mean
of its chunk vectors (a module compared as a whole).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from codekin.index.definitions import FILLER_KINDS, HEAD_KINDS
from codekin.index.hits import FileHit
from codekin.index.lexical import Bm25, terms
from codekin.parts import base_symbol

if TYPE_CHECKING:
    from codekin.index.search import SearchIndex

_OWNER = re.compile(r"::|[.:#]")  # Mod.fun/1, mod:fun/1, ns::Class::method, Class#method
AGGREGATED_CHUNKS = 3  # a file's best chunks that count
ROW_CANDIDATES = 2000  # chunk candidates aggregated into files


@dataclass(frozen=True)
class FileWeights:
    chunk_decay: float
    summary: float
    dense: float
    text: float = 0.0  # modules: BM25 of the query over each module's whole text
    callbacks: float = 0.0  # modules: Jaccard overlap of the names each module defines


class FileRanking:
    """Groups of rows ranked as wholes — files, or modules (a head with its members) — with
    their summaries and mean vectors, built for one snapshot on first use."""

    def __init__(self, index: SearchIndex, group_of_row: list[str] | None = None, text: bool = False,
                 summaries: Bm25 | None = None) -> None:
        """`summaries`: the BM25 of these groups' summaries kept at index time (query_file.py),
        else it is built here (most of the cost of a cold search's first file ranking)."""
        self.index = index
        keys = group_of_row if group_of_row is not None else index.paths
        self.rows = _groups(keys) if group_of_row is not None else index.by_path  # files: the index's own
        self.paths = list(self.rows)  # group keys: a file's path, or path#head-row for a module
        position = {p: n for n, p in enumerate(self.paths)}
        self.file_of_row = np.array([position[k] for k in keys], dtype=np.int64)
        kept = summaries is not None and summaries.matrix.documents == len(self.paths)
        self.bm25 = summaries if kept and summaries is not None else \
            summary_bm25(keys, index.paths, index.contexts, index.symbols, index.kinds)
        self.text_bm25 = None
        if text:
            row_terms = index.terms
            self.text_bm25 = Bm25([[t for r in self.rows[p] for t in row_terms[r].split()] for p in self.paths],
                                  prose=True)
        self.vectors = np.zeros((len(self.paths), index.dim), dtype=np.float32)
        if index.dim:
            _add_by_group(self.vectors, self.file_of_row, index.has_vector, index.vectors)
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self.vectors /= np.where(norms > 0, norms, 1.0)
        self.has_vector = np.linalg.norm(self.vectors, axis=1) > 0 if index.dim else np.zeros(len(self.paths), bool)
        self.roles = np.array([index.roles[self.rows[p][0]] for p in self.paths], dtype=np.int8)
        self._names: tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]] | None = None

    def callbacks(self, rows: list[int]) -> np.ndarray:
        """Per group, the Jaccard overlap of the names it defines with those `rows` define: modules
        that implement one behaviour (`-behaviour`, `use`, a base class) share their callbacks."""
        if self._names is None:
            pairs = sorted({(self.file_of_row[r], name) for r, name in _members(self.index, range(len(self.index)))})
            ids: dict[str, int] = {}
            groups = np.array([g for g, _ in pairs], dtype=np.int64)
            names = np.array([ids.setdefault(n, len(ids)) for _, n in pairs], dtype=np.int64)
            self._names = groups, names, np.bincount(groups, minlength=len(self.paths)), ids
        groups, names, sizes, ids = self._names
        wanted = {ids[name] for _, name in _members(self.index, rows) if name in ids}
        if not wanted:
            return np.zeros(len(self.paths), dtype=np.float32)
        shared = np.bincount(groups[np.isin(names, list(wanted))], minlength=len(self.paths))
        return (shared / np.maximum(sizes + len(wanted) - shared, 1)).astype(np.float32)

    def rank(self, rank: np.ndarray, query_vector: np.ndarray | None, query_terms: list[str],
             keep_files: np.ndarray, weights: FileWeights, priors: np.ndarray,
             query_rows: list[int] | None = None) -> np.ndarray:
        """A score per file (-inf for files left out) from the chunks' ranking scores."""
        score = np.zeros(len(self.paths), dtype=np.float32)
        finite = np.flatnonzero(np.isfinite(rank))
        if len(finite) > ROW_CANDIDATES:
            finite = finite[np.argpartition(-rank[finite], ROW_CANDIDATES - 1)[:ROW_CANDIDATES]]
        rows = finite[np.argsort(-rank[finite], kind="stable")]  # best first
        files = self.file_of_row[rows]
        by_file = np.argsort(files, kind="stable")  # each file's rows, still best first
        first = np.r_[0, np.flatnonzero(np.diff(files[by_file])) + 1]  # where each file's run starts
        nth = np.arange(len(rows)) - np.repeat(first, np.diff(np.r_[first, len(rows)]))
        top = by_file[nth < AGGREGATED_CHUNKS]  # a file's k-th best row (k < AGGREGATED_CHUNKS)
        np.add.at(score, files[top], rank[rows[top]] * weights.chunk_decay ** nth[nth < AGGREGATED_CHUNKS])
        if weights.summary:
            summary = self.bm25.scores(query_terms)
            peak = float(summary.max())
            if peak > 0:
                score += weights.summary * summary / peak
        if weights.text and self.text_bm25 is not None:
            text = self.text_bm25.scores(query_terms)
            peak = float(text.max())
            if peak > 0:
                score += weights.text * text / peak
        if weights.callbacks and query_rows:
            score += weights.callbacks * self.callbacks(query_rows)
        if weights.dense and query_vector is not None and self.index.dim:
            score += weights.dense * _scaled(np.where(self.has_vector, self.vectors @ query_vector, -np.inf))
        return np.where(keep_files, score * priors[self.roles], -np.inf)

    def hits(self, file_score: np.ndarray, rank: np.ndarray, limit: int, head: bool = False) -> list[FileHit]:
        """The best files, each with its best chunk (with `head`, its module head); scores are
        relative to the best file's."""
        order = [int(f) for f in np.argsort(-file_score, kind="stable")[:limit] if np.isfinite(file_score[f])]
        out = []
        i = self.index
        top = float(file_score[order[0]]) if order and file_score[order[0]] > 0 else 1.0  # shown: 1 for the best
        for f in order:
            rows = self.rows[self.paths[f]]
            heads = [r for r in rows if i.kinds[r] in HEAD_KINDS]
            row = heads[0] if head and heads else max(rows, key=lambda r: rank[r])
            out.append(FileHit(i.paths[row], i.languages[row], float(file_score[f]) / top, row,
                               int(i.starts[row]), int(i.ends[row]), i.symbols[row]))
        return out

    def keep(self, keep_rows: np.ndarray) -> np.ndarray:
        """Files with at least one kept row."""
        out = np.zeros(len(self.paths), dtype=bool)
        out[self.file_of_row[keep_rows]] = True
        return out


def _members(index: SearchIndex, rows: Iterable[int]) -> Iterator[tuple[int, str]]:
    """(row, its own name with its arity, without its module or class: `accept/2`) for the
    rows that define a member (not a module head, not a stretch of lines)."""
    for row in rows:
        if index.kinds[row] not in FILLER_KINDS and index.kinds[row] not in HEAD_KINDS:
            yield row, _OWNER.split(base_symbol(index.symbols[row]))[-1]


def _add_by_group(out: np.ndarray, group_of_row: np.ndarray, keep: np.ndarray, values: np.ndarray) -> None:
    """out[g] += values[r] for each kept row r of group g, rows in order: what np.add.at does,
    to the bit, without its slow per-element path (a tenth of a cold search on 10k rows). Step k
    adds every group's k-th row at once (no group twice in one step)."""
    rows = np.flatnonzero(keep)
    groups = group_of_row[rows]
    order = np.argsort(groups, kind="stable")  # each group's rows, in row order
    starts = np.r_[0, np.flatnonzero(np.diff(groups[order])) + 1]
    nth = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    for k in range(int(nth.max()) + 1 if len(nth) else 0):
        step = order[nth == k]
        out[groups[step]] += values[rows[step]]


def _groups(keys: list[str]) -> dict[str, list[int]]:
    """Each group's rows, groups in the order of their first row."""
    rows: dict[str, list[int]] = {}
    for row, key in enumerate(keys):
        rows.setdefault(key, []).append(row)
    return rows


def summary_bm25(keys: list[str], paths: list[str], contexts: list[str], symbols: list[str],
                 kinds: list[str]) -> Bm25:
    """The BM25 of each group's summary (its path's words, its module doc, the names it
    defines), groups in the order of their first row: one implementation for the file ranking
    built per snapshot and the copy kept beside the query file."""
    documents = []
    for rows in _groups(keys).values():
        context = next((contexts[r] for r in rows if contexts[r]), "")
        defined = {symbols[r] for r in rows if kinds[r] not in FILLER_KINDS}
        documents.append(terms(paths[rows[0]].replace("/", " ")) + terms(context)
                         + [t for s in sorted(defined) for t in terms(s)])
    return Bm25(documents, prose=True)


def _scaled(values: np.ndarray, candidates: int = 50) -> np.ndarray:
    """Cosines scaled to [0, 1] from the `candidates`-th best to the best; -inf -> 0."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.zeros(len(values), dtype=np.float32)
    best = float(finite.max())
    floor = float(np.sort(finite)[-candidates]) if len(finite) > candidates else float(finite.min())
    out = np.clip((values - floor) / max(best - floor, 1e-6), 0.0, None)
    return np.where(np.isfinite(values), out, 0.0).astype(np.float32)
