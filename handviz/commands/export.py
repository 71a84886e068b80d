"""`handviz export SESSION --frame K | --all --format obj|ply|glb --out PATH`: meshes for other tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handviz.logs import InputError, report_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write recorded hand meshes as OBJ, PLY or GLB",
        description="Export the hand meshes of a recorded session (one file per hand per frame, "
        "e.g. frame_000012_right.obj). Coordinates are in the camera frame (x right, y down, "
        "z forward) or hand-centred; glTF tools expect metres (--units m).")
    p.add_argument("session", type=Path, metavar="SESSION",
                   help="session folder (from `handviz record` or the app)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--frame", type=int, metavar="K", help="export frame K (0 = the first recorded frame)")
    which.add_argument("--all", action="store_true", help="export every frame that has a hand")
    p.add_argument("--format", choices=["obj", "ply", "glb"], default="obj", help="mesh file format (default obj)")
    p.add_argument("--out", type=Path, required=True, metavar="PATH",
                   help="output folder; with --frame also a file name ending in .obj/.ply/.glb")
    p.add_argument("--units", choices=["mm", "m"], default="mm", help="coordinate units (default mm)")
    p.add_argument("--frame-of", choices=["camera", "hand"], default="camera", dest="frame_of",
                   help="camera: as recorded; hand: origin at the wrist joint (default camera)")
    p.add_argument("--cloud", action="store_true",
                   help="also write the joint hypotheses as a PLY point set (*_cloud.ply)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _export(args)
    except (InputError, OSError) as exc:  # damaged session, unwritable --out: one line, no traceback
        return report_error(exc, getattr(args, "debug", False))


def _export(args: argparse.Namespace) -> int:
    from handviz.io.export import export_hands, export_session
    from handviz.io.session import SessionReader

    options = dict(fmt=args.format, units=args.units, frame_of=args.frame_of, cloud=args.cloud)
    with SessionReader(args.session) as reader:
        if len(reader.faces) == 0:
            raise InputError(f"{args.session}: the session holds no mesh faces; it cannot be exported")
        if args.all:
            if args.out.suffix.lower() in (".obj", ".ply", ".glb"):
                raise InputError(f"{args.out}: --all writes one file per frame; give a folder for --out")
            try:
                summary = export_session(reader, args.out, **options)
            except ValueError as exc:
                raise InputError(f"{args.session}: cannot export ({exc})") from exc
            damaged = len(summary.frames_unreadable)
            print(f"wrote {len(summary.files)} files for {summary.frames_exported} frames to {args.out}"
                  f" ({len(summary.frames_without_hands)} without a hand"
                  + (f", {damaged} damaged frames skipped" if damaged else "") + ")")
            return 0 if summary.frames_exported else 1
        if len(reader) == 0:
            raise InputError(f"{args.session}: the session holds no frames")
        if not 0 <= args.frame < len(reader):
            raise InputError(f"{args.session}: no frame {args.frame}; the session has frames 0..{len(reader) - 1}")
        record = reader.frame(args.frame)
        if not record.hands:
            print(f"handviz export: frame {args.frame} of {args.session} has no hand; nothing written",
                  file=sys.stderr)
            return 1
        try:
            files = export_hands(record.hands, reader.faces, args.out, position=args.frame, **options)
        except ValueError as exc:
            raise InputError(f"{args.session}: cannot export frame {args.frame} ({exc})") from exc
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
