"""Training data: shard files DIR/*.npz loaded once into memory, plus the batch order.

A shard holds N samples (see handviz.data.synth): kp2d (N,21,2) px, detected (N,), kp_z (N,21),
mp_world (N,21,3) mm (NaN in keypoint-only shards), joints (N,21,3) mm, verts (N,V,3) mm, K (N,3,3),
and crop (N,64,64,3) uint8 in rendered shards only. Only the arrays a stage needs are read.
Targets are root-relative and divided by JOINT_SCALE_MM. Every shard holds right hands.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handviz.features import COND_DIM, JOINT_SCALE_MM, keypoint_condition
from handviz.logs import InputError

#: What each part of a sample needs from a shard.
_PART_KEYS = {
    "keypoints": ("kp2d", "K", "kp_z", "mp_world"),
    "joints": ("joints",),
    "verts": ("verts", "joints"),
    "crops": (),  # optional: 'crop' where the shard has it
}


class DataError(InputError):
    """A shard folder or file that cannot be trained on; the message names it and the fix."""


def list_shard_files(data_dir: str | Path) -> list[Path]:
    """Sorted DIR/*.npz, without the .tmp.npz files an interrupted writer leaves."""
    d = Path(data_dir)
    if not d.is_dir():
        raise DataError(f"{d}: not a folder of shards; make one with `handviz data synth --out {d}`")
    files = sorted(p for p in d.glob("*.npz") if not p.name.endswith(".tmp.npz"))
    if not files:
        raise DataError(f"{d}: no .npz shards; make them with `handviz data synth --out {d}`")
    return files


@dataclass
class HandData:
    """Samples in memory (numpy). joints/verts are root-relative / JOINT_SCALE_MM.

    kp2d (M,21,2), K (M,3,3), kp_z (M,21), world (M,21,3), root (M,3) mm (the wrist in the camera
    frame, to re-project changed joints): None unless 'keypoints' was asked;
    joints (M,21,3); verts (M,V,3) or None; crops (M,64,64,3) uint8 or None; has_crop (M,) bool.
    """

    joints: np.ndarray
    kp2d: np.ndarray | None = None
    K: np.ndarray | None = None
    kp_z: np.ndarray | None = None
    world: np.ndarray | None = None
    root: np.ndarray | None = None
    verts: np.ndarray | None = None
    crops: np.ndarray | None = None
    has_crop: np.ndarray | None = None
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    @property
    def num_verts(self) -> int | None:
        return None if self.verts is None else int(self.verts.shape[1])

    def subset(self, idx: np.ndarray) -> HandData:
        def pick(a):
            return None if a is None else a[idx]

        return HandData(joints=self.joints[idx], kp2d=pick(self.kp2d), K=pick(self.K), kp_z=pick(self.kp_z),
                        world=pick(self.world), root=pick(self.root), verts=pick(self.verts), crops=pick(self.crops),
                        has_crop=pick(self.has_crop), sources=list(self.sources))


def _read_shard(path: Path, keys: Iterable[str], want_crops: bool, require_detection: bool) -> dict[str, np.ndarray]:
    hint = "delete it or re-make it with `handviz data synth`"
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            missing = sorted(set(keys) - names)
            if missing:
                raise DataError(f"{path}: shard lacks {missing}; {hint}")
            arrays = {k: z[k] for k in keys}
            n = len(arrays["joints"])
            keep = np.ones(n, bool)
            if require_detection:
                if "detected" not in names:
                    raise DataError(f"{path}: shard lacks 'detected'; {hint}")
                keep &= z["detected"].astype(bool)
            if want_crops and "crop" in names:
                arrays["crop"] = z["crop"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable shard ({exc}); {hint}") from exc
    for k, a in arrays.items():
        if len(a) != n:
            raise DataError(f"{path}: '{k}' has {len(a)} rows but 'joints' has {n}; {hint}")
    if "verts" in arrays:
        keep &= np.isfinite(arrays["verts"]).all(axis=(1, 2))
    if "kp2d" in arrays:
        keep &= np.isfinite(arrays["kp2d"]).all(axis=(1, 2))
    keep &= np.isfinite(arrays["joints"]).all(axis=(1, 2))
    return {k: a[keep] for k, a in arrays.items()}


def load_hand_data(
    files: list[Path], parts: Iterable[str], require_detection: bool = True, max_samples: int | None = None
) -> HandData:
    """Read `parts` ('keypoints', 'joints', 'verts', 'crops') of every shard in `files`.

    require_detection drops rows MediaPipe missed (their kp2d is NaN); the mesh autoencoder,
    which only needs ground truth, keeps them.
    """
    parts = set(parts) | {"joints"}
    unknown = parts - set(_PART_KEYS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {sorted(_PART_KEYS)}")
    keys = sorted({k for p in parts for k in _PART_KEYS[p]})
    chunks: list[dict[str, np.ndarray]] = []
    total = 0
    for path in files:
        arrays = _read_shard(path, keys, "crops" in parts, require_detection)
        m = len(arrays["joints"])
        if "crops" in parts:
            arrays["has_crop"] = np.full(m, "crop" in arrays)
        chunks.append(arrays)
        total += m
        if max_samples is not None and total >= max_samples:
            break
    if total == 0:
        where = files[0].parent if files else "?"
        raise DataError(f"{where}: no usable samples (none detected?); make more with `handviz data synth`")
    if "verts" in parts:
        nv = {c["verts"].shape[1] for c in chunks}
        if len(nv) != 1:
            raise DataError(f"{files[0].parent}: shards disagree on the vertex count {sorted(nv)}; "
                            "keep one hand model per folder")
    cat = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0] if k != "crop"}
    joints = cat["joints"].astype(np.float32)
    root = joints[:, :1].copy()
    data = HandData(joints=(joints - root) / JOINT_SCALE_MM, sources=[p.name for p in files[: len(chunks)]])
    if "keypoints" in parts:
        data.kp2d, data.K = cat["kp2d"].astype(np.float32), cat["K"].astype(np.float32)
        data.kp_z, data.world = cat["kp_z"].astype(np.float32), cat["mp_world"].astype(np.float32)
        data.root = root[:, 0].astype(np.float32)
    if "verts" in parts:
        data.verts = ((cat["verts"].astype(np.float32) - root) / JOINT_SCALE_MM).astype(np.float32)
    if "crops" in parts:
        data.has_crop = cat["has_crop"]
        if data.has_crop.any():
            size = next(c["crop"].shape[1:] for c in chunks if "crop" in c)
            data.crops = np.concatenate(
                [c["crop"] if "crop" in c else np.zeros((len(c["joints"]), *size), np.uint8) for c in chunks]
            )
    if max_samples is not None and len(data) > max_samples:
        data = data.subset(np.arange(max_samples))
    return data


def train_val_files(data_dir: str | Path, val_dir: str | Path | None) -> tuple[list[Path], list[Path] | None]:
    """Training shards and validation shards: --val-data when given, else the last shard held out
    (None when there is only one shard: the caller then splits by rows)."""
    files = list_shard_files(data_dir)
    if val_dir is not None:
        return files, list_shard_files(val_dir)
    if len(files) >= 2:
        return files[:-1], files[-1:]
    return files, None


def load_train_val(
    data_dir: str | Path, val_dir: str | Path | None, parts: Iterable[str], require_detection: bool = True,
    max_samples: int | None = None, max_val: int | None = 2000, seed: int = 0,
) -> tuple[HandData, HandData]:
    """(train, val): held-out shards, or the last 10% of a single shard. With max_samples, the
    training shards are read in a seeded random order, so a subset mixes every kind of shard."""
    train_files, val_files = train_val_files(data_dir, val_dir)
    if max_samples is not None:
        train_files = [train_files[i] for i in np.random.default_rng(seed).permutation(len(train_files))]
    train = load_hand_data(train_files, parts, require_detection, max_samples)
    if val_files is None:
        n_val = max(1, len(train) // 10)
        if len(train) < 2:
            raise DataError(f"{data_dir}: need at least 2 samples to hold one out for validation")
        val = train.subset(np.arange(len(train) - n_val, len(train)))
        train = train.subset(np.arange(len(train) - n_val))
    else:
        val = load_hand_data(val_files, parts, require_detection, max_val)
    if max_val is not None and len(val) > max_val:
        val = val.subset(np.arange(max_val))
    return train, val


def build_conditions(kp2d: np.ndarray, K: np.ndarray, kp_z: np.ndarray, world: np.ndarray,
                     observation_error_mm: np.ndarray | None = None) -> np.ndarray:
    """keypoint_condition for a batch that may mix keypoint-only rows (NaN depth/world) with
    MediaPipe rows. kp2d (B,21,2), K (B,3,3), kp_z (B,21), world (B,21,3) -> (B, COND_DIM), or
    (B, COND_DIM + 1) with observation_error_mm (B,)."""
    extra = observation_error_mm is not None
    out = np.empty((len(kp2d), COND_DIM + int(extra)), np.float32)
    z_ok = np.isfinite(kp_z).all(axis=1)
    w_ok = np.isfinite(world).all(axis=(1, 2))
    for zk in (True, False):
        for wk in (True, False):
            m = (z_ok == zk) & (w_ok == wk)
            if m.any():
                out[m] = keypoint_condition(kp2d[m], K[m], kp_z[m] if zk else None, world[m] if wk else None,
                                            observation_error_mm[m] if extra else None)
    return out


def jitter_keypoints(kp2d: np.ndarray, rng: np.random.Generator, prob: float, max_frac: float) -> np.ndarray:
    """Gaussian 2D noise on a random `prob` of the hands, sigma up to max_frac of the hand's size.

    kp2d: (B, 21, 2) px -> (B, 21, 2).
    """
    B = len(kp2d)
    size = (kp2d.max(axis=1) - kp2d.min(axis=1)).max(axis=1)
    sigma = rng.uniform(0, max_frac, B) * size * (rng.random(B) < prob)
    return (kp2d + rng.standard_normal(kp2d.shape) * sigma[:, None, None]).astype(np.float32)


@dataclass
class BatchOrder:
    """Epoch-shuffled, rank-strided batch indices (DistributedSampler semantics, by step).

    Step s of rank r is a pure function of (seed, s, r), so a resumed run sees the batches the
    interrupted one would have seen. Each epoch is one permutation shared by all ranks; rank r
    takes every world-th entry.
    """

    num_samples: int
    batch: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        per_rank = self.num_samples // self.world_size
        self.batch = min(self.batch, per_rank)
        if self.batch < 1:
            raise DataError(f"{self.num_samples} samples cannot feed {self.world_size} ranks")
        self.batches_per_epoch = per_rank // self.batch

    def indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.batches_per_epoch)
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        mine = perm[self.rank::self.world_size]
        return np.sort(mine[k * self.batch:(k + 1) * self.batch])

    def __iter__(self) -> Iterator[np.ndarray]:
        step = 0
        while True:
            yield self.indices(step)
            step += 1


@dataclass
class MixedBatchOrder:
    """Batches with a fixed share of rows from one group (rows MediaPipe labelled on renders, say),
    whatever the groups' sizes: a small set of real MediaPipe errors is not drowned by a large
    keypoint-only one.

    Each group keeps its own BatchOrder (epoch-shuffled, rank-strided), so step s of rank r is
    still a pure function of (seed, s, r) and a resumed run sees the same batches.
    """

    group: np.ndarray  # (M,) bool
    batch: int
    share: float
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise DataError(f"a batch share of {self.share} leaves one group out; choose between 0 and 1")
        self._inside = np.flatnonzero(self.group)
        self._outside = np.flatnonzero(~np.asarray(self.group, bool))
        if len(self._inside) == 0 or len(self._outside) == 0:
            raise DataError(f"cannot mix {len(self._inside)} rows of one kind with {len(self._outside)} of the "
                            "other; the data needs both (MediaPipe-labelled render shards and keypoint-only ones)")
        n_in = min(max(1, round(self.batch * self.share)), self.batch - 1)
        self._a = BatchOrder(len(self._inside), n_in, self.seed, self.rank, self.world_size)
        self._b = BatchOrder(len(self._outside), self.batch - n_in, self.seed + 1, self.rank, self.world_size)

    def indices(self, step: int) -> np.ndarray:
        return np.sort(np.concatenate([self._inside[self._a.indices(step)], self._outside[self._b.indices(step)]]))
