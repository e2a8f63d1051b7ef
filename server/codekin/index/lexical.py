"""Identifier-aware terms and an in-memory BM25 over them.

Code identifiers are split (snake_case, CamelCase, Module.Path) and kept whole, so
`handle_call`, `HandleCall` and "handle call" all meet. Terms are matched by their
English stem ("Starts" meets `start_link`, "handling" meets `handle`; see stem()), and English function words are dropped from queries ("the" is rare in code, so it
would otherwise weigh more than the words that matter). Kept in memory as a sparse
matrix (numpy arrays by term): a query is a few column sums, well under a millisecond for
10k chunks.

Search adds a name field (BM25F-style): a query word that is a word of a function's own
name (`bplus_insert_in_leaf` for "Inserts a key in a leaf") adds `name_weight` x its
idf. A thin wrapper and the sibling holding its logic share most words; the name is
what tells them apart.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from functools import lru_cache

import numpy as np

from codekin.parts import base_symbol

# Chunk kinds whose symbol ends in a callable's own name (heads, windows and tests have none).
NAMED_KINDS = frozenset({"function", "method", "macro", "guard", "delegate"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[?!]?|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def terms(text: str) -> list[str]:
    out: list[str] = []
    for match in _IDENT.finditer(text):
        word = match.group().rstrip("?!")
        if len(word) < 2:
            continue
        lower = word.lower()
        out.append(lower)
        parts = [p.lower() for piece in word.split("_") for p in _CAMEL.findall(piece)]
        if len(parts) > 1:
            out.extend(p for p in parts if len(p) > 1)
    return out


def name_terms(symbol: str, kind: str) -> list[str]:
    """The words of a callable's own name: `dets_utils:bplus_insert_in_leaf/2`,
    `KinShop.Cache.fetch/2`, `ns::Class::method` -> its last segment, arity dropped."""
    if kind not in NAMED_KINDS:
        return []
    name = re.split(r"::|[.:]", re.sub(r"/\d+$", "", base_symbol(symbol)))[-1]
    return terms(name)


# Words that carry no meaning in a query about code (dropped from queries only).
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for from with without into onto over under
as is are was were be been being it its this that these those there here which who whom whose
what when where why how all any both each few more most other some such no nor not only own
same so than too very can will just do does did done has have had having you he she we they
them their our your my me us his her him via per eg ie e.g i.e
""".split())


_STEMMING = threading.Lock()  # the stemmer keeps the word it works on in itself: one thread at a time
_ENGLISH: list = []  # the Snowball stemmer, made on first use (`import snowballstemmer` loads every
# language's stemmer: ~30 ms of a cold search, whose words are usually all among the kept stems)


class _KeptStems:
    """Stems an index commit kept ("word stem" lines, query_file.py), so a cold process reuses
    them (pure-Python Snowball costs ~0.3 ms a word). A query's few words are found in the
    text itself; the lines become a dict only once many words are asked for (building a BM25)."""

    LOOKUPS_BEFORE_DICT = 64

    def __init__(self) -> None:
        self.text = "\n"
        self.stems: dict[str, str] = {}
        self.lookups = 0

    def keep(self, text: str) -> None:
        self.text, self.stems, self.lookups = "\n" + text + "\n", {}, 0

    def get(self, term: str) -> str | None:
        if self.stems:
            return self.stems.get(term)
        if len(self.text) < 2:
            return None
        self.lookups += 1
        if self.lookups > self.LOOKUPS_BEFORE_DICT:
            self.stems = dict(line.split(" ", 1) for line in self.text.split("\n") if " " in line)
            return self.stems.get(term)
        start = self.text.find(f"\n{term} ")
        if start < 0:
            return None
        start += len(term) + 2
        return self.text[start:self.text.index("\n", start)]


_KEPT_STEMS = _KeptStems()


def keep_stems(lines: str) -> None:
    """Stems computed by an earlier process, as "word stem" lines."""
    _KEPT_STEMS.keep(lines)


def stem(term: str) -> str:
    """A word's stem, so "handling" meets `handle`, "compression" `compress` and "retries"
    `retry` (Porter2/Snowball; relevance tune half: architecture NDCG 0.704 -> 0.717, file
    ranking 0.862 -> 0.866). Identifiers with digits or underscores only lose a plural "s"
    ("entries" -> "entry"): their parts are terms of their own and are stemmed as words."""
    return _KEPT_STEMS.get(term) or _stem(term)


@lru_cache(maxsize=200_000)
def _stem(term: str) -> str:
    if term.isalpha():
        with _STEMMING:
            if not _ENGLISH:
                import snowballstemmer

                _ENGLISH.append(snowballstemmer.stemmer("english"))
            return _ENGLISH[0].stemWord(term)
    if len(term) <= 3 or not term.endswith("s") or term.endswith(("ss", "us", "is")):
        return term
    if term.endswith("ies") and len(term) > 4:
        return term[:-3] + "y"
    if term.endswith(("ches", "shes", "xes", "sses", "zes")):
        return term[:-2]
    return term[:-1]


def query_terms(query: list[str]) -> list[str]:
    """Query terms as the index holds them: function words dropped, stemmed."""
    return [stem(t) for t in query if t not in STOPWORDS]


class Postings:
    """A sparse documents x terms matrix stored by term (CSC, in numpy): term `c`'s documents are
    `rows[indptr[c]:indptr[c + 1]]` (ascending) with `values` beside them. scipy.sparse would do,
    but importing it costs a cold search about a second."""

    def __init__(self, indptr: np.ndarray, rows: np.ndarray, values: np.ndarray, documents: int) -> None:
        self.indptr, self.rows, self.values, self.documents = indptr, rows, values, documents

    @classmethod
    def build(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, documents: int,
              terms: int) -> Postings:
        """From (row, col, value) cells, at most one per cell."""
        order = np.lexsort((rows, cols))
        indptr = np.zeros(terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=terms), out=indptr[1:])
        return cls(indptr, rows[order].astype(np.int32), values[order].astype(np.float32), documents)

    def dot(self, cols: list[int], weights: np.ndarray) -> np.ndarray:
        """matrix[:, cols] @ weights, in float32, summed column by column in the order given."""
        out = np.zeros(self.documents, dtype=np.float32)
        for col, weight in zip(cols, weights, strict=True):
            lo, hi = self.indptr[col], self.indptr[col + 1]
            out[self.rows[lo:hi]] += self.values[lo:hi] * weight
        return out


class Bm25:
    """BM25 over term lists; `prose=True` (search) stems terms and drops query function words,
    `prose=False` (training's negative mining, code against code) matches terms as they are.

    `arrays()` and `from_arrays()` save and load it whole (the query file keeps a copy, so a
    cold search does not rebuild it)."""

    def __init__(self, documents: list[list[str]], k1: float = 1.2, b: float = 0.75, prose: bool = False,
                 names: list[list[str]] | None = None) -> None:
        self.prose = prose
        self.vocabulary: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(documents), dtype=np.float32)
        for row, raw in enumerate(documents):
            doc = [stem(t) for t in raw] if prose else raw
            lengths[row] = len(doc)
            for term, count in Counter(doc).items():
                col = self.vocabulary.setdefault(term, len(self.vocabulary))
                rows.append(row)
                cols.append(col)
                tfs.append(count)
        n = max(len(documents), 1)
        tf = np.asarray(tfs, dtype=np.float32)
        row_idx = np.asarray(rows, dtype=np.int64)
        col_idx = np.asarray(cols, dtype=np.int64)
        df = np.bincount(col_idx, minlength=len(self.vocabulary)).astype(np.float32)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if len(documents) else 1.0
        norm = k1 * (1 - b + b * lengths[row_idx] / max(avg, 1e-6))
        weights = idf[col_idx] * tf * (k1 + 1) / (tf + norm)
        self.matrix = Postings.build(row_idx, col_idx, weights, len(documents), len(self.vocabulary))
        self.idf = idf
        self.names = self._name_matrix(names) if names is not None else None

    def _name_matrix(self, names: list[list[str]]) -> Postings:
        """1 where a document's name holds a term (names are part of their documents, so
        every name term is in the vocabulary)."""
        cells = {(row, self.vocabulary[t]) for row, name in enumerate(names)
                 for t in (stem(t) if self.prose else t for t in name) if t in self.vocabulary}
        rows, cols = (np.array(side, dtype=np.int64) for side in zip(*cells, strict=True)) if cells \
            else (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return Postings.build(rows, cols, np.ones(len(cells), dtype=np.float32), self.matrix.documents,
                              len(self.vocabulary))

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the scores depend on, as flat arrays (np.savez writes them)."""
        vocabulary = "\n".join(self.vocabulary).encode("utf-8")  # terms hold no newline (see terms())
        out = {"vocabulary": np.frombuffer(vocabulary, dtype=np.uint8), "idf": self.idf,
               "shape": np.array([self.matrix.documents, len(self.vocabulary), int(self.prose)], dtype=np.int64),
               "indptr": self.matrix.indptr, "rows": self.matrix.rows, "values": self.matrix.values}
        if self.names is not None:
            out.update(name_indptr=self.names.indptr, name_rows=self.names.rows)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Bm25:
        """The Bm25 that `arrays()` saved."""
        bm25 = cls.__new__(cls)
        documents, size, prose = (int(v) for v in arrays["shape"])
        text = arrays["vocabulary"].tobytes().decode("utf-8")
        bm25.vocabulary = dict(zip(text.split("\n"), range(size), strict=True)) if size else {}
        bm25.prose, bm25.idf = bool(prose), arrays["idf"]
        bm25.matrix = Postings(arrays["indptr"], arrays["rows"], arrays["values"], documents)
        bm25.names = None
        if "name_indptr" in arrays:
            rows = arrays["name_rows"]
            bm25.names = Postings(arrays["name_indptr"], rows, np.ones(len(rows), dtype=np.float32), documents)
        return bm25

    def scores(self, query: list[str], name_weight: float = 0.0) -> np.ndarray:
        """BM25 of every document for the query's terms (as `terms()` gives them), plus
        `name_weight` x the idf of each query term in the document's name."""
        counts = Counter(t for t in (query_terms(query) if self.prose else query) if t in self.vocabulary)
        if not counts:
            return np.zeros(self.matrix.documents, dtype=np.float32)
        cols = [self.vocabulary[t] for t in counts]
        weights = np.asarray([math.sqrt(c) for c in counts.values()], dtype=np.float32)
        scores = self.matrix.dot(cols, weights)
        if name_weight and self.names is not None:
            scores += name_weight * self.names.dot(cols, self.idf[cols])
        return scores


def chunk_bm25(terms_column: list[str], symbols: list[str], kinds: list[str]) -> Bm25:
    """The search index's BM25: each chunk's stored terms, and its callable's name as a field."""
    return Bm25([t.split() for t in terms_column], prose=True,
                names=[name_terms(s, k) for s, k in zip(symbols, kinds, strict=True)])
