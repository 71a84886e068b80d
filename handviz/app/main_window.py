"""The main window: the views of one SessionController (handviz.pipeline.controller).

Layout: video (left) | 3D viewport (right), a replay bar under them in replay mode, controls
dock (right), performance plots dock (bottom), status bar. Every command comes from the action
table (actions.py). The controller owns the feed, its options and the recording; its results
cross to the GUI thread through the ResultBridge and are drawn by the FramePresenter, at most
once per display refresh; its events go through the FeedEvents table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import QDockWidget, QMainWindow, QSplitter, QVBoxLayout, QWidget

from handviz.app import gui_gc
from handviz.app.actions import build_actions, build_menus, build_toolbar, set_checked_quietly
from handviz.app.banner import Banner
from handviz.app.bridge import ResultBridge
from handviz.app.calibration_dialog import CalibrationDialog
from handviz.app.camera_menu import CameraMenu
from handviz.app.window_commands import WindowCommands
from handviz.app.controls import ControlsPanel, ControlValues
from handviz.app.feed_events import FeedEvents
from handviz.app.frame_presenter import FramePresenter
from handviz.app.plots import PerformancePlots
from handviz.app.replay_bar import ReplayBar
from handviz.app.settings import (
    APPLICATION,
    ORGANIZATION,
    AppSettings,
    default_window_size,
    load_settings,
    load_window_state,
    save_settings,
    save_window_state,
)
from handviz.app.status_panel import LOADING_TEXT, StatusPanel
from handviz.app.video_view import VideoView
from handviz.app.viewport import HandViewport
from handviz.logs import InputError
from handviz.paths import assets_dir
from handviz.pipeline import timing
from handviz.pipeline.controller import SessionController, is_session_folder
from handviz.pipeline.inference import CachedBackendFactory, InferenceBackend, InferOptions
from handviz.pipeline.intrinsics import Calibration, IntrinsicsChoice, load_intrinsics
from handviz.pipeline.recording import Recorder
from handviz.pipeline.threads import Detector, PipelineOptions
from handviz.pipeline.timing import RollingStats
from handviz.types import FrameResult

__all__ = ["MainWindow", "is_session_folder"]

log = logging.getLogger(__name__)

#: How often the status bar and plots refresh (ms): a few times a second, off the frame path.
STATS_INTERVAL_MS = 500


class MainWindow(WindowCommands, QMainWindow):
    """source: what `--source` said (None: camera 0, falling back to the demo); session: a
    session folder to replay instead. backend_factory builds the cascade backend (None: MediaPipe
    3D only); detector_factory the hand detector (tests may pass a fake)."""

    #: Emitted after a result is drawn into the views, with its frame index (tests wait on it).
    result_shown = Signal(int)

    def __init__(self, source: str | None = None, session: str | Path | None = None,
                 backend_factory: Callable[[], InferenceBackend] | None = None,
                 detector_factory: Callable[[], Detector] | None = None,
                 settings: QSettings | None = None, autostart: bool = True) -> None:
        super().__init__()
        gui_gc.collect_on_gui_thread()  # no Qt object may be freed on a worker thread
        self.setWindowTitle("handviz")
        icon = assets_dir() / "icons" / "handviz.svg"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)
        self._store = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.settings: AppSettings = load_settings(self._store)
        factory = CachedBackendFactory(backend_factory) if backend_factory is not None else None
        self._sinks: tuple[Callable[[FrameResult], None], Callable[[Any], None]] = (lambda r: None, lambda e: None)
        self.controller = SessionController(lambda r: self._sinks[0](r), lambda e: self._sinks[1](e),
                                            backend_factory=factory, detector_factory=detector_factory)
        self._calibration: Calibration | None = None
        self.calibration_dialog: CalibrationDialog | None = None  # Calibrate camera…, while open
        self.fallback_to_demo = False
        self._faces: np.ndarray | None = None
        self._current: FrameResult | None = None
        self._last_K: np.ndarray | None = None
        self._last_size: tuple[int, int] | None = None
        self._hands_shown = 0
        self._closing = False
        self.frames_shown = 0
        self.stats = RollingStats()

        self.bridge = ResultBridge(self)
        self.bridge.result_ready.connect(self._on_result)
        self.bridge.event.connect(self._on_event)
        self.presenter = FramePresenter(self._draw, self)
        self.feed_events = FeedEvents(self)

        self._build_widgets()
        self.bridge.prepare = self.video.prepare
        self.viewport.on_rendered = self.presenter.rendered
        self.actions_by_id = build_actions(self)
        self.menus = build_menus(self, self.actions_by_id)
        self.toolbar = build_toolbar(self, self.actions_by_id)
        self.camera_menu = CameraMenu(self)
        self.camera_menu.camera_chosen.connect(lambda index: self.open_source(str(index)))
        self.menus["&File"].insertMenu(self.actions_by_id["open_video"], self.camera_menu)
        self.status = StatusPanel(self.statusBar())
        self.status_labels = self.status.labels
        self._restore_settings()

        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._refresh_stats)
        self._stats_timer.start()
        if autostart:
            if session is not None:
                QTimer.singleShot(0, lambda: self.open_session(session))
            else:
                QTimer.singleShot(0, lambda: self.open_source(source, fallback_to_demo=True))

    # ---- construction -----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.banner = Banner()
        self.video = VideoView()
        self.viewport = HandViewport()
        self.replay_bar = ReplayBar()
        self.replay_bar.hide()
        self.replay_bar.seek.connect(self.controller.seek)
        self.replay_bar.step.connect(self._replay_step)
        self.replay_bar.play_toggled.connect(lambda playing: self.actions_by_id["pause"].setChecked(not playing))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.video)
        splitter.addWidget(self.viewport)
        splitter.setSizes([600, 700])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.replay_bar)
        self.setCentralWidget(central)

        self.controls = ControlsPanel()
        self.controls.changed.connect(self._on_controls_changed)
        self.controls.load_intrinsics_requested.connect(self.load_intrinsics_dialog)
        self.controls.intrinsics_cleared.connect(lambda: self.set_intrinsics_file(""))
        self.controls.calibrate_requested.connect(self.calibrate_camera)
        self.controls_dock = self._dock("Controls", "controls_dock", self.controls, Qt.DockWidgetArea.RightDockWidgetArea)
        self.plots = PerformancePlots()
        self.plots_dock = self._dock("Performance", "plots_dock", self.plots, Qt.DockWidgetArea.BottomDockWidgetArea)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        dock.visibilityChanged.connect(self._sync_dock_actions)
        return dock

    def _restore_settings(self) -> None:
        s = self.settings
        self.controls.set_values(ControlValues(s.n_hypotheses, s.ddim_steps, s.temporal, s.mirror, s.focal_px))
        if s.intrinsics_file:
            self.set_intrinsics_file(s.intrinsics_file, quiet=True)
        toggles = {"toggle_cloud": s.show_cloud, "toggle_skeleton": s.show_skeleton, "toggle_overlay": s.show_overlay,
                   "mirror": s.mirror, "follow_hand": s.follow_hand, "toggle_plots": s.show_plots,
                   "toggle_controls": s.show_controls}
        for action_id, checked in toggles.items():
            set_checked_quietly(self.actions_by_id[action_id], checked)
        self.viewport.set_cloud_visible(s.show_cloud)
        self.viewport.set_skeleton_visible(s.show_skeleton)
        self.viewport.set_mirrored(s.mirror)
        self.viewport.set_follow(s.follow_hand)
        self.video.show_overlay = s.show_overlay
        self.video.mirrored = s.mirror
        geometry, state = load_window_state(self._store)
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(default_window_size())
        if state is not None:
            self.restoreState(state)
        else:
            self.resizeDocks([self.plots_dock], [190], Qt.Orientation.Vertical)
            self.resizeDocks([self.controls_dock], [300], Qt.Orientation.Horizontal)
        self.plots_dock.setVisible(s.show_plots)
        self.controls_dock.setVisible(s.show_controls)
        self._set_replay_mode(False)

    # ---- feeds ------------------------------------------------------------------------------
    def pipeline_options(self) -> PipelineOptions:
        v = self.controls.values()
        choice = IntrinsicsChoice(calibration=self._calibration, focal_px=v.focal_px or None)
        return PipelineOptions(infer=InferOptions(v.n_hypotheses, v.ddim_steps), temporal=v.temporal,
                               intrinsics=choice)

    @property
    def feed(self) -> Any:
        return self.controller.feed

    @property
    def recorder(self) -> Recorder:
        return self.controller.recorder

    def _new_feed(self, replay: bool, message: str) -> None:
        self._sinks = self.bridge.new_feed()
        self.statusBar().clearMessage()  # an error of the last feed is not this one's
        self.status.set_backend("replay" if replay else LOADING_TEXT)  # until the feed says more
        self._set_replay_mode(replay)
        self._current = None
        self.stats = RollingStats()
        self.presenter.clear()
        self.presenter.live = not replay
        self.plots.clear_history()
        self.video.clear()
        self.video.set_message(message)
        self.viewport.show_hands([], message="waiting for frames")
        self.viewport.request_render()

    def open_source(self, spec: str | int | None, fallback_to_demo: bool = False) -> None:
        """Play a camera index, video file, image folder or "demo" through a new pipeline."""
        self.stop_feed()
        spec_text = None if spec is None else str(spec)
        self.camera_menu.set_in_use(0 if spec_text is None else int(spec_text) if spec_text.strip().isdigit() else None)
        self.fallback_to_demo = fallback_to_demo and (spec_text or "").lower() != "demo"
        self._new_feed(False, f"opening {spec_text if spec_text is not None else 'camera 0'}…")
        self.controller.set_options(self.pipeline_options())
        self.controller.open_source(spec_text).set_paused(self.actions_by_id["pause"].isChecked())

    def open_session(self, path: str | Path) -> None:
        """Replay a recorded session folder."""
        self.stop_feed()
        self._new_feed(True, f"opening session {Path(path).name}…")
        set_checked_quietly(self.actions_by_id["pause"], False)
        self.replay_bar.set_playing(True)
        self.controller.open_session(path)

    def stop_feed(self) -> None:
        """Stop recording (reporting it) and the running feed, joining its threads."""
        if self.actions_by_id["record"].isChecked():
            self.actions_by_id["record"].setChecked(False)
        self.controller.stop()

    def _set_replay_mode(self, replay: bool) -> None:
        self.replay_bar.setVisible(replay)
        for action_id in ("step_back", "step_forward"):
            self.actions_by_id[action_id].setEnabled(replay)
        self.actions_by_id["record"].setEnabled(not replay)
        for w in (self.controls.hypotheses, self.controls.ddim_steps, self.controls.temporal,
                  self.controls.focal):
            w.setEnabled(not replay)  # a replay shows what was recorded

    # ---- results and events (GUI thread) ------------------------------------------------------
    def _on_result(self, gen: int, result: FrameResult, prepared: Any) -> None:
        try:
            if gen == self.bridge.generation and not self._closing:
                self.stats.add(result)
                self.presenter.offer(result, prepared)
        finally:
            self.bridge.done()

    def _draw(self, result: FrameResult, prepared: Any) -> int:
        """The frame clock's one draw: both views, one repaint each; returns the hands drawn."""
        if self._closing:
            return 0
        try:
            self._current = result
            image = result.frame.image
            h, w = image.shape[:2]
            K = np.asarray(result.intrinsics, np.float64)
            if self._last_K is None or self._last_size != (w, h) or not np.allclose(K, self._last_K):
                self._last_K, self._last_size = K, (w, h)
                self.viewport.set_intrinsics(K, h)
                self.controls.show_K(K)
            self._hands_shown = self.viewport.show_hands(result.hands, message=result.error or "")
            self.viewport.present()
            self.video.show_result(result, prepared)
            if self.calibration_dialog is not None:
                self.calibration_dialog.offer_frame(image)  # the real image, not the mirrored view
            self.video.set_message(f"{result.frame.source} · frame {result.frame.index}")
            if result.error:
                self.statusBar().showMessage(result.error, 3000)
            if self.controller.is_replay:
                self.replay_bar.set_position(result.frame.index)
            self.frames_shown += 1
            self.result_shown.emit(result.frame.index)
        except Exception:  # a drawing bug must not stop the next frame from being drawn
            log.exception("drawing frame %d failed", result.frame.index)
            self.statusBar().showMessage("drawing a frame failed; see the log", 5000)
        return self._hands_shown

    def _on_event(self, gen: int, event: Any) -> None:
        if gen == self.bridge.generation and not self._closing:
            self.feed_events.handle(event)

    def set_faces(self, faces: np.ndarray | None) -> None:
        if faces is not None and len(faces) == 0:
            faces = None
        self._faces = faces
        self.viewport.set_faces(faces)
        self.video.faces = None if faces is None else np.asarray(faces, np.int64)

    def _refresh_stats(self) -> None:
        at = timing.now()
        fps = self.presenter.stats.fps(at)
        latency = self.presenter.stats.latency_ms(at)
        recorder = self.controller.recorder
        self.status.show_numbers(fps, self._hands_shown if self._current is not None else 0,
                                 self.bridge.gui_dropped + self.presenter.skipped + self.controller.dropped,
                                 recorder.frames_written if recorder.recording else None, latency)
        if self.plots_dock.isVisible():
            snap = self.stats.snapshot(at)
            snap.fps = fps
            snap.stage_ms["latency"] = latency if latency is not None else float("nan")
            self.plots.add(at, snap)

    # ---- controls -----------------------------------------------------------------------------
    def _on_controls_changed(self) -> None:
        values = self.controls.values()
        if values.mirror != self.actions_by_id["mirror"].isChecked():
            self.actions_by_id["mirror"].setChecked(values.mirror)
        self.settings.n_hypotheses = values.n_hypotheses
        self.settings.ddim_steps = values.ddim_steps
        self.settings.temporal = values.temporal
        self.settings.focal_px = values.focal_px
        self.controller.set_options(self.pipeline_options())

    def set_intrinsics_file(self, path: str, quiet: bool = False) -> bool:
        """Use a calibration JSON ('' clears it). A bad file is reported and changes nothing."""
        if not path:
            self._calibration = None
            self.settings.intrinsics_file = ""
            self.controls.set_intrinsics_file("")
        else:
            try:
                self._calibration = load_intrinsics(path)
            except InputError as exc:
                self.banner.show_message(str(exc), "error")
                if quiet:  # a stale file from last time: forget it
                    self.settings.intrinsics_file = ""
                return False
            self.settings.intrinsics_file = str(path)
            self.controls.set_intrinsics_file(Path(path).name)
        self.controller.set_options(self.pipeline_options())
        return True

    def _sync_dock_actions(self) -> None:
        if self._closing:
            return
        set_checked_quietly(self.actions_by_id["toggle_plots"], self.plots_dock.isVisible())
        set_checked_quietly(self.actions_by_id["toggle_controls"], self.controls_dock.isVisible())

    # ---- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.open_path(urls[0].toLocalFile())

    # ---- closing ------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Stop recording, every feed thread and the camera probe; save settings; free VTK."""
        if self._closing:
            event.accept()
            return
        self._stats_timer.stop()
        self.close_calibration()
        self.stop_feed()
        self._closing = True
        self.presenter.clear()
        self.bridge.close()
        self.camera_menu.shutdown()
        save_settings(self._store, self.settings)
        save_window_state(self._store, self.saveGeometry(), self.saveState())
        self._store.sync()
        self.viewport.close_viewport()
        gui_gc.release()
        event.accept()
