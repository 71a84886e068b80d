"""The widget VTK draws the 3D view in: a native child window on X11, a QOpenGLWidget elsewhere.

pyvistaqt's QtInteractor is a QOpenGLWidget. With one of those in it, Qt composes the whole
top-level window with OpenGL on every repaint (the window's image as a texture, the 3D view's
texture over it, one swap of every pixel). On software GL (llvmpipe: Xvfb, VMs, GPU-less
laptops) that costs in proportion to the window, not to the view: at 1920x1080 the rasteriser
spent 34-35 ms CPU per displayed frame, 18-19 ms with the native window, and the GUI thread
15-17 -> 11 ms (`bench --app`, demo, 2 cores under load 5-6: 4.7-8.4 -> 14.2-17.5 fps).

`NativeInteractor` is VTK's own QVTKRenderWindowInteractor (a plain QWidget whose native
window VTK renders into and swaps itself; Qt paints the rest of the window with its raster
engine, as if there were no OpenGL) plus pyvista's plotter API, as pyvistaqt puts its
QtInteractor together. Its render() asks for a repaint, like QtInteractor's widget, so the
owner renders the same way on both. X11 only (Qt's xcb platform): on Wayland a native window is
no X window, and elsewhere it is untested; there pyvistaqt's widget is used.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget
from pyvista.plotting.plotter import BasePlotter
from pyvista.plotting.render_window_interactor import RenderWindowInteractor
from pyvistaqt import QtInteractor
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor

#: Qt platforms on which VTK renders into the widget's own native window.
NATIVE_PLATFORMS = ("xcb",)


class NativeInteractor(QVTKRenderWindowInteractor, BasePlotter):
    """A pyvista plotter drawn by VTK straight into this widget's native window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        QVTKRenderWindowInteractor.__init__(self, parent)  # makes the native window, gives it to VTK
        BasePlotter.__init__(self)
        self.interactor = self  # as QtInteractor: owners reach the widget through .interactor
        self.ren_win = self.GetRenderWindow()
        for renderer in self.renderers:
            self.ren_win.AddRenderer(renderer)
        self.iren = RenderWindowInteractor(self, interactor=self.ren_win.GetInteractor())
        self.iren.interactor.RemoveObservers("MouseMoveEvent")  # as QtInteractor: no render per move
        self.iren.initialize()
        self.enable_trackball_style()
        self._first_time = False  # pyvista: the window exists, render() may run

    def render(self) -> None:
        """Ask for one repaint; its paint event renders (as QtInteractor's widget does)."""
        self.update()

    def close(self) -> None:  # type: ignore[override]
        """Free the plotter and the render window (pyvista's close, then the widget's)."""
        if getattr(self, "_closed", True):
            return
        BasePlotter.close(self)
        QVTKRenderWindowInteractor.close(self)


def uses_native_window() -> bool:
    """True where the 3D view gets a native window of its own (see the module's note)."""
    return QGuiApplication.platformName() in NATIVE_PLATFORMS


def make_interactor(parent: QWidget) -> Any:
    """The 3D view's plotter and widget in one: NativeInteractor on X11, else pyvistaqt's
    QtInteractor (auto_update=False: it renders only when asked)."""
    if uses_native_window():
        return NativeInteractor(parent)
    return QtInteractor(parent, auto_update=False)
