"""`handviz export SESSION --frame K | --all [--format obj|ply|glb|bvh] [--animated] --out PATH`:
meshes for other tools, or the whole session as one animated file (skinned glTF, BVH motion)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from handviz.logs import InputError, report_error

if TYPE_CHECKING:
    from handviz.io.motion_export import TrackSummary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write recorded hands as OBJ, PLY, GLB meshes or an animated GLB / BVH",
        description="Export the hand meshes of a recorded session (one file per hand per frame, "
        "e.g. frame_000012_right.obj), or with --all --animated the whole session as one skinned, "
        "animated glTF (the open hand's 21 named bones, a key per recorded frame at its capture "
        "time), or --format bvh as skeleton motion for mocap tools. The format comes from --out's "
        "suffix unless --format is given. Coordinates are in the camera frame (x right, y down, "
        "z forward) or hand-centred; GLB and BVH are in metres by default, OBJ and PLY in mm.")
    p.add_argument("session", type=Path, metavar="SESSION",
                   help="session folder (from `handviz record` or the app)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--frame", type=int, metavar="K", help="export frame K (0 = the first recorded frame)")
    which.add_argument("--all", action="store_true", help="export every frame that has a hand")
    p.add_argument("--format", choices=["obj", "ply", "glb", "bvh"], default=None,
                   help="file format (default: from --out's suffix, else obj); bvh is always animated")
    p.add_argument("--animated", action="store_true",
                   help="with --all: one skinned glTF with an animation (a key per recorded frame) "
                   "instead of a file per frame")
    p.add_argument("--out", type=Path, required=True, metavar="PATH",
                   help="output folder; with --frame also a file name ending in .obj/.ply/.glb; "
                   "animated: a file name ending in .glb/.bvh")
    p.add_argument("--units", choices=["mm", "m"], default=None,
                   help="coordinate units (default: m for glb and bvh, mm for obj and ply)")
    p.add_argument("--frame-of", choices=["camera", "hand"], default="camera", dest="frame_of",
                   help="camera: as recorded; hand: origin at the wrist joint (default camera)")
    p.add_argument("--cloud", action="store_true",
                   help="also write the joint hypotheses as a PLY point set (*_cloud.ply)")
    p.add_argument("--watertight", action="store_true",
                   help="close the mesh's open wrist with a cap (for 3D printing and physics engines)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        resolve_options(args)
        if args.animated:
            return _export_animated(args)
        return _export(args)
    except (InputError, OSError) as exc:  # damaged session, unwritable --out: one line, no traceback
        return report_error(exc, getattr(args, "debug", False))


def resolve_options(args: argparse.Namespace) -> None:
    """Fill in format and units, and refuse combinations that cannot mean what the user wants,
    before the session is opened (InputError: exit 2, nothing written)."""
    from handviz.io.export import default_units, format_of_path

    out: Path = args.out
    from_name = format_of_path(out)
    if from_name is None and out.suffix and not out.is_dir():
        # f.xyz or f.stl is a file the user wants, never a folder to create under that name.
        raise InputError(f"--out {out}: handviz does not write {out.suffix.lower()} files; end the name in "
                         ".obj, .ply, .glb or .bvh, or give a folder name without a suffix")
    if args.format is not None and from_name is not None and args.format != from_name:
        raise InputError(f"--out {out} names a .{from_name} file but --format is {args.format}; "
                         "make them agree or drop --format")
    args.format = args.format or from_name or "obj"
    if args.format == "bvh":
        args.animated = True
    if args.animated:
        if args.format not in ("glb", "bvh"):
            raise InputError(f"--animated writes .glb or .bvh, not {args.format}; use --format glb or bvh")
        if not args.all:
            raise InputError(f"--format {args.format} --animated exports the whole session: use --all, not --frame")
        if from_name is None:
            raise InputError(f"--out {out}: an animated export is one file; give a name ending in .{args.format}")
        if args.cloud:
            raise InputError("--cloud writes per-frame point sets; it does not go with --animated or bvh")
        if args.watertight:
            raise InputError("--watertight caps per-frame meshes; it does not go with --animated or bvh")
    args.units = args.units or default_units(args.format)
    if out.exists() and out.is_dir() == (from_name is not None):
        kind = "a folder" if out.is_dir() else "a file"
        raise InputError(f"--out {out}: is {kind}; give " + ("a file name" if from_name else "a folder"))


def _export_animated(args: argparse.Namespace) -> int:
    import time

    from handviz.io.motion_export import export_motion
    from handviz.io.session import SessionReader

    start = time.perf_counter()
    with SessionReader(args.session) as reader:
        if len(reader) == 0:
            raise InputError(f"{args.session}: the session holds no frames")
        try:
            summary = export_motion(reader, args.out, fmt=args.format, units=args.units, frame_of=args.frame_of)
        except ValueError as exc:
            raise InputError(f"{args.session}: cannot export ({exc})") from exc
    print(f"wrote {written_files_line(summary.files, summary.tracks)} in {time.perf_counter() - start:.1f} s")
    return 0


def written_files_line(files: list[Path], tracks: list[TrackSummary]) -> str:
    """The files an animated export really wrote, each with its tracks: BVH writes one file per
    side (hand_right.bvh, hand_left.bvh), so naming --out would name a file that does not exist."""

    def describe(track: TrackSummary) -> str:
        return (f"{track.handedness.lower()} hand {track.keys} keys over {track.duration_s:.2f} s, "
                f"fit {track.fit_error_mm:.1f} mm")

    if len(files) == len(tracks) > 1:  # a file per track
        return ", ".join(f"{path} ({describe(track)})" for path, track in zip(files, tracks))
    return ", ".join(map(str, files)) + " (" + ", ".join(describe(t) for t in tracks) + ")"


def _export(args: argparse.Namespace) -> int:
    from handviz.io.export import export_hands, export_session
    from handviz.io.session import SessionReader

    options = dict(fmt=args.format, units=args.units, frame_of=args.frame_of, cloud=args.cloud,
                   watertight=args.watertight)
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
