"""`handviz eval --checks PATH...`: the no-truth checks (handviz.eval.no_truth) on photos and clips.

Photos get reprojection, mirror consistency and bone proportions; every input is also played as
a short clip (a photo held still, as the app's demo does; a video's first frames), so jitter
shows how much the hand shakes from frame to frame when nothing moves but the sampler's noise
or MediaPipe's tracking (after the temporal model, as in the app, before its display smoothing).
MediaPipe's world landmarks go through the same checks, for comparison.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handviz.eval.no_truth import (
    jitter_mm, mirror_gap_mm, proportion_z_scores, reprojection_error, summarize_checks,
)
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.pipeline.inference import FRAME_SEED
from handviz.pipeline.intrinsics import default_intrinsics
from handviz.pipeline.sources import IMAGE_SUFFIXES
from handviz.temporal import VideoHands

#: The clips' frame rate (a photo held still is played as the app plays the demo).
CLIP_FPS = 30.0
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


def _frames(path: Path, clip_frames: int) -> Iterator[np.ndarray]:
    """RGB frames of a photo (repeated clip_frames times) or a video (its first clip_frames)."""
    import cv2

    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: cannot read this image")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for _ in range(clip_frames):
            yield rgb
        return
    cap = cv2.VideoCapture(str(path))
    try:
        for _ in range(clip_frames):
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders as their photos and videos (sorted); anything else is an error."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    if not out:
        raise ValueError(f"no photos or videos in {', '.join(map(str, paths))}")
    return out


def _hand_rows(estimate: Any, K: np.ndarray, mirrored: Any | None) -> dict[str, Any]:
    row: dict[str, Any] = {"handedness": estimate.handedness}
    kp = np.asarray(estimate.keypoints_2d, np.float64)
    joints = np.asarray(estimate.joints_3d, np.float64)
    world = np.asarray(estimate.mediapipe_world_3d, np.float64)
    row["reprojection_frac"] = reprojection_error(joints, kp, K)["median_frac"]
    from handviz.eval.real_photos import _mesh_joints

    mesh_joints = _mesh_joints(np.asarray(estimate.vertices, np.float64))
    if mesh_joints is not None:
        row["mesh_reprojection_frac"] = reprojection_error(mesh_joints, kp, K)["median_frac"]
    for who, pts in (("cascade", joints), ("mediapipe", world)):
        z = proportion_z_scores(pts)
        row[f"{who}_proportion_abs_z"] = float(np.mean(np.abs(list(z.values()))))
    if mirrored is not None:
        row["cascade_mirror_gap_mm"] = mirror_gap_mm(joints, mirrored.joints_3d)
        row["mediapipe_mirror_gap_mm"] = mirror_gap_mm(world, mirrored.mediapipe_world_3d)
    return row


def _mirror_twin(estimate: Any, mirrored: Sequence[Any], width: int) -> Any | None:
    """The hand in the flipped image whose keypoints, flipped back, lie nearest to estimate's."""
    best, best_d = None, float("inf")
    for m in mirrored:
        kp = np.asarray(m.keypoints_2d, np.float64).copy()
        kp[:, 0] = (width - 1) - kp[:, 0]
        d = float(np.linalg.norm(kp - np.asarray(estimate.keypoints_2d, np.float64), axis=1).mean())
        if d < best_d:
            best, best_d = m, d
    return best


def run_checks(cascade: Any, paths: Sequence[str | Path], n_hypotheses: int = HYPOTHESES_DEFAULT,
               clip_frames: int = 30) -> dict[str, Any]:
    """Every check on every input; returns {"inputs": [...], "overall": medians over hands}.

    The first frame of each input is also mirrored (flipped left-right, the principal point moved
    with it) and run again for mirror consistency. The cascade draws the same noise every frame
    (FRAME_SEED), as the app does.
    """
    from handviz.pipeline.detector import HandDetector

    inputs, hand_rows = [], []
    detector = HandDetector(max_hands=2, static=False)
    still = HandDetector(max_hands=2, static=True)
    try:
        for path in expand_inputs(paths):
            detector.close()
            detector = HandDetector(max_hands=2, static=False)  # fresh tracking per clip
            over_time = VideoHands(mesh_pull=getattr(cascade, "mesh_pull", None))  # as the app
            track: dict[str, list[np.ndarray]] = {}
            track_mp: dict[str, list[np.ndarray]] = {}
            entry: dict[str, Any] = {"input": str(path), "frames": 0, "hands": []}
            for k, rgb in enumerate(_frames(path, clip_frames)):
                h, w = rgb.shape[:2]
                K = default_intrinsics(w, h)
                detections = over_time.smooth(detector.detect(rgb), k / CLIP_FPS)
                estimates = cascade.predict(detections, K, n_hypotheses=n_hypotheses, seed=FRAME_SEED,
                                            bone_prior=False)
                estimates = over_time(estimates, K, k / CLIP_FPS)
                entry["frames"] += 1
                for est in estimates:  # by track: two hands may carry one label (two "Right"s: 205 mm)
                    key = est.handedness if est.track is None else f"{est.handedness} {est.track}"
                    track.setdefault(key, []).append(est.joints_3d)
                    track_mp.setdefault(key, []).append(est.mediapipe_world_3d)
                if k == 0:
                    flipped = np.ascontiguousarray(rgb[:, ::-1])
                    mirrored = cascade.predict(still.detect(flipped), K, n_hypotheses=n_hypotheses, seed=FRAME_SEED)
                    for est in cascade.predict(still.detect(rgb), K, n_hypotheses=n_hypotheses, seed=FRAME_SEED):
                        twin = _mirror_twin(est, mirrored, w)
                        row = _hand_rows(est, K, twin)
                        entry["hands"].append(row)
                        hand_rows.append(row)
            entry["cascade_jitter_mm"] = {h: jitter_mm(np.stack(v)) for h, v in track.items() if len(v) >= 3}
            entry["mediapipe_jitter_mm"] = {h: jitter_mm(np.stack(v)) for h, v in track_mp.items() if len(v) >= 3}
            inputs.append(entry)
    finally:
        detector.close()
        still.close()
    overall = summarize_checks(hand_rows)
    for who in ("cascade", "mediapipe"):
        values = [v for e in inputs for v in e[f"{who}_jitter_mm"].values() if np.isfinite(v)]
        overall[f"median_{who}_jitter_mm"] = float(np.median(values)) if values else None
    return {"n_hypotheses": n_hypotheses, "clip_frames": clip_frames, "overall": overall, "inputs": inputs}
