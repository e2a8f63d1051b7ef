"""Named numpy arrays in one file that a reader maps instead of reading: a cold search takes
the kept BM25 and row arrays without copying them (np.load of an .npz reads and copies every
member through zipfile: ~20-40 ms of a cold search for 10k chunks).

Layout: MAGIC, the header's length (8 bytes, little-endian), a JSON header {name: [dtype,
shape, offset]}, then each array's bytes at an offset aligned to ALIGN. Writers write it
aside and rename it into place (query_file.py), so a reader maps a whole file.
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np

MAGIC = b"CODEKIN-ARRAYS-1\n"
ALIGN = 64


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` (any dtype without Python objects) into `path`."""
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    header: dict[str, list] = {}
    offset = 0
    for name, array in contiguous.items():
        header[name] = [array.dtype.str, list(array.shape), offset]
        offset = _aligned(offset + array.nbytes)
    text = json.dumps(header).encode()
    start = _aligned(len(MAGIC) + 8 + len(text))
    with path.open("wb") as sink:
        sink.write(MAGIC + len(text).to_bytes(8, "little") + text)
        for name, array in contiguous.items():
            sink.seek(start + header[name][2])
            sink.write(array.tobytes())
        sink.truncate(start + offset)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of `path`, mapped read-only; ValueError when it is not such a file (or cut short)."""
    with path.open("rb") as source:
        if source.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path.name} is not an arrays file")
        size = int.from_bytes(source.read(8), "little")
        header = json.loads(source.read(size))
        start = _aligned(len(MAGIC) + 8 + size)
        mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)  # stays valid after close
    out = {}
    for name, (dtype, shape, offset) in header.items():
        kind = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if start + offset + count * kind.itemsize > len(mapped):
            raise ValueError(f"{path.name} is cut short")
        out[name] = np.frombuffer(mapped, dtype=kind, count=count, offset=start + offset).reshape(shape)
    return out


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN
