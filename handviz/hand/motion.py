"""A recorded hand's motion as a rig with keys: what animated glTF and BVH files hold.

Files for Blender and mocap tools animate a skeleton: per key, each bone's rotation (in its
parent's frame) and translations. The session holds 21 joints per frame instead, so the open hand
is fitted to them with one shape for the whole track and per-frame pose (handviz.hand.fit): the
rotations, which pose the mesh. A rig with fixed bones (BVH) cannot follow the cascade's joints
closely: its bone lengths and palm change from frame to frame and differ from the model's
(a real track's fit is off by ~5 mm mean, 15+ mm max). So the motion also carries per-key bone
translations (each joint's session offset in its parent's posed frame), with which a skeleton
lands on the session's joints exactly while the rotations still carry the pose (glTF keys them). Left hands are fitted as mirrored right hands and
mirrored back: positions x -> -x, rotations M R M with M = diag(-1, 1, 1), which keeps every
rotation proper, and the triangles' winding is reversed so normals stay outward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handviz.hand.articulation import angles_to_rotmats_np, joint_frames
from handviz.hand.asset import HandAsset, load_hand_asset
from handviz.hand.fit import FitConfig, fit_hand_to_joints
from handviz.hand.rotations import axis_angle_to_rotmat_np
from handviz.types import NUM_JOINTS, HandJoint

MIRROR = np.diag([-1.0, 1.0, 1.0])
#: Enough Adam steps for a shared shape to settle (the per-frame default is 150).
MOTION_FIT_ITERATIONS = 300


def bone_names(handedness: str) -> tuple[str, ...]:
    """'wrist.R', 'thumb_cmc.R', ... in MediaPipe order: Blender's .L/.R names, so its mirror tools
    pair the two hands' bones."""
    side = "L" if handedness == "Left" else "R"
    return tuple(f"{joint.name.lower()}.{side}" for joint in HandJoint)


@dataclass
class HandMotion:
    """One hand track, in the file's units and frame (positions scaled; rotations unitless).

    times: (T,) s from the first recorded frame; local_rotations: (T, 21, 3, 3), bone j's rotation
    in its parent's frame (the root's in the file's frame); root_translation: (T, 3) the fitted
    wrist, for a rig with fixed bones; keyed_translations: (T, 21, 3) each bone's translation in its
    parent's frame that puts it on the session's joint (the root's: the session's wrist);
    rest_joints: (21, 3) with identity rotations (the bind pose); rest_vertices: (V, 3);
    faces: (F, 3) outward; skin_weights: (V, 21); target_joints: (T, 21, 3) the session's joints;
    fit_error_mm: (T,) mean distance of the fitted joints to them.
    """

    handedness: str
    names: tuple[str, ...]
    parents: tuple[int, ...]
    times: np.ndarray
    local_rotations: np.ndarray
    root_translation: np.ndarray
    keyed_translations: np.ndarray
    rest_joints: np.ndarray
    rest_vertices: np.ndarray
    faces: np.ndarray
    skin_weights: np.ndarray
    target_joints: np.ndarray
    fit_error_mm: np.ndarray

    @property
    def bone_offsets(self) -> np.ndarray:
        """(21, 3) each joint's rest position relative to its parent (the root's: its rest position)."""
        offsets = self.rest_joints.copy()
        for j, parent in enumerate(self.parents):
            if parent >= 0:
                offsets[j] = self.rest_joints[j] - self.rest_joints[parent]
        return offsets

    def fixed_translations(self) -> np.ndarray:
        """(T, 21, 3) the translations of a rig with fixed bones: the rest offsets, the root fitted."""
        translations = np.repeat(self.bone_offsets[None], len(self.times), axis=0)
        translations[:, self.parents.index(-1)] = self.root_translation
        return translations


def global_transforms(local_rotations: np.ndarray, translations: np.ndarray,
                      parents: tuple[int, ...]) -> np.ndarray:
    """Forward kinematics as glTF evaluates nodes: G_j = G_parent [R_j | t_j].

    local_rotations: (T, J, 3, 3); translations: (T, J, 3) in the parent's frame. Returns (T, J, 4, 4)."""
    n = local_rotations.shape[0]
    out = np.zeros((n, len(parents), 4, 4))
    for j, parent in enumerate(parents):  # parents come before their children
        local = np.zeros((n, 4, 4))
        local[:, :3, :3] = local_rotations[:, j]
        local[:, :3, 3] = translations[:, j]
        local[:, 3, 3] = 1.0
        out[:, j] = local if parent < 0 else out[:, parent] @ local
    return out


def keyed_translations(local_rotations: np.ndarray, parents: tuple[int, ...], joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) translations with which global_transforms puts every joint on `joints` (T, J, 3):
    each joint's offset from its parent, expressed in the parent's posed frame."""
    rotations = np.zeros_like(local_rotations)
    out = np.zeros_like(joints)
    for j, parent in enumerate(parents):
        if parent < 0:
            rotations[:, j], out[:, j] = local_rotations[:, j], joints[:, j]
            continue
        rotations[:, j] = rotations[:, parent] @ local_rotations[:, j]
        offset = joints[:, j] - joints[:, parent]
        out[:, j] = np.einsum("tij,ti->tj", rotations[:, parent], offset)  # R^T offset
    return out


def posed_joints(motion: HandMotion, keyed: bool = True) -> np.ndarray:
    """(T, 21, 3) joint positions at each key: with the keyed translations (glTF) or fixed bones (BVH)."""
    translations = motion.keyed_translations if keyed else motion.fixed_translations()
    return global_transforms(motion.local_rotations, translations, motion.parents)[:, :, :3, 3]


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(T, 3, 3) proper rotations R minimising sum_k |R src_k - dst_tk|; src (K, 3), dst (T, K, 3)."""
    u, _, vt = np.linalg.svd(np.einsum("ki,tkj->tij", src, dst))
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", u, vt)))
    fix = np.ones((len(dst), 3))
    fix[:, 2] = d
    return np.einsum("tji,tj,tkj->tik", vt, fix, u)  # V diag(1, 1, d) U^T


def _swing(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T, 3, 3) the smallest rotations taking directions u (T, 3) onto v (T, 3)."""
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    sin, cos = np.linalg.norm(axis, axis=-1), np.einsum("ti,ti->t", u, v)
    return axis_angle_to_rotmat_np(axis / np.maximum(sin, 1e-12)[:, None], np.arctan2(sin, cos))


def session_bones(rotations: np.ndarray, rest_joints: np.ndarray, parents: tuple[int, ...],
                  targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fitted rig re-boned for a file with fixed bones (BVH): (rest joints (21, 3), local
    rotations (T, 21, 3, 3)), for the root at targets[:, 0].

    The open hand's shape space cannot take every person's proportions, so its fixed bones miss
    the track by ~5 mm (dev set's 8 videos: 5.1 mm). Here every bone gets the track's median
    length, in its rest direction; the wrist's children sit at the track's mean palm (in the
    palm's own frame); the wrist turns by the rotation that best lays that palm on each frame's
    (Kabsch), and every other bone keeps its fitted rotation turned by the smallest swing that
    points its child at the track's joint (the fitted twist stays): 5.1 -> 1.5 mm.
    """
    tgt = np.asarray(targets, np.float64)
    offsets = rest_joints - rest_joints[list(np.maximum(parents, 0))]
    for j, parent in enumerate(parents):
        if parent >= 0:
            length = np.median(np.linalg.norm(tgt[:, j] - tgt[:, parent], axis=-1))
            offsets[j] *= length / max(float(np.linalg.norm(offsets[j])), 1e-12)
    root = parents.index(-1)
    palm = [c for c, p in enumerate(parents) if p == root]
    seen = tgt[:, palm] - tgt[:, [root]]
    offsets[palm] = np.einsum("tji,tkj->tki", _kabsch(offsets[palm], seen), seen).mean(axis=0)  # R^T x
    local = np.array(rotations, np.float64)
    posed = np.zeros_like(local)
    at = np.zeros_like(tgt)
    for j, parent in enumerate(parents):  # parents come before their children
        if parent < 0:
            local[:, j] = _kabsch(offsets[palm], seen)
            posed[:, j], at[:, j] = local[:, j], tgt[:, j]
            continue
        at[:, j] = at[:, parent] + posed[:, parent] @ offsets[j]
        children = [c for c, p in enumerate(parents) if p == j]
        if children:
            child = children[0]
            want = np.einsum("tji,tj->ti", posed[:, parent], tgt[:, child] - at[:, j])  # parent's frame
            local[:, j] = _swing(local[:, j] @ offsets[child], want) @ local[:, j]
        posed[:, j] = posed[:, parent] @ local[:, j]
    rest = np.zeros_like(offsets)
    for j, parent in enumerate(parents):
        rest[j] = rest_joints[j] if parent < 0 else rest[parent] + offsets[j]
    return rest, local


def fit_motion(joints_mm: np.ndarray, times: np.ndarray, handedness: str, scale: float = 1.0,
               asset: HandAsset | None = None, iterations: int = MOTION_FIT_ITERATIONS,
               fixed_bones: bool = False) -> HandMotion:
    """Fit the open hand to one track of joints and return it as a rig with keys.

    joints_mm: (T, 21, 3) mm, the session's frame; times: (T,) s, increasing; scale: file units per
    mm (1e-3 for metres). fixed_bones: re-bone the rig to the track (`session_bones`) for a file
    whose bones cannot change (BVH); its rest pose then no longer binds the mesh (glTF: False).
    """
    joints_mm = np.asarray(joints_mm, np.float64)
    if joints_mm.ndim != 3 or joints_mm.shape[1:] != (NUM_JOINTS, 3) or len(joints_mm) == 0:
        raise ValueError(f"joints must be (T, 21, 3) with T >= 1; got {joints_mm.shape}")
    asset = asset or load_hand_asset()
    left = handedness == "Left"
    targets = joints_mm * np.diag(MIRROR) if left else joints_mm
    fit = fit_hand_to_joints(targets.astype(np.float32),
                             cfg=FitConfig(iterations=iterations, shared_shape=True))
    shape = fit.shape[0].astype(np.float64)
    rest_joints = asset.rest_joints + np.einsum("s,sjc->jc", shape, asset.shape_basis_joints)
    rest_verts = asset.vertices + np.einsum("s,svc->vc", shape, asset.shape_basis_verts)
    rotations = angles_to_rotmats_np(fit.angles, joint_frames(asset.rest_joints, asset.joint_flex_axes))
    rotations[:, 0] = fit.global_rot.astype(np.float64) @ rotations[:, 0]
    root = rest_joints[0] + fit.translation.astype(np.float64)
    error_mm = fit.error_mm.astype(np.float64)
    parents = tuple(int(p) for p in asset.parents)
    if fixed_bones:
        rest_joints, rotations = session_bones(rotations, rest_joints, parents, targets)
        root = targets[:, 0].astype(np.float64)
        posed = global_transforms(rotations, _fixed(rest_joints, parents, root), parents)[:, :, :3, 3]
        error_mm = np.linalg.norm(posed - targets, axis=-1).mean(axis=1)
    faces = np.asarray(asset.faces, np.int64)
    if left:
        rotations = MIRROR @ rotations @ MIRROR
        root, rest_joints, rest_verts = root @ MIRROR, rest_joints @ MIRROR, rest_verts @ MIRROR
        faces = faces[:, ::-1]
    return HandMotion(
        handedness=handedness, names=bone_names(handedness), parents=parents,
        times=np.asarray(times, np.float64), local_rotations=rotations, root_translation=root * scale,
        keyed_translations=keyed_translations(rotations, parents, joints_mm * scale), rest_joints=rest_joints * scale,
        rest_vertices=rest_verts * scale, faces=np.ascontiguousarray(faces),
        skin_weights=np.asarray(asset.skin_weights, np.float64), target_joints=joints_mm * scale,
        fit_error_mm=error_mm,
    )


def _fixed(rest_joints: np.ndarray, parents: tuple[int, ...], root: np.ndarray) -> np.ndarray:
    """(T, 21, 3) the translations of fixed bones: rest offsets, the root at root (T, 3)."""
    offsets = rest_joints - rest_joints[list(np.maximum(parents, 0))]
    out = np.repeat(offsets[None], len(root), axis=0)
    out[:, parents.index(-1)] = root
    return out
