"""Turn a user's FreiHAND or HO3D download into training shards (`handviz data import`).

MediaPipe runs once per photo and its output is stored with the dataset's 3D joints, in the
same shard format as the synthetic engine (see synth.py), so `handviz train` reads both. The
shards are the cache: shard k always holds samples [k * shard_size, (k + 1) * shard_size) of
the split in its published order, and a complete shard holding the expected sample ids is
skipped, so an interrupted import resumes. With fit_mesh, our hand model is fitted to each
sample's joints (handviz.hand.fit) and the fitted mesh becomes the `verts` stage 2 trains on;
a shard imported without it gains the mesh later without running MediaPipe again.

Nothing from MANO is read or written (FreiHAND is opened without its vertices; HO3D has none),
and no image is copied: only MediaPipe's 64x64 crop, like the synthetic shards.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from handviz.data.real_sample import Sample
from handviz.data.shards import read_shard, shard_is_complete, shard_path, write_shard
from handviz.logs import InputError

if TYPE_CHECKING:
    from handviz.hand.kinematics import HandLayer
    from handviz.pipeline.detector import HandDetector

DATASETS = ("freihand", "ho3d")
#: The split each dataset labels with full 3D joints (their evaluation splits hide them, except
#: FreiHAND's since the v2 evaluation release).
TRAINING_SPLIT = {"freihand": "training", "ho3d": "train"}
#: A detection whose keypoints lie further than this many hand radii (RMS, see
#: noise_model.hand_size_px) from the labelled hand found something else: it is not kept.
MAX_DETECTION_OFFSET = 1.0


@dataclass
class ImportConfig:
    shard_size: int = 200
    fit_mesh: bool = False
    #: Rows whose fit misses the labelled joints by more (mean, mm) get NaN verts; training on
    #: meshes skips them, training on joints keeps them.
    max_fit_error_mm: float = 20.0
    fit_iterations: int = 150


def open_dataset(name: str, root: str | os.PathLike[str], split: str | None = None) -> Sequence[Sample]:
    """FreiHAND or HO3D split as a sequence of Samples; InputError when the folder is wrong."""
    from handviz.data.freihand import FreiHandDataset
    from handviz.data.ho3d import HO3DDataset

    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    split = split or TRAINING_SPLIT[name]
    try:
        if name == "freihand":
            return FreiHandDataset(root, split, with_verts=False)  # MANO vertices are never used
        return HO3DDataset(root, split)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from exc


def mirror_sample(rgb: np.ndarray, K: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A left hand as the right hand the models expect: flip the image left-right, x -> -x.

    rgb: (H, W, 3); K: (3, 3); joints: (21, 3) mm. K changes so the mirrored joints project onto
    the flipped image (pixel u -> W - 1 - u, OpenCV's pixel-centre convention).
    """
    W = rgb.shape[1]
    K = np.array(K, dtype=np.float64)
    K[0, 1] = -K[0, 1]
    K[0, 2] = W - 1 - K[0, 2]
    return np.ascontiguousarray(rgb[:, ::-1]), K, np.asarray(joints, np.float64) * np.array([-1.0, 1.0, 1.0])


def _empty_arrays(n: int) -> dict[str, np.ndarray]:
    """Shard arrays for n samples; MediaPipe's fields start as 'not found' (NaN, False)."""
    from handviz.features import CROP_SIZE

    return {
        "kp2d": np.full((n, 21, 2), np.nan, np.float32), "kp_z": np.full((n, 21), np.nan, np.float32),
        "mp_world": np.full((n, 21, 3), np.nan, np.float32), "mp_score": np.zeros(n, np.float32),
        "detected": np.zeros(n, bool), "mp_right": np.zeros(n, bool),
        "rejected": np.zeros(n, bool), "mirrored": np.zeros(n, bool),
        "crop": np.zeros((n, CROP_SIZE, CROP_SIZE, 3), np.uint8),
        "joints": np.zeros((n, 21, 3), np.float32), "K": np.zeros((n, 3, 3), np.float32),
        "kp2d_gt": np.zeros((n, 21, 2), np.float32), "image_size": np.zeros((n, 2), np.int32),
    }


class _Importer:
    """Per-process MediaPipe (and hand layer for fitting), built once: both are slow to start."""

    def __init__(self, cfg: ImportConfig) -> None:
        self.cfg = cfg
        self._detector: HandDetector | None = None
        self._layer: HandLayer | None = None

    @property
    def detector(self) -> HandDetector:
        """Started on first use: adding meshes to labelled shards needs no MediaPipe."""
        if self._detector is None:
            from handviz.pipeline.detector import HandDetector

            self._detector = HandDetector(max_hands=1, static=True, model_complexity=1)
        return self._detector

    def label(self, samples: list[Sample]) -> dict[str, np.ndarray]:
        """MediaPipe outputs, crops and the dataset's truth for each sample, as shard arrays."""
        out = _empty_arrays(len(samples))
        out["sample_id"] = np.array([s.sample_id for s in samples])
        for i, s in enumerate(samples):
            self._label_one(s, out, i)
        return out

    def _label_one(self, s: Sample, out: dict[str, np.ndarray], i: int) -> None:
        """Fill row i of `out`: truth (mirrored in for a left hand), then MediaPipe or the true crop."""
        from handviz.geometry import project
        from handviz.data.noise_model import hand_size_px
        from handviz.features import crop_hand

        if s.joints_mm is None:
            raise InputError(f"{s.image_path}: {s.dataset} {s.split} has no 3D joints for this image; "
                             f"import the labelled split ({TRAINING_SPLIT.get(s.dataset, 'training')}) instead")
        try:
            rgb = s.load_rgb()
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from exc
        K, joints = np.asarray(s.K, np.float64), np.asarray(s.joints_mm, np.float64)
        if s.handedness == "Left":
            rgb, K, joints = mirror_sample(rgb, K, joints)
            out["mirrored"][i] = True
        kp_gt = project(joints, K)
        out["joints"][i], out["K"][i], out["kp2d_gt"][i] = joints, K, kp_gt
        out["image_size"][i] = rgb.shape[1], rgb.shape[0]
        dets = self.detector.detect(rgb)
        d = dets[0] if dets else None
        if d is not None:
            offset = np.linalg.norm(d.keypoints_2d - kp_gt, axis=-1).mean()
            if offset > MAX_DETECTION_OFFSET * hand_size_px(kp_gt):
                out["rejected"][i], d = True, None
        if d is None:  # as in synth.py: the crop around the labelled hand still helps the image encoder
            out["crop"][i] = crop_hand(rgb, kp_gt)
            return
        out["kp2d"][i], out["kp_z"][i], out["mp_world"][i] = d.keypoints_2d, d.keypoints_z, d.world_3d
        out["mp_score"][i], out["detected"][i], out["mp_right"][i] = d.score, True, d.handedness == "Right"
        out["crop"][i] = d.crop

    def add_mesh(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fit our hand to the shard's joints; adds verts (NaN where the fit is poor), fit_error_mm,
        pose, shape and global_rot."""
        from handviz.hand.fit import FitConfig, fit_hand_to_joints
        from handviz.hand.kinematics import HandLayer

        if self._layer is None:
            self._layer = HandLayer()
        joints = arrays["joints"]
        ok = np.isfinite(joints).all(axis=(1, 2))
        n, V = len(joints), self._layer.rest_verts.shape[0]
        mesh = {"verts": np.full((n, V, 3), np.nan, np.float32), "fit_error_mm": np.full(n, np.inf, np.float32),
                "pose": np.zeros((n, 21, 3), np.float32), "shape": np.zeros((n, self._layer.num_shapes), np.float32),
                "global_rot": np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))}
        if ok.any():
            fit = fit_hand_to_joints(joints[ok], self._layer, FitConfig(iterations=self.cfg.fit_iterations))
            for key, value in (("verts", fit.verts), ("fit_error_mm", fit.error_mm), ("pose", fit.angles),
                               ("shape", fit.shape), ("global_rot", fit.global_rot)):
                mesh[key][ok] = value
        mesh["verts"][mesh["fit_error_mm"] > self.cfg.max_fit_error_mm] = np.nan
        return {**arrays, **mesh}


def _existing_state(path: Path, samples: Sequence[Sample], start: int, stop: int) -> str:
    """'missing' (make it), 'labelled' (has MediaPipe's output, no mesh) or 'meshed'."""
    if not shard_is_complete(path):
        return "missing"
    with np.load(path, allow_pickle=False) as z:
        ids = [samples[i].sample_id for i in range(start, stop)]
        if "sample_id" not in z.files or z["sample_id"].tolist() != ids:
            return "missing"  # another split, limit or shard size wrote it: redo
        return "meshed" if "verts" in z.files else "labelled"


_WORKER: dict[str, object] = {}


def _init_worker(samples: Sequence[Sample], cfg: ImportConfig) -> None:
    _WORKER.update(samples=samples, cfg=cfg, importer=None)


def _init_pool_worker(samples: Sequence[Sample], cfg: ImportConfig) -> None:
    """Quiet MediaPipe, one torch thread per process (the processes are the parallelism)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import torch

    torch.set_num_threads(1)
    _init_worker(samples, cfg)


def _make_shard(job: tuple[int, int, int, str, str]) -> tuple[int, dict[str, int]]:
    """Build or complete shard `index` (samples start..stop); returns (samples, counts)."""
    index, start, stop, out_dir, state = job
    samples, cfg = _WORKER["samples"], _WORKER["cfg"]
    if _WORKER["importer"] is None:
        _WORKER["importer"] = _Importer(cfg)
    importer: _Importer = _WORKER["importer"]  # type: ignore[assignment]
    path = shard_path(Path(out_dir), index)
    if state == "labelled":
        arrays = read_shard(path)
        ran_mediapipe = 0
    else:
        arrays = importer.label([samples[i] for i in range(start, stop)])
        ran_mediapipe = stop - start
    if cfg.fit_mesh:
        arrays = importer.add_mesh(arrays)
    write_shard(path, arrays)
    counts = {"mediapipe_runs": ran_mediapipe, "detected": int(arrays["detected"].sum()),
              "rejected": int(arrays["rejected"].sum()), "mirrored": int(arrays["mirrored"].sum())}
    if cfg.fit_mesh:
        counts["fitted"] = stop - start
        counts["poor_fits"] = int((~np.isfinite(arrays["verts"]).all(axis=(1, 2))).sum())
    return stop - start, counts


def import_samples(
    samples: Sequence[Sample], out_dir: str | os.PathLike[str], cfg: ImportConfig | None = None,
    limit: int | None = None, workers: int = 1, progress: bool = True,
) -> dict[str, float]:
    """Write shards of `samples` (the first `limit`) into out_dir, resuming; returns run statistics.

    Counts: samples (written now), skipped_existing, mediapipe_runs, detected, rejected (MediaPipe
    found something away from the labelled hand), mirrored (left hands), fitted, poor_fits.
    """
    cfg = cfg or ImportConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(samples) if limit is None else min(limit, len(samples))
    if n == 0:
        raise InputError(f"nothing to import: the dataset split is empty (or --limit is 0); output folder {out}")
    jobs, skipped = [], 0
    for k in range(-(-n // cfg.shard_size)):
        start, stop = k * cfg.shard_size, min((k + 1) * cfg.shard_size, n)
        state = _existing_state(shard_path(out, k), samples, start, stop)
        if state == "meshed" or (state == "labelled" and not cfg.fit_mesh):
            skipped += stop - start
        else:
            jobs.append((k, start, stop, str(out), state))
    totals: dict[str, float] = {"samples": 0, "skipped_existing": skipped, "mediapipe_runs": 0, "detected": 0,
                                "rejected": 0, "mirrored": 0, "fitted": 0, "poor_fits": 0}
    t0 = time.perf_counter()
    bar = tqdm(total=n - skipped, unit="sample", disable=not progress, desc="import")
    pool = None
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(samples, cfg)
        results = map(_make_shard, jobs)
    else:
        pool = get_context("spawn").Pool(min(workers, len(jobs)), initializer=_init_pool_worker,
                                         initargs=(samples, cfg))
        results = pool.imap_unordered(_make_shard, jobs)
    try:
        for size, counts in results:
            totals["samples"] += size
            for key, value in counts.items():
                totals[key] += value
            bar.update(size)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
        _WORKER.clear()
    totals["seconds"] = time.perf_counter() - t0
    return totals


def register_import(dsub: argparse._SubParsersAction) -> None:
    """Add `import` to `handviz data`'s actions (dispatch to run_import)."""
    p = dsub.add_parser(
        "import", help="turn a FreiHAND or HO3D download into training shards (resumable)",
        description="Run MediaPipe once on every photo of a labelled split and store its output with "
        "the dataset's 3D joints as shards `handviz train --data DIR` reads. Images and MANO data stay "
        "in your download; only 64x64 hand crops are stored.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--freihand", type=Path, metavar="DIR", help="FreiHAND folder (holds training/, evaluation/)")
    src.add_argument("--ho3d", type=Path, metavar="DIR", help="HO3D v2/v3 folder (holds train/, train.txt)")
    p.add_argument("--out", type=Path, required=True, help="output folder (shard_*.npz)")
    p.add_argument("--split", default=None,
                   help="dataset split: FreiHAND training|evaluation (default training), HO3D train (default)")
    p.add_argument("--limit", type=int, default=None, help="import only the first N samples")
    p.add_argument("--fit-mesh", action="store_true",
                   help="fit handviz's hand mesh to each sample's joints and store it, for stage 2 training")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard-size", type=int, default=200)
    p.add_argument("--json", action="store_true", help="print run statistics as JSON")


def run_import(args: argparse.Namespace) -> int:
    """`handviz data import`: open the dataset, import it, print a one-line summary."""
    import json

    name = "freihand" if args.freihand is not None else "ho3d"
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1; got {args.limit}")
    if args.shard_size < 1:
        raise InputError(f"--shard-size must be at least 1; got {args.shard_size}")
    samples = open_dataset(name, args.freihand if name == "freihand" else args.ho3d, args.split)
    cfg = ImportConfig(shard_size=args.shard_size, fit_mesh=args.fit_mesh)
    stats = import_samples(samples, args.out, cfg, limit=args.limit, workers=args.workers)
    if args.json:
        print(json.dumps(stats))
        return 0
    if stats["samples"] == 0:
        print(f"nothing to do: all {int(stats['skipped_existing'])} samples are already in {args.out}")
        return 0
    line = (f"{int(stats['samples'])} samples written to {args.out} "
            f"({int(stats['skipped_existing'])} already there); "
            f"MediaPipe found the hand in {int(stats['detected'])} of them")
    if stats["mediapipe_runs"]:
        line += f" ({int(stats['rejected'])} detections away from the labelled hand dropped)"
    if stats["fitted"]:
        line += f"; mesh fitted to {int(stats['fitted'])} ({int(stats['poor_fits'])} poor fits left without verts)"
    print(line)
    return 0
