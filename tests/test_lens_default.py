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
from codekin.lsp.neighbours import LENS_COUNTED, relatives_of_hits
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
    engine = Engine(indexed_examples, load_config(indexed_examples), embedder=minilm)
    path = "lib/kin_shop/workers/webhook_retry_worker.ex"
    row = next(r for r in engine.index().by_path[path] if engine.index().symbols[r].endswith("compute_backoff/1"))
    start, end = int(engine.index().starts[row]), int(engine.index().ends[row])
    _, hits = engine.similar(path, start, end, limit=LENS_COUNTED)
    lens = relatives_of_hits(hits, LENS_MIN_SIMILARITY)
    counted = {hit.symbol for hit in hits[:lens.count]}
    assert {"kin_util:backoff_ms/3", "KinShop.Workers.StockSyncWorker.backoff_delay/1"} <= counted, hits[:4]
    assert lens.count <= 4 and lens.best == hits[0].shown_score  # the twins, not every worker function
    assert lens.title() == f"{lens.count} similar · best {hits[0].shown_score:.2f}"
