"""The Qt app under Xvfb: `xvfb-run -a python -m pytest tests/test_app_window.py`.

Real frames go through the real MediaPipe detector; the model is the shipped cascade when its
weights are present, else a tiny stand-in built from the hand template (numpy only).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    pytest.skip("needs an X display: run under xvfb-run", allow_module_level=True)

from fake_detector import FakeDetector
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from handviz.app.actions import ACTIONS, shortcut_rows  # noqa: E402
from handviz.app.dialogs import ShortcutsDialog  # noqa: E402
from handviz.app.main_window import MainWindow  # noqa: E402
from handviz.pipeline.inference import InferenceBackend, mediapipe_estimate  # noqa: E402
from handviz.pipeline.sources import demo_dir  # noqa: E402

pytestmark = pytest.mark.gui
WAIT_MS = 30_000


def template_backend() -> InferenceBackend:
    """MediaPipe's 3D joints, a spread of hypotheses around them, the template mesh at the wrist."""
    from handviz.hand.asset import load_hand_asset

    asset = load_hand_asset()
    rng = np.random.default_rng(0)

    def infer(frame, detections, K, options):
        out = []
        for d in detections:
            est = mediapipe_estimate(d, K)
            if est is None:
                continue
            hyps = est.joints_3d[None] + rng.normal(0, 4, (options.n_hypotheses, 21, 3)).astype(np.float32)
            verts = (asset.vertices - asset.rest_joints[0] + est.joints_3d[0]).astype(np.float32)
            out.append(dataclasses.replace(est, joint_hypotheses=hyps, vertices=verts,
                                           joint_spread=np.full(21, 4.0, np.float32)))
        return out

    return InferenceBackend(infer, "template", "cpu", asset.faces)


def model_backend() -> InferenceBackend:
    """The real cascade when weights are shipped, else the template stand-in."""
    from handviz.paths import weights_dir

    if any(weights_dir().glob("*.safetensors")):
        from handviz.commands.app import cascade_backend_factory

        return cascade_backend_factory(None, device="cpu")()
    return template_backend()


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith("handviz-") or t.name == "session-writer"]


@pytest.fixture()
def make_window(qtbot, tmp_path):
    def make(**kwargs) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, **kwargs)
        window.settings.record_dir = str(tmp_path / "sessions")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def wait_for_hand(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window._current is not None and bool(window._current.hands), timeout=WAIT_MS)


def test_window_builds_menus_toolbar_and_shortcut_sheet_from_one_table(make_window):
    w = make_window(autostart=False)
    for spec in ACTIONS:
        action = w.actions_by_id[spec.id]
        # the table's text is a key Qt understands (a typo parses to nothing or to another key) ...
        assert action.shortcut().toString() == spec.shortcut, spec.id
        assert action.shortcut().count() == (1 if spec.shortcut else 0), spec.id
        assert action.isCheckable() == spec.checkable
    # ... and no two commands share one: Qt fires neither of them on an ambiguous shortcut
    keys = [w.actions_by_id[s.id].shortcut().toString() for s in ACTIONS if s.shortcut]
    assert len(set(keys)) == len(keys), sorted(k for k in keys if keys.count(k) > 1)
    menu_texts = {a.text() for m in w.menus.values() for a in m.actions()}
    assert {w.actions_by_id[i].text() for i in ("record", "toggle_cloud", "about")} <= menu_texts
    assert w.actions_by_id["toggle_cloud"] in w.toolbar.actions()
    assert w.camera_menu.menuAction() in w.menus["&File"].actions()
    sheet = ShortcutsDialog(w)
    assert sheet.table.rowCount() == len(shortcut_rows()) == sum(1 for s in ACTIONS if s.shortcut)
    assert w.actions_by_id["toggle_cloud"].shortcut().toString() == "H"
    assert w.actions_by_id["record"].shortcut().toString() == "R"


def test_demo_photos_through_the_real_detector_reach_the_viewport(qtbot, make_window):
    w = make_window(source=str(demo_dir()), backend_factory=model_backend)
    wait_for_hand(qtbot, w)
    qtbot.waitUntil(lambda: w.status_labels["fps"].text() not in ("– fps", "0.0 fps"), timeout=WAIT_MS)
    # until the model has loaded, frames show MediaPipe's own 3D (no mesh): wait for a model result
    qtbot.waitUntil(lambda: w._current is not None and bool(w._current.hands)
                    and w.viewport.actors(w._current.hands[0].handedness)["mesh"] is not None
                    and len(w._current.hands[0].vertices) > 0, timeout=WAIT_MS)
    result = w._current
    hand = result.hands[0]
    actors = w.viewport.actors(hand.handedness)
    data = w.viewport.slot_data(hand.handedness)
    assert actors["mesh"].GetVisibility() and actors["skeleton"].GetVisibility() and actors["cloud"].GetVisibility()
    assert np.allclose(np.asarray(data["skeleton"].points), hand.joints_3d, atol=1e-3)
    assert np.allclose(np.asarray(data["mesh"].points), hand.vertices, atol=1e-3)
    assert data["cloud"].n_points == hand.joint_hypotheses.shape[0] * 21
    assert w.status_labels["backend"].text() != "loading model…"
    assert "demo" in w.video._message
    assert gc.get_freeze_count() > 0  # the model loaded: full collections skip what lives on


def test_cloud_toggle_by_action_and_shortcut_changes_actor_visibility(qtbot, make_window):
    w = make_window(source=str(demo_dir()), backend_factory=template_backend, detector_factory=FakeDetector)
    wait_for_hand(qtbot, w)
    cloud = w.viewport.actors("Right")["cloud"]
    # the result arrives before the frame clock draws it: wait for the draw, not just the result
    qtbot.waitUntil(lambda: bool(cloud.GetVisibility()), timeout=WAIT_MS)
    w.actions_by_id["toggle_cloud"].trigger()
    assert not cloud.GetVisibility() and not w.viewport.cloud_visible
    w.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=WAIT_MS)
    qtbot.keyClick(w.video, Qt.Key.Key_H)
    assert cloud.GetVisibility() and w.actions_by_id["toggle_cloud"].isChecked()
    assert w.settings.show_cloud


def test_closing_the_window_stops_every_thread(qtbot, make_window):
    w = make_window(source=str(demo_dir()), backend_factory=template_backend, detector_factory=FakeDetector)
    wait_for_hand(qtbot, w)
    w.actions_by_id["record"].trigger()
    qtbot.waitUntil(lambda: w.recorder.frames_written > 0, timeout=WAIT_MS)
    assert len(pipeline_threads()) >= 4  # capture, detect, infer, writer
    w.close()
    assert pipeline_threads() == []
    assert not w.recorder.recording


def test_no_camera_says_so_and_plays_the_demo(qtbot, make_window):
    index = next(i for i in range(50, 100) if not Path(f"/dev/video{i}").exists())
    w = make_window(source=str(index), backend_factory=template_backend, detector_factory=FakeDetector)
    qtbot.waitUntil(lambda: "No camera found" in w.banner.text, timeout=WAIT_MS)
    wait_for_hand(qtbot, w)
    assert w._current.frame.source == "demo"
    qtbot.waitUntil(lambda: w.camera_menu.found is not None, timeout=WAIT_MS)
    texts = [a.text() for a in w.camera_menu.actions()]
    assert "Rescan cameras" in texts
    if not w.camera_menu.found:
        assert "No camera found" in texts


def test_a_bad_file_is_reported_in_the_window(qtbot, make_window, tmp_path):
    w = make_window(autostart=False, detector_factory=FakeDetector)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a video")
    w.open_path(bad)
    qtbot.waitUntil(lambda: "notes.txt" in w.banner.text, timeout=WAIT_MS)
    assert w.banner.level == "error"


def test_record_then_replay_step_and_export(qtbot, make_window, tmp_path):
    w = make_window(source=str(demo_dir()), backend_factory=template_backend, detector_factory=FakeDetector)
    wait_for_hand(qtbot, w)
    w.actions_by_id["record"].trigger()
    qtbot.waitUntil(lambda: w.recorder.frames_written >= 5, timeout=WAIT_MS)
    path = w.recorder.path
    w.actions_by_id["record"].trigger()
    assert not w.recorder.recording and (path / "session.sqlite").is_file()

    gc.unfreeze()
    w.open_path(path)  # a session folder replays
    qtbot.waitUntil(lambda: w.replay_bar.slider.maximum() >= 4, timeout=WAIT_MS)
    assert gc.get_freeze_count() > 0  # a replay freezes the long-lived objects too
    assert w.replay_bar.isVisible() and not w.actions_by_id["record"].isEnabled()
    w.actions_by_id["pause"].setChecked(True)
    # frames already on their way may still arrive: wait for the one asked for
    with qtbot.waitSignal(w.result_shown, timeout=WAIT_MS, check_params_cb=lambda k: k == 2):
        # what a slider drag sends (setValue would send nothing if the player sits on 2 already)
        w.replay_bar.seek.emit(2)
    with qtbot.waitSignal(w.result_shown, timeout=WAIT_MS, check_params_cb=lambda k: k == 3):
        w.actions_by_id["step_forward"].trigger()
    assert w._current.frame.index == 3 and w.replay_bar.label.text().startswith("4 /")
    written = w.export_frame_to(tmp_path / "frame.obj")
    obj = next(p for p in written if p.suffix == ".obj")
    n_vertices = sum(1 for line in obj.read_text().splitlines() if line.startswith("v "))
    assert n_vertices == len(w._current.hands[0].vertices)
    # Ctrl+E's dialog: a typed .glb under the OBJ filter writes GLB; no suffix takes the filter's
    from handviz.app.export_formats import EXPORT_FILTERS

    glb = w.export_frame_to(tmp_path / "typed.glb", EXPORT_FILTERS["obj"])
    assert [p.suffix for p in glb if p.name.startswith("typed")] == [".glb"] and glb[0].stat().st_size > 0
    ply = w.export_frame_to(tmp_path / "chosen", EXPORT_FILTERS["ply"])
    assert any(p.name == "chosen.ply" for p in ply)


def test_settings_survive_a_restart(qtbot, make_window):
    w = make_window(autostart=False)
    w.controls.hypotheses.setValue(12)
    assert w.pipeline_options().temporal  # each hand followed over time unless the user says not
    w.controls.temporal.setChecked(False)
    w.actions_by_id["toggle_cloud"].trigger()
    assert w.pipeline_options().infer.n_hypotheses == 12 and not w.pipeline_options().temporal
    assert not w.controller.options.temporal  # the options every later feed starts with
    w.close()
    again = make_window(autostart=False)
    assert again.controls.hypotheses.value() == 12 and not again.controls.temporal.isChecked()
    assert not again.actions_by_id["toggle_cloud"].isChecked() and not again.viewport.cloud_visible


def test_mirror_flips_video_and_3d(qtbot, make_window):
    w = make_window(source=str(demo_dir()), backend_factory=template_backend, detector_factory=FakeDetector)
    wait_for_hand(qtbot, w)
    before = np.asarray(w.viewport.slot_data("Right")["skeleton"].points).copy()
    w.actions_by_id["mirror"].setChecked(True)
    after = np.asarray(w.viewport.slot_data("Right")["skeleton"].points)
    assert np.allclose(after[:, 0], -before[:, 0]) and np.allclose(after[:, 1:], before[:, 1:])
    assert w.video.mirrored and w.controls.mirror.isChecked()


def test_dropping_a_folder_opens_it(qtbot, make_window, tmp_path):
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(next(demo_dir().glob("*.jpg")), folder / "a.jpg")
    w = make_window(autostart=False, backend_factory=template_backend, detector_factory=FakeDetector)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    w.dropEvent(event)
    wait_for_hand(qtbot, w)
    assert w._current.frame.source == "photos"


def test_replay_command_rejects_what_is_not_a_session(tmp_path):
    import argparse

    from handviz.commands.replay import run
    from handviz.logs import InputError

    with pytest.raises(InputError, match="no such session folder"):
        run(argparse.Namespace(session=tmp_path / "missing", weights=None, debug=False))
    with pytest.raises(InputError, match="not a handviz session"):
        run(argparse.Namespace(session=tmp_path, weights=None, debug=False))


def test_unreadable_session_says_so_in_the_status_bar_and_a_banner_that_fits(qtbot, make_window, tmp_path):
    """Defect 5: the status bar said "loading model…" forever and the message was cut at both ends."""
    from PySide6.QtGui import QFontMetrics

    from handviz.app.video_view import MESSAGE_FLAGS

    bad = tmp_path / "bad-session"
    bad.mkdir()
    (bad / "session.sqlite").write_bytes(b"not a database at all " * 64)
    w = make_window(session=bad)
    qtbot.waitUntil(lambda: "not a readable handviz session" in w.banner.text, timeout=WAIT_MS)
    assert w.banner.level == "error"
    assert "not a readable handviz session" in w.statusBar().currentMessage()
    assert w.status_labels["backend"].text() == "replay failed"
    w.resize(640, 600)  # narrower than the message: it must wrap, not be clipped
    label = w.banner.label
    qtbot.waitUntil(lambda: label.width() < 640 and label.height() >= label.heightForWidth(label.width()),
                    timeout=WAIT_MS)
    assert label.wordWrap()
    video = w.video
    needed = QFontMetrics(video.font()).boundingRect(video.message_rect().toRect(), int(MESSAGE_FLAGS.value),
                                                     w.banner.label.text())
    assert video.rect().contains(needed)
    # the next feed starts clean: no stale error in the status bar
    w.open_source(str(demo_dir()))
    assert w.statusBar().currentMessage() == "" and w.status_labels["backend"].text() == "loading model…"


def test_exports_are_logged(qtbot, make_window, tmp_path, caplog):
    """issue 21: an export from the window left no trace in the log (the status bar forgets it)."""
    import logging

    w = make_window(source=str(demo_dir()), backend_factory=template_backend, detector_factory=FakeDetector)
    # a frame from the model (those before it loaded are MediaPipe's 3D, without a mesh to export)
    qtbot.waitUntil(lambda: w._current is not None and bool(w._current.hands) and w._faces is not None
                    and len(w._current.hands[0].vertices) > 0, timeout=WAIT_MS)
    caplog.set_level(logging.INFO, logger="handviz")
    written = w.export_frame_to(tmp_path / "frame.ply")
    assert written
    done = [r.getMessage() for r in caplog.records if r.name == "handviz.app.window_commands"]
    assert len(done) == 1 and done[0].startswith("exported frame ") and str(written[0]) in done[0]
    (tmp_path / "a-file").write_text("")
    assert w.export_frame_to(tmp_path / "a-file" / "frame.obj") == []  # a folder that is a file
    failed = [r for r in caplog.records if r.name == "handviz.app.window_commands" and r.levelno == logging.WARNING]
    assert len(failed) == 1 and "a-file" in failed[0].getMessage()
