"""Issue 12's rows as a new user met them: bad values, folders, export formats and mesh winding.

Each bad value must give one line naming the option and the allowed range, exit 2, and write
nothing (no partial .jsonl, no session folder, no export)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import trimesh

from handviz.cli import main
from handviz.io.export import export_hands, signed_volume, write_hand
from handviz.native_noise import is_native_noise
from test_export import MESH, make_hand, write_session

REPO = Path(__file__).resolve().parents[1]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("option, message", [
    (["--hypotheses", "0"], "--hypotheses must be within 1..256, got 0"),
    (["--hypotheses", "1000"], "--hypotheses must be within 1..256, got 1000"),
    (["--ddim-steps", "0"], "--ddim-steps must be within 1..50, got 0"),
    (["--focal", "-5"], "--focal must be within 1..100000, got -5"),
    (["--device", "tpu"], "--device must be cpu, cuda or cuda:K, got 'tpu'"),
])
def test_predict_refuses_bad_values_before_any_work(tmp_path: Path, demo_photo: Path, capsys,
                                                    option: list[str], message: str) -> None:
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(demo_photo), "--out", str(out), "--obj-dir", str(tmp_path / "o"), *option]) == 2
    assert one_error_line(capsys) == f"handviz: error: {message}"
    assert not out.exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, message", [
    (["predict", "a.png", "--out", "{tmp}/r.jsonl", "--hypotheses", "abc"], "--hypotheses: invalid int value: 'abc'"),
    (["predict", "a.png", "--out", "{tmp}/r.jsonl", "--focal", "wide"], "--focal: invalid float value: 'wide'"),
    (["record", "demo", "--out", "{tmp}/s", "--max-frames", "1.5"], "--max-frames: invalid int value: '1.5'"),
    (["export", "{tmp}/s", "--frame", "0", "--format", "stl", "--out", "{tmp}/x"],
     "--format: invalid choice: 'stl' (choose from 'obj', 'ply', 'glb', 'bvh')"),
    (["bench", "--seconds", "soon"], "--seconds: invalid float value: 'soon'"),
])
def test_a_value_of_the_wrong_type_is_one_line_and_exit_2(tmp_path: Path, capsys, argv: list[str],
                                                         message: str) -> None:
    """issue 21: argparse printed its 7-line usage before the error; the README promises one line."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert one_error_line(capsys) == f"handviz: error: {message}"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_argument_still_shows_the_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--out", "r.jsonl"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: handviz predict") and "required: INPUT" in err


def test_cuda_without_cuda_is_an_input_error(tmp_path: Path, demo_photo: Path, capsys,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(demo_photo), "--out", str(out), "--device", "cuda"]) == 2
    assert "--device cuda: this machine has no usable CUDA GPU; use --device cpu" in one_error_line(capsys)
    assert not out.exists()
    assert main(["eval", "--synthetic", "4", "--device", "cuda:0"]) == 2
    assert "no usable CUDA GPU" in one_error_line(capsys)


@pytest.mark.parametrize("argv, message", [
    (["record", "demo", "--hypotheses", "1000"], "--hypotheses must be within 1..256, got 1000"),
    (["record", "demo", "--max-frames", "0"], "--max-frames must be at least 1, got 0"),
    (["eval", "--synthetic", "4", "--hypotheses", "0"], "--hypotheses must be within 1..256, got 0"),
    (["eval", "--synthetic", "0"], "--synthetic must be at least 1, got 0"),
    (["eval", "--synthetic", "4", "--ddim-steps", "99"], "--ddim-steps must be within 1..50, got 99"),
    (["train", "stage1", "--data", "{tmp}", "--steps", "0"], "--steps must be at least 1, got 0"),
    (["train", "stage1", "--data", "{tmp}", "--lr", "-1"], "--lr must be a positive number, got -1"),
    (["train", "stage1", "--data", "{tmp}", "--device", "gpu"],
     "--device must be auto, cpu, cuda or cuda:K, got 'gpu'"),
    (["data", "synth", "--n", "0", "--out", "{tmp}/shards"], "--n must be at least 1, got 0"),
    (["bench", "--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_every_subcommand_checks_its_values(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "record":
        argv += ["--out", str(tmp_path / "session")]
    before = sorted(tmp_path.rglob("*"))
    assert main(argv) == 2
    assert one_error_line(capsys) == f"handviz: error: {message}"
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_predict_folder_skips_other_files_with_one_note(tmp_path: Path, demo_photo: Path, capsys) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "LICENSE").write_text("Apache-2.0")
    (folder / "README.md").write_text("photos")
    cv2.imwrite(str(folder / "blank.png"), np.full((60, 80, 3), 200, np.uint8))
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(folder), "--out", str(out), "--hypotheses", "4"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"handviz predict: {folder}: skipped 2 file(s) that are not images or videos: LICENSE, README.md"
    assert len(err) == 2 and err[1].startswith("1 frames")
    assert [json.loads(x)["image"] for x in out.read_text().splitlines()] == [str(folder / "blank.png")]


@pytest.mark.parametrize("contents", [[], ["LICENSE"]])
def test_a_folder_without_images_is_an_error_for_every_command(tmp_path: Path, capsys, contents: list[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in contents:
        (folder / name).write_text("x")
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(folder), "--out", str(out)]) == 2
    assert str(folder) in one_error_line(capsys)
    assert not out.exists()
    assert main(["record", str(folder), "--out", str(tmp_path / "session")]) == 2
    assert "no images found" in one_error_line(capsys)
    assert not (tmp_path / "session").exists()
    assert main(["eval", "--hands3d", str(tmp_path / "empty")]) == 2
    assert "no such folder" in one_error_line(capsys)


def _bad_paths(tmp: Path) -> None:
    """What the bad-path cases below point at: a file, a folder of other files, a broken labels file,
    a session folder's database alone."""
    (tmp / "a_file.txt").write_text("not a folder, not an image")
    (tmp / "junk").mkdir()
    (tmp / "junk" / "README").write_text("x")
    (tmp / "bad_labels").mkdir()
    (tmp / "bad_labels" / "labels.jsonl").write_text("{not json\n")
    (tmp / "session").mkdir()
    (tmp / "session" / "session.sqlite").write_bytes(b"")


@pytest.mark.parametrize("argv, message", [
    (["eval", "--checks", "{tmp}/nope.jpg"], "--checks {tmp}/nope.jpg: no such file or folder"),
    (["eval", "--checks", "{tmp}/a_file.txt"], "--checks {tmp}/a_file.txt: not a readable image or video"),
    (["eval", "--checks", "{tmp}/junk"], "--checks {tmp}/junk: holds no image or video (1 other file(s)); looked for"),
    (["eval", "--real", "{tmp}/nope"], "--real {tmp}/nope: no such folder"),
    (["eval", "--real", "{tmp}/a_file.txt"], "--real {tmp}/a_file.txt: is a file; give the folder"),
    (["eval", "--real", "{tmp}/junk"], "--real {tmp}/junk: holds no labels.jsonl; give the folder with labels.jsonl"),
    (["eval", "--real", "{tmp}/bad_labels"], "--real {tmp}/bad_labels/labels.jsonl:1: not a label line"),
    (["eval", "--synthetic", "4", "--mirror"], "--mirror: works with --real (photos, not --videos) only"),
    (["eval", "--freihand", "{tmp}/nope"], "--freihand {tmp}/nope: no such folder"),
    (["eval", "--freihand", "{tmp}/a_file.txt"], "--freihand {tmp}/a_file.txt: is a file; give the folder"),
    (["eval", "--freihand", "{tmp}/junk"], "--freihand {tmp}/junk: not a FreiHAND folder (need evaluation/rgb/"),
    (["eval", "--ho3d", "{tmp}/nope"], "--ho3d {tmp}/nope: no such folder"),
    (["eval", "--ho3d", "{tmp}/junk"], "--ho3d {tmp}/junk/train.txt: missing; pass the HO3D folder"),
    (["replay", "{tmp}/nope"], "{tmp}/nope: no such session folder"),
    (["replay", "{tmp}/a_file.txt"], "{tmp}/a_file.txt: is a file; give a session folder (one that holds session.sqlite)"),
    (["replay", "{tmp}/session/session.sqlite"], "{tmp}/session/session.sqlite: give the session folder, {tmp}/session,"),
    (["replay", "{tmp}/junk"], "{tmp}/junk: not a handviz session (no session.sqlite inside)"),
])
def test_bad_paths_are_one_line_and_exit_2_before_anything_loads(tmp_path: Path, capsys, monkeypatch,
                                                                  argv: list[str], message: str) -> None:
    """eval and replay: a path that is missing, a file for a folder, or a folder without what the
    option reads is one line naming the option and the path, exit 2, before the model or the
    window is loaded."""
    from handviz.cascade import Cascade
    from handviz.commands import app

    def never(*args, **kwargs):
        raise AssertionError("loaded the model / opened the window for a bad path")

    monkeypatch.setattr(Cascade, "from_weights", classmethod(never))
    monkeypatch.setattr(app, "launch", never)
    _bad_paths(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith("handviz: error: " + message.replace("{tmp}", str(tmp_path))), line
    assert "unexpected" not in line and "a bug" not in line


def test_predict_obj_dir_writes_outward_meshes_for_both_hands(tmp_path: Path, capsys) -> None:
    """The demo holds a left hand (thumb_up.jpg) and right hands: every OBJ must wind outwards."""
    from handviz.paths import assets_dir

    assert main(["predict", str(assets_dir() / "demo"), "--out", str(tmp_path / "r.jsonl"),
                 "--hypotheses", "4", "--obj-dir", str(tmp_path / "objs")]) == 0
    objs = sorted((tmp_path / "objs").glob("*.obj"))
    assert any(p.stem.endswith("_left") for p in objs) and any(p.stem.endswith("_right") for p in objs)
    for path in objs:
        mesh = trimesh.load(path, process=False, maintain_order=True, force="mesh")
        assert signed_volume(mesh.vertices, mesh.faces) > 0, path.name
        assert path.with_suffix(".mtl").is_file()  # the same writer as `handviz export`


def test_write_hand_is_the_shared_door(tmp_path: Path) -> None:
    hand = make_hand("Left")
    hand.vertices = hand.vertices * np.float32([-1, 1, 1])  # mirrored like the cascade's left hands
    for suffix in ("obj", "ply", "glb"):
        path = tmp_path / f"h.{suffix}"
        assert write_hand(hand, MESH.faces, path)[0] == path
        mesh = trimesh.load(path, process=False, maintain_order=True, force="mesh")
        assert signed_volume(mesh.vertices, mesh.faces) > 0
        scale = 1e-3 if suffix == "glb" else 1.0  # glTF in metres, the others in mm
        np.testing.assert_allclose(mesh.vertices, hand.vertices * scale, atol=1e-4 * scale)
    with pytest.raises(ValueError, match="cannot tell the mesh format"):
        write_hand(hand, MESH.faces, tmp_path / "h.stl")
    # The app's per-frame export (export_hands, format by its file filter) gets the same defaults.
    (path,) = export_hands([hand], MESH.faces, tmp_path / "app.glb", position=0, fmt="glb")
    np.testing.assert_allclose(trimesh.load(path, force="mesh", process=False).vertices, hand.vertices * 1e-3,
                               atol=1e-7)


def test_export_format_from_the_suffix_and_glb_in_metres(tmp_path: Path, capsys) -> None:
    frames = write_session(tmp_path / "s")
    out = tmp_path / "x.glb"
    assert main(["export", str(tmp_path / "s"), "--frame", "0", "--out", str(out)]) == 0
    assert out.is_file()
    mesh = trimesh.load(out, process=False, maintain_order=True, force="mesh")
    np.testing.assert_allclose(mesh.vertices, frames[0][0].vertices * 1e-3, atol=1e-6)
    assert main(["export", str(tmp_path / "s"), "--frame", "0", "--units", "mm", "--out", str(tmp_path / "y.glb")]) == 0
    np.testing.assert_allclose(trimesh.load(tmp_path / "y.glb", force="mesh", process=False).vertices,
                               frames[0][0].vertices, atol=1e-3)
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--frame", "0", "--format", "obj", "--out", "{tmp}/x.glb"],
     "--out {tmp}/x.glb names a .glb file but --format is obj; make them agree or drop --format"),
    (["--frame", "0", "--out", "{tmp}/x.fbx"], "--out {tmp}/x.fbx: handviz does not write .fbx files"),
    # issue 21: any other suffix made a folder of that name
    (["--frame", "0", "--out", "{tmp}/f.xyz"], "--out {tmp}/f.xyz: handviz does not write .xyz files"),
    (["--all", "--out", "{tmp}/f.XYZ"], "--out {tmp}/f.XYZ: handviz does not write .xyz files"),
    (["--all", "--out", "{tmp}/x.glb"], "--all writes one file per frame"),
    (["--frame", "0", "--animated", "--out", "{tmp}/x.glb"], "exports the whole session: use --all"),
    (["--all", "--animated", "--format", "ply", "--out", "{tmp}/x"], "--animated writes .glb or .bvh"),
    (["--all", "--animated", "--format", "glb", "--out", "{tmp}/folder"], "an animated export is one file"),
])
def test_export_refuses_contradictions(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    write_session(tmp_path / "s")
    before = sorted(tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["export", str(tmp_path / "s"), *argv]) == 2
    assert message.replace("{tmp}", str(tmp_path)) in one_error_line(capsys)
    assert sorted(tmp_path.rglob("*")) == before


def test_export_into_an_existing_folder_whose_name_has_a_dot(tmp_path: Path, capsys) -> None:
    """Only a name that does not exist yet is read as a file name by its suffix."""
    write_session(tmp_path / "s")
    folder = tmp_path / "exports.v2"
    folder.mkdir()
    assert main(["export", str(tmp_path / "s"), "--frame", "0", "--out", str(folder)]) == 0
    assert sorted(p.suffix for p in folder.iterdir()) == [".mtl", ".obj"]
    capsys.readouterr()


def test_console_stays_quiet_in_a_real_process(tmp_path: Path, demo_photo: Path) -> None:
    """MediaPipe/TFLite/absl lines go to the log; the console keeps handviz's own summary."""
    env = {"HANDVIZ_LOG_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "handviz", "predict", str(demo_photo), "--hypotheses", "4",
                           "--out", str(tmp_path / "r.jsonl")], capture_output=True, text=True, env=env,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == ["1 frames, 1 hands -> " + str(tmp_path / "r.jsonl")]
    log = (tmp_path / "logs" / "handviz.log").read_text()
    assert "command line: handviz predict" in log
    assert any(is_native_noise(line.split(": ", 1)[-1]) for line in log.splitlines() if "handviz.native" in line)
