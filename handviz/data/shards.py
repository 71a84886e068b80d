"""Shards on disk: one .npz of N samples each, written atomically so a killed run resumes cleanly."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

SHARD_GLOB = "shard_*.npz"


def shard_path(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"shard_{index:05d}.npz"


def write_shard(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary name, then rename: a shard exists whole or not at all."""
    path = Path(path)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def shard_is_complete(path: Path) -> bool:
    """True when the file opens as an npz with readable members (a crash leaves only .tmp files)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.testzip() is None and len(zf.namelist()) > 0
    except (OSError, zipfile.BadZipFile):
        return False


def read_shard(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def list_shards(data_dir: Path) -> list[Path]:
    return sorted(Path(data_dir).glob(SHARD_GLOB))


def load_shards(data_dir: Path, keys: list[str] | None = None, max_shards: int | None = None) -> dict[str, np.ndarray]:
    """Concatenate every shard in data_dir (optionally only `keys`, only the first `max_shards`)."""
    shards = list_shards(data_dir)[:max_shards]
    if not shards:
        raise FileNotFoundError(f"no {SHARD_GLOB} files in {data_dir}: run `handviz data synth --out {data_dir}`")
    parts: dict[str, list[np.ndarray]] = {}
    for p in shards:
        with np.load(p, allow_pickle=False) as z:
            for k in keys or z.files:
                if k in z.files:
                    parts.setdefault(k, []).append(z[k])
    return {k: np.concatenate(v) for k, v in parts.items()}
