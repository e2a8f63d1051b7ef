"""The code lens threshold: one default, spelled once on the server (LENS_MIN_SIMILARITY) and
mirrored by every editor setting and its docs; with it, the lens over `compute_backoff/1` in
examples/ counts the backoff twins that Find Similar lists first (issue 22)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.engine import Engine
from codekin.lsp.neighbours import relatives_of_file
from codekin.lsp.options import LENS_MIN_SIMILARITY, CodeLensOptions, parse_options

EDITORS = Path(__file__).resolve().parents[1] / "editors"
MIRRORS = {  # file -> the pattern of the lens default in it
    "vscode/package.json": None,
    "vscode/src/settings.ts": r"codeLensMinSimilarity: ([0-9.]+),",
    "vscode/README.md": r"\| `codekin\.codeLens\.minSimilarity` \| `([0-9.]+)` \|",
    "nvim/lua/codekin/config.lua": r"codelens = \{ enabled = true, minSimilarity = ([0-9.]+) \}",
    "nvim/doc/codekin.txt": r"codelens = \{ enabled = true, minSimilarity = ([0-9.]+) \}",
    "README.md": r"codelens = \{ enabled = true, minSimilarity = ([0-9.]+) \}",
}


def mirrored(rel: str) -> list[float]:
    text = (EDITORS / rel).read_text(encoding="utf-8")
    if rel.endswith("package.json"):
        return [json.loads(text)["contributes"]["configuration"]["properties"]["codekin.codeLens.minSimilarity"]
                ["default"]]
    pattern = MIRRORS[rel]
    assert pattern is not None
    return [float(value) for value in re.findall(pattern, text)]


@pytest.mark.parametrize("rel", sorted(MIRRORS))
def test_every_editor_mirrors_the_server_default(rel: str):
    assert mirrored(rel) == [LENS_MIN_SIMILARITY], rel


def test_the_server_default_is_the_option_default():
    assert CodeLensOptions().min_similarity == LENS_MIN_SIMILARITY
    assert parse_options({})[0].code_lens.min_similarity == LENS_MIN_SIMILARITY


def test_the_lens_over_compute_backoff_counts_the_twins_find_similar_lists_first(indexed_examples: Path, minilm):
    """At the default, the lens counts the first results Find Similar lists (its backoff twins),
    with the same rule (tests/test_index.py: a lens counts what similar lists above it)."""
    engine = Engine(indexed_examples, load_config(indexed_examples), embedder=minilm)
    index, path = engine.index(), "lib/kin_shop/workers/webhook_retry_worker.ex"
    row = next(r for r in index.by_path[path] if index.symbols[r].endswith("compute_backoff/1"))
    start, end = int(index.starts[row]), int(index.ends[row])
    twins = {"kin_util:backoff_ms/3", "KinShop.Workers.StockSyncWorker.backoff_delay/1"}
    _, listed = engine.similar(path, start, end, limit=3)
    assert twins <= {h.symbol for h in listed}, listed
    lens = relatives_of_file(index, path, LENS_MIN_SIMILARITY)[(start, end)]
    _, counted = engine.similar(path, start, end, limit=1000, min_similarity=LENS_MIN_SIMILARITY)
    assert twins <= {h.symbol for h in counted} and lens.count == len(counted)
    assert lens.title() != "no similar code"
