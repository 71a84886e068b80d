"""Animated hands as one glTF 2.0 binary (.glb): skinned mesh, named bones, one animation.

Per hand track: a mesh node (the shaped rest mesh, 4 bone weights per vertex: exactly the model's
skinning) with a skin over 21 joint nodes named like 'index_pip.R' (the bind pose is the rest
hand, bones unrotated), and in the single animation a rotation and a translation channel per bone,
one key per recorded frame at its capture time (LINEAR; times are seconds, which is glTF's unit,
so tools play it at the recorded speed). The translations are the session's per-frame bone
offsets (HandMotion.keyed_translations): the cascade's bone lengths and palm change from frame to
frame, and only then do the joints land on the session's; the rotations pose the mesh. Positions are in the units the HandMotion
carries (metres for glTF tools). Written with pygltflib; accessors carry the min/max and the
targets the Khronos validator asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from handviz.hand.motion import HandMotion

_COMPONENT = {np.dtype(np.float32): gl.FLOAT, np.dtype(np.uint8): gl.UNSIGNED_BYTE,
              np.dtype(np.uint16): gl.UNSIGNED_SHORT, np.dtype(np.uint32): gl.UNSIGNED_INT}
_TYPE = {1: gl.SCALAR, 3: gl.VEC3, 4: gl.VEC4, 16: gl.MAT4}


class _Builder:
    """Appends arrays to one binary buffer, each in its own 4-byte-aligned buffer view."""

    def __init__(self) -> None:
        self.gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator="handviz"), scene=0)
        self.blob = bytearray()

    def accessor(self, array: np.ndarray, target: int | None = None, with_bounds: bool = False) -> int:
        array = np.ascontiguousarray(array)
        width = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
        offset = len(self.blob)
        self.blob += array.tobytes()
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.gltf.bufferViews.append(gl.BufferView(buffer=0, byteOffset=offset, byteLength=array.nbytes,
                                                   target=target))
        flat = array.reshape(len(array), width)
        bounds = {}
        if with_bounds:
            bounds = dict(min=[float(v) for v in flat.min(0)], max=[float(v) for v in flat.max(0)])
        self.gltf.accessors.append(gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1,
                                               componentType=_COMPONENT[array.dtype], count=len(array),
                                               type=_TYPE[width], **bounds))
        return len(self.gltf.accessors) - 1

    def node(self, **fields) -> int:
        self.gltf.nodes.append(gl.Node(**fields))
        return len(self.gltf.nodes) - 1

    def finish(self) -> gl.GLTF2:
        self.gltf.buffers.append(gl.Buffer(byteLength=len(self.blob)))
        self.gltf.set_binary_blob(bytes(self.blob))
        return self.gltf


def _top4_weights(skin_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, 21) -> JOINTS_0 (V, 4) uint8 and WEIGHTS_0 (V, 4) float32 summing to 1 in float32.

    Unused slots get joint 0 and weight 0 (the validator wants no repeated joint with a weight)."""
    order = np.argsort(-skin_weights, axis=1)[:, :4]
    weights = np.take_along_axis(skin_weights, order, axis=1)
    weights = np.where(weights > 1e-6, weights, 0.0)
    weights = weights / weights.sum(1, keepdims=True)
    joints = np.where(weights > 0, order, 0).astype(np.uint8)
    w32 = weights.astype(np.float32)
    w32[:, 0] += np.float32(1.0) - w32.sum(1, dtype=np.float32)  # largest slot takes the rounding
    return joints, w32


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(T, 3, 3) -> (T, 4) unit xyzw (glTF's order), signs chosen so neighbours are close."""
    q = Rotation.from_matrix(rotations).as_quat()
    for t in range(1, len(q)):
        if np.dot(q[t], q[t - 1]) < 0:
            q[t] = -q[t]
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit normals (V, 3), outward for outward-wound faces."""
    tri = verts[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(verts)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.where(length > 0, length, 1.0)).astype(np.float32)


def _add_hand(b: _Builder, motion: HandMotion, colour: Sequence[float], animation: gl.Animation) -> list[int]:
    """Mesh, skin, joints and channels of one track; returns its scene root nodes."""
    side = motion.handedness.lower()
    verts = motion.rest_vertices.astype(np.float32)
    joints0, weights0 = _top4_weights(motion.skin_weights)
    attributes = gl.Attributes(
        POSITION=b.accessor(verts, gl.ARRAY_BUFFER, with_bounds=True),
        NORMAL=b.accessor(_vertex_normals(motion.rest_vertices, motion.faces), gl.ARRAY_BUFFER),
        JOINTS_0=b.accessor(joints0, gl.ARRAY_BUFFER), WEIGHTS_0=b.accessor(weights0, gl.ARRAY_BUFFER))
    indices = b.accessor(motion.faces.astype(np.uint32).reshape(-1), gl.ELEMENT_ARRAY_BUFFER)
    b.gltf.materials.append(gl.Material(
        name=f"hand_{side}", pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=[*colour, 1.0], metallicFactor=0.0, roughnessFactor=0.7)))
    b.gltf.meshes.append(gl.Mesh(name=f"hand_{side}", primitives=[gl.Primitive(
        attributes=attributes, indices=indices, material=len(b.gltf.materials) - 1)]))

    offsets = motion.bone_offsets
    first = len(b.gltf.nodes)
    for j, name in enumerate(motion.names):
        children = [first + c for c, p in enumerate(motion.parents) if p == j]
        b.node(name=name, translation=[float(v) for v in offsets[j]], children=children or None)
    inverse_bind = np.zeros((len(motion.names), 4, 4), np.float32)
    inverse_bind[:] = np.eye(4)
    inverse_bind[:, :3, 3] = -motion.rest_joints  # bind pose: unrotated bones at the rest joints
    ibm = b.accessor(inverse_bind.transpose(0, 2, 1).reshape(-1, 16))  # glTF matrices are column-major
    b.gltf.skins.append(gl.Skin(name=f"hand_{side}", inverseBindMatrices=ibm, skeleton=first,
                                joints=list(range(first, first + len(motion.names)))))
    mesh_node = b.node(name=f"hand_{side}_mesh", mesh=len(b.gltf.meshes) - 1, skin=len(b.gltf.skins) - 1)

    times = b.accessor(motion.times.astype(np.float32), with_bounds=True)

    def channel(node: int, path: str, values: np.ndarray) -> None:
        animation.samplers.append(gl.AnimationSampler(input=times, output=b.accessor(values),
                                                      interpolation=gl.ANIM_LINEAR))
        animation.channels.append(gl.AnimationChannel(sampler=len(animation.samplers) - 1,
                                                      target=gl.AnimationChannelTarget(node=node, path=path)))

    for j in range(len(motion.names)):
        channel(first + j, "translation", motion.keyed_translations[:, j].astype(np.float32))
        channel(first + j, "rotation", _quaternions(motion.local_rotations[:, j]))
    return [mesh_node, first]


def write_motion_glb(motions: Sequence[HandMotion], path: str | Path,
                     colours: Sequence[Sequence[float]]) -> Path:
    """One .glb with every track (colours: RGB 0-1 per track); returns the path."""
    if not motions:
        raise ValueError("no hand track to write")
    for m in motions:
        if len(m.times) > 1 and not (np.diff(m.times.astype(np.float32)) > 0).all():
            raise ValueError("key times must increase")
    b = _Builder()
    animation = gl.Animation(name="session", samplers=[], channels=[])
    roots: list[int] = []
    for motion, colour in zip(motions, colours):
        roots += _add_hand(b, motion, colour, animation)
    b.gltf.animations.append(animation)
    b.gltf.scenes.append(gl.Scene(name="handviz", nodes=roots))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    b.finish().save_binary(str(path))
    return path
