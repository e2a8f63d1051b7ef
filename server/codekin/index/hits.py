"""What a search answers with: ranked chunks (Hit) and ranked files (FileHit).

Plain data without numpy, so a `codekin search` answered by a running language server
(query_socket.py) prints them without loading the search code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    kind: str
    score: float  # the chunk's own cosine similarity (lexical mode: BM25 relative to the best)
    text: str = ""
    rank_score: float | None = None  # what the list is ranked by (the whole ranking stack, spread included)
    embedded: bool = True  # False: no vector yet (phase 2 pending); it ranked by its words

    @property
    def shown_score(self) -> float:
        """The score a list of hits is shown with: the one it is ranked by."""
        return self.score if self.rank_score is None else self.rank_score

    def to_dict(self, with_text: bool = False) -> dict:
        """`score` is what the list is ranked by; `cosine` the chunk's own similarity."""
        out = {"path": self.path, "start_line": self.start_line, "end_line": self.end_line,
               "symbol": self.symbol, "language": self.language, "kind": self.kind,
               "score": round(self.shown_score, 4), "cosine": round(self.score, 4)}
        if with_text:
            out["text"] = self.text
        if not self.embedded:
            out["embedded"] = False
        return out


@dataclass(frozen=True)
class FileHit:
    path: str
    language: str
    score: float
    row: int  # its best chunk (or its head, for module similarity)
    start_line: int
    end_line: int
    symbol: str

    def to_dict(self) -> dict:
        return {"path": self.path, "language": self.language, "score": round(self.score, 4),
                "start_line": self.start_line, "end_line": self.end_line, "symbol": self.symbol}
