"""Joint limits, angle conversions and the pose/shape/rotation samplers."""

from __future__ import annotations

import numpy as np
import torch

from handviz.hand.articulation import (
    JOINT_LIMITS,
    angles_to_rotmats,
    angles_to_rotmats_np,
    clamp_to_limits,
    joint_frames,
    within_limits,
)
from handviz.hand.asset import load_hand_asset
from handviz.hand.pose_prior import GESTURES, sample_poses, sample_shapes, sample_webcam_rotations


def test_sampled_poses_are_within_limits_and_seeded():
    a = sample_poses(500, np.random.default_rng(0))
    b = sample_poses(500, np.random.default_rng(0))
    c = sample_poses(500, np.random.default_rng(1))
    assert a.shape == (500, 21, 3) and a.dtype == np.float32
    assert within_limits(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sampled_poses_are_diverse_and_coupled():
    a = sample_poses(2000, np.random.default_rng(2)).astype(np.float64)
    mcp_flex = a[:, [5, 9, 13, 17], 0]
    assert mcp_flex.std(axis=0).min() > np.deg2rad(15)  # real variety
    assert np.corrcoef(mcp_flex[:, 1], mcp_flex[:, 2])[0, 1] > 0.5  # middle and ring move together
    pip, dip = a[:, [6, 10, 14, 18], 0].ravel(), a[:, [7, 11, 15, 19], 0].ravel()
    assert np.corrcoef(pip, dip)[0, 1] > 0.8  # DIP follows PIP


def test_gestures_are_within_limits():
    assert {"open", "fist", "pinch", "point", "ok", "thumbs_up", "count_3", "spread"} <= set(GESTURES)
    for name, angles in GESTURES.items():
        assert within_limits(angles), name


def test_clamp_and_within_limits_agree():
    rng = np.random.default_rng(4)
    wild = rng.normal(scale=2.0, size=(50, 21, 3))
    assert not within_limits(wild).any()
    clamped = clamp_to_limits(wild)
    assert within_limits(clamped).all()
    torch_clamped = clamp_to_limits(torch.as_tensor(wild))
    np.testing.assert_allclose(torch_clamped.numpy(), clamped)
    np.testing.assert_array_equal(clamp_to_limits(clamped), clamped)


def test_pip_and_dip_are_hinges():
    for j in (6, 7, 10, 11, 14, 15, 18, 19, 3):
        assert np.all(JOINT_LIMITS[j, 1:] == 0.0)


def test_angle_conversion_torch_and_numpy_agree_and_are_rotations():
    asset = load_hand_asset()
    frames = joint_frames(asset.rest_joints, asset.joint_flex_axes)
    np.testing.assert_allclose(frames @ frames.transpose(0, 2, 1), np.broadcast_to(np.eye(3), frames.shape), atol=1e-6)
    angles = sample_poses(8, np.random.default_rng(5)).astype(np.float64)
    R_np = angles_to_rotmats_np(angles, frames)
    R_t = angles_to_rotmats(torch.as_tensor(angles), torch.as_tensor(frames)).numpy()
    np.testing.assert_allclose(R_np, R_t, atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(R_np), 1.0, atol=1e-9)
    zero = angles_to_rotmats_np(np.zeros((21, 3)), frames)
    np.testing.assert_allclose(zero, np.broadcast_to(np.eye(3), zero.shape), atol=1e-12)


def test_flexion_axis_frames_point_along_the_bones():
    asset = load_hand_asset()
    frames = joint_frames(asset.rest_joints, asset.joint_flex_axes)
    bone = asset.rest_joints[6] - asset.rest_joints[5]
    np.testing.assert_allclose(frames[5][:, 2], bone / np.linalg.norm(bone), atol=1e-6)
    assert frames[5][0, 0] > 0.8  # index MCP flexes about roughly +x


def test_shapes_are_bounded_and_seeded():
    s = sample_shapes(300, np.random.default_rng(0))
    assert s.shape == (300, 4) and np.abs(s).max() <= 1.0
    np.testing.assert_array_equal(s, sample_shapes(300, np.random.default_rng(0)))
    assert s.std(axis=0).min() > 0.3


def test_webcam_rotations_are_mostly_fingers_up():
    R = sample_webcam_rotations(1000, np.random.default_rng(0)).astype(np.float64)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    fingers = R @ np.array([0.0, -1.0, 0.0])  # hand's finger direction in the camera frame
    palm = R @ np.array([0.0, 0.0, -1.0])  # palm normal; -z = toward the camera
    assert (fingers[:, 1] < 0).mean() > 0.8  # up in the image (y down)
    assert (fingers[:, 1] > 0.7).mean() < 0.05  # rarely pointing down
    facing = (palm[:, 2] < 0).mean()
    assert 0.3 < facing < 0.75  # both palm and back views
