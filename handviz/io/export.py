"""Hand meshes as files for Blender, Unity and friends: OBJ (+ .mtl colour), PLY, GLB.

Coordinates stay in the chosen frame and axes: "camera" (OpenCV camera frame: x right, y down,
z forward, as recorded) or "hand" (the same axes, origin moved to the wrist joint). Units are
millimetres or metres: GLB defaults to metres (glTF's unit, so Blender shows the hand at its real
size), OBJ and PLY to millimetres. Vertex order and faces are written exactly as the model made
them (winding turned outwards for mirrored left hands; `watertight` appends the wrist cap after
them), so frame t of one export lines up with frame t of another. `write_hand` is the one door
for a single file: `predict --obj-dir`, `handviz export` and the app's export dialog all write
through it.

A sequence is one file per hand per frame: frame_000012_right.obj (+ frame_000012_right.mtl);
a second hand of the same side in one frame gets "_2". The hypothesis cloud (all N x 21 joint
hypotheses) is a PLY point set beside it: frame_000012_right_cloud.ply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import trimesh

from handviz.io.watertight import cap_holes
from handviz.types import HandEstimate, HandJoint

if TYPE_CHECKING:
    from handviz.io.session import SessionReader

Units = Literal["mm", "m"]
FrameOf = Literal["camera", "hand"]
FORMATS = ("obj", "ply", "glb")
#: Formats of a whole sequence in one file (handviz.io.motion_export).
ANIMATED_FORMATS = ("glb", "bvh")
UNITS = ("mm", "m")
FRAMES_OF = ("camera", "hand")
UNIT_SCALE = {"mm": 1.0, "m": 1e-3}

#: Per-hand colour (RGB 0-255): warm right, cool left, like the live view.
HAND_COLOURS: dict[str, tuple[int, int, int]] = {"Right": (230, 140, 90), "Left": (90, 150, 230)}
OTHER_COLOUR = (180, 180, 180)


def default_units(fmt: str) -> Units:
    """Metres for glTF (its unit) and BVH (Blender's importer reads it as metres), else mm."""
    return "m" if fmt in ("glb", "bvh") else "mm"


def format_of_path(path: str | Path) -> str | None:
    """"obj"/"ply"/"glb"/"bvh" from the file name's suffix, None when it has none of those."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in (*FORMATS, *ANIMATED_FORMATS) else None


def hand_colour(handedness: str) -> tuple[int, int, int]:
    return HAND_COLOURS.get(handedness, OTHER_COLOUR)


def place_points(points: np.ndarray, hand: HandEstimate, units: Units = "mm",
                 frame_of: FrameOf = "camera") -> np.ndarray:
    """points: (..., 3) mm camera frame -> (..., 3) float64 in `frame_of` and `units`.

    "hand" subtracts the hand's (aggregate) wrist joint, so mesh and cloud stay aligned.
    """
    if units not in UNIT_SCALE:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    if frame_of not in FRAMES_OF:
        raise ValueError(f"frame_of must be one of {FRAMES_OF}, got {frame_of!r}")
    out = np.asarray(points, dtype=np.float64)
    if frame_of == "hand":
        out = out - np.asarray(hand.joints_3d, dtype=np.float64)[HandJoint.WRIST]
    return out * UNIT_SCALE[units]


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """verts (V, 3), faces (F, 3) -> volume, positive when the triangles wind outwards.

    Taken about the vertex centroid, so the open wrist of the hand mesh barely matters (about
    the camera origin, 400 mm away, the missing cap could flip the sign)."""
    tri = verts[faces] - verts.mean(axis=0)
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def hand_mesh(hand: HandEstimate, faces: np.ndarray, units: Units = "mm",
              frame_of: FrameOf = "camera", watertight: bool = False) -> trimesh.Trimesh:
    """The hand's mesh: vertices (V, 3) placed as asked, nothing merged or reordered
    (process=False); faces (F, 3) as given, or with each triangle's winding reversed when the
    mesh is inside out. That is the case for left hands: the model makes right hands and
    mirrors them (x -> -x), which turns the triangles' winding and so the normals inwards,
    and Blender/Unity would show the inside or cull the hand. watertight: the wrist hole capped
    (handviz.io.watertight: one vertex and a fan of faces appended) for printers and physics."""
    verts = np.asarray(hand.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(verts) == 0:
        raise ValueError("the hand has no mesh vertices")
    if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
        raise ValueError(f"faces index vertex {int(faces.max())}, but the hand has {len(verts)} "
                         "vertices (faces from another hand model?)")
    if faces.size and signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1]
    if watertight:
        verts, faces = cap_holes(verts, faces)
    return trimesh.Trimesh(place_points(verts, hand, units, frame_of), faces, process=False)


def hypothesis_cloud(hand: HandEstimate, units: Units = "mm",
                     frame_of: FrameOf = "camera") -> trimesh.PointCloud:
    """All joint hypotheses (N, 21, 3) as N*21 points, coloured like the hand."""
    points = place_points(np.asarray(hand.joint_hypotheses).reshape(-1, 3), hand, units, frame_of)
    colours = np.tile(np.array([*hand_colour(hand.handedness), 255], np.uint8), (len(points), 1))
    return trimesh.PointCloud(points, colors=colours)


def write_mesh(mesh: trimesh.Trimesh, path: Path, handedness: str, fmt: str | None = None) -> list[Path]:
    """Write `mesh` with vertex normals and the hand's colour; returns the files written.

    OBJ: the colour goes into a .mtl of the same stem (diffuse Kd); PLY: vertex colours (binary);
    GLB: a PBR material's base colour.
    """
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    rgb = hand_colour(handedness)
    name = f"hand_{handedness.lower()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh = mesh.copy()
    if fmt == "obj":
        mesh.visual = trimesh.visual.TextureVisuals(
            material=trimesh.visual.material.SimpleMaterial(diffuse=(*rgb, 255), name=name))
        mtl_path = path.with_suffix(".mtl")
        text, materials = trimesh.exchange.obj.export_obj(
            mesh, include_normals=True, include_texture=True, return_texture=True,
            mtl_name=mtl_path.name, header="handviz")
        path.write_text(text)
        mtl_path.write_bytes(materials[mtl_path.name])
        return [path, mtl_path]
    if fmt == "ply":
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.array([*rgb, 255], np.uint8))
        path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary", vertex_normal=True))
        return [path]
    if fmt == "glb":
        colour = [c / 255.0 for c in rgb] + [1.0]
        mesh.visual = trimesh.visual.TextureVisuals(material=trimesh.visual.material.PBRMaterial(
            name=name, baseColorFactor=colour, metallicFactor=0.0, roughnessFactor=0.7, doubleSided=True))
        path.write_bytes(mesh.export(file_type="glb", include_normals=True))
        return [path]
    raise ValueError(f"{path}: unknown mesh format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_hand(hand: HandEstimate, faces: np.ndarray, path: str | Path, *, units: Units | None = None,
               frame_of: FrameOf = "camera", watertight: bool = False) -> list[Path]:
    """One hand to exactly `path`, format from its suffix (.obj/.ply/.glb), outward normals for
    both hands, units by default `default_units(format)`. Returns the files written (OBJ adds
    its .mtl). ValueError for an unknown suffix or faces of another mesh."""
    path = Path(path)
    fmt = format_of_path(path)
    if fmt not in FORMATS:
        raise ValueError(f"{path}: cannot tell the mesh format from the name; end it in "
                         + ", ".join(f".{f}" for f in FORMATS))
    mesh = hand_mesh(hand, faces, units or default_units(fmt), frame_of, watertight)
    return write_mesh(mesh, path, hand.handedness, fmt)


def write_cloud(cloud: trimesh.PointCloud, path: Path) -> Path:
    """The cloud as a binary PLY point set (x, y, z + colour, no faces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cloud.export(file_type="ply"))
    return path


def hand_file_stems(position: int, hands: Sequence[HandEstimate]) -> list[str]:
    """frame_000012_right, frame_000012_left, frame_000012_right_2 ... one per hand, in order."""
    seen: dict[str, int] = {}
    stems = []
    for hand in hands:
        side = hand.handedness.lower() or "hand"
        seen[side] = seen.get(side, 0) + 1
        suffix = "" if seen[side] == 1 else f"_{seen[side]}"
        stems.append(f"frame_{position:06d}_{side}{suffix}")
    return stems


def export_hands(hands: Sequence[HandEstimate], faces: np.ndarray, out: str | Path, *, position: int,
                 fmt: str = "obj", units: Units | None = None, frame_of: FrameOf = "camera",
                 cloud: bool = False, watertight: bool = False) -> list[Path]:
    """Write the hands of one frame; returns every file written.

    out: a folder (standard names, see module doc), or a file name ending in .{fmt}: one hand
    is written to exactly that name, several get "_right"/"_left" appended to its stem.
    units: default `default_units(fmt)` (metres for GLB).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r}; use one of {', '.join(FORMATS)}")
    units = units or default_units(fmt)
    out = Path(out)
    stems = hand_file_stems(position, hands)
    if out.suffix.lower() == f".{fmt}":
        folder = out.parent
        if len(hands) == 1:
            stems = [out.stem]
        else:
            stems = [f"{out.stem}_{s.split('_', 2)[2]}" for s in stems]
    else:
        folder = out
    written: list[Path] = []
    for hand, stem in zip(hands, stems):
        mesh = hand_mesh(hand, faces, units, frame_of, watertight)
        written += write_mesh(mesh, folder / f"{stem}.{fmt}", hand.handedness, fmt)
        if cloud:
            written.append(write_cloud(hypothesis_cloud(hand, units, frame_of), folder / f"{stem}_cloud.ply"))
    return written


@dataclass
class SequenceExport:
    """What `export_session` did: files written, frames with no hand, frames it could not read."""

    files: list[Path] = field(default_factory=list)
    frames_exported: int = 0
    frames_without_hands: list[int] = field(default_factory=list)
    frames_unreadable: list[int] = field(default_factory=list)


def export_session(reader: SessionReader, out_dir: str | Path, positions: Iterable[int] | None = None, *,
                   fmt: str = "obj", units: Units | None = None, frame_of: FrameOf = "camera",
                   cloud: bool = False, faces: np.ndarray | None = None,
                   watertight: bool = False) -> SequenceExport:
    """Export frames of a session (all when positions is None) into out_dir, one file per hand
    per frame. faces default to the ones stored in the session."""
    from handviz.io.session import SessionDamagedError

    faces = reader.faces if faces is None else faces
    summary = SequenceExport()
    for k in range(len(reader)) if positions is None else positions:
        try:
            record = reader.frame(k)
        except SessionDamagedError:
            summary.frames_unreadable.append(k)
            continue
        if not record.hands:
            summary.frames_without_hands.append(k)
            continue
        summary.files += export_hands(record.hands, faces, out_dir, position=k, fmt=fmt, units=units,
                                      frame_of=frame_of, cloud=cloud, watertight=watertight)
        summary.frames_exported += 1
    return summary
