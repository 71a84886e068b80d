"""Fit the sparse, non-negative joint regressor (21, V) of the hand asset. Run once, offline.

    python packaging/fit_joint_regressor.py [--samples 800] [--seed 0]

Why: networks that predict a mesh need joints *from the mesh* (regressor @ verts), the way MANO
and FreiHAND do it. Each row uses a few dozen vertices around its joint (only vertices skinned to
the joint's two segments, or to the distal segment for tips), holds non-negative weights summing
to 1 (so it commutes with rotations and translations), and is fitted by NNLS on posed and shaped
meshes from the pose prior. Writes assets/hand/joint_regressor.npz (key "regressor") and prints
the mean error on fresh samples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handviz.hand.asset import REGRESSOR_FILENAME, HandAsset, load_hand_asset  # noqa: E402
from handviz.hand.kinematics import HandLayer  # noqa: E402
from handviz.hand.pose_prior import sample_poses, sample_shapes  # noqa: E402
from handviz.types import JOINT_PARENTS, NUM_JOINTS  # noqa: E402

CANDIDATES = 40  # vertices per joint
SUM_TO_ONE_WEIGHT = 1e3
# Ridge on the weights (data term averaged over rows): spreads each row over a few dozen
# vertices, so a noisy predicted mesh gives steady joints, for ~0.2 mm more error on clean ones.
RIDGE = 4.0


def posed_samples(layer: HandLayer, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, V, 3) vertices and (n, 21, 3) joints of prior poses and shapes, in mm."""
    rng = np.random.default_rng(seed)
    angles = torch.as_tensor(sample_poses(n, rng), dtype=torch.float64)
    shapes = torch.as_tensor(sample_shapes(n, rng, layer.num_shapes), dtype=torch.float64)
    verts, joints = [], []
    with torch.no_grad():
        for i in range(0, n, 200):
            out = layer(angles[i : i + 200], shapes[i : i + 200])
            verts.append(out.vertices.numpy())
            joints.append(out.joints.numpy())
    return np.concatenate(verts), np.concatenate(joints)


def candidate_vertices(asset: HandAsset, joint: int) -> np.ndarray:
    """Indices of the vertices nearest the rest joint among those skinned to its segments."""
    weights = asset.skin_weights
    parent = JOINT_PARENTS[joint]
    if parent < 0:  # the wrist: only the rigid palm, which the thumb and fingers never drag
        pool = np.flatnonzero(weights[:, joint] > 0.99)
    else:
        pool = np.flatnonzero(weights[:, joint] + weights[:, parent] > 0.5)
    dist = np.linalg.norm(asset.vertices[pool] - asset.rest_joints[joint], axis=1)
    return pool[np.argsort(dist)[:CANDIDATES]]


def fit_regressor(asset: HandAsset, verts: np.ndarray, joints: np.ndarray) -> np.ndarray:
    regressor = np.zeros((NUM_JOINTS, asset.num_vertices))
    for j in range(NUM_JOINTS):
        cand = candidate_vertices(asset, j)
        A = verts[:, cand, :].transpose(0, 2, 1).reshape(-1, len(cand))  # (n * 3, K)
        b = joints[:, j, :].reshape(-1)
        scale = 1.0 / np.sqrt(len(b))
        K = len(cand)
        A = np.vstack([A * scale, np.full((1, K), SUM_TO_ONE_WEIGHT), np.sqrt(RIDGE) * np.eye(K)])
        b = np.concatenate([b * scale, [SUM_TO_ONE_WEIGHT], np.zeros(K)])
        w, _ = nnls(A, b, maxiter=50 * len(cand))
        regressor[j, cand] = w / w.sum()
    return regressor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    asset = load_hand_asset()
    layer = HandLayer(asset, dtype=torch.float64)
    verts, joints = posed_samples(layer, args.samples, args.seed)
    regressor = fit_regressor(asset, verts, joints)

    test_verts, test_joints = posed_samples(layer, 400, args.seed + 1)
    err = np.linalg.norm(np.einsum("jv,nvc->njc", regressor, test_verts) - test_joints, axis=-1)
    print(f"held-out error: mean {err.mean():.2f} mm, worst joint {err.mean(0).max():.2f} mm, max {err.max():.2f} mm")
    print(f"per joint (mm): {err.mean(0).round(1).tolist()}")
    print(f"vertices per row (weight > 1e-3): {np.count_nonzero(regressor > 1e-3, axis=1).tolist()}")

    out = asset.path.parent / REGRESSOR_FILENAME
    np.savez_compressed(out, regressor=regressor.astype(np.float32))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
