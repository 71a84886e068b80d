"""Throughput of the app's own three-thread pipeline (capture -> detect -> infer), with the cascade
and with MediaPipe's 3D only, on the same in-memory clip.

This is the pipeline the app runs live and `handviz record` runs offline (realtime=False: no
pacing, no frame dropped), so detection of one frame overlaps inference of the previous one, as
it does for users. `cascade_bench.bench_pipeline` keeps the one-thread figure (detect, then
predict) beside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from handviz.pipeline.inference import InferenceBackend, InferOptions, mediapipe_backend
from handviz.pipeline.sources import Source
from handviz.pipeline.threads import Pipeline, PipelineOptions

#: Results left out before the clock starts: the model loads and MediaPipe's graphs warm up.
WARMUP_RESULTS = 20


class FrameListSource(Source):
    """Frames from memory, so decoding does not count; ends after the last one."""

    name = "bench clip"

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        super().__init__()
        self._frames = list(frames)
        self._next = 0

    def read(self) -> np.ndarray | None:
        if self._next >= len(self._frames):
            return None
        frame = self._frames[self._next]
        self._next += 1
        return frame

    def close(self) -> None:
        self._next = len(self._frames)


def pipeline_fps(frames: Sequence[np.ndarray], backend_factory: Callable[[], InferenceBackend],
                 hypotheses: int, timeout_s: float = 600.0) -> tuple[float, int]:
    """(frames/s after WARMUP_RESULTS results, results) of Pipeline(realtime=False) over frames."""
    stamps: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def on_result(result) -> None:
        with lock:
            stamps.append(time.perf_counter())
            if result.error:
                errors.append(result.error)

    options = PipelineOptions(infer=InferOptions(n_hypotheses=hypotheses))
    pipe = Pipeline(FrameListSource(frames), on_result, backend_factory=backend_factory, options=options,
                    realtime=False)
    pipe.start()
    finished = pipe.wait(timeout_s)
    pipe.stop()
    if not finished:
        raise RuntimeError(f"the pipeline did not finish {len(frames)} frames in {timeout_s:.0f} s")
    if errors:
        raise RuntimeError(f"the pipeline reported an error: {errors[0]}")
    timed = stamps[WARMUP_RESULTS:]
    if len(timed) < 2:
        raise RuntimeError(f"only {len(stamps)} results from {len(frames)} frames; need more than {WARMUP_RESULTS + 1}")
    return (len(timed) - 1) / (timed[-1] - timed[0]), len(stamps)


def bench_threaded_pipeline(cascade_backend: InferenceBackend, frames: Sequence[np.ndarray],
                            hypotheses: int) -> dict[str, float]:
    """fps of the app's pipeline with the cascade and with MediaPipe's 3D only, and their ratio."""
    clip = list(frames)
    if len(clip) <= WARMUP_RESULTS + 1:
        raise ValueError(f"need more than {WARMUP_RESULTS + 1} frames, got {len(clip)}")
    mp_fps, _ = pipeline_fps(clip, mediapipe_backend, hypotheses)
    full_fps, results = pipeline_fps(clip, lambda: cascade_backend, hypotheses)
    return {"fps": round(full_fps, 2), "mediapipe_only_fps": round(mp_fps, 2), "ratio": round(full_fps / mp_fps, 3),
            "frames": len(clip), "results": results, "warmup_results": WARMUP_RESULTS, "hypotheses": hypotheses}
