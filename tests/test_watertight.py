"""`handviz export --watertight`: the wrist hole capped, outward, for 3D printing and physics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from handviz.cli import main
from handviz.hand.asset import load_hand_asset
from handviz.io.session import SessionWriter
from handviz.io.watertight import boundary_loops, cap_holes
from handviz.types import Frame, FrameResult, HandEstimate

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def test_a_box_missing_a_face_is_closed_outwards_with_its_volume() -> None:
    box = trimesh.creation.box()  # 1 x 1 x 1, wound outwards
    top = box.face_normals[:, 2] > 0.5
    assert top.sum() == 2
    open_faces = box.faces[~top]  # the top side (two triangles) removed
    (loop,) = boundary_loops(open_faces)
    assert len(loop) == 4
    verts, faces = cap_holes(box.vertices, open_faces)
    capped = trimesh.Trimesh(verts, faces, process=False)
    assert capped.is_watertight and capped.is_winding_consistent
    assert capped.volume == pytest.approx(1.0)  # positive: the cap faces out like the rest
    np.testing.assert_array_equal(verts[:8], box.vertices)  # the originals keep their indices
    np.testing.assert_array_equal(cap_holes(box.vertices, box.faces)[1], box.faces)  # closed: unchanged


def test_holes_that_touch_are_refused() -> None:
    # Two triangles sharing only vertex 0: its boundary passes through 0 twice.
    with pytest.raises(ValueError, match="touch at a vertex"):
        boundary_loops(np.array([[0, 1, 2], [0, 3, 4]]))


def hand(side: str) -> HandEstimate:
    """The shipped hand mesh, 40 cm in front of the camera; the left one mirrored as the cascade does."""
    asset = load_hand_asset()
    mirror = np.float32([-1, 1, 1]) if side == "Left" else np.float32([1, 1, 1])
    verts = (asset.vertices - asset.rest_joints[0] + [0, 0, 400]) * mirror
    joints = (asset.rest_joints - asset.rest_joints[0] + [0, 0, 400]) * mirror
    return HandEstimate(handedness=side, score=0.9, keypoints_2d=np.zeros((21, 2), np.float32),
                        joints_3d=joints.astype(np.float32), joint_hypotheses=joints[None].astype(np.float32),
                        joint_spread=np.zeros(21, np.float32), vertices=verts.astype(np.float32),
                        mediapipe_world_3d=np.zeros((21, 3), np.float32))


@pytest.fixture()
def session(tmp_path: Path) -> Path:
    with SessionWriter(tmp_path / "s", load_hand_asset().faces, K) as writer:
        writer.put(FrameResult(Frame(0, np.zeros((48, 64, 3), np.uint8)), [], [hand("Right"), hand("Left")], K),
                   block=True)
    return tmp_path / "s"


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_exported_hands_are_watertight_with_positive_volume(tmp_path: Path, session: Path, capsys, fmt: str) -> None:
    asset = load_hand_asset()
    open_dir, closed_dir = tmp_path / "open", tmp_path / "closed"
    assert main(["export", str(session), "--frame", "0", "--format", fmt, "--out", str(open_dir)]) == 0
    assert main(["export", str(session), "--frame", "0", "--format", fmt, "--watertight", "--out", str(closed_dir)]) == 0
    capsys.readouterr()
    for side in ("right", "left"):
        name = f"frame_000000_{side}.{fmt}"
        as_recorded = trimesh.load(open_dir / name, process=False, maintain_order=True, force="mesh")
        assert not as_recorded.is_watertight  # the model's hand is open at the wrist
        closed = trimesh.load(closed_dir / name, process=False, maintain_order=True, force="mesh")
        assert closed.is_watertight and closed.is_winding_consistent, side
        assert closed.volume > 0, side  # normals out, for the left (mirrored) hand too
        # mm for OBJ/PLY, m for GLB: a hand is ~100-500 cm^3
        assert 1e5 < closed.volume * (1e9 if fmt == "glb" else 1.0) < 5e5, side
        assert len(closed.vertices) == len(asset.vertices) + 1  # the cap's centre, appended
        np.testing.assert_allclose(closed.vertices[:-1], as_recorded.vertices, atol=1e-6)


def test_watertight_does_not_go_with_animated_exports(tmp_path: Path, session: Path, capsys) -> None:
    assert main(["export", str(session), "--all", "--watertight", "--out", str(tmp_path / "h.bvh")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["handviz: error: --watertight caps per-frame meshes; it does not go with --animated or bvh"]
    assert not (tmp_path / "h.bvh").exists()
