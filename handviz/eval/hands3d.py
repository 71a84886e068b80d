"""A small real-data check of 3D accuracy: the cascade vs MediaPipe's own world landmarks.

The images with 3D ground truth in shared/data/hands3d (InterHand2.6M's test photos and RHD's
renders, from mmpose's test data) are too few to tune on, but they show whether the cascade
beats the landmarks it is conditioned on, on hands it was never trained on. They carry research
licences, so the code reads them where they lie and nothing here copies them.

Both loaders convert at the door (see handviz.data.real_sample): millimetres, MediaPipe's joint
order, OpenCV camera frame, one Sample per usable hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from handviz.data.joint_orders import split_two_hands, to_mediapipe
from handviz.data.real_sample import Sample
from handviz.eval import metrics as M
from handviz.geometry import project
from handviz.types import BONES, Detection

INTERHAND_DIR = "interhand2.6m"
RHD_DIR = "rhd"
_IH_PREFIX = "test_interhand2.6m"
#: InterHand's hand_type -> the hands it labels.
_IH_HANDS = {"right": ("Right",), "left": ("Left",), "interacting": ("Right", "Left")}
#: A detection belongs to a labelled hand when its mean 2D keypoint error is below this fraction
#: of the hand's projected box diagonal; a worse one is counted as a miss, not scored.
MATCH_GATE = 0.5
#: Added to the normalised 2D cost of a detection whose handedness disagrees with the label, so
#: that of two detections on one hand the correctly labelled one wins unless it is far worse.
HANDEDNESS_PENALTY = 0.25
#: Detection threshold of the fallback detector (see default_detectors).
FALLBACK_CONFIDENCE = 0.2


# ---------------------------------------------------------------- loaders


def intrinsics(focal: Sequence[float], princpt: Sequence[float]) -> np.ndarray:
    """(fx, fy), (cx, cy) -> K: (3, 3) float64."""
    fx, fy = float(focal[0]), float(focal[1])
    return np.array([[fx, 0.0, float(princpt[0])], [0.0, fy, float(princpt[1])], [0.0, 0.0, 1.0]])


def world_to_camera(points: np.ndarray, campos: np.ndarray, camrot: np.ndarray) -> np.ndarray:
    """InterHand2.6M's convention, X_cam = R (X_world - campos). points: (..., 3) mm -> (..., 3) mm."""
    pts = np.asarray(points, dtype=np.float64)
    return (pts - np.asarray(campos, np.float64)) @ np.asarray(camrot, np.float64).T


def _dataset_dir(root: Path, name: str, marker: str) -> Path:
    """root may be the hands3d folder or the dataset's own folder."""
    root = Path(root)
    for candidate in (root / name, root):
        if (candidate / marker).is_file():
            return candidate
    raise FileNotFoundError(
        f"{root / name / marker}: missing; point at the hands3d folder that holds {name}/ "
        "(see shared/data/README.md)"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read it as JSON ({exc}); restore the file from the dataset") from exc


def _usable(joints: np.ndarray) -> bool:
    """Finite and in front of the camera: anything else cannot be scored or projected."""
    return bool(np.all(np.isfinite(joints)) and np.all(joints[:, 2] > 0))


def load_interhand(root: Path) -> list[Sample]:
    """InterHand2.6M test photos -> one Sample per labelled hand with all 21 joints valid.

    joints_mm: (21, 3) camera frame (world coordinates moved with the image's campos/camrot).
    An "interacting" image gives both hands; "right"/"left" give that hand only.
    """
    folder = _dataset_dir(Path(root), INTERHAND_DIR, f"{_IH_PREFIX}_joint_3d.json")
    cameras = _read_json(folder / f"{_IH_PREFIX}_camera.json")
    joints3d = _read_json(folder / f"{_IH_PREFIX}_joint_3d.json")
    data = _read_json(folder / f"{_IH_PREFIX}_data.json")
    annotations = {a["image_id"]: a for a in data.get("annotations", [])}
    samples = []
    for image in data["images"]:
        capture, cam, frame = str(image["capture"]), str(image["camera"]), str(image["frame_idx"])
        try:
            label = joints3d[capture][frame]
            camera = cameras[capture]
            campos, camrot = camera["campos"][cam], camera["camrot"][cam]
            K = intrinsics(camera["focal"][cam], camera["princpt"][cam])
        except KeyError as exc:
            raise ValueError(f"{folder}: image {image['file_name']} has no joints or camera {exc}; "
                             "the three JSON files must come from one download") from exc
        valid = np.asarray(label["joint_valid"], dtype=float).reshape(42, 1)
        if image["id"] in annotations:
            valid = valid * np.asarray(annotations[image["id"]]["joint_valid"], dtype=float).reshape(42, 1)
        world = split_two_hands(np.asarray(label["world_coord"], np.float64), "interhand")
        hand_valid = split_two_hands(valid, "interhand")
        for hand in _IH_HANDS.get(str(label.get("hand_type", "")).lower(), ()):
            if not np.all(hand_valid[hand] > 0):
                continue
            joints = world_to_camera(world[hand], campos, camrot)
            if not _usable(joints):
                continue
            samples.append(Sample(
                dataset="interhand", split="test", sample_id=f"{Path(image['file_name']).stem}/{hand}",
                image_path=folder / image["file_name"], K=K, joints_mm=joints, handedness=hand,
            ))
    return samples


def load_rhd(root: Path) -> list[Sample]:
    """RHD renders (mmpose's COCO-style test_rhd.json) -> one Sample per annotated hand.

    joint_cam is already in the camera frame in mm; each annotation is one hand in RHD order.
    """
    folder = _dataset_dir(Path(root), RHD_DIR, "test_rhd.json")
    data = _read_json(folder / "test_rhd.json")
    images = {im["id"]: im for im in data["images"]}
    samples = []
    for ann in data["annotations"]:
        image = images.get(ann["image_id"])
        if image is None:
            raise ValueError(f"{folder / 'test_rhd.json'}: annotation {ann['id']} names a missing image")
        hand = str(ann["hand_type"]).capitalize()
        joints = np.asarray(ann["joint_cam"], dtype=np.float64)
        if hand not in ("Left", "Right") or joints.shape != (21, 3):
            continue
        joints = to_mediapipe(joints, "rhd")
        if not _usable(joints):
            continue
        cam = image["cam_param"]
        samples.append(Sample(
            dataset="rhd", split="test", sample_id=f"{Path(image['file_name']).stem}/{hand}",
            image_path=folder / image["file_name"], K=intrinsics(cam["focal"], cam["princpt"]),
            joints_mm=joints, handedness=hand,
        ))
    return samples


def load_hands3d(root: Path) -> list[Sample]:
    """Both datasets under the hands3d folder, InterHand2.6M first."""
    return load_interhand(root) + load_rhd(root)


# ---------------------------------------------------------------- matching detections to labels


def match_detections(detections: Sequence[Detection], gt_uv: Sequence[np.ndarray],
                     handedness: Sequence[str]) -> list[int | None]:
    """For each labelled hand, the index of its detection or None (one detection per hand at most).

    gt_uv: per hand (21, 2) px, the projected ground truth. Cost: mean 2D keypoint distance over
    the hand's projected box diagonal, plus HANDEDNESS_PENALTY when the labels disagree; pairs
    beyond MATCH_GATE are never made. Whole keypoint sets, not wrists alone, keep two
    interacting hands apart.
    """
    if not detections or not gt_uv:
        return [None] * len(gt_uv)
    dist = np.empty((len(gt_uv), len(detections)))
    for i, uv in enumerate(gt_uv):
        diag = max(float(np.linalg.norm(uv.max(axis=0) - uv.min(axis=0))), 1.0)
        for j, det in enumerate(detections):
            dist[i, j] = np.linalg.norm(np.asarray(det.keypoints_2d, np.float64) - uv, axis=1).mean() / diag
    mismatch = np.array([[det.handedness != hand for det in detections] for hand in handedness], dtype=float)
    cost = np.where(dist <= MATCH_GATE, dist + HANDEDNESS_PENALTY * mismatch, 1e6)
    out: list[int | None] = [None] * len(gt_uv)
    for i, j in zip(*linear_sum_assignment(cost)):
        if dist[i, j] <= MATCH_GATE:
            out[i] = int(j)
    return out


# ---------------------------------------------------------------- evaluation


def _finite_or_none(value: float) -> float | None:
    """A measure for the JSON report: NaN/inf (a broken prediction) becomes None, not invalid JSON."""
    value = float(value)
    return value if math.isfinite(value) else None


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, and means over the detected hands; the ratio uses only hands both methods were scored on."""
    detected = [r for r in rows if r["detected"]]
    out: dict[str, Any] = {
        "num_hands": len(rows),
        "num_detected": len(detected),
        "num_missed": len(rows) - len(detected),
        "num_handedness_wrong": sum(1 for r in detected if not r["handedness_agrees"]),
        "num_fallback_detections": sum(1 for r in detected if r.get("fallback_detector")),
    }
    for key in ("keypoint_error_px", "mediapipe_pa_mpjpe_mm", "mediapipe_mpjpe_mm", "cascade_pa_mpjpe_mm",
                "cascade_mpjpe_mm", "cascade_best_of_n_pa_mpjpe_mm", "cascade_root_error_mm"):
        out[key] = _mean(detected, key)
    both = [r for r in detected if r.get("cascade_pa_mpjpe_mm") is not None
            and r.get("mediapipe_pa_mpjpe_mm") is not None]
    ratio = None
    if both:
        mp = float(np.mean([r["mediapipe_pa_mpjpe_mm"] for r in both]))
        ratio = float(np.mean([r["cascade_pa_mpjpe_mm"] for r in both])) / mp if mp > 0 else None
    out["ratio_cascade_to_mediapipe"] = ratio
    return out


def _score_hand(sample: Sample, gt_uv: np.ndarray, det: Detection | None, est: Any) -> dict[str, Any]:
    """One labelled hand's row: what MediaPipe and (when given) the cascade got, in mm."""
    row: dict[str, Any] = {"dataset": sample.dataset, "sample_id": sample.sample_id,
                           "handedness": sample.handedness, "detected": det is not None}
    if det is None:
        return row
    gt = np.asarray(sample.joints_mm, np.float64)
    world = np.asarray(det.world_3d, np.float64)
    row["handedness_agrees"] = det.handedness == sample.handedness
    row["keypoint_error_px"] = _finite_or_none(
        np.linalg.norm(np.asarray(det.keypoints_2d, np.float64) - gt_uv, axis=1).mean())
    if np.all(np.isfinite(world)):
        row["mediapipe_pa_mpjpe_mm"] = _finite_or_none(M.pa_mpjpe(world, gt)[0])
        row["mediapipe_mpjpe_mm"] = _finite_or_none(M.mpjpe(world, gt)[0])
    if est is not None:
        joints = np.asarray(est.joints_3d, np.float64)
        hyps = np.asarray(est.joint_hypotheses, np.float64)
        row["cascade_pa_mpjpe_mm"] = _finite_or_none(M.pa_mpjpe(joints, gt)[0])
        row["cascade_mpjpe_mm"] = _finite_or_none(M.mpjpe(joints, gt)[0])
        row["cascade_best_of_n_pa_mpjpe_mm"] = _finite_or_none(M.best_of_n(hyps[None], gt[None])[0])
        row["cascade_root_error_mm"] = _finite_or_none(np.linalg.norm(joints[0] - gt[0]))
    return row


def default_detectors() -> list[Any]:
    """MediaPipe as the app runs it, then a lighter, more permissive pass for hands the first misses.

    On InterHand's dim studio photos the full model finds few hands; the light model at a low
    threshold finds some more. Both the cascade and MediaPipe's landmarks are scored on whichever
    detection is used, so the comparison stays like for like.
    """
    from handviz.pipeline.detector import HandDetector

    return [HandDetector(max_hands=2, static=True),
            HandDetector(max_hands=2, static=True, model_complexity=0, min_confidence=FALLBACK_CONFIDENCE)]


def _detect_and_match(detectors: Sequence[Any], rgb: np.ndarray, gt_uv: list[np.ndarray],
                      hands: list[str]) -> tuple[list[Detection], list[int | None], int]:
    """The first detector that matches every labelled hand, else the one that matches most.

    One detector's output per image: mixing two could give one physical hand twice.
    Returns (detections, matched index per hand, index of the detector used).
    """
    best: tuple[list[Detection], list[int | None], int] = ([], [None] * len(gt_uv), 0)
    best_count = -1
    for k, detector in enumerate(detectors):
        detections = detector.detect(rgb)
        matched = match_detections(detections, gt_uv, hands)
        count = sum(j is not None for j in matched)
        if count > best_count:
            best, best_count = (detections, matched, k), count
        if count == len(gt_uv):
            break
    return best


def evaluate_hands3d(cascade: Any, root: Path, n_hypotheses: int = 32, seed: int = 0, ddim_steps: int = 1,
                     detectors: Sequence[Any] | None = None) -> dict[str, Any]:
    """Score the cascade and MediaPipe's world landmarks on every labelled hand under root (mm).

    cascade: a handviz.cascade.Cascade, or None to score MediaPipe alone. detectors: objects with
    detect(rgb) -> list[Detection], tried in turn per image (default_detectors() when None; those
    are closed at the end). Each labelled hand takes its detection by match_detections, and the
    cascade runs on those with `seed`, so reruns give the same numbers. PA-MPJPE aligns each
    prediction to the truth with a similarity, so MediaPipe's world frame (origin near the
    hand's centre) is no handicap.

    Returns a JSON-ready dict: settings, "overall" and "per_dataset" summaries (counts of hands,
    detections, misses, fallback detections and wrong handedness; mean keypoint_error_px,
    mediapipe_/cascade_ pa_mpjpe_mm and mpjpe_mm (root-relative), cascade_best_of_n_pa_mpjpe_mm,
    cascade_root_error_mm (absolute wrist position), ratio_cascade_to_mediapipe) and
    "per_sample" rows. Measures that were not taken are None.
    """
    if not 1 <= n_hypotheses <= 256:
        raise ValueError(f"n_hypotheses must be in 1..256, got {n_hypotheses}")
    samples = load_hands3d(root)
    by_image: dict[Path, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(sample.image_path, []).append(sample)
    own_detectors = detectors is None
    chain = default_detectors() if detectors is None else list(detectors)
    if not chain:
        raise ValueError("detectors is empty; pass None for MediaPipe's default pair")
    rows: list[dict[str, Any]] = []
    try:
        for group in by_image.values():
            K = group[0].K
            gt_uv = [project(s.joints_mm, K) for s in group]
            detections, matched, used = _detect_and_match(chain, group[0].load_rgb(), gt_uv,
                                                          [s.handedness for s in group])
            picked = [detections[j] for j in matched if j is not None]
            estimates: list[Any] = []
            if cascade is not None and picked:
                estimates = list(cascade.predict(picked, np.asarray(K, np.float32), n_hypotheses=n_hypotheses,
                                                 ddim_steps=ddim_steps, seed=seed))
            next_estimate = iter(estimates)
            for sample, uv, j in zip(group, gt_uv, matched):
                det = None if j is None else detections[j]
                est = next(next_estimate, None) if det is not None else None
                row = _score_hand(sample, uv, det, est)
                if det is not None:
                    row["fallback_detector"] = used > 0
                rows.append(row)
    finally:
        if own_detectors:
            for detector in chain:
                detector.close()
    datasets = sorted({r["dataset"] for r in rows})
    return {
        "root": str(root),
        "seed": seed,
        "n_hypotheses": n_hypotheses,
        "ddim_steps": ddim_steps,
        "cascade": cascade is not None,
        "overall": _summary(rows),
        "per_dataset": {name: _summary([r for r in rows if r["dataset"] == name]) for name in datasets},
        "per_sample": rows,
    }


# ---------------------------------------------------------------- picture


_FINGER_COLOURS = ((255, 80, 80), (255, 200, 0), (60, 220, 60), (0, 190, 255), (200, 90, 255))  # RGB


def draw_ground_truth(samples: Sequence[Sample], tile: int = 320, margin: float = 0.3) -> np.ndarray:
    """Each image once, cropped around its labelled hands, their projected joints drawn, in a row.

    margin: extra box size per side, as a fraction of the hands' box. Returns
    (tile, tile * n_images, 3) uint8 RGB. The check that the loaders got joint order, axes and
    camera right: the skeletons must sit on the hands, thumb (red) on the thumb.
    """
    import cv2

    by_image: dict[Path, list[Sample]] = {}
    for sample in samples:
        by_image.setdefault(sample.image_path, []).append(sample)
    tiles = []
    for group in by_image.values():
        rgb = group[0].load_rgb()
        uvs = [project(s.joints_mm, s.K) for s in group]
        pts = np.concatenate(uvs)
        pad = margin * (pts.max(axis=0) - pts.min(axis=0)).max()
        x0, y0 = np.maximum(np.floor(pts.min(axis=0) - pad), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(pts.max(axis=0) + pad), [rgb.shape[1], rgb.shape[0]]).astype(int)
        scale = tile / max(x1 - x0, y1 - y0, 1)
        view = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        view = np.ascontiguousarray(view[:tile, :tile])
        for sample, uv in zip(group, uvs):
            px = np.round((uv - [x0, y0]) * scale).astype(int)
            for parent, child in BONES:
                colour = _FINGER_COLOURS[(child - 1) // 4]
                cv2.line(view, tuple(map(int, px[parent])), tuple(map(int, px[child])), colour, 2, cv2.LINE_AA)
            for k, (x, y) in enumerate(px):
                cv2.circle(view, (int(x), int(y)), 4 if k == 0 else 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.putText(view, sample.handedness[0], (int(px[0, 0]) + 6, int(px[0, 1]) + 6),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(view, group[0].image_path.stem, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1,
                    cv2.LINE_AA)
        canvas = np.zeros((tile, tile, 3), np.uint8)
        canvas[: view.shape[0], : view.shape[1]] = view
        tiles.append(canvas)
    if not tiles:
        raise ValueError("no samples to draw")
    return np.concatenate(tiles, axis=1)
