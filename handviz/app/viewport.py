"""The 3D view widget: a pyvista plotter widget around the pyvista-only HandScene (handviz.scene).

The scene owns every actor; this widget owns the render window and decides when to render:
`present()` (once per displayed frame, from the window's frame clock) and a toggle both ask Qt
for one repaint, in which VTK renders once; `on_rendered` is called when that render ends. The
plotter widget is a native window VTK draws itself on X11, else pyvistaqt's QtInteractor
(vtk_widget.py); neither redraws when idle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyvista as pv
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QVBoxLayout, QWidget

from handviz.app.render_threads import lower_software_gl_priority
from handviz.app.vtk_widget import make_interactor
from handviz.scene.hand_scene import HandScene
from handviz.types import HandEstimate


class _SwallowKeys(QObject):
    """Keeps VTK's and pyvista's one-letter keys ('q' quits, 'w' wireframe, 'e' exits ...) away from
    the 3D widget; the window's shortcuts are matched before key events get here, so they still work."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        return event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)


class HandViewport(QWidget):
    """Owns the QtInteractor and the scene; call everything on the GUI thread only."""

    def __init__(self, parent: QWidget | None = None, faces: np.ndarray | None = None) -> None:
        super().__init__(parent)
        self.plotter = make_interactor(self)
        self._key_filter = _SwallowKeys(self)
        self.plotter.interactor.installEventFilter(self._key_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plotter.interactor)
        self.scene = HandScene(self.plotter, faces)
        #: Called after every finished render (the window counts displayed frames with it).
        self.on_rendered: Callable[[], None] | None = None
        self._observer = self.plotter.ren_win.AddObserver("EndEvent", self._rendered)
        self._first_render_done = False

    def _rendered(self, *_: object) -> None:
        if not self._first_render_done:  # the GL context, and any software rasteriser, exist now
            self._first_render_done = True
            lower_software_gl_priority()
        if self.on_rendered is not None:
            self.on_rendered()

    # ---- what the window changes -------------------------------------------------------------
    @property
    def cloud_visible(self) -> bool:
        return self.scene.cloud_visible

    def set_faces(self, faces: np.ndarray | None) -> None:
        self.scene.set_faces(faces)

    def set_cloud_visible(self, visible: bool) -> None:
        self.scene.set_cloud_visible(visible)
        self.request_render()

    def set_skeleton_visible(self, visible: bool) -> None:
        self.scene.set_skeleton_visible(visible)
        self.request_render()

    def set_mirrored(self, mirrored: bool) -> None:
        self.scene.set_mirrored(mirrored)
        self.request_render()

    def set_follow(self, follow: bool) -> None:
        self.scene.set_follow(follow)
        self.request_render()

    def reset_view(self) -> None:
        self.scene.reset_view()
        self.request_render()

    def set_intrinsics(self, K: np.ndarray, height: int) -> None:
        self.scene.set_intrinsics(K, height)

    def show_hands(self, hands: list[HandEstimate], message: str = "") -> int:
        """Update the scene (no render: see present()); returns the number of hands drawn."""
        return self.scene.show_hands(hands, message)

    def present(self) -> None:
        """Show what the scene holds now: one repaint, which renders once and then calls
        on_rendered. (A direct render would render twice with pyvistaqt's widget, whose paintGL
        always renders again before it blits.)"""
        self.plotter.interactor.update()

    def request_render(self) -> None:
        """Schedule one repaint; Qt folds several requests into one paint (one VTK render)."""
        self.plotter.interactor.update()

    # ---- for tests and the window -----------------------------------------------------------
    def actors(self, slot: str) -> dict[str, object]:
        return self.scene.actors(slot)

    def slot_data(self, slot: str) -> dict[str, pv.PolyData | None]:
        return self.scene.slot_data(slot)

    def close_viewport(self) -> None:
        """Free the render window (call once, when the window closes)."""
        self.on_rendered = None
        self.plotter.ren_win.RemoveObserver(self._observer)
        self.plotter.close()
