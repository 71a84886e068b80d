"""`handviz predict INPUT... --out R.jsonl`: images, folders and videos -> one JSON line per image/frame."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from handviz import limits
from handviz.commands.checks import check_ddim_steps, check_device, check_focal, check_hypotheses, check_output_file
from handviz.logs import InputError
from handviz.pipeline.sources import FALLBACK_VIDEO_FPS, IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images, natural_key


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="3D hands for images, folders and videos -> JSON lines",
                       description="One JSON line per image or video frame (DESIGN.md format); a frame "
                       "with no hand gives \"hands\": []. Unreadable inputs are reported and skipped; "
                       "the exit code is then 1. When none can be read, nothing is written (exit 2).")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image, folder or video")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="also the images and videos in the folders' subfolders (natural order)")
    p.add_argument("--out", type=Path, required=True, help="output .jsonl")
    p.add_argument("--hypotheses", type=int, default=limits.HYPOTHESES_DEFAULT,
                   help=f"joint hypotheses per hand ({limits.HYPOTHESES_MIN}-{limits.HYPOTHESES_MAX}, "
                   f"default {limits.HYPOTHESES_DEFAULT})")
    p.add_argument("--ddim-steps", type=int, default=limits.DDIM_STEPS_DEFAULT,
                   help=f"denoising steps per stage ({limits.DDIM_STEPS_MIN}-{limits.DDIM_STEPS_MAX}, "
                   f"default {limits.DDIM_STEPS_DEFAULT})")
    p.add_argument("--obj-dir", type=Path, default=None,
                   help="also write each hand's mesh as OBJ here (the same writer as `handviz export`)")
    p.add_argument("--focal", type=float, default=None,
                   help=f"focal length in pixels ({limits.FOCAL_MIN_PX:g}-{limits.FOCAL_MAX_PX:g}; "
                   "default: 60 deg FOV, made longer for a photo whose hand would otherwise sit "
                   "nearer than 40 cm)")
    p.add_argument("--no-image-features", action="store_true", help="keypoints-only cascade")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def folder_media(folder: Path, recursive: bool = False) -> tuple[list[Path], list[Path], list[Path]]:
    """(images and videos, other files, subfolders left unsearched) of `folder`, in natural order:
    its images, its videos, then with `recursive` each subfolder's the same way (hidden ones and a
    folder met twice through a link are left out). OSError when a folder cannot be listed."""
    media: list[Path] = []
    others: list[Path] = []
    seen: set[Path] = set()

    def walk(here: Path) -> list[Path]:
        seen.add(here.resolve())
        images, rest = list_images(here)
        videos = [p for p in rest if p.suffix.lower() in VIDEO_SUFFIXES]
        media.extend(images + videos)
        others.extend(p for p in rest if p not in videos)
        subfolders = sorted((p for p in here.iterdir() if p.is_dir() and not p.name.startswith(".")),
                            key=natural_key)
        if not recursive:
            return subfolders
        for sub in subfolders:
            if sub.resolve() not in seen:
                walk(sub)
        return []

    unsearched = walk(folder)
    return media, others, unsearched


def _names(paths: list[Path], limit: int = 3) -> str:
    return ", ".join(p.name for p in paths[:limit]) + (" ..." if len(paths) > limit else "")


def expand_inputs(inputs: list[Path], recursive: bool = False,
                  recurse_hint: str = "add --recursive to include them") -> tuple[list[Path], list[str]]:
    """Folders -> their images and videos in natural order (with `recursive`, those of their
    subfolders too); returns (paths, notes on what was left out).

    A folder with no image or video is an InputError that says what it holds instead (other
    files, or subfolders and `recurse_hint`, how the command includes them); other files in a folder
    (LICENSE, README) are skipped with one note. Paths that do not exist stay in the list: they
    are reported and skipped while the others are processed, as `cat` does.
    """
    paths: list[Path] = []
    notes: list[str] = []
    for path in inputs:
        if not path.is_dir():
            paths.append(path)
            continue
        try:
            media, skipped, unsearched = folder_media(path, recursive)
        except OSError as exc:
            raise InputError(f"{exc.filename or path}: cannot list the folder ({exc.strerror})") from None
        looked_for = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        if not media and unsearched:
            raise InputError(f"{path}: holds no image or video itself, but {len(unsearched)} subfolder(s) "
                             f"({_names(unsearched)}); {recurse_hint}")
        if not media:
            where = " or its subfolders" if recursive else ""
            what = "is empty" if not skipped else f"holds no image or video{where} ({len(skipped)} other file(s))"
            raise InputError(f"{path}: {what}; looked for {looked_for}")
        if skipped:
            notes.append(f"{path}: skipped {len(skipped)} file(s) that are not images or videos: {_names(skipped)}")
        if unsearched:
            notes.append(f"{path}: left out {len(unsearched)} subfolder(s) ({_names(unsearched)}); {recurse_hint}")
        paths += media
    return paths, notes


def iter_frames(path: Path, errors: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, rgb) for an image, or every frame of a video; why it gave none is added to errors."""
    if not path.exists():
        errors.append(f"{path}: no such file or folder")
        return
    if not os.access(path, os.R_OK):
        errors.append(f"{path}: cannot be read (permission denied)")
        return
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            errors.append(f"{path}: not a readable image (corrupt or unsupported)")
            return
        yield str(path), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        errors.append(f"{path}: not a readable image or video")
        return
    k = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            yield f"{path}#frame={k}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            k += 1
    finally:
        cap.release()
    if k == 0:
        errors.append(f"{path}: no frame could be decoded (corrupt or truncated video)")


def first_frame_or_refuse(paths: list[Path], errors: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """Every frame of every input, with the first one already decoded: when no input gives a
    frame, an InputError (exit 2) before any model is loaded or --out is opened, as `record` does."""
    frames = (item for path in paths for item in iter_frames(path, errors))
    first = next(frames, None)
    if first is None:
        if len(errors) == 1:
            raise InputError(errors[0])
        raise InputError(f"none of the {len(errors)} inputs could be read: " + "; ".join(errors[:3])
                         + (" ..." if len(errors) > 3 else ""))
    return itertools.chain([first], frames)


def check_options(args: argparse.Namespace) -> None:
    """Every value checked before the model loads or a file is opened (InputError: exit 2)."""
    check_hypotheses(args.hypotheses)
    check_ddim_steps(args.ddim_steps)
    check_focal(args.focal)
    check_device(args.device)
    check_output_file("--out", args.out)
    if args.obj_dir is not None and args.obj_dir.exists() and not args.obj_dir.is_dir():
        raise InputError(f"--obj-dir {args.obj_dir}: is a file; give a folder")


def run(args: argparse.Namespace) -> int:
    check_options(args)
    paths, notes = expand_inputs(args.inputs, recursive=args.recursive)
    for note in notes:
        print(f"handviz predict: {note}", file=sys.stderr)
    errors: list[str] = []
    frames = first_frame_or_refuse(paths, errors)

    from handviz.cascade import Cascade
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.intrinsics import default_intrinsics, still_image_intrinsics
    from handviz.pipeline.photo_reader import PhotoReader

    cascade = Cascade.from_weights(args.weights, device=args.device)
    faces = cascade.faces
    n_lines = n_hands = 0
    if args.obj_dir:
        args.obj_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    video = _VideoRun(cascade)
    with open(args.out, "w") as out, HandDetector(max_hands=2, static=True) as detector, video:
        photos = PhotoReader(detector)
        for name, rgb in frames:
            h, w = rgb.shape[:2]
            frame = video.frame_of(name)  # None for a photo
            if frame is None:  # a photo: MediaPipe alone, then on changed copies that size the cloud
                detections = photos.detect(rgb)
                photos.augment(rgb, detections)
            else:  # a video: MediaPipe tracks its hands, as the app does, smoothed over time
                detections = video.hands.smooth(video.detector.detect(rgb), frame / video.fps)
            if args.focal is None and frame is None:
                K = still_image_intrinsics(w, h, detections)
            else:
                K = default_intrinsics(w, h, focal_px=args.focal)
            hands = cascade.predict(detections, K, n_hypotheses=args.hypotheses,
                                    ddim_steps=args.ddim_steps,
                                    use_image=False if args.no_image_features else None, seed=args.seed,
                                    bone_prior=frame is None)  # on video the skeleton is learnt
            if frame is not None:  # each hand over time: its skeleton held, its depths filtered
                hands = video.hands(hands, K, frame / video.fps)
            line = {"image": name, "width": w, "height": h, "K": np.round(K, 3).tolist(),
                    "hands": [e.to_json() for e in hands]}
            out.write(json.dumps(line) + "\n")
            out.flush()
            n_lines += 1
            n_hands += len(hands)
            if args.obj_dir:
                _write_objs(args.obj_dir, name, hands, faces)
    for e in errors:
        print(f"handviz predict: {e}; skipped", file=sys.stderr)
    print(f"{n_lines} frames, {n_hands} hands -> {args.out}", file=sys.stderr)
    return 1 if errors else 0


class _VideoRun:
    """The current video's tracking detector and temporal model (handviz.temporal), both new for
    each video; `frame_of(name)` says which frame a name is (None: a photo) and starts a video at
    its frame 0."""

    def __init__(self, cascade) -> None:
        self._cascade = cascade
        self.detector = None
        self.hands = None
        self.fps = FALLBACK_VIDEO_FPS

    def frame_of(self, name: str) -> int | None:
        if "#frame=" not in name:
            return None
        path, index = name.rsplit("#frame=", 1)
        frame = int(index)
        if frame == 0:
            from handviz.pipeline.detector import HandDetector
            from handviz.temporal import VideoHands

            self.close()
            self.detector = HandDetector(max_hands=2, static=False)
            self.hands = VideoHands(mesh_pull=self._cascade.mesh_pull)
            self.fps = video_fps(Path(path))
        return frame

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()
            self.detector = None

    def __enter__(self) -> _VideoRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def video_fps(path: Path) -> float:
    """A video's frame rate as its file says, or FALLBACK_VIDEO_FPS when it says nothing usable."""
    cap = cv2.VideoCapture(str(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    return fps if 1.0 <= fps <= 240.0 else FALLBACK_VIDEO_FPS


def _write_objs(obj_dir: Path, name: str, hands: list, faces: np.ndarray) -> None:
    """IMAGE_K_SIDE.obj (+ .mtl) per hand, by the writer `handviz export` and the app use."""
    from handviz.io.export import write_hand

    stem = Path(name.split("#")[0]).stem + (("_" + name.split("#", 1)[1].replace("=", "")) if "#" in name else "")
    for k, hand in enumerate(hands):
        write_hand(hand, faces, obj_dir / f"{stem}_{k}_{hand.handedness.lower()}.obj")
