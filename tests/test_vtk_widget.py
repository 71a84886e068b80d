"""The 3D view's widget (app/vtk_widget.py): on X11 a native window that VTK draws itself, so Qt
never composes the whole window with OpenGL; elsewhere pyvistaqt's QOpenGLWidget."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("pyvistaqt")
pytestmark = pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display: run under xvfb-run")

from test_hand_scene import hand_at  # noqa: E402

from handviz.hand.asset import load_hand_asset  # noqa: E402
from handviz.scene.hand_scene import BACKGROUND  # noqa: E402

#: How long a wait on the GUI may take before the test calls it a hang (ms): not a speed limit.
WAIT_MS = 30_000


@pytest.fixture()
def viewport(qtbot):
    from handviz.app.viewport import HandViewport

    view = HandViewport(faces=load_hand_asset().faces)
    qtbot.addWidget(view)
    view.resize(480, 360)
    view.show()
    qtbot.waitExposed(view)
    yield view
    if not view.plotter._closed:
        view.close_viewport()


def _screen_pixels_of(widget) -> np.ndarray:
    """What the X server shows where the widget is (RGB), not what the widget thinks it drew."""
    from PySide6.QtGui import QGuiApplication

    top_left = widget.mapToGlobal(widget.rect().topLeft())
    image = QGuiApplication.primaryScreen().grabWindow(0, top_left.x(), top_left.y(),
                                                       widget.width(), widget.height()).toImage()
    image = image.convertToFormat(image.Format.Format_RGB888)
    row_bytes = image.bytesPerLine()
    data = np.frombuffer(image.constBits(), np.uint8, row_bytes * image.height()).reshape(image.height(), row_bytes)
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3)


def _render(qtbot, view) -> None:
    rendered: list[bool] = []
    view.on_rendered = lambda: rendered.append(True)
    view.present()
    qtbot.waitUntil(lambda: bool(rendered), timeout=WAIT_MS)


def test_on_x11_vtk_draws_into_the_widgets_own_native_window(qtbot, viewport):
    from PySide6.QtGui import QGuiApplication

    from handviz.app.vtk_widget import NativeInteractor

    if QGuiApplication.platformName() != "xcb":
        pytest.skip("native VTK windows are for Qt's xcb platform")
    widget = viewport.plotter.interactor
    assert isinstance(viewport.plotter, NativeInteractor) and widget is viewport.plotter
    assert int(viewport.plotter.ren_win.GetGenericWindowId().split("_")[1], 16) == int(widget.winId())
    viewport.show_hands([hand_at(450)])
    _render(qtbot, viewport)
    pixels = _screen_pixels_of(widget).astype(int)
    background = np.array([int(BACKGROUND[i:i + 2], 16) for i in (1, 3, 5)])
    differs = np.abs(pixels - background).sum(axis=-1) > 30
    assert differs.mean() > 0.02  # the hand is on the screen, not only in VTK's buffers
    assert (~differs).mean() > 0.5  # ... over the scene's background


def test_elsewhere_the_view_is_pyvistaqts_opengl_widget(qtbot, monkeypatch):
    from pyvistaqt import QtInteractor

    from handviz.app import vtk_widget
    from handviz.app.viewport import HandViewport

    monkeypatch.setattr(vtk_widget, "NATIVE_PLATFORMS", ())
    view = HandViewport(faces=load_hand_asset().faces)
    qtbot.addWidget(view)
    view.resize(320, 240)
    view.show()
    qtbot.waitExposed(view)
    assert isinstance(view.plotter, QtInteractor)
    view.show_hands([hand_at(450)])
    _render(qtbot, view)
    view.close_viewport()


def test_closing_frees_the_render_window_once(qtbot, viewport):
    viewport.close_viewport()
    assert viewport.plotter._closed
    viewport.plotter.close()  # a second close (the window's teardown) changes nothing
