"""What a SearchIndex answers about its rows by number, so the layers above it (the Engine, the
language server, the MCP server, training's judge) never read its column arrays; and the one
rule of what `similar` leaves out, for one span or many at once (the code lens counts)."""

from __future__ import annotations

from collections import Counter

import numpy as np


class RowReads:
    """The columns of one index snapshot (SearchIndex fills them) and the reads over them."""

    paths: list[str]
    languages: list[str]
    kinds: list[str]
    symbols: list[str]
    starts: np.ndarray
    ends: np.ndarray
    has_vector: np.ndarray
    vectors: np.ndarray
    roles: np.ndarray
    parent: np.ndarray  # each row's module head (itself when it has none)
    by_path: dict[str, list[int]]

    @property
    def texts(self) -> list[str]:  # a snapshot may read them only when first asked for
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.paths)

    def similar_mask(self, path: str, start: int, end: int, query_row: int | None) -> np.ndarray:
        """What `similar` may answer: not the query's own lines or what overlaps them, nor the
        module head that holds the query (it holds the function; it is not a look-alike)."""
        return self.similar_masks(path, np.array([[start, end]]), np.array([-1 if query_row is None else query_row]))[0]

    def similar_masks(self, path: str, spans: np.ndarray, query_rows: np.ndarray) -> np.ndarray:
        """similar_mask for k spans of `path` at once ((k, 2) lines; query_rows -1 where none): (k, n)."""
        keep = np.ones((len(spans), len(self)), dtype=bool)
        rows = np.array(self.by_path.get(path, []), dtype=np.int64)
        if len(rows):
            starts, ends = spans[:, 0:1], spans[:, 1:2]
            keep[:, rows] = ~((self.starts[rows][None, :] <= ends) & (starts <= self.ends[rows][None, :]))
        held = np.flatnonzero(query_rows >= 0)
        keep[held, self.parent[query_rows[held]]] = False
        return keep

    def similar_scores(self, path: str, rows: list[int]) -> np.ndarray:
        """Cosine of each of `rows` (embedded chunks of `path`) with every row, -inf where
        `similar` would leave the row out (similar_masks) or it has no vector: (k, n)."""
        chosen = np.array(rows, dtype=np.int64)
        spans = np.stack([self.starts[chosen], self.ends[chosen]], axis=1)
        scores = self.vectors[chosen] @ self.vectors.T
        scores[~(self.similar_masks(path, spans, chosen) & self.has_vector)] = -np.inf
        return scores

    def span(self, row: int) -> tuple[int, int]:
        """The row's (start_line, end_line), 1-based."""
        return int(self.starts[row]), int(self.ends[row])

    def text(self, row: int) -> str:
        return self.texts[row]

    def joined_text(self, rows: list[int]) -> str:
        return "\n".join(self.texts[r] for r in rows)

    def embedded(self, row: int) -> bool:
        """The row has a vector (phase 2 of indexing reached it)."""
        return bool(self.has_vector[row])

    def all_embedded(self, rows: list[int]) -> bool:
        return bool(self.has_vector[rows].all())

    def embedded_count(self) -> int:
        return int(self.has_vector.sum())

    def vector(self, row: int) -> np.ndarray:
        return self.vectors[row]

    def mean_vector(self, rows: list[int]) -> np.ndarray:
        """The unit-length mean of the rows' vectors (a span made of several chunks)."""
        mean = self.vectors[rows].mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-6)

    def line_range(self, rows: list[int]) -> tuple[int, int]:
        """The first and last line the rows cover."""
        return int(self.starts[rows].min()), int(self.ends[rows].max())

    def rows_of(self, path: str, skip_kinds: frozenset[str] = frozenset(), embedded: bool = False) -> list[int]:
        """The rows of `path` in line order, leaving out `skip_kinds` (and rows without a vector)."""
        rows = [i for i in self.by_path.get(path, [])
                if self.kinds[i] not in skip_kinds and (not embedded or self.has_vector[i])]
        return sorted(rows, key=lambda i: (int(self.starts[i]), int(self.ends[i])))

    def role_weights(self, prior: np.ndarray) -> np.ndarray:
        """Each row's weight from a per-role prior (Weights.prior_vector())."""
        return prior[self.roles]

    def file_count(self) -> int:
        return len(self.by_path)

    def file_paths(self) -> list[str]:
        return list(self.by_path)

    def language_counts(self) -> Counter[str]:
        """Chunks per language."""
        return Counter(self.languages)

    def holds_at(self, row: int, path: str, start_line: int) -> bool:
        """This snapshot still holds `path`'s chunk at `start_line` as `row` (an index write may
        have swapped the snapshot since the row was found)."""
        return row < len(self) and self.paths[row] == path and int(self.starts[row]) == start_line

    def definition_order(self, row: int) -> tuple[str, int]:
        """How rows of equal rank are ordered: by path, then line."""
        return self.paths[row], int(self.starts[row])

    def parts_end(self, path: str, base: str) -> int:
        """The last line of the parts (`base (part N)`) of a long function split in `path`."""
        return max((int(self.ends[r]) for r in self.by_path.get(path, [])
                    if self.symbols[r].startswith(f"{base} (part ")), default=0)
