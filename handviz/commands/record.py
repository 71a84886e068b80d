"""`handviz record INPUT --out SESSION`: run the pipeline headless over a video, folder or camera
and keep everything in a session folder (replay it with `handviz replay`, export meshes with
`handviz export`). Unlike the live app, nothing is dropped: the pipeline waits for the disk."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from handviz.logs import InputError, report_error

DEFAULT_HYPOTHESES = 32


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="run the pipeline over INPUT (no window) into a session folder",
        description="Detect hands (MediaPipe), estimate 3D joints and mesh (the cascade) for every "
        "frame of INPUT and record frames and results into a session folder. Ctrl+C stops a "
        "camera recording and keeps what was recorded.")
    p.add_argument("input", metavar="INPUT", help="video file, image folder, single image, camera index or 'demo'")
    p.add_argument("--out", type=Path, required=True, metavar="SESSION", help="new session folder")
    p.add_argument("--hypotheses", type=int, default=DEFAULT_HYPOTHESES, metavar="N",
                   help=f"joint hypotheses per hand (default {DEFAULT_HYPOTHESES})")
    p.add_argument("--max-frames", type=int, default=None, metavar="M", help="stop after M frames")
    p.set_defaults(func=run)


def weights_fingerprint(folder: Path) -> str:
    """'weights-<12 hex>' from the bytes of the folder's .safetensors files: which model made a
    session, even for weights that carry no version of their own."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return f"weights-{digest.hexdigest()[:12]}"


def run(args: argparse.Namespace) -> int:
    try:
        return _record(args)
    except (InputError, OSError) as exc:  # unreadable input, bad weights, unwritable --out
        return report_error(exc, getattr(args, "debug", False))


def _record(args: argparse.Namespace) -> int:
    from handviz.commands.checks import check_at_least, check_hypotheses

    check_hypotheses(args.hypotheses)
    check_at_least("--max-frames", args.max_frames, 1)

    from handviz.pipeline.sources import ImageFolderSource, open_source

    with open_source(args.input) as source:  # first, so a bad INPUT fails before the slow imports
        rgb = source.read()
        if rgb is None:
            raise InputError(f"{args.input}: has no frames to record")

        from handviz.cascade import Cascade
        from handviz.hand.asset import load_hand_asset
        from handviz.io.session import SessionWriter
        from handviz.paths import weights_dir
        from handviz.pipeline.detector import HandDetector
        from handviz.pipeline.intrinsics import default_intrinsics
        from handviz.pipeline.timing import (CAPTURED, DETECT_END, DETECT_START, INFER_END, INFER_START,
                                             now, stage_timings)
        from handviz.types import Frame, FrameResult

        weights = weights_dir(args.weights)
        cascade = Cascade.from_weights(weights)
        faces = load_hand_asset().faces
        height, width = rgb.shape[:2]
        K = default_intrinsics(width, height)
        meta = {"model_version": weights_fingerprint(weights), "source": str(args.input),
                "hypotheses": args.hypotheses}
        frames = with_hands = 0
        interrupted = False
        with SessionWriter(args.out, faces, K, meta, fps=source.fps or 30.0) as writer, \
                HandDetector(static=isinstance(source, ImageFolderSource)) as detector:
            try:
                while rgb is not None:
                    stamps = {CAPTURED: now()}
                    if rgb.shape[:2] != (height, width):
                        height, width = rgb.shape[:2]
                        K = default_intrinsics(width, height)
                    stamps[DETECT_START] = now()
                    detections = detector.detect(rgb)
                    stamps[DETECT_END] = stamps[INFER_START] = now()
                    hands = cascade.predict(detections, K, n_hypotheses=args.hypotheses)
                    stamps[INFER_END] = now()
                    frame = Frame(index=frames, image=rgb, source=str(args.input), stamps=stamps)
                    result = FrameResult(frame=frame, detections=detections, hands=hands, intrinsics=K,
                                         timings_ms=stage_timings(stamps))
                    if not writer.put(result, block=True):
                        break
                    frames += 1
                    with_hands += bool(hands)
                    if args.max_frames is not None and frames >= args.max_frames:
                        break
                    rgb = source.read()
            except KeyboardInterrupt:
                interrupted = True
        if writer.error:
            print(f"handviz record: {writer.error}", file=sys.stderr)
            return 1
    print(f"recorded {writer.frames_written} frames ({with_hands} with a hand) to {args.out}"
          + (" (stopped by Ctrl+C)" if interrupted else ""))
    return 0
