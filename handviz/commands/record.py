"""`handviz record INPUT --out SESSION`: run the pipeline headless over a video, folder or camera
and keep everything in a session folder (replay it with `handviz replay`, export meshes with
`handviz export`). It drives the same SessionController as the app, without real-time pacing:
nothing is dropped, the pipeline waits for the model and the disk. Frames of a file or the demo
are still timed by the source's own clock, as the app plays them (frame k of the 30 fps demo at
k/30 s: timing.SOURCE_TIME), so the session, its replay and its exports keep the clip's speed."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from handviz.limits import HYPOTHESES_DEFAULT, HYPOTHESES_MAX, HYPOTHESES_MIN
from handviz.logs import InputError, report_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="run the pipeline over INPUT (no window) into a session folder",
        description="Detect hands (MediaPipe), estimate 3D joints and mesh (the cascade) for every "
        "frame of INPUT and record frames and results into a session folder. Ctrl+C stops a "
        "camera recording and keeps what was recorded.")
    p.add_argument("input", metavar="INPUT", help="video file, image folder, single image, camera index or 'demo'")
    p.add_argument("--out", type=Path, required=True, metavar="SESSION", help="new session folder")
    p.add_argument("--hypotheses", type=int, default=HYPOTHESES_DEFAULT, metavar="N",
                   help=f"joint hypotheses per hand ({HYPOTHESES_MIN}-{HYPOTHESES_MAX}, default {HYPOTHESES_DEFAULT})")
    p.add_argument("--max-frames", type=int, default=None, metavar="M", help="stop after M frames")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _record(args)
    except (InputError, OSError) as exc:  # unreadable input, bad weights, unwritable --out
        return report_error(exc, getattr(args, "debug", False))


class _Progress:
    """Counts what was recorded; ends the run after max_frames or at the source's end."""

    def __init__(self, max_frames: int | None) -> None:
        self.max_frames = max_frames
        self.frames = self.with_hands = 0
        self.finished = threading.Event()
        self.errors: list[str] = []
        self.controller = None
        self.summary = None  # of a recording stopped here, at max_frames

    def on_result(self, result) -> None:  # worker thread; the controller has recorded it already
        if self.finished.is_set():
            return
        self.frames += 1
        self.with_hands += bool(result.hands)
        if self.max_frames is not None and self.frames >= self.max_frames:
            self.summary = self.controller.stop_recording()  # the M-th frame is the last one recorded
            self.finished.set()

    def on_event(self, event) -> None:
        from handviz.pipeline.events import EventKind

        if event.kind in (EventKind.SOURCE_ERROR, EventKind.STAGE_ERROR, EventKind.RECORDING_STOPPED) \
                and event.level == "error":
            self.errors.append(event.message)
            self.finished.set()
        elif event.kind == EventKind.STOPPED:  # after the last result (the source's end comes earlier)
            self.finished.set()


def _detector(still_images: bool):
    """MediaPipe as `predict` reads photos (each on its own, a close one again with a border), or
    tracking over a video's frames."""
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.photo_reader import PhotoReader

    return PhotoReader(HandDetector(static=True)) if still_images else HandDetector(static=False)


def _record(args: argparse.Namespace) -> int:
    from handviz.commands.checks import check_at_least, check_hypotheses

    check_hypotheses(args.hypotheses)
    check_at_least("--max-frames", args.max_frames, 1)

    from handviz.pipeline.sources import ImageFolderSource, open_source

    with open_source(args.input) as source:  # first, so a bad INPUT fails before the slow imports
        if source.read() is None:
            raise InputError(f"{args.input}: has no frames to record")
        still_images = isinstance(getattr(source, "inner", source), ImageFolderSource)

    from handviz.commands.app import cascade_backend_factory
    from handviz.pipeline.controller import SessionController
    from handviz.pipeline.inference import InferOptions
    from handviz.pipeline.threads import PipelineOptions

    backend = cascade_backend_factory(args.weights)()  # bad weights: an InputError now, not a fallback
    progress = _Progress(args.max_frames)
    controller = SessionController(progress.on_result, progress.on_event, backend_factory=lambda: backend,
                                   detector_factory=lambda: _detector(still_images),
                                   options=PipelineOptions(infer=InferOptions(n_hypotheses=args.hypotheses)),
                                   realtime=False, recorded_by="record")
    progress.controller = controller
    controller.open_source(args.input, loop=False, record_to=args.out)
    interrupted = False
    try:
        while not progress.finished.wait(0.2):  # the last result, --max-frames, or an error
            pass
    except KeyboardInterrupt:
        interrupted = True
    recorder_error = controller.recorder.error
    summary = controller.stop_recording() or progress.summary
    controller.stop()
    written = summary.frames_written if summary is not None else controller.recorder.frames_written
    error = recorder_error or (summary.error if summary is not None else None) or next(iter(progress.errors), None)
    if error:
        print(f"handviz record: {error}", file=sys.stderr)
        return 1
    print(f"recorded {written} frames ({progress.with_hands} with a hand) to {args.out}"
          + (" (stopped by Ctrl+C)" if interrupted else ""))
    return 0
