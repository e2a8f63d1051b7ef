"""What a torch-free load of a cached int8 export needs, written once by a load that had torch.

The first load of a model on the int8 backend needs torch: it exports the model, checks
the int8 vectors against fp32 ones (the agreement probe) and checks that `TextTokenizer`
gives sentence-transformers' token ids. When all of that passes it leaves, next to the
export, the tokenizer engine (`tokenizer.json`) and a record (`serving-<max_tokens>.json`:
the tokenizer call, pooling, dimension, probe result, and a fingerprint of the model's
non-weight files). Later loads read the record and never import torch or
sentence-transformers. A record whose fingerprint no longer matches the model folder
(an edited tokenizer or pooling config) is ignored, and the next load with torch writes it
again. Weight files are covered by the export folder's own digest (quantize.export_dir).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from codekin.atomic import write_atomic
from codekin.embedding.quantize import WEIGHT_SUFFIXES
from codekin.embedding.tokenizer import TokenizerSpec

log = logging.getLogger(__name__)

FORMAT = 1
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class Int8Record:
    tokenizer: TokenizerSpec
    pooling: str
    dim: int
    agreement: float


def record_path(export: Path, max_tokens: int) -> Path:
    """One record per configured model.max_tokens (the tokenizer's max_length may be lower)."""
    return export / f"serving-{max_tokens}.json"


def model_files(model_path: str) -> list[list]:
    """(relative name, size, mtime_ns) of the model folder's configuration and tokenizer files."""
    root = Path(model_path).expanduser()
    if not root.is_dir():
        return []
    return sorted(
        [str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns]
        for p in root.rglob("*") if p.is_file() and p.suffix not in WEIGHT_SUFFIXES and p.suffix != ".md"
    )


def write_record(export: Path, model_path: str, max_tokens: int, record: Int8Record, engine_text: str) -> None:
    """Leave what a torch-free load needs; a read-only cache only costs the speed-up."""
    data = {"format": FORMAT, "tokenizer": record.tokenizer.to_dict(), "pooling": record.pooling,
            "dim": record.dim, "agreement": round(record.agreement, 6), "model_files": model_files(model_path),
            "created_at": time.time()}
    try:
        write_atomic(export / TOKENIZER_FILE, engine_text)
        write_atomic(record_path(export, max_tokens), json.dumps(data, indent=2))
    except OSError as exc:
        log.info("cannot write the int8 serving record in %s (%s); loads keep using torch", export, exc)


def read_record(export: Path, model_path: str, max_tokens: int) -> Int8Record | None:
    """The record for this export and model.max_tokens, or None when it is missing or stale."""
    path = record_path(export, max_tokens)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.info("ignoring unreadable int8 serving record %s (%s)", path, exc)
        return None
    if not (export / TOKENIZER_FILE).is_file() or data.get("format") != FORMAT:
        return None
    if data.get("model_files") != model_files(model_path):
        log.info("the model folder %s changed since %s was written; loading with torch", model_path, path)
        return None
    try:
        spec = TokenizerSpec.from_dict(data["tokenizer"])
        return Int8Record(spec, str(data["pooling"]), int(data["dim"]), float(data["agreement"]))
    except (KeyError, TypeError, ValueError) as exc:
        log.info("ignoring malformed int8 serving record %s (%s)", path, exc)
        return None
