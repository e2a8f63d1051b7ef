"""Named numpy arrays in one file that a reader maps instead of reading: a cold search takes
the kept BM25 and row arrays without copying them (np.load of an .npz reads and copies every
member through zipfile: ~20-40 ms of a cold search for 10k chunks).

Layout: MAGIC, the header's length (8 bytes, little-endian), a JSON header {"arrays": {name:
[dtype, shape, offset]}, "meta": {...}}, then each array's bytes at an offset aligned to ALIGN.
Strings are kept as one UTF-8 blob with the byte offset of each (pack_strings). Writers write
it aside and rename it into place (query_file.py), so a reader maps a whole file.
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np

MAGIC = b"CODEKIN-ARRAYS-1\n"
ALIGN = 64


def write_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
    """`arrays` (any dtype without Python objects) and `meta` (JSON) into `path`."""
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    header: dict[str, list] = {}
    offset = 0
    for name, array in contiguous.items():
        header[name] = [array.dtype.str, list(array.shape), offset]
        offset = _aligned(offset + array.nbytes)
    text = json.dumps({"arrays": header, "meta": meta or {}}).encode()
    start = _aligned(len(MAGIC) + 8 + len(text))
    with path.open("wb") as sink:
        sink.write(MAGIC + len(text).to_bytes(8, "little") + text)
        for name, array in contiguous.items():
            sink.seek(start + header[name][2])
            sink.write(array.tobytes())
        sink.truncate(start + offset)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of `path`, mapped read-only; ValueError when it is not such a file (or cut short)."""
    return read_arrays_and_meta(path)[0]


def read_arrays_and_meta(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of `path` (mapped read-only) and its meta."""
    with path.open("rb") as source:
        if source.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path.name} is not an arrays file")
        size = int.from_bytes(source.read(8), "little")
        header = json.loads(source.read(size))
        start = _aligned(len(MAGIC) + 8 + size)
        mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)  # stays valid after close
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), dict):
        raise ValueError(f"{path.name} has no arrays header")
    out = {}
    for name, (dtype, shape, offset) in header["arrays"].items():
        kind = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if start + offset + count * kind.itemsize > len(mapped):
            raise ValueError(f"{path.name} is cut short")
        out[name] = np.frombuffer(mapped, dtype=kind, count=count, offset=start + offset).reshape(shape)
    return out, header.get("meta") or {}


def pack_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, blob): value i is blob[offsets[i]:offsets[i + 1]], UTF-8 (lone surrogates kept)."""
    encoded = [v.encode("utf-8", "surrogateescape") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(encoded), dtype=np.uint8)


def unpack_strings(offsets: np.ndarray, blob: np.ndarray) -> list[str]:
    data, ends = blob.tobytes(), offsets.tolist()
    return [data[a:b].decode("utf-8", "surrogateescape") for a, b in zip(ends[:-1], ends[1:], strict=True)]


def string_at(offsets: np.ndarray, blob: np.ndarray, i: int) -> str:
    return blob[int(offsets[i]):int(offsets[i + 1])].tobytes().decode("utf-8", "surrogateescape")


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN
