"""Cascade latency per hand at several hypothesis counts, and detect+cascade throughput against
MediaPipe alone on the same bundled clip (so the ratio compares like with like)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from handviz.limits import HYPOTHESES_DEFAULT, HYPOTHESES_MAX_LIVE


def _stats_ms(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {"median": round(float(np.median(a)), 3), "p90": round(float(np.percentile(a, 90)), 3)}


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def demo_frames(n_frames: int) -> list[np.ndarray]:
    """The bundled demo clip (assets/demo photos as a clip), first n_frames frames."""
    from handviz.pipeline.sources import demo_source

    frames: list[np.ndarray] = []
    with demo_source() as src:
        while len(frames) < n_frames:
            img = src.read()
            if img is None:
                break
            frames.append(img)
    if not frames:
        raise RuntimeError("the bundled demo clip gave no frames (assets/demo missing?)")
    return frames


def bench_cascade(cascade, hypotheses=(1, 8, HYPOTHESES_DEFAULT, HYPOTHESES_MAX_LIVE), repeats: int = 100) -> dict[str, Any]:
    """Median/p90 ms of Cascade.predict for one hand found in the first demo frame."""
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.intrinsics import default_intrinsics

    frames = demo_frames(60)
    with HandDetector(max_hands=1, static=True) as det:
        for img in frames:
            dets = det.detect(img)
            if dets:
                break
    if not dets:
        raise RuntimeError("MediaPipe found no hand in the demo clip")
    K = default_intrinsics(img.shape[1], img.shape[0])
    out = {}
    for n in hypotheses:
        out[str(n)] = _stats_ms(time_calls(lambda: cascade.predict(dets[:1], K, n_hypotheses=n), repeats))
    return out


def bench_pipeline(cascade, n_frames: int = 150, hypotheses: int = HYPOTHESES_DEFAULT) -> dict[str, float]:
    """Frames/s of MediaPipe alone, then MediaPipe + cascade, over the same clip frames."""
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.intrinsics import default_intrinsics

    frames = demo_frames(n_frames)
    K = {img.shape[:2]: default_intrinsics(img.shape[1], img.shape[0]) for img in frames}

    def run(with_cascade: bool) -> tuple[float, int]:
        hands = 0
        with HandDetector(max_hands=2, static=False) as det:
            det.detect(frames[0])
            t0 = time.perf_counter()
            for img in frames:
                dets = det.detect(img)
                if with_cascade:
                    hands += len(cascade.predict(dets, K[img.shape[:2]], n_hypotheses=hypotheses))
            return len(frames) / (time.perf_counter() - t0), hands

    mp_fps, _ = run(False)
    full_fps, hands = run(True)
    return {"fps": round(full_fps, 2), "mediapipe_only_fps": round(mp_fps, 2),
            "ratio": round(full_fps / mp_fps, 3), "frames": len(frames), "hands": hands,
            "hypotheses": hypotheses}
