"""One adapter that owns every pyvista actor of the hand view and changes them in place.

Per hand slot (right, left): the aggregate mesh (smooth shaded, per-hand colour), the skeleton
(bones + joints), and the hypothesis cloud (all N x 21 joint hypotheses as translucent round dots,
coloured by their joint's spread on a fixed mm scale). Actors are made once; a new result writes
`points[:]` and resets the camera's clipping range (so no depth ever slices the hand). The scene
never renders by itself: its owner renders once per displayed frame (see DESIGN.md, "Frame
budget"). The view starts beside the real camera (its position turned about the hand, y down),
so the cloud's depth is in sight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyvista as pv
from vtkmodules.vtkRenderingCore import vtkTextActor

from handviz.geometry import vertex_normals
from handviz.types import BONES, NUM_JOINTS, HandEstimate

#: Hand slots, keyed by true handedness.
SLOTS: tuple[str, ...] = ("Right", "Left")
HAND_COLOURS = {"Right": (0.93, 0.62, 0.45), "Left": (0.45, 0.68, 0.93)}
BONE_COLOURS = {"Right": (0.75, 0.33, 0.15), "Left": (0.15, 0.38, 0.75)}
#: Colour scale of the cloud: each joint's 90 % radius in mm (HandEstimate.joint_radius_90;
#: fixed, so colours mean the same every frame). On the dev set's real photos (stop 37) the radii
#: run from about 8 to 40 mm (1st to 99th percentile, median 16 mm); the 4 % beyond 30 mm show
#: at the top colour.
SPREAD_RANGE_MM = (0.0, 30.0)
#: The distance cue: the wrist's ray from the nearest to the farthest adult hand (handviz.placement).
DISTANCE_COLOUR = (0.8, 0.8, 0.8)
SPREAD_CMAP = "plasma"
BACKGROUND = "#1e2127"
#: The status line's font (points) and its top-left corner (fractions of the view).
STATUS_FONT_PT = 9
STATUS_CORNER = (0.006, 0.992)
#: Where the view looks when there is no hand yet (mm in front of the camera).
DEFAULT_DEPTH_MM = 450.0
#: The default view turns about the hand from the camera's own position (degrees: sideways, then
#: down onto the hand). Every hypothesis lies on its keypoint's ray, so from the camera itself a
#: joint's 32 hypotheses and the wrist's distance interval each show as one dot: the doubt is in
#: depth, and only a view from the side shows it.
VIEW_AZIMUTH_DEG = 30.0
VIEW_ELEVATION_DEG = 15.0
#: With Follow hand off the view stays put until a hand's joints leave this part of it (x and y
#: ranges in normalised device coordinates, -1 to 1; the right edge clear of the colour bar), and
#: then it looks at the hands again, from the same direction and at the same zoom. Seen from
#: beside the camera, a hand that moves across the image can leave a fixed view (the demo clip:
#: the hand clear of the edges and the colour bar in 66 % of its frames; from the camera's own
#: position in all; with this rule in 97 %).
SIGHT_BOX = ((-0.9, 0.68), (-0.9, 0.9))


def _distance_text(distance_mm: tuple[float, float]) -> str:
    """(near, far) mm -> "36-47 cm away": where the hand is, for the status line."""
    return f"{distance_mm[0] / 10:.0f}-{distance_mm[1] / 10:.0f} cm away"


def _line_cells(pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    return np.array([[2, a, b] for a, b in pairs], dtype=np.int64).ravel()


def text_without_mathtext() -> None:
    """Draw every VTK text with FreeType alone. VTK hands any string with an unescaped '|' (or a
    pair of '$') to matplotlib's MathText, in Python on the GUI thread, and the status line has a
    '|' that changes with the hand's distance: at 1920x1080 a third of the GUI thread went to
    matplotlib's parser. FreeType draws the same characters."""
    from vtkmodules.vtkRenderingCore import vtkTextRenderer

    renderer = vtkTextRenderer.GetInstance()  # exists once pyvista has loaded VTK's text modules
    if renderer is not None:
        renderer.SetDefaultBackend(vtkTextRenderer.FreeType)


def status_text_actor(plotter: pv.Plotter, text: str) -> vtkTextActor:
    """The status line: one text actor at a fixed size, pinned to the view's upper left corner.
    (pyvista's corner annotation fits its font to the view whenever the text changes, and each
    size it tries made VTK's FreeType cache open the font again: a fifth of the GUI thread's
    time at 1920x1080, with the distance changing every frame.)"""
    actor = plotter.add_text(text, position=(0, 0), font_size=STATUS_FONT_PT, color="white", render=False)
    actor.GetTextProperty().SetVerticalJustificationToTop()
    corner = actor.GetPositionCoordinate()
    corner.SetCoordinateSystemToNormalizedViewport()
    corner.SetValue(*STATUS_CORNER)
    return actor


def round_points(actor: pv.Actor) -> None:
    """Draw a points actor as flat round dots (a fragment shader cuts the corners of GL's square
    points). Spheres (render_points_as_spheres) shade and write the depth of every fragment: for
    the 672 points of 32 hypotheses the rasteriser spent 6.0-6.6 ms a render against 4.5-4.7 ms
    for dots (a 575x522 view, llvmpipe). Before pyvista 0.48 the points stay square."""
    if hasattr(actor, "set_point_sprite_shape"):
        actor.set_point_sprite_shape("circle")


def configure_for_software_gl(plotter: pv.Plotter) -> None:
    """Settings that keep a render cheap on software OpenGL (llvmpipe: Xvfb, VMs, GPU-less laptops):
    no MSAA (3x the frame time), and plain alpha blending instead of order-independent
    translucency (OIT costs ~5 ms a frame there; unsorted blending is fine for a point cloud)."""
    plotter.disable_anti_aliasing()
    plotter.ren_win.SetMultiSamples(0)
    plotter.renderer.SetUseOIT(False)


@dataclass
class _HandSlot:
    """The actors of one hand, and the data objects they draw (updated in place)."""

    mesh: pv.PolyData | None
    mesh_actor: object | None
    skeleton: pv.PolyData
    skeleton_actor: object
    cloud: pv.PolyData
    cloud_actor: object
    distance: pv.PolyData  # the wrist's ray between the near and far ends of distance_mm
    distance_actor: object
    distance_mm: tuple[float, float] | None = None
    present: bool = False  # a hand of this slot is in the current frame
    has_mesh: bool = False  # ... and it came with vertices that match the faces


class HandScene:
    """The actors of up to two hands in `plotter` (any pyvista Plotter: a QtInteractor or an
    off-screen one). Call from the thread that owns the plotter's render window only."""

    def __init__(self, plotter: pv.Plotter, faces: np.ndarray | None = None) -> None:
        self.plotter = plotter
        configure_for_software_gl(plotter)
        text_without_mathtext()
        plotter.set_background(BACKGROUND)
        plotter.add_axes(interactive=False, line_width=2, color="white")
        self._faces: np.ndarray | None = None
        self._faces_flipped: np.ndarray | None = None
        self._mirrored = False
        self._cloud_visible = True
        self._skeleton_visible = True
        self._follow = False
        self._focus: np.ndarray | None = None
        self._vertical_fov_deg = 45.0
        self.status_text = "waiting for frames"
        self._slots: dict[str, _HandSlot] = {name: self._make_slot(name) for name in SLOTS}
        self._scalar_bar = plotter.add_scalar_bar(
            title="90% radius\n(mm)", mapper=self._slots["Right"].cloud_actor.mapper,
            n_labels=6, fmt="%.0f", vertical=True, position_x=0.86, position_y=0.1,
            width=0.06, height=0.45, title_font_size=12, label_font_size=11, color="white")
        self._scalar_bar.SetVerticalTitleSeparation(6)  # px: the title clear of the top label, at any render scale
        self._status = status_text_actor(plotter, self.status_text)
        if faces is not None:
            self.set_faces(faces)
        self._apply_visibility()
        self.reset_view()

    # ---- construction ----------------------------------------------------------------------
    def _make_slot(self, name: str) -> _HandSlot:
        skeleton = pv.PolyData(np.zeros((NUM_JOINTS, 3), np.float32))
        skeleton.lines = _line_cells(BONES)
        skeleton.verts = np.array([[1, j] for j in range(NUM_JOINTS)], dtype=np.int64).ravel()
        skeleton_actor = self.plotter.add_mesh(
            skeleton, color=BONE_COLOURS[name], line_width=4, point_size=9, render_lines_as_tubes=True,
            render_points_as_spheres=True, name=f"skeleton_{name}", reset_camera=False, render=False)
        cloud = pv.PolyData(np.zeros((NUM_JOINTS, 3), np.float32))
        cloud.point_data["spread_mm"] = np.zeros(NUM_JOINTS, np.float32)
        cloud_actor = self.plotter.add_mesh(
            cloud, scalars="spread_mm", cmap=SPREAD_CMAP, clim=SPREAD_RANGE_MM, style="points", point_size=7,
            render_points_as_spheres=False, opacity=0.35, show_scalar_bar=False, name=f"cloud_{name}",
            reset_camera=False, render=False)
        round_points(cloud_actor)
        distance = pv.PolyData(np.zeros((2, 3), np.float32))
        distance.lines = np.array([2, 0, 1], dtype=np.int64)
        distance.verts = np.array([1, 0, 1, 1], dtype=np.int64)
        distance_actor = self.plotter.add_mesh(
            distance, color=DISTANCE_COLOUR, line_width=2, point_size=6, opacity=0.8, name=f"distance_{name}",
            reset_camera=False, render=False)
        for actor in (skeleton_actor, cloud_actor, distance_actor):
            actor.SetVisibility(False)
        return _HandSlot(None, None, skeleton, skeleton_actor, cloud, cloud_actor, distance, distance_actor)

    def set_faces(self, faces: np.ndarray | None) -> None:
        """Triangles (F, 3) int of the estimates' vertices; None: no mesh (MediaPipe-only mode)."""
        if faces is not None:
            faces = np.asarray(faces, dtype=np.int64)
            if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
                faces = None
        same = (faces is None and self._faces is None) or (
            faces is not None and self._faces is not None and np.array_equal(faces, self._faces))
        if same:
            return
        self._faces = faces
        self._faces_flipped = None if faces is None else faces[:, ::-1].copy()
        for name, slot in self._slots.items():
            if slot.mesh_actor is not None:
                self.plotter.remove_actor(slot.mesh_actor, render=False)
                slot.mesh, slot.mesh_actor = None, None
            if faces is None:
                continue
            n_verts = int(faces.max()) + 1
            mesh = pv.PolyData(np.zeros((n_verts, 3), np.float32), self._mesh_cells())
            mesh.point_data.active_normals = np.tile(np.float32([0, 0, -1]), (n_verts, 1))
            slot.mesh = mesh
            slot.mesh_actor = self.plotter.add_mesh(
                mesh, color=HAND_COLOURS[name], smooth_shading=False, specular=0.25, specular_power=20,
                diffuse=0.85, ambient=0.15, name=f"mesh_{name}", reset_camera=False, render=False)
            # Gouraud with our own vertex normals: smooth, and half of Phong's cost on software GL.
            slot.mesh_actor.prop.interpolation = "gouraud"
            slot.mesh_actor.SetVisibility(False)

    def _mesh_cells(self) -> np.ndarray:
        faces = self._faces_flipped if self._mirrored else self._faces
        assert faces is not None
        return np.hstack([np.full((len(faces), 1), 3, np.int64), faces]).ravel()

    # ---- state the user toggles --------------------------------------------------------------
    @property
    def cloud_visible(self) -> bool:
        return self._cloud_visible

    def set_cloud_visible(self, visible: bool) -> None:
        self._cloud_visible = bool(visible)
        self._apply_visibility()

    def set_skeleton_visible(self, visible: bool) -> None:
        self._skeleton_visible = bool(visible)
        self._apply_visibility()

    def set_mirrored(self, mirrored: bool) -> None:
        """Show x -> -x (a selfie view). Winding is flipped too, so normals keep facing out."""
        if bool(mirrored) == self._mirrored:
            return
        self._mirrored = bool(mirrored)
        for slot in self._slots.values():
            for data in (slot.mesh, slot.skeleton, slot.cloud):
                if data is not None and data.n_points:
                    data.points[:, 0] *= -1.0
                    data.Modified()
            if slot.mesh is not None and self._faces is not None:
                slot.mesh.faces = self._mesh_cells()
                faces = self._faces_flipped if self._mirrored else self._faces
                slot.mesh.point_data.active_normals = vertex_normals(np.asarray(slot.mesh.points), faces)
        if self._focus is not None:
            self._focus = self._focus * np.array([-1.0, 1.0, 1.0])
        self.reset_view()

    @property
    def follow(self) -> bool:
        return self._follow

    def set_follow(self, follow: bool) -> None:
        self._follow = bool(follow)
        if self._follow and self._focus is not None:
            self._move_focus_to(self._focus)

    def reset_view(self) -> None:
        """Look at the hand from beside the camera: from the camera's position (y down, its
        vertical field of view) turned about the hand by VIEW_AZIMUTH_DEG and VIEW_ELEVATION_DEG,
        so the hypotheses' spread in depth is in sight."""
        cam = self.plotter.camera
        target = self._focus if self._focus is not None else np.array([0.0, 0.0, DEFAULT_DEPTH_MM])
        cam.position = (0.0, 0.0, 0.0)
        cam.focal_point = tuple(float(v) for v in target)
        cam.up = (0.0, -1.0, 0.0)
        cam.view_angle = self._vertical_fov_deg
        cam.Azimuth(VIEW_AZIMUTH_DEG)
        cam.Elevation(VIEW_ELEVATION_DEG)
        cam.OrthogonalizeViewUp()
        self.plotter.reset_camera_clipping_range()

    def set_intrinsics(self, K: np.ndarray, height: int) -> None:
        """Match the 3D view's field of view to the camera's (K (3, 3), image height px)."""
        self._vertical_fov_deg = math.degrees(2.0 * math.atan((height / 2.0) / float(K[1, 1])))

    # ---- per result -------------------------------------------------------------------------
    def show_hands(self, hands: list[HandEstimate], message: str = "") -> int:
        """Update every slot from this frame's estimates (first hand per handedness); returns the
        number of hands drawn. The clipping range follows the hands on every update, so a hand
        that moves away or closer is never cut by the near or far plane (Follow hand on or off)."""
        by_slot: dict[str, HandEstimate] = {}
        moved = False
        for hand in hands:
            by_slot.setdefault(hand.handedness if hand.handedness in SLOTS else "Right", hand)
        sign = np.array([-1.0 if self._mirrored else 1.0, 1.0, 1.0], np.float32)
        for name, slot in self._slots.items():
            hand = by_slot.get(name)
            slot.present = hand is not None
            if hand is not None:
                self._update_slot(slot, hand, sign)
        self._apply_visibility()
        if by_slot:
            centre = np.mean([h.joints_3d.mean(axis=0) for h in by_slot.values()], axis=0) * sign
            first = self._focus is None
            self._focus = centre.astype(np.float64)
            joints = np.concatenate([h.joints_3d for h in by_slot.values()]) * sign
            moved = self._follow or (not first and not self._in_sight(joints))
            if self._follow:
                self._move_focus_to(self._focus)  # resets the clipping range too
            elif moved:
                self._look_again_at(self._focus)
            elif first:
                self.reset_view()
        if not (by_slot and moved):  # once per frame: VTK walks every actor's bounds (~0.8 ms)
            self.plotter.reset_camera_clipping_range()
        self.status_text = message or (f"{len(by_slot)} hand(s)" if by_slot else "no hand")
        distances = [f"{name.lower()} {_distance_text(hand.distance_mm)}" for name, hand in by_slot.items()
                     if hand.distance_mm is not None]
        if distances:  # where the hand is, apart from the cloud's doubt about its shape
            self.status_text += " | " + ", ".join(distances)
        self._status.SetInput(self.status_text)
        return len(by_slot)

    def _update_slot(self, slot: _HandSlot, hand: HandEstimate, sign: np.ndarray) -> None:
        joints = np.asarray(hand.joints_3d, np.float32) * sign
        slot.skeleton.points[:] = joints
        hyps = np.asarray(hand.joint_hypotheses, np.float32).reshape(-1, 3) * sign
        spread = np.tile(hand.joint_radius_90, len(hyps) // NUM_JOINTS)
        if slot.cloud.n_points == len(hyps):
            slot.cloud.points[:] = hyps
            slot.cloud.point_data["spread_mm"][:] = spread
        else:  # the number of hypotheses changed: new point set, same actor
            fresh = pv.PolyData(hyps)
            fresh.point_data["spread_mm"] = spread
            slot.cloud.copy_from(fresh)
            slot.cloud.point_data.active_scalars_name = "spread_mm"
        slot.cloud.Modified()
        slot.distance_mm = hand.distance_mm
        if hand.distance_mm is not None:
            wrist = joints[0].astype(np.float64)
            direction = wrist / max(float(np.linalg.norm(wrist)), 1e-6)
            slot.distance.points[:] = np.outer(hand.distance_mm, direction).astype(np.float32)
            slot.distance.Modified()
        verts = np.asarray(hand.vertices, np.float32)
        if slot.mesh is not None and len(verts) == slot.mesh.n_points:
            slot.mesh.points[:] = verts * sign
            faces = self._faces_flipped if self._mirrored else self._faces
            slot.mesh.point_data.active_normals = vertex_normals(verts * sign, faces)
            slot.mesh.Modified()
            slot.has_mesh = True
        else:
            slot.has_mesh = False

    def _apply_visibility(self) -> None:
        for slot in self._slots.values():
            slot.skeleton_actor.SetVisibility(slot.present and self._skeleton_visible)
            # one hypothesis (MediaPipe-only mode) is not a cloud: it would hide inside the joints
            many = slot.cloud.n_points > NUM_JOINTS
            slot.cloud_actor.SetVisibility(slot.present and self._cloud_visible and many)
            slot.distance_actor.SetVisibility(slot.present and self._cloud_visible and slot.distance_mm is not None)
            if slot.mesh_actor is not None:
                slot.mesh_actor.SetVisibility(slot.present and slot.has_mesh)
        # The colour key only means something when a shown cloud has more than one hypothesis.
        spread_shown = any(s.present and s.cloud.n_points > NUM_JOINTS for s in self._slots.values())
        self._scalar_bar.SetVisibility(self._cloud_visible and spread_shown)

    def _in_sight(self, points: np.ndarray) -> bool:
        """Whether every point (P, 3) lies in the view's SIGHT_BOX (normalised device coordinates)."""
        aspect = self.plotter.renderer.GetTiledAspectRatio()
        M = pv.array_from_vtkmatrix(self.plotter.camera.GetCompositeProjectionTransformMatrix(aspect, -1.0, 1.0))
        h = np.c_[np.asarray(points, np.float64), np.ones(len(points))] @ M.T
        if np.any(h[:, 3] <= 0):
            return False  # behind the viewer
        ndc = h[:, :2] / h[:, 3:]
        (x0, x1), (y0, y1) = SIGHT_BOX
        return bool(np.all((ndc[:, 0] >= x0) & (ndc[:, 0] <= x1) & (ndc[:, 1] >= y0) & (ndc[:, 1] <= y1)))

    def _look_again_at(self, target: np.ndarray) -> None:
        """Look at target from the user's viewing direction, as far from it as the view was from
        its old focus, relative to the real camera: a hand farther from the camera looks smaller
        (unlike Follow hand, which keeps the distance to the hand)."""
        cam = self.plotter.camera
        ratio = cam.GetDistance() / max(float(np.linalg.norm(cam.focal_point)), 1.0)
        cam.SetDistance(ratio * max(float(np.linalg.norm(target)), 1.0))  # about the old focus, then
        self._move_focus_to(target)  # shifted onto the new one

    def _move_focus_to(self, target: np.ndarray) -> None:
        """Shift the camera so it looks at target, keeping the user's viewing direction."""
        cam = self.plotter.camera
        shift = np.asarray(target, np.float64) - np.asarray(cam.focal_point, np.float64)
        cam.position = tuple(np.asarray(cam.position) + shift)
        cam.focal_point = tuple(float(v) for v in target)
        self.plotter.reset_camera_clipping_range()

    # ---- for tests and owners ---------------------------------------------------------------
    def actors(self, slot: str) -> dict[str, object]:
        s = self._slots[slot]
        return {"mesh": s.mesh_actor, "skeleton": s.skeleton_actor, "cloud": s.cloud_actor,
                "distance": s.distance_actor}

    def slot_data(self, slot: str) -> dict[str, pv.PolyData | None]:
        s = self._slots[slot]
        return {"mesh": s.mesh, "skeleton": s.skeleton, "cloud": s.cloud}
