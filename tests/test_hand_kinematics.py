"""Forward kinematics, skinning and the HandLayer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handviz.hand.articulation import JOINT_LIMITS
from handviz.hand.asset import load_hand_asset
from handviz.hand.kinematics import HandLayer, batch_rodrigues, forward_kinematics, lbs, pose_hand
from handviz.hand.pose_prior import GESTURES, sample_poses, sample_shapes
from handviz.types import JOINT_PARENTS

TIPS = [4, 8, 12, 16, 20]


@pytest.fixture(scope="module")
def asset():
    return load_hand_asset()


@pytest.fixture(scope="module")
def layer(asset):
    return HandLayer(asset, dtype=torch.float64)


def _poses(n: int, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(sample_poses(n, np.random.default_rng(seed)), dtype=torch.float64)


def test_zero_pose_reproduces_the_template(layer, asset):
    out = layer(torch.zeros(2, 21, 3, dtype=torch.float64))
    np.testing.assert_allclose(out.vertices[1].numpy(), asset.vertices, atol=1e-4)
    np.testing.assert_allclose(out.joints[0].numpy(), asset.rest_joints, atol=1e-4)


def test_batch_equals_items_and_is_deterministic(layer):
    angles = _poses(4)
    shape = torch.as_tensor(sample_shapes(4, np.random.default_rng(1)), dtype=torch.float64)
    batched = layer(angles, shape)
    again = layer(angles, shape)
    assert torch.equal(batched.vertices, again.vertices)
    for i in range(4):
        single = layer(angles[i : i + 1], shape[i : i + 1])
        torch.testing.assert_close(single.vertices[0], batched.vertices[i])
        torch.testing.assert_close(single.joints[0], batched.joints[i])


def test_fingertips_stay_on_the_mesh_when_posed(layer):
    out = layer(_poses(16, seed=3))
    for b in range(16):
        d = torch.cdist(out.joints[b, TIPS], out.vertices[b]).min(dim=1).values
        assert (d < 8.0).all(), d


def test_flexion_curls_toward_the_palm(layer):
    angles = torch.zeros(1, 21, 3, dtype=torch.float64)
    angles[0, [5, 6, 7], 0] = torch.deg2rad(torch.tensor(60.0, dtype=torch.float64))
    tip = layer(angles).joints[0, 8]
    rest_tip = layer(torch.zeros_like(angles)).joints[0, 8]
    assert tip[2] < rest_tip[2] - 40  # palm faces -z


def test_bone_lengths_are_preserved_by_posing(layer, asset):
    out = layer(_poses(8, seed=5))
    child = torch.arange(1, 21)
    parent = torch.tensor(JOINT_PARENTS[1:])
    rest = np.linalg.norm(asset.rest_joints[1:] - asset.rest_joints[JOINT_PARENTS[1:],], axis=1)
    posed = (out.joints[:, child] - out.joints[:, parent]).norm(dim=-1).numpy()
    np.testing.assert_allclose(posed, np.broadcast_to(rest, posed.shape), atol=1e-3)


def test_global_rotation_turns_about_the_wrist(layer):
    angles = _poses(2, seed=7)
    R = batch_rodrigues(torch.tensor([[0.3, -1.0, 0.5], [2.0, 0.1, 0.0]], dtype=torch.float64))
    plain = layer(angles)
    turned = layer(angles, global_rot=R)
    expected = plain.vertices @ R.transpose(1, 2)
    torch.testing.assert_close(turned.vertices, expected)
    torch.testing.assert_close(turned.joints[:, 0], torch.zeros(2, 3, dtype=torch.float64))


def test_shape_changes_bone_lengths(layer):
    angles = torch.zeros(2, 21, 3, dtype=torch.float64)
    shape = torch.zeros(2, layer.num_shapes, dtype=torch.float64)
    shape[1, layer.shape_names.index("hand_size")] = 1.0
    j = layer(angles, shape).joints
    lengths = (j[:, 12] - j[:, 0]).norm(dim=-1)
    assert 10.0 < float(lengths[1] - lengths[0]) < 25.0
    shape[1] = 0
    shape[1, layer.shape_names.index("finger_length")] = 1.0
    j = layer(angles, shape).joints
    finger = (j[:, 12] - j[:, 9]).norm(dim=-1)
    assert float(finger[1] - finger[0]) > 4.0


def test_gradients_reach_angles_shape_and_rotation(layer):
    angles = (_poses(2, seed=9) + 0.01).requires_grad_(True)
    shape = torch.zeros(2, layer.num_shapes, dtype=torch.float64, requires_grad=True)
    rotvec = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    out = layer(angles, shape, batch_rodrigues(rotvec))
    (out.vertices.square().mean() + out.joints.square().mean()).backward()
    for t in (angles, shape, rotvec):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_lbs_with_identity_transforms_is_identity(asset):
    verts = torch.as_tensor(asset.vertices, dtype=torch.float64)[None]
    eye = torch.eye(4, dtype=torch.float64).expand(1, 21, 4, 4)
    out = lbs(verts, torch.as_tensor(asset.skin_weights, dtype=torch.float64), eye)
    torch.testing.assert_close(out, verts)


def test_forward_kinematics_matches_a_hand_chain():
    rest = torch.tensor([[[0.0, 0, 0], [0, -10, 0], [0, -20, 0]]])
    R = torch.eye(3).repeat(1, 3, 1, 1)
    R[0, 1] = batch_rodrigues(torch.tensor([np.pi / 2, 0, 0]))  # joint 1 bends its bone to -z
    joints, transforms = forward_kinematics(R, rest, [-1, 0, 1])
    torch.testing.assert_close(joints[0, 2], torch.tensor([0.0, -10.0, -10.0]), atol=1e-5, rtol=0)
    moved = transforms[0, 2, :3, :3] @ rest[0, 2] + transforms[0, 2, :3, 3]
    torch.testing.assert_close(moved, joints[0, 2], atol=1e-5, rtol=0)


def test_pose_hand_numpy_matches_layer(layer):
    angles = GESTURES["ok"]
    verts, joints = pose_hand(angles)
    assert verts.shape == (layer.rest_verts.shape[0], 3) and joints.shape == (21, 3)
    out = layer(torch.as_tensor(angles)[None])
    np.testing.assert_allclose(joints, out.joints[0].numpy(), atol=1e-3)
    batch_verts, _ = pose_hand(np.stack([angles, angles]), shape=np.zeros(layer.num_shapes))
    np.testing.assert_allclose(batch_verts[1], verts, atol=1e-3)


def test_regressor_recovers_joints_of_posed_shaped_meshes(layer, asset):
    rng = np.random.default_rng(123)
    angles = torch.as_tensor(sample_poses(64, rng), dtype=torch.float64)
    shape = torch.as_tensor(sample_shapes(64, rng), dtype=torch.float64)
    out = layer(angles, shape)
    reg = torch.as_tensor(asset.joint_regressor, dtype=torch.float64)
    err = (torch.einsum("jv,bvc->bjc", reg, out.vertices) - out.joints).norm(dim=-1)
    assert float(err.mean()) < 1.5, float(err.mean())


def test_limits_table_is_well_formed():
    assert JOINT_LIMITS.shape == (21, 3, 2)
    assert (JOINT_LIMITS[..., 0] <= JOINT_LIMITS[..., 1]).all()
