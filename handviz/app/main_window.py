"""The main window: wires a feed (live pipeline or session replay) to the views.

Layout: video (left) | 3D viewport (right), a replay bar under them in replay mode, controls
dock (right), performance plots dock (bottom), status bar (device, fps, hands, dropped frames,
recording). Every command comes from the action table (actions.py). Results arrive through
the ResultBridge on the GUI thread; nothing here waits on a worker except when stopping one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import platformdirs
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QSplitter, QVBoxLayout, QWidget

from handviz.app import dialogs
from handviz.app.actions import build_actions, build_menus, build_toolbar, set_checked_quietly
from handviz.app.banner import Banner
from handviz.app.camera_menu import CameraMenu
from handviz.app.bridge import ResultBridge
from handviz.app.controls import ControlsPanel, ControlValues
from handviz.app.export_formats import export_filter_string, resolve_export_path
from handviz.app.plots import PerformancePlots
from handviz.app.replay_bar import ReplayBar
from handviz.app.settings import (APPLICATION, ORGANIZATION, AppSettings, load_settings, load_window_state,
                                  save_settings, save_window_state)
from handviz.app.video_view import VideoView
from handviz.app.viewport import HandViewport
from handviz.logs import InputError
from handviz.paths import assets_dir
from handviz.pipeline import timing
from handviz.pipeline.inference import CachedBackendFactory, InferenceBackend, InferOptions
from handviz.pipeline.intrinsics import Calibration, IntrinsicsChoice, load_intrinsics
from handviz.pipeline.recording import Recorder, default_session_path
from handviz.pipeline.replay import SessionPlayer
from handviz.pipeline.sources import open_source
from handviz.pipeline.threads import Detector, Pipeline, PipelineEvent, PipelineOptions
from handviz.pipeline.timing import RollingStats
from handviz.types import FrameResult

log = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg);;All files (*)"
#: How often the status bar and plots refresh (ms).
STATS_INTERVAL_MS = 500
SESSION_MARKER = "session.sqlite"


def is_session_folder(path: Path) -> bool:
    return path.is_dir() and (path / SESSION_MARKER).is_file()


class MainWindow(QMainWindow):
    """source: what `--source` said (None: camera 0, falling back to the demo); session: a
    session folder to replay instead. backend_factory builds the cascade backend (None: MediaPipe
    3D only); detector_factory the hand detector (tests may pass a fake)."""

    #: Emitted after a result is drawn, with its frame index (tests wait on it).
    result_shown = Signal(int)
    _recording_failed = Signal(str)

    def __init__(self, source: str | None = None, session: str | Path | None = None,
                 backend_factory: Callable[[], InferenceBackend] | None = None,
                 detector_factory: Callable[[], Detector] | None = None,
                 settings: QSettings | None = None, autostart: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("handviz")
        icon = assets_dir() / "icons" / "handviz.svg"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setAcceptDrops(True)
        self._store = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.settings: AppSettings = load_settings(self._store)
        self._backend_factory = CachedBackendFactory(backend_factory) if backend_factory is not None else None
        self._detector_factory = detector_factory
        self._calibration: Calibration | None = None
        self._feed: Pipeline | SessionPlayer | None = None
        self._feed_spec: str | None = None
        self._feed_is_replay = False
        self._fallback_to_demo = False
        self._source_fps: float | None = None
        self._faces: np.ndarray | None = None
        self._current: FrameResult | None = None
        self._last_K: np.ndarray | None = None
        self._last_size: tuple[int, int] | None = None
        self._closing = False
        self.frames_shown = 0
        self.stats = RollingStats()
        self.recorder = Recorder()

        self.bridge = ResultBridge(self)
        self.bridge.result_ready.connect(self._on_result)
        self.bridge.event.connect(self._on_event)
        self._recording_failed.connect(self._on_recording_failed)

        self._build_widgets()
        self.actions_by_id = build_actions(self)
        self.menus = build_menus(self, self.actions_by_id)
        self.toolbar = build_toolbar(self, self.actions_by_id)
        self._build_camera_menu()
        self._build_status_bar()
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
        self.replay_bar.seek.connect(self._replay_seek)
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
        self.controls_dock = QDockWidget("Controls", self)
        self.controls_dock.setObjectName("controls_dock")
        self.controls_dock.setWidget(self.controls)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.controls_dock)

        self.plots = PerformancePlots()
        self.plots_dock = QDockWidget("Performance", self)
        self.plots_dock.setObjectName("plots_dock")
        self.plots_dock.setWidget(self.plots)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.plots_dock)
        self.controls_dock.visibilityChanged.connect(self._sync_dock_actions)
        self.plots_dock.visibilityChanged.connect(self._sync_dock_actions)

    def _build_camera_menu(self) -> None:
        self.camera_menu = CameraMenu(self)
        self.camera_menu.camera_chosen.connect(lambda index: self.open_source(str(index)))
        self.menus["&File"].insertMenu(self.actions_by_id["open_video"], self.camera_menu)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_labels: dict[str, QLabel] = {}
        for key, text in (("rec", ""), ("backend", "loading model…"), ("fps", "– fps"), ("hands", "hands: 0"),
                          ("dropped", "dropped: 0")):
            label = QLabel(text)
            label.setObjectName(f"status_{key}")
            label.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(label)
            self.status_labels[key] = label
        self.status_labels["rec"].setStyleSheet("color:#ff5555; font-weight:bold;")

    def _restore_settings(self) -> None:
        s = self.settings
        self.controls.set_values(ControlValues(s.n_hypotheses, s.ddim_steps, s.smoothing, s.mirror, s.focal_px))
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
            self.resize(1400, 900)
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
        return PipelineOptions(infer=InferOptions(v.n_hypotheses, v.ddim_steps), smoothing=v.smoothing,
                               intrinsics=choice)

    @property
    def feed(self) -> Pipeline | SessionPlayer | None:
        return self._feed

    def open_source(self, spec: str | int | None, fallback_to_demo: bool = False) -> None:
        """Play a camera index, video file, image folder or "demo" through a new pipeline."""
        self.stop_feed()
        spec_text = None if spec is None else str(spec)
        self._feed_spec = spec_text
        camera = 0 if spec_text is None else int(spec_text) if spec_text.strip().isdigit() else None
        self.camera_menu.set_in_use(camera)
        self._fallback_to_demo = fallback_to_demo and (spec_text or "").lower() != "demo"
        on_result, on_event = self.bridge.new_feed()
        kwargs = {} if self._detector_factory is None else {"detector_factory": self._detector_factory}
        pipeline = Pipeline(lambda: open_source(spec_text, loop=True), on_result, on_event,
                            backend_factory=self._backend_factory, options=self.pipeline_options(), **kwargs)
        self.bridge.tap = self.recorder.put
        self._feed, self._feed_is_replay = pipeline, False
        self._set_replay_mode(False)
        self._reset_views()
        self.video.set_message(f"opening {spec_text if spec_text is not None else 'camera 0'}…")
        pipeline.set_paused(self.actions_by_id["pause"].isChecked())
        pipeline.start()

    def open_session(self, path: str | Path) -> None:
        """Replay a recorded session folder."""
        self.stop_feed()
        on_result, on_event = self.bridge.new_feed()
        self.bridge.tap = None
        player = SessionPlayer(path, on_result, on_event)
        self._feed, self._feed_is_replay = player, True
        self._feed_spec = str(path)
        self._set_replay_mode(True)
        self._reset_views()
        self.video.set_message(f"opening session {Path(path).name}…")
        set_checked_quietly(self.actions_by_id["pause"], False)
        self.replay_bar.set_playing(True)
        player.start()

    def stop_feed(self) -> None:
        """Stop recording and the running feed, joining its threads."""
        if self.actions_by_id["record"].isChecked():
            self.actions_by_id["record"].setChecked(False)
        feed, self._feed = self._feed, None
        if feed is not None:
            if not feed.stop():
                log.error("a feed did not stop in time; its threads are daemons and end with the app")

    def _reset_views(self) -> None:
        self._current = None
        self.stats = RollingStats()
        self.plots.clear_history()
        self.video.clear()
        self.viewport.show_hands([], message="waiting for frames")
        self.viewport.request_render()

    def _set_replay_mode(self, replay: bool) -> None:
        self.replay_bar.setVisible(replay)
        for action_id in ("step_back", "step_forward"):
            self.actions_by_id[action_id].setEnabled(replay)
        self.actions_by_id["record"].setEnabled(not replay)
        self.controls.setEnabled(True)
        for w in (self.controls.hypotheses, self.controls.ddim_steps, self.controls.smoothing,
                  self.controls.focal):
            w.setEnabled(not replay)  # a replay shows what was recorded

    # ---- results and events (GUI thread) ------------------------------------------------------
    def _on_result(self, gen: int, result: FrameResult) -> None:
        try:
            if gen != self.bridge.generation or self._closing:
                return
            self._show_result(result)
        except Exception:  # a drawing bug must not stop the next frame from being drawn
            log.exception("drawing frame %d failed", result.frame.index)
            self.statusBar().showMessage("drawing a frame failed; see the log", 5000)
        finally:
            self.bridge.done()

    def _show_result(self, result: FrameResult) -> None:
        self._current = result
        self.stats.add(result)
        image = result.frame.image
        h, w = image.shape[:2]
        K = np.asarray(result.intrinsics, np.float64)
        if self._last_K is None or self._last_size != (w, h) or not np.allclose(K, self._last_K):
            self._last_K, self._last_size = K, (w, h)
            self.viewport.set_intrinsics(K, h)
            self.controls.show_K(K)
        message = result.error or ""
        self.viewport.show_hands(result.hands, message=message)
        self.viewport.present()
        self.video.show_frame(image, result.detections, result.hands, K)
        self.video.set_message(f"{result.frame.source} · frame {result.frame.index}")
        if result.error:
            self.statusBar().showMessage(result.error, 3000)
        if self._feed_is_replay:
            self.replay_bar.set_position(result.frame.index)
        self.frames_shown += 1
        self.result_shown.emit(result.frame.index)

    def _on_event(self, gen: int, event: PipelineEvent) -> None:
        if gen != self.bridge.generation or self._closing:
            return
        log.info("pipeline event %s: %s", event.kind, event.message)
        if event.kind == "backend-ready":
            self._set_faces(event.data.get("faces"))
            name, device = event.data["name"], event.data["device"]
            self.status_labels["backend"].setText(name if device == "-" else f"{name} · {device}")
        elif event.kind == "backend-failed":
            self.banner.show_message(event.message, "warning")
        elif event.kind == "source-opened":
            self._source_fps = event.data.get("fps")
            self.statusBar().showMessage(event.message, 3000)
            self.camera_menu.probe_once()
        elif event.kind == "source-error":
            self._on_source_error(event)
        elif event.kind == "session-opened":
            self._set_faces(event.data.get("faces"))
            self.replay_bar.set_length(int(event.data["frames"]))
            self.status_labels["backend"].setText(f"replay · {event.data['fps']:.0f} fps recorded")
            notes = list(event.data.get("warnings") or [])
            if not event.data.get("complete", True):
                notes.append("this session was cut short (crash or full disk); all committed frames are shown")
            if notes:
                self.banner.show_message("; ".join(notes), "warning")
        elif event.kind == "source-ended":
            self.statusBar().showMessage(event.message, 5000)
            if self._feed_is_replay:
                self.replay_bar.set_playing(False)
                set_checked_quietly(self.actions_by_id["pause"], True)
        elif event.kind in ("warning", "stage-error"):
            self.statusBar().showMessage(event.message, 5000)
            if event.level == "error":
                self.banner.show_message(event.message, "error")

    def _on_source_error(self, event: PipelineEvent) -> None:
        opening = bool(event.data.get("opening"))
        if opening and self._fallback_to_demo and not self._feed_is_replay:
            if self._feed_spec is None or self._feed_spec.strip().isdigit():
                text = f"No camera found ({event.message}). Showing the bundled demo instead."
            else:
                text = f"{event.message}. Showing the bundled demo instead."
            self.banner.show_message(text, "warning")
            self.open_source("demo")
            return
        self.banner.show_message(event.message, "error")
        self.video.set_message(event.message)

    def _set_faces(self, faces: np.ndarray | None) -> None:
        if faces is not None and len(faces) == 0:
            faces = None
        self._faces = faces
        self.viewport.set_faces(faces)
        self.video.faces = None if faces is None else np.asarray(faces, np.int64)

    def _refresh_stats(self) -> None:
        snap = self.stats.snapshot()
        self.plots.add(timing.now(), snap)
        self.status_labels["fps"].setText(f"{snap.fps:.1f} fps")
        hands = len(self._current.hands) if self._current is not None else 0
        self.status_labels["hands"].setText(f"hands: {hands}")
        dropped = self.bridge.gui_dropped
        if isinstance(self._feed, Pipeline):
            dropped += self._feed.dropped
        self.status_labels["dropped"].setText(f"dropped: {dropped}")
        if self.recorder.recording:
            self.status_labels["rec"].setText(f"● REC {self.recorder.frames_written}")
        else:
            self.status_labels["rec"].setText("")

    # ---- controls -----------------------------------------------------------------------------
    def _on_controls_changed(self) -> None:
        values = self.controls.values()
        if values.mirror != self.actions_by_id["mirror"].isChecked():
            self.actions_by_id["mirror"].setChecked(values.mirror)
        self.settings.n_hypotheses = values.n_hypotheses
        self.settings.ddim_steps = values.ddim_steps
        self.settings.smoothing = values.smoothing
        self.settings.focal_px = values.focal_px
        self._apply_options()

    def _apply_options(self) -> None:
        if isinstance(self._feed, Pipeline):
            options = self.pipeline_options()
            self._feed.set_options(infer=options.infer, smoothing=options.smoothing, intrinsics=options.intrinsics)

    def load_intrinsics_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Camera intrinsics", self.settings.last_dir,
                                              "Intrinsics (*.json);;All files (*)")
        if path:
            self.set_intrinsics_file(path)

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
        self._apply_options()
        return True

    # ---- action callbacks (names from actions.py) -----------------------------------------------
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

    def toggle_recording(self, checked: bool) -> None:
        if not checked:
            summary = self.recorder.stop()
            if summary is not None:
                text = f"Recorded {summary.frames_written} frame(s) into {summary.path}"
                if summary.dropped:
                    text += f" ({summary.dropped} not recorded: the disk was too slow)"
                self.statusBar().showMessage(text, 8000)
                self.settings.last_dir = str(summary.path.parent)
            return
        if self._feed_is_replay or not isinstance(self._feed, Pipeline):
            set_checked_quietly(self.actions_by_id["record"], False)
            self.statusBar().showMessage("Recording works on a live source (camera, video, folder)", 5000)
            return
        folder = self.settings.record_dir or str(Path(platformdirs.user_documents_dir()) / "handviz")
        path = default_session_path(folder)
        result = self._current
        K = result.intrinsics if result is not None else self.pipeline_options().intrinsics.K_for(640, 480)
        backend = self._feed.backend
        options = self._feed.options
        meta = {"source": self._feed_spec or "camera 0",
                "backend": backend.name if backend is not None else "unknown",
                "device": backend.device if backend is not None else "unknown",
                "n_hypotheses": options.infer.n_hypotheses, "ddim_steps": options.infer.ddim_steps,
                "smoothing": options.smoothing}
        try:
            self.recorder.start(path, self._faces, K, meta, fps=self._source_fps or 30.0,
                                on_error=self._recording_failed.emit)
        except (InputError, OSError, ValueError) as exc:
            set_checked_quietly(self.actions_by_id["record"], False)
            self.banner.show_message(f"Cannot record: {exc}", "error")
            return
        self.statusBar().showMessage(f"Recording into {path}", 5000)

    def _on_recording_failed(self, message: str) -> None:
        self.actions_by_id["record"].setChecked(False)
        self.banner.show_message(f"Recording stopped: {message}", "error")

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
            self.banner.show_message(f"Export failed: {path}: {exc}", "error")
            return []
        self.settings.last_dir = str(path.parent)
        self.statusBar().showMessage("Exported " + ", ".join(p.name for p in written if p.suffix == f".{fmt}"), 6000)
        return written

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
            self.controls.set_values(ControlValues(values.n_hypotheses, values.ddim_steps, values.smoothing,
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

    def _sync_dock_actions(self) -> None:
        if self._closing:
            return
        set_checked_quietly(self.actions_by_id["toggle_plots"], self.plots_dock.isVisible())
        set_checked_quietly(self.actions_by_id["toggle_controls"], self.controls_dock.isVisible())

    def set_paused(self, checked: bool) -> None:
        if self._feed is not None:
            self._feed.set_paused(checked)
        if self._feed_is_replay:
            self.replay_bar.set_playing(not checked)

    def step_back(self) -> None:
        self._replay_step(-1)

    def step_forward(self) -> None:
        self._replay_step(1)

    def _replay_step(self, delta: int) -> None:
        if isinstance(self._feed, SessionPlayer):
            self._feed.step(delta)
            set_checked_quietly(self.actions_by_id["pause"], True)
            self.replay_bar.set_playing(False)

    def _replay_seek(self, k: int) -> None:
        if isinstance(self._feed, SessionPlayer):
            self._feed.seek(k)

    def show_shortcuts(self) -> None:
        dialogs.ShortcutsDialog(self).exec()

    def show_about(self) -> None:
        dialogs.show_about(self)

    def _redraw_current(self) -> None:
        if self._current is not None:
            r = self._current
            self.video.show_frame(r.frame.image, r.detections, r.hands, np.asarray(r.intrinsics, np.float64))

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
        self.stop_feed()
        self._closing = True
        self.bridge.close()
        self.camera_menu.shutdown()
        save_settings(self._store, self.settings)
        save_window_state(self._store, self.saveGeometry(), self.saveState())
        self._store.sync()
        self.viewport.close_viewport()
        event.accept()
