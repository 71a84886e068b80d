"""What the inference worker runs: a backend wrapping the cascade, or MediaPipe's own 3D.

The worker only sees an `InferFn`, so the threading can be exercised without torch, and the app
(which must not import torch) receives the cascade through a factory built in commands/app.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from handviz.features import solve_root_translation
from handviz.limits import (
    DDIM_STEPS_DEFAULT,
    DDIM_STEPS_MAX,
    DDIM_STEPS_MIN,
    HYPOTHESES_DEFAULT,
    HYPOTHESES_MAX,
    HYPOTHESES_MIN,
    check_in_range,
)
from handviz.types import Detection, Frame, HandEstimate


@dataclass(frozen=True)
class InferOptions:
    """Knobs the user can turn while the pipeline runs."""

    n_hypotheses: int = HYPOTHESES_DEFAULT
    ddim_steps: int = DDIM_STEPS_DEFAULT
    #: Draw each hand's bones toward an adult's proportions (`Cascade.predict`'s bone_prior); the
    #: worker turns it off while a temporal model learns the person's skeleton instead.
    bone_prior: bool = True

    def __post_init__(self) -> None:
        check_in_range("n_hypotheses", self.n_hypotheses, HYPOTHESES_MIN, HYPOTHESES_MAX)
        check_in_range("ddim_steps", self.ddim_steps, DDIM_STEPS_MIN, DDIM_STEPS_MAX)


#: The noise seed of every live frame. The same draws each frame (common random numbers) make the
#: estimate a smooth function of the input: on still clips of 12 real photos the unsmoothed jitter
#: fell from 5.7 to 2.5 mm (MediaPipe's own 4.6 mm), the mirror gap from 3.1 to 2.7 mm, and the
#: same video gives the same hands in the app, in `record` and in `predict` (whose default seed is 0).
FRAME_SEED = 0

#: infer(frame, detections, K (3, 3), options) -> one HandEstimate per detection it could estimate.
InferFn = Callable[[Frame, list[Detection], np.ndarray, InferOptions], list[HandEstimate]]


@dataclass
class InferenceBackend:
    """An InferFn plus what the views need to know about it."""

    infer: InferFn
    name: str  # shown in the status bar, e.g. "cascade" or "MediaPipe 3D only"
    device: str  # "cpu", "cuda" or "-" when no network runs
    faces: np.ndarray | None = None  # (F, 3) int32 triangles of `HandEstimate.vertices`, None: no mesh
    fingerprint: str | None = None  # which weights (io.session_meta.weights_fingerprint); None: no model
    #: A fresh temporal model for one feed (handviz.temporal.VideoHands: `smooth(detections, t)`
    #: before infer, then called with the frame's hands, K and time), or None when frames stand alone.
    temporal: Callable[[], Any] | None = None


class CascadeLike(Protocol):
    """The part of handviz.cascade.Cascade the worker uses (kept structural: no torch import here)."""

    device: str
    faces: np.ndarray
    mesh_pull: np.ndarray | None  # (V, 21): moves the mesh with its joints (handviz.temporal)

    def predict(self, detections: list[Detection], K: np.ndarray, n_hypotheses: int = HYPOTHESES_DEFAULT,
                ddim_steps: int = 1, seed: int | None = None, bone_prior: bool = True) -> list[HandEstimate]: ...


def cascade_backend(cascade: CascadeLike, fingerprint: str | None = None) -> InferenceBackend:
    """Wrap a loaded cascade; the worker calls it once per frame that has hands. fingerprint names
    its weights in the sessions it records. Its hands are followed over time (handviz.temporal)."""
    from handviz.temporal import VideoHands

    def infer(frame: Frame, detections: list[Detection], K: np.ndarray, options: InferOptions) -> list[HandEstimate]:
        if not detections:
            return []
        return cascade.predict(detections, K, n_hypotheses=options.n_hypotheses, ddim_steps=options.ddim_steps,
                               seed=FRAME_SEED, bone_prior=options.bone_prior)

    def temporal() -> VideoHands:
        return VideoHands(mesh_pull=getattr(cascade, "mesh_pull", None))

    return InferenceBackend(infer=infer, name="cascade", device=str(cascade.device),
                            faces=np.asarray(cascade.faces, dtype=np.int32), fingerprint=fingerprint,
                            temporal=temporal)


def mediapipe_estimate(detection: Detection, K: np.ndarray) -> HandEstimate | None:
    """MediaPipe's world landmarks placed in the camera frame (root solved from 2D + K).

    One 'hypothesis', zero spread, no mesh: what the app can show honestly without weights.
    None when MediaPipe gave no world landmarks.
    """
    world = np.asarray(detection.world_3d, dtype=np.float32)
    if not np.all(np.isfinite(world)):
        return None
    rel = world - world[:1]
    joints = (rel + solve_root_translation(rel, detection.keypoints_2d, K)).astype(np.float32)
    return HandEstimate(
        handedness=detection.handedness,
        score=detection.score,
        keypoints_2d=np.asarray(detection.keypoints_2d, np.float32),
        joints_3d=joints,
        joint_hypotheses=joints[None].copy(),
        joint_spread=np.zeros(len(joints), np.float32),
        vertices=np.zeros((0, 3), np.float32),
        mediapipe_world_3d=world,
        track=detection.track,
    )


def mediapipe_backend() -> InferenceBackend:
    """The fallback used when the cascade cannot be loaded (no weights yet, damaged file)."""

    def infer(frame: Frame, detections: list[Detection], K: np.ndarray, options: InferOptions) -> list[HandEstimate]:
        estimates = (mediapipe_estimate(d, K) for d in detections)
        return [e for e in estimates if e is not None]

    return InferenceBackend(infer=infer, name="MediaPipe 3D only", device="-", faces=None)


class CachedBackendFactory:
    """Load the backend once, whichever pipeline asks first (the app makes a new pipeline per
    source). A failure is kept and re-raised, so switching sources does not retry a slow load
    that cannot work."""

    def __init__(self, factory: Callable[[], InferenceBackend]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._backend: InferenceBackend | None = None
        self._error: Exception | None = None

    def __call__(self) -> InferenceBackend:
        with self._lock:
            if self._backend is None and self._error is None:
                try:
                    self._backend = self._factory()
                except Exception as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            assert self._backend is not None
            return self._backend
