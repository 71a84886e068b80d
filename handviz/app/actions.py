"""Every user command in one table: menus, the toolbar and the shortcut sheet are built from it.

Adding a command means adding a row here and a method of that name on the main window; nothing
else has to learn about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar


@dataclass(frozen=True)
class ActionSpec:
    """One command. callback names a method of the window (called with `checked` if checkable)."""

    id: str
    text: str
    shortcut: str
    callback: str
    menu: str
    checkable: bool = False
    checked: bool = False
    toolbar: bool = False
    tip: str = ""


#: Menus in the order they appear.
MENUS: tuple[str, ...] = ("&File", "&View", "&Playback", "&Help")

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_video", "Open &video…", "Ctrl+O", "open_video_dialog", "&File",
               tip="Play a video file through the pipeline"),
    ActionSpec("open_folder", "Open image &folder…", "Ctrl+Shift+O", "open_folder_dialog", "&File",
               tip="Play the images of a folder as a clip"),
    ActionSpec("open_session", "Open &session…", "Ctrl+L", "open_session_dialog", "&File",
               tip="Replay a recorded session"),
    ActionSpec("open_demo", "Play the &demo", "Ctrl+D", "open_demo", "&File",
               tip="The bundled demo photos as a looping clip"),
    ActionSpec("calibrate_camera", "&Calibrate camera…", "", "calibrate_camera", "&File",
               tip="Measure the camera's focal length from a printed checkerboard and use it"),
    ActionSpec("record", "&Record", "R", "toggle_recording", "&File", checkable=True, toolbar=True,
               tip="Record the live results into a session folder"),
    ActionSpec("export_frame", "&Export frame (OBJ, PLY, GLB)…", "Ctrl+E", "export_current_frame", "&File",
               tip="Write the meshes of the frame on screen as OBJ, PLY or GLB"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "close", "&File"),
    ActionSpec("toggle_cloud", "Hypothesis &cloud", "H", "set_cloud_visible", "&View", checkable=True,
               checked=True, toolbar=True, tip="Show every joint hypothesis, coloured by its joint's 90% radius"),
    ActionSpec("toggle_skeleton", "&Skeleton", "K", "set_skeleton_visible", "&View", checkable=True,
               checked=True, tip="Bones of the aggregate joints"),
    ActionSpec("toggle_overlay", "&Mesh on video", "M", "set_overlay_visible", "&View", checkable=True,
               checked=True, tip="Project the mesh onto the camera image"),
    ActionSpec("mirror", "M&irror view", "Ctrl+M", "set_mirrored", "&View", checkable=True,
               tip="Show image and 3D mirrored, like a selfie (the model still sees the real image)"),
    ActionSpec("follow_hand", "&Follow hand", "F", "set_follow_hand", "&View", checkable=True,
               toolbar=True, tip="Keep the 3D view centred on the hand"),
    ActionSpec("reset_view", "Reset 3D &view", "Home", "reset_view", "&View", toolbar=True,
               tip="Look at the hand again from beside the camera, where its depth shows"),
    ActionSpec("toggle_plots", "&Performance plots", "P", "set_plots_visible", "&View", checkable=True,
               checked=True, tip="FPS, per-stage ms, latency and spread over time"),
    ActionSpec("toggle_controls", "C&ontrols", "Ctrl+K", "set_controls_visible", "&View", checkable=True,
               checked=True, tip="Model and camera settings"),
    ActionSpec("pause", "&Pause", "Space", "set_paused", "&Playback", checkable=True, toolbar=True,
               tip="Hold the picture (live: frames are skipped; replay: playback stops)"),
    ActionSpec("step_back", "Step &back", ",", "step_back", "&Playback", tip="Previous recorded frame"),
    ActionSpec("step_forward", "Step &forward", ".", "step_forward", "&Playback", tip="Next recorded frame"),
    ActionSpec("shortcuts", "&Keyboard shortcuts", "F1", "show_shortcuts", "&Help"),
    ActionSpec("about", "&About handviz", "", "show_about", "&Help"),
)


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    """A QAction per row, wired to `window.<callback>`, keyed by id."""
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, window)
        action.setObjectName(f"action_{spec.id}")
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
        tip = f"{spec.tip} ({spec.shortcut})" if spec.tip and spec.shortcut else spec.tip
        action.setToolTip(tip or action.text().replace("&", "").rstrip("…"))
        action.setStatusTip(spec.tip)
        callback = getattr(window, spec.callback)
        if spec.checkable:
            action.setCheckable(True)
            action.setChecked(spec.checked)
            action.toggled.connect(callback)
        else:
            action.triggered.connect(lambda _checked=False, cb=callback: cb())
        window.addAction(action)  # shortcuts work even when the menu bar is hidden
        actions[spec.id] = action
    return actions


def build_menus(window: QMainWindow, actions: dict[str, QAction]) -> dict[str, QMenu]:
    """The menu bar from the table; returns the menus by title (others may add to them)."""
    menus = {title: window.menuBar().addMenu(title) for title in MENUS}
    previous_menu = None
    for spec in ACTIONS:
        menu = menus[spec.menu]
        if spec.id in ("quit", "calibrate_camera", "record", "toggle_plots", "shortcuts") \
                and previous_menu == spec.menu:
            menu.addSeparator()  # group: opening | calibrating | recording/export | quitting
        menu.addAction(actions[spec.id])
        previous_menu = spec.menu
    return menus


def build_toolbar(window: QMainWindow, actions: dict[str, QAction]) -> QToolBar:
    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("main_toolbar")
    for spec in ACTIONS:
        if spec.toolbar:
            toolbar.addAction(actions[spec.id])
    return toolbar


def shortcut_rows() -> list[tuple[str, str, str]]:
    """(shortcut as shown on this platform, command, menu) for the shortcut sheet."""
    rows = []
    for spec in ACTIONS:
        if spec.shortcut:
            shown = QKeySequence(spec.shortcut).toString(QKeySequence.SequenceFormat.NativeText)
            rows.append((shown, spec.text.replace("&", "").rstrip("…"), spec.menu.replace("&", "")))
    return rows


def spec_by_id(action_id: str) -> ActionSpec:
    for spec in ACTIONS:
        if spec.id == action_id:
            return spec
    raise KeyError(action_id)


def set_checked_quietly(action: QAction, checked: bool) -> Any:
    """Reflect a state without running the action's callback (settings restore, UI sync)."""
    was = action.blockSignals(True)
    action.setChecked(checked)
    action.blockSignals(was)
