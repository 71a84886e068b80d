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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handviz.data.joint_orders import split_two_hands, to_mediapipe
from handviz.data.real_sample import Sample
from handviz.geometry import project
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.types import BONES

INTERHAND_DIR = "interhand2.6m"
RHD_DIR = "rhd"
_IH_PREFIX = "test_interhand2.6m"
#: InterHand's hand_type -> the hands it labels.
_IH_HANDS = {"right": ("Right",), "left": ("Left",), "interacting": ("Right", "Left")}


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


# ---------------------------------------------------------------- evaluation


def evaluate_hands3d(cascade: Any, root: Path, n_hypotheses: int = HYPOTHESES_DEFAULT, seed: int = 0,
                     ddim_steps: int = 1, detectors: Sequence[Any] | None = None) -> dict[str, Any]:
    """handviz.eval.real_photos.evaluate_real_samples on both datasets under the hands3d folder."""
    from handviz.eval.real_photos import evaluate_real_samples

    return evaluate_real_samples(cascade, load_hands3d(root), str(root), n_hypotheses=n_hypotheses, seed=seed,
                                 ddim_steps=ddim_steps, detectors=detectors)


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
