"""Off-screen renders of the posed hand with PyVista, seen through an OpenCV-style camera.

One HandRenderer per worker process: the plotter and mesh actor are built once and only
their points, colour and lights change per sample (cheap), as in STYLE.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvista as pv

from handviz.geometry import vertex_normals


@dataclass
class Appearance:
    """How one sample looks: skin colour, lights and material."""

    skin_rgb: tuple[float, float, float]
    light_dirs: np.ndarray  # (L, 3) light positions in camera coordinates (mm)
    light_intensities: np.ndarray  # (L,)
    ambient: float
    specular: float


#: Skin tones from light to dark (sRGB 0-1), sampled with jitter.
SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.92, 0.72, 0.60], [0.86, 0.64, 0.52], [0.78, 0.57, 0.44],
     [0.66, 0.46, 0.34], [0.55, 0.37, 0.26], [0.42, 0.28, 0.20], [0.32, 0.21, 0.15]],
    dtype=np.float32,
)


def random_appearance(rng: np.random.Generator) -> Appearance:
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    n_lights = int(rng.integers(1, 4))
    dirs = rng.normal(size=(n_lights, 3))
    dirs[:, 2] = -np.abs(dirs[:, 2]) - 0.3  # lights mostly on the camera's side of the hand
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * 2000.0
    return Appearance(
        skin_rgb=tuple(float(c) for c in np.clip(tone, 0, 1)),
        light_dirs=dirs.astype(np.float32),
        light_intensities=rng.uniform(0.4, 1.0, n_lights).astype(np.float32),
        ambient=float(rng.uniform(0.15, 0.45)),
        specular=float(rng.uniform(0.0, 0.4)),
    )


class HandRenderer:
    """Render a hand mesh (mm, camera frame) to an RGBA image with a pinhole camera K."""

    def __init__(self, faces: np.ndarray, n_vertices: int, width: int, height: int) -> None:
        self.width, self.height = width, height
        cells = np.hstack([np.full((len(faces), 1), 3, dtype=np.int64), faces.astype(np.int64)])
        self.faces = np.asarray(faces, np.int64)
        self.mesh = pv.PolyData(np.zeros((n_vertices, 3), np.float32), cells.ravel())
        self.mesh.point_data["Normals"] = np.zeros((n_vertices, 3), np.float32)
        self.mesh.point_data.active_normals_name = "Normals"
        self.plotter = pv.Plotter(off_screen=True, window_size=(width, height), lighting="none")
        # smooth_shading=True would make pyvista render a private copy; we keep our own normals
        # on this mesh so updating its points updates the render.
        self.actor = self.plotter.add_mesh(self.mesh, color=(0.8, 0.6, 0.5), smooth_shading=False)
        self.actor.prop.interpolation = "gouraud"
        self.plotter.set_background("black")

    def _set_camera(self, K: np.ndarray) -> None:
        cam = self.plotter.camera
        cam.position = (0.0, 0.0, 0.0)
        cam.focal_point = (0.0, 0.0, 1000.0)
        cam.up = (0.0, -1.0, 0.0)
        cam.view_angle = float(np.rad2deg(2 * np.arctan(self.height / (2 * K[1, 1]))))
        # Principal point away from the centre shifts the window (VTK's window centre is in [-1, 1]).
        cam.SetWindowCenter(float(-(K[0, 2] - self.width / 2) / (self.width / 2)),
                            float((K[1, 2] - self.height / 2) / (self.height / 2)))
        cam.clipping_range = (10.0, 5000.0)

    def render(self, verts: np.ndarray, K: np.ndarray, look: Appearance) -> np.ndarray:
        """verts: (V, 3) mm camera frame. Returns (H, W, 4) uint8 RGBA (alpha = hand mask)."""
        self.mesh.points[:] = verts
        self.mesh.point_data["Normals"][:] = vertex_normals(verts, self.faces)
        prop = self.actor.prop
        prop.color = look.skin_rgb
        prop.ambient = look.ambient
        prop.diffuse = 1.0 - 0.5 * look.ambient
        prop.specular = look.specular
        prop.specular_power = 12.0
        self.plotter.remove_all_lights()
        for pos, inten in zip(look.light_dirs, look.light_intensities):
            light = pv.Light(position=tuple(float(p) for p in pos), focal_point=(0, 0, 500),
                             intensity=float(inten), light_type="scene light")
            self.plotter.add_light(light)
        self._set_camera(K)
        self.plotter.render()  # screenshot() alone returns the last rendered image
        return self.plotter.screenshot(transparent_background=True, return_img=True)

    def close(self) -> None:
        self.plotter.close()
