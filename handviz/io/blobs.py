"""Numpy arrays <-> raw little-endian bytes for SQLite BLOB columns (never pickle).

The shape lives in the schema (or in a count column next to the blob), so a blob is only the
numbers; `from_blob` checks that the byte count fits the shape and says which field is off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FLOAT32 = np.dtype("<f4")
FLOAT64 = np.dtype("<f8")
INT32 = np.dtype("<i4")


class BlobSizeError(ValueError):
    """A blob's byte count does not match the shape it should hold (a damaged row)."""


def to_blob(array: np.ndarray, dtype: np.dtype = FLOAT32) -> bytes:
    """The array's values as contiguous little-endian `dtype` bytes (C order)."""
    return np.ascontiguousarray(array, dtype=dtype).tobytes()


def from_blob(blob: bytes | None, shape: Sequence[int], dtype: np.dtype = FLOAT32,
              name: str = "array") -> np.ndarray:
    """A writable array of `shape` read from `blob` (None or empty reads as zero elements).

    shape may hold one -1 (e.g. (-1, 3) for faces). Raises BlobSizeError when the sizes differ.
    """
    data = blob or b""
    if len(data) % dtype.itemsize:
        raise BlobSizeError(f"{name}: {len(data)} bytes is not a whole number of {dtype.name} values")
    flat = np.frombuffer(data, dtype=dtype)
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if known == 0 or flat.size % known:
            raise BlobSizeError(f"{name}: {flat.size} values do not fill rows of shape {tuple(shape)}")
    elif flat.size != known:
        raise BlobSizeError(f"{name}: {flat.size} values stored, shape {tuple(shape)} needs {known}")
    return flat.reshape(shape).astype(dtype.newbyteorder("="), copy=True)
