"""The language server's plain parts: options, command arguments, ranges, results, lens counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codekin.errors import ArgumentError
from codekin.index.rows import RowReads
from codekin.index.search import Hit
from codekin.lsp.neighbours import Relatives, relatives_of_file
from codekin.lsp.options import CodeLensOptions, SearchOptions, ServerOptions, parse_options
from codekin.lsp.requests import (
    FindSimilarArgs,
    LineSpan,
    RetrainArgs,
    SearchArgs,
    parse_find_similar,
    parse_retrain,
    parse_search,
    span_of_range,
)
from codekin.lsp.results import lsp_range, result


def rng(a: int, b: int, c: int, d: int) -> dict:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


def test_options_default_and_parse():
    assert parse_options(None) == (ServerOptions(), [])
    options, problems = parse_options({"codeLens": {"enabled": False, "minSimilarity": 0.9},
                                       "search": {"limit": 25, "minSimilarity": 0, "mode": "dense"}})
    assert problems == []
    assert options == ServerOptions(CodeLensOptions(False, 0.9), SearchOptions(25, 0.0, "dense"))


def test_invalid_options_are_reported_and_defaults_kept():
    options, problems = parse_options({"codeLens": {"enabled": "yes", "minSimilarity": 0.7},
                                       "search": {"limit": 0, "mode": "fuzzy", "colour": 1}, "extra": {}})
    assert options == ServerOptions(CodeLensOptions(True, 0.7), SearchOptions())
    assert problems == [
        "codeLens.enabled must be true or false, got 'yes'; using True",
        "search.limit must be an integer between 1 and 1000, got 0; using the configured value",
        "search.mode must be one of dense, lexical, hybrid, got 'fuzzy'; using the configured value",
        "unknown option search.colour (known: limit, minSimilarity, mode)",
        "unknown option 'extra' (known: codeLens, search)",
    ]
    assert parse_options([1]) == (ServerOptions(), ["initializationOptions must be an object, got list"])


def test_the_repository_search_settings_hold_unless_the_client_sends_its_own(repo_factory):
    from codekin.lsp.session import Session

    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n",
                         ".codekin/config.toml": '[search]\nmode = "lexical"\nlimit = 25\n'})
    quiet = Session(root, ServerOptions(), watch=False)
    assert quiet._open().config.search.mode == "lexical" and quiet.config.search.limit == 25
    told = Session(root, ServerOptions(search=SearchOptions(limit=5, mode="dense")), watch=False)
    assert (told._open().config.search.mode, told.config.search.limit) == ("dense", 5)


@pytest.mark.parametrize(("lsp", "span"), [
    (rng(4, 2, 4, 2), LineSpan(5, None)),  # a cursor: the enclosing chunk
    (rng(4, 0, 4, 30), LineSpan(5, None)),  # part of one line: still the enclosing chunk
    (rng(4, 0, 9, 3), LineSpan(5, 10)),
    (rng(4, 0, 10, 0), LineSpan(5, 10)),  # an end at column 0 leaves that line out
])
def test_ranges_become_line_spans(lsp: dict, span: LineSpan):
    assert span_of_range("cmd", lsp) == span


def test_results_round_trip_through_ranges(tmp_path: Path):
    hit = Hit("lib/a b.ex", 3, 5, "A.f/1", "elixir", "function", 0.912345, "def f(x) do\n  x\nend  # é𝄞")
    out = result(tmp_path, hit)
    assert out == {"uri": (tmp_path / "lib/a b.ex").as_uri(), "range": rng(2, 0, 4, 10),  # UTF-16 units: 𝄞 counts 2
                   "path": "lib/a b.ex", "startLine": 3, "endLine": 5, "symbol": "A.f/1",
                   "language": "elixir", "kind": "function", "score": 0.9123}
    assert span_of_range("cmd", out["range"]) == LineSpan(3, 5)
    assert span_of_range("cmd", lsp_range(3, 5, "a\nb\n")) == LineSpan(3, 5)  # empty last line


def test_find_similar_arguments(tmp_path: Path):
    uri = (tmp_path / "lib/a.ex").as_uri()
    args = parse_find_similar(({"uri": uri, "range": rng(1, 0, 3, 4), "text": "x\ny", "limit": 3,
                                "minSimilarity": 0.5},), tmp_path)
    assert args == FindSimilarArgs(uri, (tmp_path / "lib/a.ex").resolve(), LineSpan(2, 4), "x\ny", 3, 0.5)
    assert parse_find_similar(({"uri": uri, "range": rng(1, 0, 3, 4), "text": "  "},), tmp_path).text is None


@pytest.mark.parametrize(("args", "message"), [
    ((), "codekin.findSimilar takes exactly one argument object, got nothing"),
    (({"uri": "U"}, {}), "takes exactly one argument object, got dict, dict"),
    (("U",), "takes exactly one argument object, got str"),
    (({"range": rng(0, 0, 0, 0)},), "missing required field 'uri'"),
    (({"uri": "https://x/a.ex", "range": rng(0, 0, 0, 0)},), "is not a file:// URI"),
    (({"uri": "file:///etc/hosts", "range": rng(0, 0, 0, 0)},), "is outside the workspace"),
    (({"uri": "U", "range": rng(3, 0, 1, 0)},), "range ends before it starts"),
    (({"uri": "U", "range": {"start": {"line": 1}, "end": {"line": 2, "character": 0}}},),
     "range.start.character must be an integer >= 0, got None"),
    (({"uri": "U", "range": rng(0, 0, 0, 0), "limit": True},), "limit must be an integer between 1 and 1000"),
    (({"uri": "U", "range": rng(0, 0, 0, 0), "minSimilarity": 2},), "minSimilarity must be a number between -1 and 1"),
    (({"uri": "U", "range": rng(0, 0, 0, 0), "mode": "dense"},), "unknown field(s) mode"),
])
def test_bad_find_similar_arguments(tmp_path: Path, args: tuple, message: str):
    uri = (tmp_path / "a.ex").as_uri()
    args = tuple({k: (uri if v == "U" else v) for k, v in a.items()} if isinstance(a, dict) else a for a in args)
    with pytest.raises(ArgumentError) as error:
        parse_find_similar(args, tmp_path)
    assert message in error.value.message


def test_search_and_retrain_arguments():
    assert parse_search(({"query": "retry", "limit": 5, "minSimilarity": 0.2, "mode": "lexical"},)) == \
        SearchArgs("retry", 5, 0.2, "lexical")
    with pytest.raises(ArgumentError, match="query is empty"):
        parse_search(({"query": "  "},))
    assert parse_search(({"query": "router", "files": True, "tests": True},)) == \
        SearchArgs("router", files=True, tests=True)
    assert parse_retrain(()) == RetrainArgs()
    assert parse_retrain(({"epochs": 2, "learningRate": 2e-5, "batchSize": 16},)) == \
        RetrainArgs(epochs=2, learning_rate=2e-5, batch_size=16)
    with pytest.raises(ArgumentError, match="learningRate must be a number"):
        parse_retrain(({"learningRate": "fast"},))


class FakeIndex(RowReads):
    """The columns of a SearchIndex that relatives_of_file reads, for hand-made vectors
    (the real row reads and exclusion rule, RowReads, over them)."""

    def __init__(self, rows: list[tuple[str, int, int, list[float] | None]], parent: list[int]) -> None:
        self.by_path: dict[str, list[int]] = {}
        self.parent = np.array(parent)  # each row's module head (itself when it has none)
        for i, (path, *_rest) in enumerate(rows):
            self.by_path.setdefault(path, []).append(i)
        self.starts = np.array([r[1] for r in rows])
        self.ends = np.array([r[2] for r in rows])
        self.has_vector = np.array([r[3] is not None for r in rows])
        vectors = np.array([r[3] or [0.0, 0.0] for r in rows], dtype=np.float32)
        self.vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        self.kinds = ["function"] * len(rows)
        self.dim = 2

    def __len__(self) -> int:
        return len(self.starts)


def test_relatives_count_other_chunks_above_the_threshold():
    index = FakeIndex([
        ("a.ex", 1, 10, [1.0, 0.0]),   # the file's module chunk
        ("a.ex", 2, 5, [1.0, 0.05]),   # overlaps the module chunk: never its relative
        ("a.ex", 12, 20, [1.0, 0.1]),
        ("b.ex", 1, 4, [1.0, 0.02]),
        ("b.ex", 6, 9, [0.0, 1.0]),
        ("c.ex", 1, 3, None),  # not embedded yet
    ], parent=[0, 0, 0, 3, 4, 5])
    found = relatives_of_file(index, "a.ex", threshold=0.99)
    assert set(found) == {(1, 10), (2, 5), (12, 20)}
    assert found[(1, 10)].count == 2  # a.ex:12-20 and b.ex:1-4, not a.ex:2-5 inside it
    assert found[(2, 5)].count == 2
    assert found[(12, 20)].count == 2  # not its own module head a.ex:1-10 either
    assert found[(1, 10)].best == pytest.approx(float(index.vectors[3] @ index.vectors[0]))
    assert Relatives(2, 0.9876).title() == "2 similar · best 0.99"
    assert Relatives(0, 0.5).title() == "no similar code"


def test_serve_starts_without_heavy_imports():
    """`codekin serve` answers `initialize` within a second only if the CLI and the server
    modules leave LanceDB, torch and numpy to the worker lane: check what they import."""
    code = ("import sys; import codekin.cli as cli; cli.build_parser();"
            "from codekin.lsp.server import create_server; create_server();"
            "print(','.join(m for m in ('lancedb', 'torch', 'numpy', 'sentence_transformers', 'pyarrow')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
