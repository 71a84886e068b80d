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

A bigger view costs the rasteriser more pixels, so the native window renders at most
MAX_RENDER_PX and stretches that onto the window (one linear blit before the swap), as games
scale their 3D view: the frame costs what the default window's does, whatever the window.

VTK's wrapped calls hold Python's GIL, and software GL does a frame's rasterising only when the
frame is shown (in `Frame()`), not when VTK renders: at 1920x1080 that held the detect and infer
threads' Python for most of each frame (py-spy: the two `Frame()` calls 37 % of the samples in
which any thread held the GIL), and the cascade's 7 ms took 20-25 ms when its frame came then.
So `_show_frame` first waits for the GL work in glFinish through ctypes, which lets the GIL go
(`bench --app`, interleaved, 1920x1080: 58.7-82.7 ms median latency -> 44.2-60.5 ms, 27.7-29.4
-> 29.3-29.9 fps; default window 41.2-64.2 -> 38.2-43.5 ms).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget
from pyvista.plotting.plotter import BasePlotter
from pyvista.plotting.render_window_interactor import RenderWindowInteractor
from pyvistaqt import QtInteractor
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkRenderingOpenGL2 import vtkOpenGLRenderWindow

#: Qt platforms on which VTK renders into the widget's own native window.
NATIVE_PLATFORMS = ("xcb",)
#: The most pixels the 3D view is rendered at (a bigger view is rendered at this count and
#: stretched). The default window's view (417x604 px on a 1280x1024 screen) stays unscaled; the
#: view of a 1920x1080 window (865x814) renders at 0.65 of its size: llvmpipe CPU per displayed
#: frame 21 -> 12 ms, 12.3-15.3 -> 16.6-17.6 fps under load 3-6.
MAX_RENDER_PX = 300_000

_GL_DRAW_FRAMEBUFFER = 0x8CA9
_GL_BACK_LEFT = 0x0402
_GL_COLOR_BUFFER_BIT = 0x4000
_GL_LINEAR = 0x2601


def _gl_finish() -> Callable[[], None] | None:
    """libGL's glFinish through ctypes, which lets go of Python's GIL while it waits; None
    where there is no libGL.so.1."""
    try:
        finish = ctypes.CDLL("libGL.so.1").glFinish
    except (OSError, AttributeError):
        return None
    finish.restype, finish.argtypes = None, []
    return finish


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
        # VTK's Frame() neither resolves nor swaps; _show_frame does both, stretching the render
        # to the window, before any other observer hears that the render has ended.
        self.ren_win.SwapBuffersOff()
        self.ren_win.SetFrameBlitModeToNoBlit()
        self._show_observer = self.ren_win.AddObserver("EndEvent", self._show_frame, 1.0)
        self._finish = _gl_finish()

    def render_scale(self) -> float:
        """Rendered pixels per device pixel along each side: 1, or less for a view of more
        than MAX_RENDER_PX device pixels."""
        ratio = self.devicePixelRatioF()
        device_px = max(1.0, self.width() * ratio * self.height() * ratio)
        return min(1.0, math.sqrt(MAX_RENDER_PX / device_px))

    def _getPixelRatio(self) -> float:  # noqa: N802 (VTK's name)
        """VTK's widget sizes the render window, its DPI and the mouse's positions by this. (VTK's
        own asks the X server where the cursor is, on every mouse event and frame.)"""
        return self.devicePixelRatioF() * self.render_scale()

    def _show_frame(self, *_: object) -> None:
        """The render has ended in VTK's framebuffers: stretch it onto the window and swap."""
        rw = self._RenderWindow
        ratio = self.devicePixelRatioF()
        if self._finish is not None:  # the scene's rasterisation, which software GL defers to here
            self._finish()
        rw.SwapBuffersOn()
        vtkOpenGLRenderWindow.Frame(rw)  # the render into VTK's display framebuffer
        width, height = rw.GetSize()
        state = rw.GetState()
        state.vtkglBindFramebuffer(_GL_DRAW_FRAMEBUFFER, 0)
        state.vtkglDrawBuffer(_GL_BACK_LEFT)
        rw.BlitDisplayFramebuffer(0, 0, 0, width, height, 0, 0, round(self.width() * ratio),
                                  round(self.height() * ratio), _GL_COLOR_BUFFER_BIT, _GL_LINEAR)
        if self._finish is not None:  # and the stretch
            self._finish()
        rw.Frame()  # resolves once more (a small blit) and swaps
        rw.SwapBuffersOff()

    def render(self) -> None:
        """Ask for one repaint; its paint event renders (as QtInteractor's widget does)."""
        self.update()

    def close(self) -> None:  # type: ignore[override]
        """Free the plotter and the render window (pyvista's close, then the widget's)."""
        if getattr(self, "_closed", True):
            return
        self._RenderWindow.RemoveObserver(self._show_observer)
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
