"""The action table's callbacks (actions.py names them): dialogs, recording, export, view toggles
and playback. A mixin of the main window, so each row of the table is a method of the window while
the window's own module stays about the layout and the feed's lifecycle."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import platformdirs
from PySide6.QtWidgets import QFileDialog

from handviz.app import dialogs
from handviz.app.actions import set_checked_quietly
from handviz.app.calibration_dialog import CalibrationDialog
from handviz.app.controls import ControlValues
from handviz.app.export_formats import export_filter_string, resolve_export_path
from handviz.logs import InputError
from handviz.paths import camera_intrinsics_path
from handviz.pipeline.calibration import CameraCalibration
from handviz.pipeline.controller import is_session_folder
from handviz.pipeline.intrinsics import save_intrinsics
from handviz.types import FrameResult

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg);;All files (*)"

log = logging.getLogger(__name__)


class WindowCommands:
    """Methods of MainWindow (self is the window; see main_window.py for the attributes used)."""

    # ---- opening ------------------------------------------------------------------------------
    def open_video_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self.settings.last_dir, VIDEO_FILTER)
        if path:
            self.settings.last_dir = str(Path(path).parent)
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder", self.settings.last_dir)
        if path:
            self.settings.last_dir = str(Path(path).parent)
            self.open_path(path)

    def open_session_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open session folder",
                                                self.settings.record_dir or self.settings.last_dir)
        if path:
            self.open_session(path)

    def open_demo(self) -> None:
        self.banner.hide()
        self.open_source("demo")

    def open_path(self, path: str | Path) -> None:
        """A dropped or chosen path: a session folder replays, anything else plays as a source."""
        path = Path(path)
        self.banner.hide()
        if is_session_folder(path):
            self.open_session(path)
        else:
            self.open_source(str(path))

    def load_intrinsics_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Camera intrinsics", self.settings.last_dir,
                                              "Intrinsics (*.json);;All files (*)")
        if path:
            self.set_intrinsics_file(path)

    # ---- calibration --------------------------------------------------------------------------
    def calibrate_camera(self) -> None:
        """Calibrate camera…: a non-modal dialog fed by the frames drawn (see _draw); a good solve
        is saved as this camera's intrinsics file and used at once."""
        if self.calibration_dialog is not None:
            self.calibration_dialog.raise_()
            self.calibration_dialog.activateWindow()
            return
        camera = self.calibration_camera()
        dialog = CalibrationDialog(lambda result: self._save_calibration(result, camera), self)
        dialog.finished.connect(lambda _code: self.close_calibration())
        self.calibration_dialog = dialog
        dialog.show()

    def calibration_camera(self) -> str:
        """The feed's name for its intrinsics file: "camera 0", "video clip", "images shots"."""
        spec = self.controller.feed_spec
        if spec is None or spec.strip().isdigit():
            return f"camera {int(spec or 0)}"
        path = Path(spec)
        kind = "session" if self.controller.is_replay else "images" if path.is_dir() else "video"
        return f"{kind} {path.stem or spec}"

    def _save_calibration(self, result: CameraCalibration, camera: str) -> Path:
        path = save_intrinsics(camera_intrinsics_path(camera), result.K, result.width, result.height,
                               result.file_extra(camera))
        if not self.set_intrinsics_file(str(path)):
            raise InputError(f"{path}: written but not readable back")
        return path

    def close_calibration(self) -> None:
        """Stop and drop the calibration dialog (Cancel, Close, or the window closing)."""
        dialog, self.calibration_dialog = self.calibration_dialog, None
        if dialog is not None:
            dialog.stop()  # joins its worker before the dialog may be freed
            dialog.hide()
            dialog.deleteLater()

    # ---- recording and export -----------------------------------------------------------------
    def toggle_recording(self, checked: bool) -> None:
        if not checked:
            summary = self.controller.stop_recording()
            if summary is not None:
                text = f"Recorded {summary.frames_written} frame(s) into {summary.path}"
                if summary.dropped:
                    text += f" ({summary.dropped} not recorded: the disk was too slow)"
                self.statusBar().showMessage(text, 8000)
                self.settings.last_dir = str(summary.path.parent)
            return
        folder = self.settings.record_dir or str(Path(platformdirs.user_documents_dir()) / "handviz")
        try:
            path = self.controller.start_recording(folder)
        except InputError as exc:
            set_checked_quietly(self.actions_by_id["record"], False)
            self.statusBar().showMessage(str(exc), 5000)
            if not self.controller.is_replay and self.controller.feed is not None:
                self.banner.show_message(f"Cannot record: {exc}", "error")
            return
        self.statusBar().showMessage(f"Recording into {path}", 5000)

    def export_current_frame(self) -> None:
        result = self._current
        if not self._exportable(result):
            return
        assert result is not None
        default = Path(self.settings.last_dir or Path.home()) / f"frame_{result.frame.index:06d}.obj"
        path, chosen = QFileDialog.getSaveFileName(self, "Export frame", str(default), export_filter_string())
        if path:
            self.export_frame_to(path, chosen)

    def _exportable(self, result: FrameResult | None) -> bool:
        if result is None or not result.hands:
            self.statusBar().showMessage("No hand in the frame on screen to export", 5000)
            return False
        if self._faces is None or not any(len(h.vertices) for h in result.hands):
            self.statusBar().showMessage("No mesh to export: the cascade is not loaded (MediaPipe 3D only)", 6000)
            return False
        return True

    def export_frame_to(self, path: str | Path, selected_filter: str = "") -> list[Path]:
        """Write the meshes of the frame on screen (one file per hand) as OBJ, PLY or GLB: the
        typed suffix decides, else the dialog's chosen filter."""
        from handviz.io.export import export_hands

        result = self._current
        if not self._exportable(result):
            return []
        assert result is not None and self._faces is not None
        path, fmt = resolve_export_path(path, selected_filter)
        hands = [h for h in result.hands if len(h.vertices)]
        try:
            written = export_hands(hands, self._faces, path, position=result.frame.index, fmt=fmt)
        except (OSError, ValueError) as exc:
            log.warning("export of frame %d to %s failed: %s", result.frame.index, path, exc)
            self.banner.show_message(f"Export failed: {path}: {exc}", "error")
            return []
        # In the log too: the status bar forgets it in seconds, a bug report needs what was written.
        log.info("exported frame %d (%d hand(s), %s): %s", result.frame.index, len(hands), fmt,
                 ", ".join(map(str, written)))
        self.settings.last_dir = str(path.parent)
        self.statusBar().showMessage("Exported " + ", ".join(p.name for p in written if p.suffix == f".{fmt}"), 6000)
        return written

    # ---- view toggles -------------------------------------------------------------------------
    def set_cloud_visible(self, checked: bool) -> None:
        self.settings.show_cloud = checked
        self.viewport.set_cloud_visible(checked)

    def set_skeleton_visible(self, checked: bool) -> None:
        self.settings.show_skeleton = checked
        self.viewport.set_skeleton_visible(checked)

    def set_overlay_visible(self, checked: bool) -> None:
        self.settings.show_overlay = checked
        self.video.show_overlay = checked
        self._redraw_current()

    def set_mirrored(self, checked: bool) -> None:
        self.settings.mirror = checked
        values = self.controls.values()
        if values.mirror != checked:
            self.controls.set_values(ControlValues(values.n_hypotheses, values.ddim_steps, values.temporal,
                                                   checked, values.focal_px))
        self.video.mirrored = checked
        self.viewport.set_mirrored(checked)
        self._redraw_current()

    def set_follow_hand(self, checked: bool) -> None:
        self.settings.follow_hand = checked
        self.viewport.set_follow(checked)

    def reset_view(self) -> None:
        self.viewport.reset_view()

    def set_plots_visible(self, checked: bool) -> None:
        self.settings.show_plots = checked
        self.plots_dock.setVisible(checked)

    def set_controls_visible(self, checked: bool) -> None:
        self.settings.show_controls = checked
        self.controls_dock.setVisible(checked)

    def _redraw_current(self) -> None:
        if self._current is not None:
            r = self._current
            self.video.show_frame(r.frame.image, r.detections, r.hands, np.asarray(r.intrinsics, np.float64))

    # ---- playback -----------------------------------------------------------------------------
    def set_paused(self, checked: bool) -> None:
        self.controller.set_paused(checked)
        if self.controller.is_replay:
            self.replay_bar.set_playing(not checked)

    def step_back(self) -> None:
        self._replay_step(-1)

    def step_forward(self) -> None:
        self._replay_step(1)

    def _replay_step(self, delta: int) -> None:
        if self.controller.is_replay:
            self.controller.step(delta)
            set_checked_quietly(self.actions_by_id["pause"], True)
            self.replay_bar.set_playing(False)

    # ---- help ---------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        dialogs.ShortcutsDialog(self).exec()

    def show_about(self) -> None:
        dialogs.show_about(self)
