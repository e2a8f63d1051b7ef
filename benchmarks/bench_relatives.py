"""Code lens counts of one file: the per-chunk exclusion loop (before) against the masks built
for every chunk of the file at once (SearchIndex.similar_masks, what relatives_of_file uses).

A synthetic index of the size bench_lsp.py serves (about 10k chunks of 384 dimensions, 30 per
file); both ways must give the same counts. Usage:
    python benchmarks/bench_relatives.py [--chunks 10000] [--per-file 30] [--files 20] [--note TEXT]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from codekin.index.rows import RowReads  # noqa: E402
from codekin.lsp.neighbours import Relatives, relatives_of_file  # noqa: E402


class Synthetic(RowReads):
    def __init__(self, chunks: int, per_file: int, dim: int = 384, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.paths = [f"lib/f{i // per_file}.ex" for i in range(chunks)]
        self.kinds = ["module" if i % per_file == 0 else "function" for i in range(chunks)]
        self.starts = np.array([1 if i % per_file == 0 else 2 + 10 * (i % per_file) for i in range(chunks)])
        self.ends = np.array([10 * per_file + 5 if i % per_file == 0 else s + 8 for i, s in enumerate(self.starts)])
        self.parent = np.array([i - i % per_file for i in range(chunks)])
        self.has_vector = rng.random(chunks) > 0.02
        vectors = rng.standard_normal((chunks, dim)).astype(np.float32)
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.by_path: dict[str, list[int]] = {}
        for i, path in enumerate(self.paths):
            self.by_path.setdefault(path, []).append(i)
        self.dim = dim


def looped(index: Synthetic, path: str, threshold: float) -> dict[tuple[int, int], Relatives]:
    """relatives_of_file as it was: one similar_mask per chunk."""
    rows = np.array([i for i in index.by_path.get(path, []) if index.has_vector[i]], dtype=np.int64)
    scores = index.vectors[rows] @ index.vectors.T
    for k, row in enumerate(rows):
        keep = index.similar_mask(path, int(index.starts[row]), int(index.ends[row]), int(row))
        scores[k, ~(keep & index.has_vector)] = -np.inf
    counts, best = (scores >= threshold).sum(axis=1), scores.max(axis=1)
    return {(int(index.starts[r]), int(index.ends[r])): Relatives(int(c), float(b) if np.isfinite(b) else -1.0)
            for r, c, b in zip(rows, counts, best, strict=True)}


def timed_ms(work, repeats: int = 3) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        runs.append((time.perf_counter() - start) * 1000)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=30)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    index = Synthetic(args.chunks, args.per_file)
    paths = list(index.by_path)[:args.files]
    threshold = 0.1
    before, after = [], []
    for path in paths:
        assert relatives_of_file(index, path, threshold) == looped(index, path, threshold), path  # type: ignore[arg-type]
        before.append(timed_ms(lambda p=path: looped(index, p, threshold)))
        after.append(timed_ms(lambda p=path: relatives_of_file(index, p, threshold)))  # type: ignore[arg-type]
    print(json.dumps({"benchmark": "relatives", "chunks": args.chunks, "chunks_per_file": args.per_file,
                      "files": len(paths), "loop_ms_median": round(statistics.median(before), 2),
                      "masks_ms_median": round(statistics.median(after), 2), "same_counts": True,
                      "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                      "note": args.note}))


if __name__ == "__main__":
    main()
