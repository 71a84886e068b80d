"""Score the hand over time on real videos with 3D truth (`handviz eval --real DIR --videos`).

DIR is a real-photo folder (labels.jsonl, see handviz.data.real_folder) whose videos.txt lists
its videos, one line per video: the image paths of its frames, in order, separated by spaces.
Each video runs as the app runs a camera: MediaPipe tracking (HandDetector(static=False)), the
cascade with the same noise every frame on MediaPipe's outputs smoothed over time, and the
temporal model (handviz.temporal); frames without labels still go through, in order, and are
only left out of the per-frame scores. The
same labelled frames also run as photos (MediaPipe on each frame alone and on its changed copies,
as `handviz predict` does for a photo), so the per-frame PA-MPJPE compares like for like.

Reported per video and overall, for the temporal model, the same video frame by frame (no
temporal model), the photos and MediaPipe's world landmarks (handviz.eval.video_measures):
PA-MPJPE, acceleration error, bone-length variation; and for the two video runs the cloud's 90 %
ball coverage and radius, and how far a rig with fixed bones (the BVH export) lands from the
joints (handviz.hand.motion).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from handviz.data.real_folder import load_real_folder
from handviz.data.real_sample import Sample
from handviz.eval.matching import match_detections
from handviz.eval.video_measures import acceleration_error, bone_length_variation, pa_errors
from handviz.geometry import project, similarity_aligned
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.pipeline.photo_reader import PhotoReader
from handviz.temporal import TemporalConfig, VideoHands
from handviz.types import Detection, HandEstimate

VIDEOS = "videos.txt"
#: Frames per second when the folder does not say (the dev set's cameras: 30).
DEFAULT_FPS = 30.0
#: The runs each video gets, in the report's order.
RUNS = ("temporal", "single_frame", "photos", "mediapipe")


@dataclass
class VideoFrame:
    """One frame of a video: its image, and the labelled hands in it (Samples, label order)."""

    image: Path
    K: np.ndarray
    hands: list[Sample]


def load_videos(root: str | Path) -> list[list[VideoFrame]]:
    """The videos of a real folder, each a list of frames in order (videos.txt, labels.jsonl)."""
    root = Path(root)
    listing = root / VIDEOS
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: missing; --videos needs one line per video listing its frames "
                                "(image paths as in labels.jsonl), in order")
    by_image: dict[Path, list[Sample]] = {}
    for sample in load_real_folder(root):
        by_image.setdefault(Path(sample.image_path), []).append(sample)
    videos = []
    for line_no, line in enumerate(listing.read_text().splitlines(), start=1):
        names = line.split()
        if not names:
            continue
        frames = []
        for name in names:
            hands = by_image.get(root / name)
            if hands is None:
                raise ValueError(f"{listing}:{line_no}: {name} has no line in labels.jsonl")
            frames.append(VideoFrame(root / name, hands[0].K, hands))
        videos.append(frames)
    if not videos:
        raise ValueError(f"{listing}: lists no video")
    return videos


class Detector:  # the part of HandDetector used here (structural)
    def detect(self, rgb: np.ndarray) -> list[Detection]: ...
    def close(self) -> None: ...


def _default_video_detector() -> Detector:
    from handviz.pipeline.detector import HandDetector

    return HandDetector(max_hands=2, static=False)


def _default_photo_detector() -> Detector:
    from handviz.pipeline.detector import HandDetector

    return HandDetector(max_hands=2, static=True)


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{path}: cannot read this image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class _Sequence:
    """One labelled hand through one video: (T, 21, 3) mm per run, NaN where it has none."""

    truth: np.ndarray
    runs: dict[str, np.ndarray]
    hypotheses: dict[str, list[np.ndarray | None]]  # per video run, per frame (N, 21, 3) or None

    @classmethod
    def empty(cls, length: int) -> _Sequence:
        nan = np.full((length, 21, 3), np.nan)
        return cls(nan.copy(), {run: nan.copy() for run in RUNS},
                   {run: [None] * length for run in RUNS[:2]})


def run_video(cascade: Any, frames: Sequence[VideoFrame], detector: Detector, photo_detector: Detector | None,
              temporal: VideoHands, n_hypotheses: int, seed: int, ddim_steps: int, fps: float,
              read: Callable[[Path], np.ndarray] = _read_rgb) -> list[_Sequence]:
    """Every frame of one video in order through the detector, the cascade and the temporal model;
    returns one _Sequence per labelled hand of the first frame's label (label order)."""
    n_hands = max(len(f.hands) for f in frames)
    sequences = [_Sequence.empty(len(frames)) for _ in range(n_hands)]
    followed: list[int | None] = [None] * n_hands  # each labelled hand's track, once matched
    for t, frame in enumerate(frames):
        rgb = read(frame.image)
        K = np.asarray(frame.K, np.float64)
        detections = detector.detect(rgb)
        single = cascade.predict(detections, K.astype(np.float32), n_hypotheses=n_hypotheses,
                                 ddim_steps=ddim_steps, seed=seed) if detections else []
        smoothed = temporal.smooth(detections, t / fps)  # the temporal model's cascade sees these
        over_time = temporal(cascade.predict(smoothed, K.astype(np.float32), n_hypotheses=n_hypotheses,
                                             ddim_steps=ddim_steps, seed=seed, bone_prior=False)
                             if smoothed else [], K, t / fps)
        labelled = [s for s in frame.hands if s.labelled]
        gt_uv = [_projected(s, K) for s in frame.hands]
        matched = match_detections(detections, gt_uv, [s.handedness for s in frame.hands]) if labelled else \
            [None] * len(frame.hands)
        for k, sequence in enumerate(sequences):
            j = matched[k] if k < len(matched) else None
            if j is None and followed[k] is not None:  # no label here: the hand's own track
                j = next((i for i, d in enumerate(detections) if d.track == followed[k]), None)
            if k < len(frame.hands):
                sequence.truth[t] = frame.hands[k].joints_mm
            if j is None or j >= len(single):
                continue
            if detections[j].track is not None:
                followed[k] = detections[j].track
            _keep(sequence, "single_frame", t, single[j])
            _keep(sequence, "temporal", t, over_time[j])
            sequence.runs["mediapipe"][t] = detections[j].world_3d
        if photo_detector is not None and labelled:
            _run_photo(cascade, photo_detector, rgb, K, frame, gt_uv, sequences, t, n_hypotheses, seed, ddim_steps)
    return sequences


def _projected(sample: Sample, K: np.ndarray) -> np.ndarray:
    uv = np.full((21, 2), np.nan)
    vis = sample.visible
    uv[vis] = project(sample.joints_mm[vis], K)
    return uv


def _keep(sequence: _Sequence, run: str, t: int, estimate: HandEstimate) -> None:
    sequence.runs[run][t] = estimate.joints_3d
    sequence.hypotheses[run][t] = np.asarray(estimate.joint_hypotheses, np.float64)


def _run_photo(cascade: Any, detector: Detector, rgb: np.ndarray, K: np.ndarray, frame: VideoFrame,
               gt_uv: list[np.ndarray], sequences: list[_Sequence], t: int, n_hypotheses: int, seed: int,
               ddim_steps: int) -> None:
    """The frame as a photo: MediaPipe alone and on changed copies, then the cascade (as predict)."""
    reader = PhotoReader(detector)
    detections = reader.detect(rgb)
    matched = match_detections(detections, gt_uv, [s.handedness for s in frame.hands])
    picked = [(k, detections[j]) for k, j in enumerate(matched) if j is not None and frame.hands[k].labelled]
    if not picked:
        return
    reader.augment(rgb, [d for _, d in picked])
    estimates = cascade.predict([d for _, d in picked], K.astype(np.float32), n_hypotheses=n_hypotheses,
                                ddim_steps=ddim_steps, seed=seed)
    for (k, _), est in zip(picked, estimates):
        if k < len(sequences):
            sequences[k].runs["photos"][t] = est.joints_3d


def _ball(hypotheses: list[np.ndarray | None], joints: np.ndarray, truth: np.ndarray,
          scored: np.ndarray) -> tuple[list[float], list[float], list[np.ndarray]]:
    """Per scored frame: the share of labelled joints inside the cloud's 90 % ball (hypotheses
    and estimate aligned to the truth by the estimate's similarity, as handviz.types does it
    shape-only), the balls' mean radius (mm), and (J, 2) of each labelled joint's 90 % radius
    and error but the wrist's (for the radii's ranking of the error, as `eval --real` reports)."""
    inside, radius, pairs = [], [], []
    for t in np.where(scored)[0]:
        hyps = hypotheses[t]
        if hyps is None or len(hyps) < 2:
            continue
        vis = np.all(np.isfinite(truth[t]), axis=1)
        est = joints[t]
        r90 = np.quantile(np.linalg.norm(similarity_aligned(hyps, est) - est, axis=-1), 0.9, axis=0)
        aligned = similarity_aligned(est[None][:, vis], truth[t][vis])[0]
        error = np.linalg.norm(aligned - truth[t][vis], axis=-1)
        inside.append(float(np.mean(error <= r90[vis])))
        radius.append(float(r90[1:].mean()))
        not_wrist = np.flatnonzero(vis) != 0
        pairs.append(np.c_[r90[vis][not_wrist], error[not_wrist]])
    return inside, radius, pairs


def _ranking(pairs: list[np.ndarray]) -> tuple[float | None, float | None]:
    """(per-joint Pearson of radius and error, per-frame Spearman of their means) or Nones."""
    if len(pairs) < 3:
        return None, None
    joints = np.concatenate(pairs)
    frames = np.array([p.mean(axis=0) for p in pairs if len(p)])
    return float(pearsonr(joints[:, 0], joints[:, 1])[0]), float(spearmanr(frames[:, 0], frames[:, 1])[0])


def _bvh_error(joints: np.ndarray, fps: float) -> float | None:
    """Mean distance (mm) of a fixed-bone rig fitted to the track's frames to their joints."""
    from handviz.hand.motion import fit_motion

    have = np.all(np.isfinite(joints), axis=(1, 2))
    if have.sum() < 2:
        return None
    motion = fit_motion(joints[have], np.flatnonzero(have) / fps, "Right", fixed_bones=True)  # as BVH export
    return float(np.mean(motion.fit_error_mm))


def summarize(sequences: Sequence[tuple[str, _Sequence]], fps: float, bvh: bool = True) -> dict[str, Any]:
    """The report's numbers from the hands' sequences: per video, and overall (PA-MPJPE: mean over
    the labelled frames every run has; acceleration: mean over triplets; bone-length variation,
    BVH: mean over videos)."""
    per_video, pa, acc, cv, inside, radius, bvh_err = [], {r: [] for r in RUNS}, \
        {r: [0.0, 0] for r in RUNS}, {r: [] for r in RUNS}, {r: [] for r in RUNS[:2]}, \
        {r: [] for r in RUNS[:2]}, {r: [] for r in RUNS[:2]}
    pairs: dict[str, list[np.ndarray]] = {r: [] for r in RUNS[:2]}
    for name, seq in sequences:
        labelled = np.sum(np.all(np.isfinite(seq.truth), axis=2), axis=1) >= 6
        scored = labelled & np.all([np.all(np.isfinite(seq.runs[r]), axis=(1, 2)) for r in RUNS], axis=0)
        row: dict[str, Any] = {"video": name, "frames": len(seq.truth), "labelled_frames": int(labelled.sum()),
                               "scored_frames": int(scored.sum())}
        truth_labelled = np.where(labelled[:, None, None], seq.truth, np.nan)
        for run in RUNS:
            errors = pa_errors(seq.runs[run][scored], seq.truth[scored])
            pa[run].append(errors)
            a, n = acceleration_error(seq.runs[run], truth_labelled)
            if n:
                acc[run][0] += a * n
                acc[run][1] += n
            if run != "photos":  # photos are not a sequence
                cv[run].append(bone_length_variation(seq.runs[run]))
            row[run] = {"pa_mpjpe_mm": _num(np.mean(errors)) if len(errors) else None,
                        "acceleration_error_mm": _num(a) if n else None,
                        "bone_length_cv": _num(cv[run][-1]) if run != "photos" else None}
        for run in RUNS[:2]:
            i, r, p = _ball(seq.hypotheses[run], seq.runs[run], seq.truth, scored)
            inside[run] += i
            radius[run] += r
            pairs[run] += p
            if bvh:
                bvh_err[run].append(_bvh_error(seq.runs[run], fps))
                row[run]["bvh_fixed_bones_mm"] = _num(bvh_err[run][-1])
        per_video.append(row)
    overall: dict[str, Any] = {}
    for run in RUNS:
        errors = np.concatenate(pa[run]) if pa[run] else np.empty(0)
        overall[run] = {
            "pa_mpjpe_mm": _num(errors.mean()) if len(errors) else None,
            "acceleration_error_mm": _num(acc[run][0] / acc[run][1]) if acc[run][1] else None,
            "bone_length_cv": _num(np.nanmean(cv[run])) if cv[run] else None,
        }
    for run in RUNS[:2]:
        overall[run]["ball_coverage_90"] = _num(np.mean(inside[run])) if inside[run] else None
        overall[run]["mean_radius_90_mm"] = _num(np.mean(radius[run])) if radius[run] else None
        pearson, spearman = _ranking(pairs[run])
        overall[run]["radius_error_pearson"] = _num(pearson) if pearson is not None else None
        overall[run]["radius_error_spearman_per_frame"] = _num(spearman) if spearman is not None else None
        values = [v for v in bvh_err[run] if v is not None]
        overall[run]["bvh_fixed_bones_mm"] = _num(np.mean(values)) if values else None
    overall["scored_frames"] = int(sum(len(p) for p in pa["temporal"]))
    overall["acceleration_triplets"] = int(acc["temporal"][1])
    overall["ratios"] = {
        "temporal_to_photos_pa": _ratio(overall["temporal"]["pa_mpjpe_mm"], overall["photos"]["pa_mpjpe_mm"]),
        "single_frame_to_photos_pa": _ratio(overall["single_frame"]["pa_mpjpe_mm"], overall["photos"]["pa_mpjpe_mm"]),
        "temporal_to_mediapipe_acceleration": _ratio(overall["temporal"]["acceleration_error_mm"],
                                                     overall["mediapipe"]["acceleration_error_mm"]),
        "single_frame_to_mediapipe_acceleration": _ratio(overall["single_frame"]["acceleration_error_mm"],
                                                         overall["mediapipe"]["acceleration_error_mm"]),
    }
    return {"overall": overall, "per_video": per_video}


def _num(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 4)


def evaluate_videos(cascade: Any, root: str | Path, n_hypotheses: int = HYPOTHESES_DEFAULT, seed: int = 0,
                    ddim_steps: int = 1, fps: float = DEFAULT_FPS, temporal: TemporalConfig | None = None,
                    detector_factory: Callable[[], Detector] = _default_video_detector,
                    photo_detector_factory: Callable[[], Detector] | None = _default_photo_detector,
                    read: Callable[[Path], np.ndarray] = _read_rgb, bvh: bool = True) -> dict[str, Any]:
    """Every video of the folder as video (temporal model and frame by frame), its labelled frames
    as photos, and MediaPipe's world landmarks; see the module docstring. seed: the cascade's
    noise, the same every frame (as the app's FRAME_SEED), and the cloud's draws."""
    videos = load_videos(root)
    photo_detector = photo_detector_factory() if photo_detector_factory is not None else None
    sequences: list[tuple[str, _Sequence]] = []
    try:
        for frames in videos:
            detector = detector_factory()  # a fresh tracker per video
            try:
                hands = VideoHands(temporal, getattr(cascade, "mesh_pull", None))
                found = run_video(cascade, frames, detector, photo_detector, hands, n_hypotheses, seed, ddim_steps,
                                  fps, read)
            finally:
                detector.close()
            name = frames[0].image.parent.name
            sequences += [(name if len(found) == 1 else f"{name}#{k}", s) for k, s in enumerate(found)]
    finally:
        if photo_detector is not None:
            photo_detector.close()
    report = summarize(sequences, fps, bvh)
    return {"root": str(root), "videos": len(videos), "seed": seed, "n_hypotheses": n_hypotheses,
            "ddim_steps": ddim_steps, "fps": fps, **report}
