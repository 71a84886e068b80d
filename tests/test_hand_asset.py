"""The converted hand asset: contents, canonical frame, regressor, and loader errors."""

from __future__ import annotations

import numpy as np
import pytest

from handviz.hand.asset import HandAssetError, load_hand_asset
from handviz.types import JOINT_PARENTS, HandJoint

TIPS = [4, 8, 12, 16, 20]


@pytest.fixture(scope="module")
def asset():
    return load_hand_asset()


def test_arrays_have_documented_shapes_and_types(asset):
    V, S = asset.num_vertices, asset.num_shapes
    assert asset.vertices.shape == (V, 3) and asset.vertices.dtype == np.float32
    assert asset.faces.shape[1] == 3 and asset.faces.dtype == np.int32
    assert asset.faces.max() < V
    assert asset.skin_weights.shape == (V, 21)
    assert asset.shape_basis_verts.shape == (S, V, 3)
    assert asset.shape_basis_joints.shape == (S, 21, 3)
    assert len(asset.shape_names) == S >= 4
    assert tuple(asset.parents) == JOINT_PARENTS


def test_skin_weights_are_a_partition_with_empty_tip_columns(asset):
    w = asset.skin_weights
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(w[:, TIPS]).max() == 0.0
    assert (w[:, [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]].max(axis=0) > 0.75).all()  # each bone owns skin


def test_canonical_frame(asset):
    J = asset.rest_joints
    np.testing.assert_allclose(J[HandJoint.WRIST], 0.0, atol=1e-4)
    mid = J[HandJoint.MIDDLE_MCP]
    assert mid[1] < -80 and abs(mid[0]) < 1e-3 and abs(mid[2]) < 1e-3  # on the -y axis
    assert J[HandJoint.THUMB_TIP, 0] > 40 and J[HandJoint.PINKY_TIP, 0] < -40  # thumb toward +x
    assert J[HandJoint.THUMB_TIP, 2] < -20  # the thumb sits in front of the palm (-z)
    hand_length = np.linalg.norm(J[HandJoint.MIDDLE_TIP] - J[HandJoint.WRIST])
    assert 160 < hand_length < 200  # an adult hand in millimetres


def test_fingertips_touch_the_mesh(asset):
    for tip in TIPS:
        assert np.linalg.norm(asset.vertices - asset.rest_joints[tip], axis=1).min() < 8.0


def test_regressor_is_sparse_nonnegative_and_exact_at_rest(asset):
    R = asset.joint_regressor
    assert R is not None and R.shape == (21, asset.num_vertices)
    assert (R >= 0).all()
    np.testing.assert_allclose(R.sum(axis=1), 1.0, atol=1e-5)
    assert ((R > 0).sum(axis=1) <= 60).all()
    err = np.linalg.norm(R @ asset.vertices - asset.rest_joints, axis=1)
    assert err.mean() < 1.5 and err.max() < 4.0


def test_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(HandAssetError, match="nope.npz"):
        load_hand_asset(missing)


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "anny_hand_r.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(HandAssetError, match="anny_hand_r.npz.*convert_anny_hand"):
        load_hand_asset(bad)


def test_incomplete_file_lists_missing_keys(tmp_path, asset):
    partial = tmp_path / "anny_hand_r.npz"
    np.savez(partial, vertices=asset.vertices, faces=asset.faces)
    with pytest.raises(HandAssetError, match="skin_weights"):
        load_hand_asset(partial)
