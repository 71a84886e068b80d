"""Closing the hand mesh for 3D printing and physics engines (`handviz export --watertight`).

The model's hand is open at the wrist: one loop of 20 boundary edges. Slicers refuse such a
mesh or guess, and physics engines cannot take its volume or inertia. `cap_holes` closes every
boundary loop with a fan of triangles around a new vertex at the loop's centroid (the wrist ring
is nearly planar and convex, so the fan neither folds over nor cuts into the hand). The original
vertices keep their indices and the new ones come after them, so a capped export still lines up
vertex for vertex with an open one.
"""

from __future__ import annotations

import numpy as np


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """faces (F, 3) -> each hole as its vertex indices in order (a list of (L,) int64 arrays).

    A boundary edge is a face edge a -> b that no other face uses; a loop follows those edges in
    the faces' own direction. ValueError when the boundary is not a set of simple loops (a
    vertex where two holes touch), which a fan could not close.
    """
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, inverse, counts = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True, return_counts=True)
    boundary = edges[counts[inverse.ravel()] == 1]
    following = {int(a): int(b) for a, b in boundary}
    if len(following) != len(boundary):
        raise ValueError("the mesh's holes touch at a vertex; they cannot be capped one by one")
    loops = []
    while following:
        start = next(iter(following))
        loop = [start]
        vertex = following.pop(start)
        while vertex != start:
            if vertex not in following:
                raise ValueError("the mesh's boundary is not a closed loop; it cannot be capped")
            loop.append(vertex)
            vertex = following.pop(vertex)
        loops.append(np.asarray(loop, np.int64))
    return loops


def cap_holes(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """verts (V, 3), faces (F, 3) wound outwards -> verts (V + H, 3), faces (F + E, 3): each of
    the H holes (E boundary edges in all) closed by a fan around its centroid, vertex V + k.

    A hole's face edge a -> b gets the cap triangle (b, a, centre): the shared edge then runs once
    each way, as in every closed, consistently wound surface, so the cap faces outwards too.
    A mesh without holes comes back unchanged.
    """
    verts = np.asarray(verts)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    new_verts, new_faces = [verts], [faces]
    for k, loop in enumerate(boundary_loops(faces)):
        centre = len(verts) + k
        new_verts.append(verts[loop].mean(axis=0, keepdims=True).astype(verts.dtype))
        new_faces.append(np.stack([np.roll(loop, -1), loop, np.full_like(loop, centre)], axis=1))
    return np.concatenate(new_verts), np.concatenate(new_faces)
