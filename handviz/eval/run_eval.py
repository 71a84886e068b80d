"""`handviz eval --synthetic N`: score the cascade on a fresh render->MediaPipe test set.

The test set is drawn with a seed stream that training never uses, rendered, and labelled by
MediaPipe exactly like training data; only samples MediaPipe detects as the right hand are
scored (the app would mirror the others). MediaPipe's own world landmarks are scored on the
same samples, so the comparison is like for like.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from handviz.eval import metrics as M
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.types import Detection

#: Separates test seeds from training shards' (seed, shard index) streams.
TEST_STREAM = 7_777_777


def make_synthetic_test_set(n: int, seed: int) -> dict[str, np.ndarray]:
    """n fresh render-mode samples (all fields of a shard), from a seed stream training never uses."""
    from handviz.data.synth import SynthConfig, _RenderLabeller, sample_scenes

    cfg = SynthConfig()
    rng = np.random.default_rng([seed, TEST_STREAM])
    scene = sample_scenes(n, rng, cfg)
    return _RenderLabeller(cfg).label(scene, rng)


def detections_from_arrays(d: dict[str, np.ndarray], idx: np.ndarray) -> list[Detection]:
    return [Detection(keypoints_2d=d["kp2d"][i], world_3d=d["mp_world"][i], handedness="Right",
                      score=float(d["mp_score"][i]), keypoints_z=d["kp_z"][i], crop=d["crop"][i])
            for i in idx]


def score_predictions(joints: np.ndarray, hyps: np.ndarray, verts: np.ndarray,
                      gt_joints: np.ndarray, gt_verts: np.ndarray) -> dict[str, float]:
    """All the synthetic metrics for (B, 21, 3) joints, (B, N, 21, 3) hypotheses, (B, V, 3) verts (mm)."""
    pa = M.pa_mpjpe(joints, gt_joints)
    rr = M.mpjpe(joints, gt_joints)
    rel_h = hyps - hyps[:, :, :1]  # wrist-relative, as the cloud is
    rel_g = gt_joints - gt_joints[:, :1]
    spread = M.spread(rel_h).mean(axis=1)
    calib = M.calibration(rel_h, rel_g)
    return {
        "pa_mpjpe_mm": float(pa.mean()),
        "pa_mpvpe_mm": float(M.pa_mpvpe(verts, gt_verts).mean()),
        "mpjpe_mm": float(rr.mean()),
        "f5": float(M.f_score(verts, gt_verts, 5.0).mean()),
        "f15": float(M.f_score(verts, gt_verts, 15.0).mean()),
        "best_of_n_pa_mpjpe_mm": float(M.best_of_n(hyps, gt_joints).mean()),
        "best_of_n_mpjpe_mm": float(M.best_of_n(hyps, gt_joints, metric="mpjpe").mean()),
        # The spread is of root-relative joints, so it should predict the root-relative error.
        "spread_error_spearman": M.spearman(spread, rr),
        "spread_pa_error_spearman": M.spearman(spread, pa),
        "mean_spread_mm": float(spread.mean()),
        "coverage_2x": calib["coverage_2x"],
        "interval_coverage_90": calib["interval_coverage_90"],
    }


def evaluate_synthetic(cascade, n: int, seed: int, n_hypotheses: int = HYPOTHESES_DEFAULT, ddim_steps: int = 1,
                       data: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Score the cascade with and without image features (when its crop encoder was trained),
    and MediaPipe's world landmarks."""
    d = data if data is not None else make_synthetic_test_set(n, seed)
    idx = np.flatnonzero(d["detected"] & d["mp_right"])
    report: dict[str, Any] = {"n": int(len(d["detected"])), "scored": int(len(idx)),
                              "detection_rate": float(d["detected"].mean()),
                              "hypotheses": n_hypotheses, "ddim_steps": ddim_steps}
    if len(idx) == 0:
        raise RuntimeError("MediaPipe detected no right hand in the test renders; nothing to score")
    dets = detections_from_arrays(d, idx)
    modes = {"with_image": True, "keypoints_only": False}
    if not cascade.has_image_features:
        del modes["with_image"]
    order = sorted(modes, key=lambda m: modes[m] != cascade.use_image_default)  # shipped default first
    for mode in order:
        est = [cascade.predict([det], d["K"][i], n_hypotheses=n_hypotheses, ddim_steps=ddim_steps,
                               use_image=modes[mode], seed=seed * 100_003 + int(i))[0]
               for det, i in zip(dets, idx)]
        report[mode] = score_predictions(
            np.stack([e.joints_3d for e in est]), np.stack([e.joint_hypotheses for e in est]),
            np.stack([e.vertices for e in est]), d["joints"][idx], d["verts"][idx])
    world = d["mp_world"][idx]
    report["mediapipe_world"] = {"pa_mpjpe_mm": float(M.pa_mpjpe(world, d["joints"][idx]).mean()),
                                 "mpjpe_mm": float(M.mpjpe(world, d["joints"][idx]).mean())}
    report["default"] = order[0]
    return report
