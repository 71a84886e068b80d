"""`handviz predict INPUT... --out R.jsonl`: images, folders and videos -> one JSON line per image/frame."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from handviz import limits
from handviz.commands.checks import check_ddim_steps, check_device, check_focal, check_hypotheses, check_output_file
from handviz.logs import InputError
from handviz.pipeline.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="3D hands for images, folders and videos -> JSON lines",
                       description="One JSON line per image or video frame (DESIGN.md format); a frame "
                       "with no hand gives \"hands\": []. Unreadable inputs are reported and skipped; "
                       "the exit code is then 1.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image, folder or video")
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


def expand_inputs(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """Folders -> their images and videos in natural order; returns (paths, notes on skipped files).

    A folder with no image or video is an InputError; other files in a folder (LICENSE, README)
    are skipped with one note. Paths that do not exist stay in the list: they are reported and
    skipped while the others are processed, as `cat` does.
    """
    paths: list[Path] = []
    notes: list[str] = []
    for path in inputs:
        if not path.is_dir():
            paths.append(path)
            continue
        try:
            images, others = list_images(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot list the folder ({exc.strerror})") from None
        videos = [p for p in others if p.suffix.lower() in VIDEO_SUFFIXES]
        skipped = [p for p in others if p not in videos]
        if not images and not videos:
            what = "is empty" if not skipped else f"holds no image or video ({len(skipped)} other file(s))"
            raise InputError(f"{path}: {what}; looked for {', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))}")
        if skipped:
            shown = ", ".join(p.name for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
            notes.append(f"{path}: skipped {len(skipped)} file(s) that are not images or videos: {shown}")
        paths += images + videos
    return paths, notes


def iter_frames(path: Path, errors: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, rgb) for an image, or every frame of a video."""
    if not path.exists():
        errors.append(f"{path}: no such file or folder")
        return
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            errors.append(f"{path}: not a readable image (corrupt or unsupported); skipped")
            return
        yield str(path), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        errors.append(f"{path}: not a readable image or video; skipped")
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
        errors.append(f"{path}: no frame could be decoded (corrupt or truncated video); skipped")


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
    paths, notes = expand_inputs(args.inputs)
    for note in notes:
        print(f"handviz predict: {note}", file=sys.stderr)

    from handviz.cascade import Cascade
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.intrinsics import default_intrinsics, still_image_intrinsics

    cascade = Cascade.from_weights(args.weights, device=args.device)
    faces = cascade.faces
    errors: list[str] = []
    n_lines = n_hands = 0
    if args.obj_dir:
        args.obj_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as out, HandDetector(max_hands=2, static=True) as detector:
        for path in paths:
            for name, rgb in iter_frames(path, errors):
                h, w = rgb.shape[:2]
                detections = detector.detect(rgb)
                if args.focal is None and "#frame=" not in name:
                    K = still_image_intrinsics(w, h, detections)
                else:
                    K = default_intrinsics(w, h, focal_px=args.focal)
                hands = cascade.predict(detections, K, n_hypotheses=args.hypotheses,
                                        ddim_steps=args.ddim_steps,
                                        use_image=False if args.no_image_features else None, seed=args.seed)
                line = {"image": name, "width": w, "height": h, "K": np.round(K, 3).tolist(),
                        "hands": [e.to_json() for e in hands]}
                out.write(json.dumps(line) + "\n")
                out.flush()
                n_lines += 1
                n_hands += len(hands)
                if args.obj_dir:
                    _write_objs(args.obj_dir, name, hands, faces)
    for e in errors:
        print(f"handviz predict: {e}", file=sys.stderr)
    print(f"{n_lines} frames, {n_hands} hands -> {args.out}", file=sys.stderr)
    return 1 if errors else 0


def _write_objs(obj_dir: Path, name: str, hands: list, faces: np.ndarray) -> None:
    """IMAGE_K_SIDE.obj (+ .mtl) per hand, by the writer `handviz export` and the app use."""
    from handviz.io.export import write_hand

    stem = Path(name.split("#")[0]).stem + (("_" + name.split("#", 1)[1].replace("=", "")) if "#" in name else "")
    for k, hand in enumerate(hands):
        write_hand(hand, faces, obj_dir / f"{stem}_{k}_{hand.handedness.lower()}.obj")
