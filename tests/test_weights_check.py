"""Weights files are checked from their header, without torch, with messages that say what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from handviz.logs import EXIT_INPUT_ERROR, InputError, exit_code_for
from handviz.weights_check import WeightsError, check_weights_file, read_tensor_shapes

EXPECTED = {"encoder.weight": (8, 63), "encoder.bias": (8,), "head.weight": (63, 8)}


@pytest.fixture()
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "stage1.safetensors"
    tensors = {name: np.zeros(shape, dtype=np.float32) for name, shape in EXPECTED.items()}
    save_file(tensors, str(path), metadata={"config": '{"width": 8}'})
    return path


def test_matching_file_passes_and_returns_metadata(weights: Path) -> None:
    assert check_weights_file(weights, EXPECTED) == {"config": '{"width": 8}'}
    shapes, _ = read_tensor_shapes(weights)
    assert shapes == EXPECTED


def test_missing_file_says_how_to_get_weights(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(WeightsError) as info:
        check_weights_file(path, EXPECTED)
    message = str(info.value)
    assert str(path) in message and "not found" in message
    assert "handviz train all" in message and "--weights" in message and "HANDVIZ_WEIGHTS" in message


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="is a folder"):
        check_weights_file(tmp_path, EXPECTED)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_file_is_damaged(weights: Path, keep: float) -> None:
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(WeightsError) as info:
        check_weights_file(weights, EXPECTED)
    message = str(info.value)
    assert str(weights) in message and "damaged" in message and "reinstall" in message
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"", b"\x00" * 3, np.random.default_rng(0).bytes(4096),
                                     b"PK\x03\x04 a zip or pickle, not safetensors" * 20])
def test_garbage_bytes_are_damaged(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="damaged"):
        check_weights_file(path, EXPECTED)


def test_wrong_shape_names_the_tensor(weights: Path) -> None:
    wanted = dict(EXPECTED, **{"encoder.weight": (16, 63)})
    with pytest.raises(WeightsError) as info:
        check_weights_file(weights, wanted)
    message = str(info.value)
    assert "'encoder.weight' is (8, 63), expected (16, 63)" in message
    assert "different model config" in message and str(weights) in message


def test_missing_and_unexpected_tensors(weights: Path) -> None:
    wanted = {"encoder.weight": (8, 63), "encoder.bias": (8,), "decoder.weight": (63, 8)}
    with pytest.raises(WeightsError) as info:
        check_weights_file(weights, wanted)
    message = str(info.value)
    assert "missing (decoder.weight)" in message and "unexpected tensor(s) (head.weight)" in message


def test_weights_error_exits_as_an_input_error() -> None:
    error = WeightsError("x")
    assert isinstance(error, InputError) and exit_code_for(error) == EXIT_INPUT_ERROR


def test_checking_does_not_import_torch(weights: Path) -> None:
    script = (
        "import sys\n"
        "from handviz.weights_check import check_weights_file\n"
        f"check_weights_file({str(weights)!r}, {EXPECTED!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
