"""`handviz record`: the headless pipeline (real sources and MediaPipe) writes a readable session.

The cascade is replaced by a stand-in here so the test does not depend on trained weights; it
turns each real detection into an estimate with the real hand asset's mesh.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from clips import close_crop

from handviz.cli import main
from handviz.io.session import SessionReader
from handviz.limits import HYPOTHESES_DEFAULT
from handviz.paths import assets_dir
from handviz.types import Detection, HandEstimate


class StandInCascade:
    calls: list[tuple[int, tuple[int, int], int]] = []

    def __init__(self) -> None:
        from handviz.hand.asset import load_hand_asset

        self.vertices = load_hand_asset().vertices

    @classmethod
    def from_weights(cls, weights_dir, device=None) -> StandInCascade:
        return cls()

    device = "cpu"

    @property
    def faces(self) -> np.ndarray:
        from handviz.hand.asset import load_hand_asset

        return load_hand_asset().faces

    def predict(self, detections: list[Detection], K: np.ndarray, n_hypotheses: int = HYPOTHESES_DEFAULT,
                ddim_steps: int = 1, seed: int | None = None, bone_prior: bool = True) -> list[HandEstimate]:
        self.calls.append((len(detections), K.shape, n_hypotheses))
        out = []
        for d in detections:
            joints = np.concatenate([d.keypoints_2d, np.full((21, 1), 400.0)], axis=1).astype(np.float32)
            out.append(HandEstimate(d.handedness, d.score, d.keypoints_2d, joints,
                                    np.repeat(joints[None], n_hypotheses, axis=0), np.zeros(21, np.float32),
                                    self.vertices + joints[0], d.world_3d))
        return out


@pytest.fixture()
def quiet_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(tmp_path / "logs"))


def test_record_images_into_a_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_logs) -> None:
    import handviz.cascade

    monkeypatch.setattr(handviz.cascade, "Cascade", StandInCascade)
    StandInCascade.calls = []
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(assets_dir() / "demo" / "thumb_up.jpg", images / name)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "stage1.safetensors").write_bytes(b"stand-in")

    code = main(["--weights", str(weights), "record", str(images), "--out", str(tmp_path / "s"),
                 "--hypotheses", "4", "--max-frames", "2"])
    assert code == 0
    # the pipeline may have estimated a frame beyond --max-frames before it stopped; 2 are recorded
    assert len(StandInCascade.calls) >= 2 and all(c[2] == 4 and c[1] == (3, 3) for c in StandInCascade.calls)

    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 2 and reader.complete
        # one metadata schema (io.session_meta.SessionMeta) whoever records
        assert reader.meta["model_fingerprint"].startswith("weights-") and reader.meta["n_hypotheses"] == 4
        assert reader.meta["recorded_by"] == "record" and reader.meta["backend"] == "cascade"
        assert np.allclose(reader.intrinsics, reader.frame(0).intrinsics)  # the K the first frame used
        assert reader.faces.shape[1] == 3 and reader.faces.max() < 1609
        first = reader.frame(0)
        assert first.image is not None and first.image.shape[2] == 3
        assert len(first.hands) >= 1, "MediaPipe found no hand in the demo photo"
        assert first.hands[0].vertices.shape == (1609, 3) and first.hands[0].joint_hypotheses.shape == (4, 21, 3)
        assert {"detect", "infer"} <= set(first.timings_ms)


def test_record_reads_a_close_photo_as_predict_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  quiet_logs) -> None:
    """A photo cut close around its hand, where MediaPipe alone finds nothing, gets its hand in a
    recorded session too (handviz.pipeline.photo_reader, as in predict)."""
    import cv2

    import handviz.cascade
    from handviz.pipeline.detector import HandDetector

    monkeypatch.setattr(handviz.cascade, "Cascade", StandInCascade)
    StandInCascade.calls = []
    rgb = cv2.imread(str(assets_dir() / "demo" / "thumbs_up_large.png"))
    with HandDetector(max_hands=1, static=True) as detector:
        kp = detector.detect(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB))[0].keypoints_2d
        close, A = close_crop(rgb, kp, 1.3)
        assert detector.detect(cv2.cvtColor(close, cv2.COLOR_BGR2RGB)) == []
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "close.png"), close)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "stage1.safetensors").write_bytes(b"stand-in")

    assert main(["--weights", str(weights), "record", str(images), "--out", str(tmp_path / "s"),
                 "--hypotheses", "4", "--max-frames", "1"]) == 0
    with SessionReader(tmp_path / "s") as reader:
        hands = reader.frame(0).hands
    assert len(hands) == 1
    assert np.abs(hands[0].keypoints_2d - (np.c_[kp, np.ones(21)] @ A.T)).mean() < 0.05 * 256


@pytest.mark.parametrize("make_input", [
    lambda d: d / "missing.mp4",
    lambda d: (d / "bad.mp4").write_bytes(b"not a video") and d / "bad.mp4",
], ids=["missing", "undecodable"])
def test_record_unreadable_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet_logs,
                                            make_input) -> None:
    source = make_input(tmp_path)
    code = main(["record", str(source), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(source) in err
    assert not (tmp_path / "s").exists()


def test_record_of_an_endless_source_stops_at_max_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         quiet_logs) -> None:
    """The demo loops forever: --max-frames must end the run, not only the recording."""
    import threading

    import handviz.cascade

    monkeypatch.setattr(handviz.cascade, "Cascade", StandInCascade)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "stage1.safetensors").write_bytes(b"stand-in")
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(main(
        ["--weights", str(weights), "record", "demo", "--out", str(tmp_path / "s"), "--max-frames", "5"])))
    run.start()
    run.join(120)
    assert not run.is_alive() and codes == [0]
    with SessionReader(tmp_path / "s") as reader:
        assert len(reader) == 5 and reader.complete


def _clip(path: Path, fps: float, frames: int) -> Path:
    """The thumbs-up photo as an MJPG clip of `frames` frames declared at `fps`."""
    import cv2

    from handviz.pipeline.letterbox import letterbox

    photo = letterbox(cv2.imread(str(assets_dir() / "demo" / "thumb_up.jpg")), (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for _ in range(frames):
        writer.write(photo)
    writer.release()
    return path


@pytest.mark.parametrize("source, fps", [("demo", 30.0), ("clip", 25.0)])
def test_record_keeps_the_source_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_logs,
                                       capsys: pytest.CaptureFixture[str], source: str, fps: float) -> None:
    """issue 21: `record demo` stamped frames as fast as they were processed (0.02-783 ms apart)
    and the exported BVH said 37.7 fps. Frame k of a file is k / fps into it, as the app plays it."""
    import handviz.cascade

    monkeypatch.setattr(handviz.cascade, "Cascade", StandInCascade)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "stage1.safetensors").write_bytes(b"stand-in")
    spec = "demo" if source == "demo" else str(_clip(tmp_path / "clip.avi", fps, 12))
    assert main(["--weights", str(weights), "record", spec, "--out", str(tmp_path / "s"), "--max-frames", "12"]) == 0
    with SessionReader(tmp_path / "s") as reader:
        assert reader.fps == fps and len(reader) == 12
        times = np.array([reader.frame(k).timestamp for k in range(len(reader))])
        with_hand = sum(bool(reader.frame(k).hands) for k in range(len(reader)))
    np.testing.assert_allclose(times, np.arange(12) / fps, atol=1e-9)
    assert with_hand == 12, "MediaPipe found no hand in the demo photo"
    assert main(["export", str(tmp_path / "s"), "--all", "--out", str(tmp_path / "hand.bvh")]) == 0
    frame_time = next(line for line in (tmp_path / "hand.bvh").read_text().splitlines()
                      if line.startswith("Frame Time:"))
    assert float(frame_time.split(":")[1]) == pytest.approx(1 / fps, rel=1e-4)
    capsys.readouterr()
