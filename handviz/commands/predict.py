"""`handviz predict INPUT... --out R.jsonl`: images, folders and videos -> one JSON line per image/frame."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from handviz.pipeline.sources import IMAGE_SUFFIXES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="3D hands for images, folders and videos -> JSON lines",
                       description="One JSON line per image or video frame (DESIGN.md format); a frame "
                       "with no hand gives \"hands\": []. Unreadable inputs are reported and skipped; "
                       "the exit code is then 1.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image, folder or video")
    p.add_argument("--out", type=Path, required=True, help="output .jsonl")
    p.add_argument("--hypotheses", type=int, default=32, help="joint hypotheses per hand (1-256)")
    p.add_argument("--ddim-steps", type=int, default=1)
    p.add_argument("--obj-dir", type=Path, default=None, help="also write each hand's mesh as OBJ here")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: 60 deg FOV)")
    p.add_argument("--no-image-features", action="store_true", help="keypoints-only cascade")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def iter_frames(path: Path, errors: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, rgb) for an image, every image of a folder, or every frame of a video."""
    if path.is_dir():
        for child in sorted(p for p in path.iterdir() if p.is_file()):
            yield from iter_frames(child, errors)
        return
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


def run(args: argparse.Namespace) -> int:
    from handviz.cascade import Cascade
    from handviz.pipeline.detector import HandDetector
    from handviz.pipeline.intrinsics import default_intrinsics

    cascade = Cascade.from_weights(args.weights, device=args.device)
    faces = cascade.faces
    errors: list[str] = []
    n_lines = n_hands = 0
    if args.obj_dir:
        args.obj_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as out, HandDetector(max_hands=2, static=True) as detector:
        for path in args.inputs:
            for name, rgb in iter_frames(path, errors):
                h, w = rgb.shape[:2]
                K = default_intrinsics(w, h, focal_px=args.focal)
                hands = cascade.predict(detector.detect(rgb), K, n_hypotheses=args.hypotheses,
                                        ddim_steps=args.ddim_steps,
                                        use_image=False if args.no_image_features else None, seed=args.seed)
                line = {"image": name, "width": w, "height": h, "hands": [e.to_json() for e in hands]}
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
    import trimesh

    stem = Path(name.split("#")[0]).stem + (("_" + name.split("#", 1)[1].replace("=", "")) if "#" in name else "")
    for k, hand in enumerate(hands):
        mesh = trimesh.Trimesh(hand.vertices, faces, process=False)
        mesh.export(obj_dir / f"{stem}_{k}_{hand.handedness.lower()}.obj")
