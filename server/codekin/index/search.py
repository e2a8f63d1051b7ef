"""In-memory search over one index snapshot: dense (numpy), lexical (BM25), hybrid (both).

LanceDB is the store; queries run on a matrix loaded once, since a brute-force
matmul over 10k x 384 takes about a millisecond where a table scan takes tens.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from codekin.index.definitions import FILLER_KINDS, HEAD_KINDS, Definitions
from codekin.index.files import FileRanking, FileWeights
from codekin.index.hits import Hit
from codekin.index.lexical import chunk_bm25
from codekin.index.paths import path_role
from codekin.index.query import Query
from codekin.index.query_file import QueryFile, TableRows
from codekin.index.ranking import Weights, spread_order, spread_scores
from codekin.index.row_facts import row_facts, rows_by_path
from codekin.index.rows import RowReads
from codekin.index.store import IndexStore
from codekin.parts import base_symbol
from codekin.workspace import matches

CANDIDATES = 100
ANN_CANDIDATES = 400


class SearchIndex(RowReads):
    """A read-only snapshot: chunk rows, their vectors (one model space) and BM25."""

    def __init__(self, store: IndexStore | QueryFile, key: str) -> None:
        rows = store if isinstance(store, QueryFile) else TableRows(store.load_chunks())
        self.key = key
        self._rows = rows  # texts, contexts, hashes and terms are read from it when first asked for
        self.paths: list[str] = rows.strings("path")
        self.languages: list[str] = rows.strings("language")
        self.kinds: list[str] = rows.strings("kind")
        self.symbols: list[str] = rows.strings("symbol")
        self.starts = rows.ints("start_line")
        self.ends = rows.ints("end_line")
        self.mapped = store if isinstance(store, QueryFile) else None
        kept = self.mapped.kept_rows() if self.mapped is not None else None  # built at index time
        self.bm25 = kept.bm25 if kept is not None else chunk_bm25(self.terms, self.symbols, self.kinds)
        if isinstance(store, QueryFile):  # the file's vectors are in row order already
            self.has_vector, self.vectors = store.row_vectors()
        else:
            self.has_vector, self.vectors = _row_vectors(store, key, self.hashes)
        self.by_path: dict[str, list[int]] = rows_by_path(self.paths)
        facts = kept.facts if kept is not None else row_facts(self.paths, self.kinds, self.symbols)
        self.parent, self.roles, self.groups = facts["parent"], facts["roles"], facts["groups"]
        self._declared = facts["declared"]  # (2, pairs): declaration rows over the rows they declare
        self._files: FileRanking | None = None
        self._modules: FileRanking | None = None
        # Large indexes ask LanceDB's ANN index for candidates, then rescore them exactly.
        self.store: IndexStore | None = store if isinstance(store, IndexStore) and store.has_ann_index(key) else None
        self.rows_by_hash: dict[str, list[int]] = {}
        if self.store is not None:
            for i, h in enumerate(self.hashes):
                self.rows_by_hash.setdefault(h, []).append(i)

    @cached_property
    def texts(self) -> list[str]:
        return self._rows.strings("text")

    @cached_property
    def contexts(self) -> list[str]:
        return self._rows.strings("context")

    @cached_property
    def hashes(self) -> list[str]:
        return self._rows.strings("content_hash")

    @cached_property
    def terms(self) -> list[str]:
        """Each row's terms, space-separated (BM25 built here, the module-level text channel)."""
        return self._rows.strings("terms")

    def text(self, row: int) -> str:
        """One chunk's text (a hit's), without reading the whole column."""
        if "texts" in self.__dict__:
            return self.texts[row]
        return self._rows.string("text", row)

    @cached_property
    def definitions(self) -> Definitions:
        """Built on first use (most of a snapshot's build time): a question or a lexical query
        without names never needs it."""
        return Definitions(self.symbols, self.kinds, self.paths, self.languages, self.texts)

    def _cosine(self, query_vector: np.ndarray) -> np.ndarray:
        if self.store is None:
            return np.where(self.has_vector, self.vectors @ query_vector, -np.inf)
        hashes = self.store.ann_candidates(self.key, query_vector, ANN_CANDIDATES)
        rows = np.array([r for h in hashes for r in self.rows_by_hash.get(h, [])], dtype=np.int64)
        rows = np.union1d(rows, self.parent[rows])
        scores = np.full(len(self), -np.inf, dtype=np.float32)
        scores[rows] = self.vectors[rows] @ query_vector
        return scores

    def _with_context(self, scores: np.ndarray, weight: float) -> np.ndarray:
        """Blend each chunk's score with its module head's: a function inherits the
        context its module documents (the `@moduledoc` says what the code is for)."""
        if weight <= 0:
            return scores
        return (1 - weight) * scores + weight * scores[self.parent]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def hit(self, i: int, score: float, rank_score: float | None = None) -> Hit:
        return Hit(self.paths[i], int(self.starts[i]), int(self.ends[i]), self.symbols[i],
                   self.languages[i], self.kinds[i], float(score), self.text(i),
                   None if rank_score is None else float(rank_score), bool(self.has_vector[i]))

    def enclosing(self, path: str, start: int, end: int) -> int | None:
        """The smallest chunk of `path` that contains lines start..end (1-based)."""
        best = None
        for i in self.by_path.get(path, []):
            if self.starts[i] <= start and end <= self.ends[i]:
                if best is None or self.ends[i] - self.starts[i] < self.ends[best] - self.starts[best]:
                    best = i
        return best

    def rows_within(self, path: str, start: int, end: int) -> list[int]:
        """Rows of `path` that lie inside lines start..end."""
        return [i for i in self.by_path.get(path, []) if start <= self.starts[i] and self.ends[i] <= end]

    def holds_module(self, rows: list[int]) -> bool:
        """Rows that make a module (or class, or file) rather than the pieces of one function:
        a head among them, or three or more definitions."""
        if any(self.kinds[r] in HEAD_KINDS for r in rows):
            return True
        return len({base_symbol(self.symbols[r]) for r in rows if self.kinds[r] not in FILLER_KINDS}) >= 3

    def is_test(self, path: str) -> bool:
        return path_role(path) == "test"

    def mask(self, language: str | None = None, path_glob: str | None = None) -> np.ndarray:
        keep = np.ones(len(self), dtype=bool)
        if language:
            keep &= np.array([lang == language for lang in self.languages], dtype=bool)
        if path_glob:
            keep &= np.array([matches(p, [path_glob]) for p in self.paths], dtype=bool)
        return keep

    def search(self, query_vector: np.ndarray | None, query: Query, mode: str, limit: int,
               min_similarity: float, keep: np.ndarray, weights: Weights,
               file_weights: FileWeights | None = None) -> list[Hit]:
        """Ranked hits. The score shown (and filtered by min_similarity) is the chunk's own
        cosine similarity (lexical mode: BM25 over the best); ranking uses the whole stack."""
        rank, shown = self.scores(query_vector, query, mode, keep, weights)
        if weights.files and file_weights is not None:
            rank = self._with_file_evidence(rank, query_vector, query, keep, weights, file_weights)
        candidates = _top(rank, max(limit * 4, 40))
        order = spread_order(rank, candidates, self.groups, weights.spread)
        ranked = spread_scores(rank, order, self.groups, weights.spread)
        return [self.hit(i, shown[i], r) for i, r in zip(order, ranked, strict=True)
                if shown[i] >= min_similarity][:limit]

    def scores(self, query_vector: np.ndarray | None, query: Query, mode: str, keep: np.ndarray,
               weights: Weights) -> tuple[np.ndarray, np.ndarray]:
        """(ranking score >= 0, shown score) per row; -inf where a row cannot rank.

        Dense mode is the vectors alone; lexical mode is every text channel (BM25, the name
        field, definitions); hybrid adds the two, each scaled over its candidates."""
        cosine = self._cosine(query_vector) if query_vector is not None and self.dim else None
        lexical = definitions = None
        if mode != "dense":
            bm25 = self.bm25.scores(query.terms, weights.name)
            lexical = np.where(keep, self._with_context(bm25, weights.context), 0.0)
            if weights.definition and query.symbols:
                definitions = np.where(keep, self.definitions.scores(query.symbols), 0.0)
        if mode == "lexical" or cosine is None:
            if lexical is None:
                return np.full(len(self), -np.inf), np.zeros(len(self))
            peak = float(lexical.max()) or 1.0
            shown = lexical / peak
            rank = shown + (weights.definition * definitions if definitions is not None else 0.0)
            rank = np.where(rank > 0, rank, -np.inf)
        else:
            dense = np.where(self.has_vector & keep, self._with_context(cosine, weights.context), -np.inf)
            if mode == "dense":
                rank = (dense + 1.0) / 2.0
            else:
                rank = _fuse(dense, lexical if lexical is not None else np.zeros(len(self)), weights.lexical)
                if definitions is not None:
                    rank = rank + weights.definition * definitions
            shown = cosine
            if lexical is not None and not self.has_vector.all():  # phase 2 pending: words rank the rest
                bonus = weights.definition * definitions if definitions is not None else 0.0
                rank, shown = _words_for_missing(rank, shown, lexical, bonus, self.has_vector)
        rank = rank * weights.prior_vector()[self.roles]
        if weights.declared < 1.0 and mode != "dense":
            rank = self._to_definitions(rank, weights.declared)
        return rank, shown

    @property
    def declared(self) -> tuple[np.ndarray, np.ndarray]:
        """(declaration row, definition row) pairs: a C/C++ prototype (kind `declaration`, in a
        header, where the doc comment usually is) and the function it declares, defined elsewhere."""
        return self._declared[0], self._declared[1]

    def _to_definitions(self, rank: np.ndarray, share: float) -> np.ndarray:
        """A declaration's score passes to its definition (the doc above a prototype describes
        the function), and the declaration keeps `share` of it: the answer is the code."""
        declarations, definitions = self.declared
        passing = np.isfinite(rank[declarations]) & np.isfinite(rank[definitions])
        if not passing.any():
            return rank
        out = rank.copy()
        np.maximum.at(out, definitions[passing], rank[declarations[passing]])
        out[declarations[passing]] *= share  # once per row, repeated or not (not np.unique: it imports numpy.ma, ~40 ms)
        return out

    def _with_file_evidence(self, rank: np.ndarray, query_vector: np.ndarray | None, query: Query,
                            keep: np.ndarray, weights: Weights, file_weights: FileWeights) -> np.ndarray:
        """Each chunk gains `weights.files` x its file's score (scaled by the best file's): a
        file that answers as a whole lifts its chunks above strays from other files."""
        files = self.files()
        file_score = files.rank(rank, query_vector, query.terms, files.keep(keep), file_weights,
                                weights.prior_vector())
        finite = file_score[np.isfinite(file_score)]
        peak = float(finite.max()) if len(finite) else 0.0
        if peak <= 0:
            return rank
        evidence = np.where(np.isfinite(file_score), np.clip(file_score / peak, 0.0, None), 0.0)
        return np.where(np.isfinite(rank), rank + weights.files * evidence[files.file_of_row], rank)

    def files(self) -> FileRanking:
        if self._files is None:
            self._files = FileRanking(self, summaries=self.mapped.load_file_bm25() if self.mapped is not None else None)
        return self._files

    def modules(self) -> FileRanking:
        """Modules as wholes: each head (module, class) with the rows it holds; a file
        without a head is one module."""
        if self._modules is None:
            heads = [self.kinds[p] in HEAD_KINDS for p in self.parent]
            self._modules = FileRanking(self, [f"{path}#{parent}" if head else path for path, parent, head
                                               in zip(self.paths, self.parent, heads, strict=True)], text=True)
        return self._modules


def _row_vectors(store: IndexStore, key: str, hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(has a vector, the vectors) in row order, from the table of `key` (by content hash)."""
    vector_hashes, matrix = store.load_vectors(key)
    position = {h: i for i, h in enumerate(vector_hashes)}
    rows = np.array([position.get(h, -1) for h in hashes], dtype=np.int64)
    has_vector = rows >= 0
    dim = matrix.shape[1] if matrix.size else 0
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    if matrix.size:
        vectors[has_vector] = matrix[rows[has_vector]]
    return has_vector, vectors


def _fuse(dense: np.ndarray, lexical: np.ndarray, lexical_weight: float) -> np.ndarray:
    """Hybrid ranking: a weighted sum of the two scores, each scaled to [0, 1] over its
    candidates (cosine from the CANDIDATES-th best to the best, BM25 by the best).

    Scores rather than ranks (reciprocal rank fusion): sibling functions often sit a few
    ranks apart in one list and swap in the other, and only the scores say by how much.
    bench_quality doc->code: 0.398 -> 0.418 (RRF -> this) on one corpus, 0.368 -> 0.399 on
    a second; only chunks with a vector (a cosine to show) can rank."""
    finite = np.flatnonzero(np.isfinite(dense))
    if not len(finite):
        return dense
    values = dense[finite]
    best = float(values.max())
    floor = float(np.partition(values, len(values) - CANDIDATES)[len(values) - CANDIDATES]) \
        if len(values) > CANDIDATES else float(values.min())
    peak = float(lexical.max())
    share = lexical_weight / (1.0 + lexical_weight)
    fused = np.full(len(dense), -np.inf, dtype=np.float32)
    fused[finite] = (1 - share) * np.clip((values - floor) / max(best - floor, 1e-6), 0.0, None) \
        + share * (lexical[finite] / peak if peak > 0 else 0.0)
    return fused


def _words_for_missing(rank: np.ndarray, shown: np.ndarray, lexical: np.ndarray, bonus: np.ndarray | float,
                       has_vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows without a vector yet rank (and show) by their lexical score scaled by the best
    (the share a dense score would have had is taken by the words), plus the definitions bonus."""
    peak = float(lexical.max())
    words = lexical / peak if peak > 0 else np.zeros_like(lexical)
    words_rank = words + bonus
    rank = np.where(has_vector, rank, np.where(words_rank > 0, words_rank, -np.inf))
    return rank, np.where(has_vector, shown, words)


def _top(scores: np.ndarray, k: int) -> list[int]:
    valid = np.flatnonzero(np.isfinite(scores))
    if len(valid) > k:
        part = np.argpartition(-scores[valid], k - 1)[:k]
        valid = valid[part]
    return [int(i) for i in valid[np.argsort(-scores[valid], kind="stable")]]
