"""Test helpers: evaluate an animated glTF as a viewer would, and run the Khronos validator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[1]
_VALIDATE_JS = """
// node -e: argv[1] is the first argument after the script.
const validator = require(process.argv[1]);
const fs = require('fs');
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])), {maxIssues: 200})
  .then(r => console.log(JSON.stringify(r.issues)))
  .catch(e => { console.error(e); process.exit(3); });
"""


def read_accessor(gltf: gl.GLTF2, index: int) -> np.ndarray:
    """An accessor's data as a numpy array (rows of its element width)."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    blob = gltf.binary_blob()
    dtype = {gl.FLOAT: np.float32, gl.UNSIGNED_BYTE: np.uint8, gl.UNSIGNED_SHORT: np.uint16,
             gl.UNSIGNED_INT: np.uint32}[acc.componentType]
    width = {gl.SCALAR: 1, gl.VEC3: 3, gl.VEC4: 4, gl.MAT4: 16}[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    data = np.frombuffer(blob, dtype, count=acc.count * width, offset=start)
    return data.reshape(acc.count, width) if width > 1 else data


def _local(node: gl.Node, rotation=None, translation=None) -> np.ndarray:
    m = np.eye(4)
    q = rotation if rotation is not None else (node.rotation or [0, 0, 0, 1])
    m[:3, :3] = Rotation.from_quat(q).as_matrix()
    m[:3, 3] = translation if translation is not None else (node.translation or [0, 0, 0])
    return m


def evaluate_skins(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per skin (by name): 'times' (T,), 'joints' (T, J, 3) joint origins at every key, as the
    node hierarchy and animation put them, and 'skinned_joints': the rest joints carried by the
    skinning matrices (G_j @ inverseBind_j), which is what moves the mesh, and those
    'joint_matrices' (T, J, 4, 4)."""
    gltf = gl.GLTF2().load(str(path))
    parent = {c: i for i, n in enumerate(gltf.nodes) for c in (n.children or [])}
    out = {}
    animation = gltf.animations[0]
    for skin in gltf.skins:
        keyed: dict[tuple[int, str], np.ndarray] = {}
        times = None
        for ch in animation.channels:
            if ch.target.node in skin.joints:
                sampler = animation.samplers[ch.sampler]
                times = read_accessor(gltf, sampler.input)
                keyed[(ch.target.node, ch.target.path)] = read_accessor(gltf, sampler.output)
        ibm = read_accessor(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
        rest = np.linalg.inv(ibm.astype(np.float64))[:, :3, 3]
        joints, skinned, matrices = [], [], []
        for t in range(len(times)):
            world: dict[int, np.ndarray] = {}

            def global_of(n: int) -> np.ndarray:
                if n not in world:
                    rot = keyed.get((n, "rotation"))
                    trans = keyed.get((n, "translation"))
                    local = _local(gltf.nodes[n], None if rot is None else rot[t], None if trans is None else trans[t])
                    world[n] = local if n not in parent else global_of(parent[n]) @ local
                return world[n]

            G = np.stack([global_of(n) for n in skin.joints])
            joints.append(G[:, :3, 3])
            M = G @ ibm
            matrices.append(M)
            skinned.append((M[:, :3, :3] @ rest[..., None])[..., 0] + M[:, :3, 3])
        out[skin.name] = {"times": np.asarray(times, np.float64), "joints": np.stack(joints),
                          "skinned_joints": np.stack(skinned), "joint_matrices": np.stack(matrices)}
    return out


def skinned_vertices(path: Path, mesh_name: str, joint_matrices: np.ndarray) -> np.ndarray:
    """(T, V, 3) the mesh `mesh_name` skinned by (T, J, 4, 4) joint matrices, as glTF defines it:
    v' = sum_k WEIGHTS_0[k] * jointMatrix[JOINTS_0[k]] @ v."""
    gltf = gl.GLTF2().load(str(path))
    prim = next(m for m in gltf.meshes if m.name == mesh_name).primitives[0]
    verts = read_accessor(gltf, prim.attributes.POSITION).astype(np.float64)
    joints = read_accessor(gltf, prim.attributes.JOINTS_0).astype(np.int64)
    weights = read_accessor(gltf, prim.attributes.WEIGHTS_0).astype(np.float64)
    M = np.einsum("vk,tvkij->tvij", weights, joint_matrices[:, joints])  # (T, V, 4, 4)
    return (M[..., :3, :3] @ verts[:, :, None])[..., 0] + M[..., :3, 3]


def validator_module() -> Path | None:
    """The npm gltf-validator package: $HANDVIZ_GLTF_VALIDATOR, or .ci/node (see .ci/run)."""
    candidates = [os.environ.get("HANDVIZ_GLTF_VALIDATOR"), REPO / ".ci" / "node" / "node_modules" / "gltf-validator"]
    for c in candidates:
        if c and (Path(c) / "package.json").is_file() and shutil.which("node"):
            return Path(c)
    return None


def validate(path: Path, module: Path) -> list[dict]:
    """The Khronos validator's issue messages for `path` (each has code, severity, message)."""
    done = subprocess.run(["node", "-e", _VALIDATE_JS, str(module.resolve()), str(path)],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)["messages"]
