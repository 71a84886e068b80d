"""`handviz calibrate`: measure a camera's focal length from a printed checkerboard and write it as
an intrinsics file (the format `load_intrinsics` reads; the app loads it in Controls > Intrinsics
file, or makes it itself with Calibrate camera...). Nothing is written unless the solve is good."""

from __future__ import annotations

import argparse
import glob
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import numpy as np

from handviz.logs import InputError
from handviz.pipeline.calibration import (
    SQUARE_MM_DEFAULT,
    VIEWS_DEFAULT,
    VIEWS_MIN,
    CheckerboardCalibrator,
    parse_board,
)

#: How long a live calibration may take before it gives up (seconds).
CAMERA_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="measure the camera's focal length from a checkerboard -> intrinsics file",
        description="Find a printed checkerboard in a webcam's frames, photos or a video, keep views "
        "at distinct positions, solve with OpenCV's calibrateCamera and write K as an intrinsics "
        "file. Print the board (OpenCV's 9x6 pattern), tape it flat, and show it at many positions "
        "and angles. Exit 2 with nothing written when the board is not seen often enough or the "
        "fit is poor.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", type=int, metavar="INDEX", help="live from webcam INDEX")
    source.add_argument("--images", metavar="DIR_OR_GLOB", help="photos of the board: a folder or a glob ('shots/*.jpg')")
    source.add_argument("--video", type=Path, metavar="FILE", help="a video of the board")
    p.add_argument("--board", default="9x6", metavar="COLSxROWS", help="inner corners COLSxROWS (default 9x6: a 10x7-square print)")
    p.add_argument("--square-mm", type=float, default=SQUARE_MM_DEFAULT, metavar="MM",
                   help=f"printed square side in mm (default {SQUARE_MM_DEFAULT:g})")
    p.add_argument("--views", type=int, default=VIEWS_DEFAULT, metavar="N",
                   help=f"distinct views to collect (at least {VIEWS_MIN}, default {VIEWS_DEFAULT})")
    p.add_argument("--timeout", type=float, default=CAMERA_TIMEOUT_S, metavar="S",
                   help=f"--camera: give up after S seconds (default {CAMERA_TIMEOUT_S:g})")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="read at most N frames")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="intrinsics file to write (default: one per camera in handviz's config folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handviz.commands.checks import (
        check_at_least,
        check_output_file,
        check_positive,
    )
    from handviz.paths import camera_intrinsics_path
    from handviz.pipeline.intrinsics import save_intrinsics

    board = parse_board(args.board)
    check_positive("--square-mm", args.square_mm)
    check_at_least("--views", args.views, VIEWS_MIN)
    check_positive("--timeout", args.timeout)
    check_at_least("--max-frames", args.max_frames, 1)
    if args.out is not None:
        check_output_file("--out", args.out)

    camera, frames, fast = _frames(args)
    calibrator = CheckerboardCalibrator(board, args.square_mm, args.views, fast=fast)
    try:
        for name, image in frames:
            if calibrator.add_frame(image).kept:
                print(f"{calibrator.progress()} ({name})", file=sys.stderr)
            if calibrator.ready:
                break
    finally:
        frames.close()  # releases the camera or video
    views = len(calibrator.views)
    if not calibrator.ready and args.camera is not None:
        raise InputError(f"camera {args.camera}: {views} of {args.views} views of the board in {args.timeout:g} s; "
                         "show the whole board at more places and tilts, or give more --timeout")
    if not calibrator.ready and views >= VIEWS_MIN:
        raise InputError(f"only {views} distinct views of the board of the {args.views} needed; add views at "
                         f"other positions and angles, or pass --views {views}")
    result = calibrator.solve()  # InputError: too few views, a poor fit
    out = args.out if args.out is not None else camera_intrinsics_path(camera)
    written = save_intrinsics(out, result.K, result.width, result.height, result.file_extra(camera))
    print(f"wrote {written}: {result.summary()}")
    return 0


def _frames(args: argparse.Namespace) -> tuple[str, Generator[tuple[str, np.ndarray], None, None], bool]:
    """(camera name for the file, (name, RGB image) pairs, whether to use the fast board check).
    Opens the source now, so a missing camera or an empty folder fails before any work."""
    from handviz.pipeline.sources import CameraSource, SourceError, VideoSource

    if args.camera is not None:
        try:
            source = CameraSource(args.camera)
        except SourceError as exc:  # its advice names the app's --source
            reason = str(exc).split(";")[0]
            raise InputError(f"{reason}; plug a camera in, or calibrate from --images or --video") from None
        return f"camera {args.camera}", _read_live(source, args.timeout, args.max_frames), True
    if args.video is not None:
        if not args.video.is_file():
            raise InputError(f"--video {args.video}: no such file")
        source = VideoSource(args.video)
        return f"video {args.video.stem}", _read_source(source, args.max_frames), True
    paths = _image_paths(args.images)
    name = Path(args.images).name if Path(args.images).is_dir() else Path(args.images).parent.name
    return f"images {name}", _read_images(paths[:args.max_frames]), False


def _read_live(source, timeout_s: float, max_frames: int | None) -> Iterator[tuple[str, np.ndarray]]:
    print(f"show the board to camera {source.index}: {timeout_s:g} s", file=sys.stderr)
    return _read_source(source, max_frames, time.monotonic() + timeout_s)


def _read_source(source, max_frames: int | None, deadline: float = float("inf")) -> Iterator[tuple[str, np.ndarray]]:
    """(name, image) pairs until the source ends, max_frames were read or the deadline (monotonic s)."""
    with source:
        k = 0
        while time.monotonic() < deadline and (max_frames is None or k < max_frames):
            image = source.read()
            if image is None:
                return
            k += 1
            yield f"frame {k}", image


def _image_paths(spec: str) -> list[Path]:
    """The photos a folder or glob names, in natural order; InputError when there are none."""
    from handviz.pipeline.sources import IMAGE_SUFFIXES, list_images, natural_key

    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            images, _others = list_images(path)
        except OSError as exc:
            raise InputError(f"--images {path}: cannot list the folder ({exc.strerror})") from None
    elif path.is_file():
        images = [path]
    else:
        images = sorted((Path(p) for p in glob.glob(str(path)) if Path(p).suffix.lower() in IMAGE_SUFFIXES),
                        key=natural_key)
    if not images:
        raise InputError(f"--images {spec}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def _read_images(paths: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    import cv2

    unreadable = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            unreadable.append(path.name)
            continue
        yield path.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if unreadable:
        print(f"handviz calibrate: skipped {len(unreadable)} unreadable image(s): {', '.join(unreadable[:3])}"
              + (" ..." if len(unreadable) > 3 else ""), file=sys.stderr)
    if len(unreadable) == len(paths):
        raise InputError(f"none of the {len(paths)} image(s) could be read")
