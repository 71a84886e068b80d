"""Stage-1 rows made closer to real hands: varied bone lengths and simulated MediaPipe 3D (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

from handviz.eval import metrics as M
from handviz.eval.no_truth import PUBLISHED_FINGER_MM, PUBLISHED_FINGER_SD_MM, finger_lengths, proportion_z_scores
from handviz.features import COND_DIM, OBSERVATION_COND_DIM, OBSERVATION_ERROR_SCALE_MM
from handviz.geometry import project
from handviz.hand.asset import load_hand_asset
from handviz.train.observations import (
    PARENTS,
    ObservationConfig,
    augment_keypoint_rows,
    chain_errors,
    proportion_factors,
    reproject_with_error,
    simulate_observations,
    vary_bone_lengths,
)


@pytest.fixture(scope="module")
def rest() -> np.ndarray:
    return load_hand_asset().rest_joints.astype(np.float64)


def _bones(j: np.ndarray) -> np.ndarray:
    return np.stack([j[..., c, :] - j[..., PARENTS[c], :] for c in range(1, 21)], axis=-2)


def test_published_proportions_are_reached_and_directions_kept(rest) -> None:
    factors = proportion_factors(rest)
    out = vary_bone_lengths(rest[None], np.random.default_rng(0), bone_sd=0.0, mean_factors=factors,
                            finger_spread=0.0)[0]
    assert max(abs(z) for z in proportion_z_scores(out).values()) < 1e-6
    assert max(abs(z) for z in proportion_z_scores(rest).values()) > 0.5  # the model's own differ
    before, after = _bones(rest), _bones(out)
    cos = (before * after).sum(-1) / np.linalg.norm(before, axis=-1) / np.linalg.norm(after, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    np.testing.assert_allclose(out[0], rest[0])


def test_bone_lengths_spread_like_adults(rest) -> None:
    hands = np.repeat(rest[None], 4000, axis=0)
    out = vary_bone_lengths(hands, np.random.default_rng(1), bone_sd=0.06)
    ratio = np.linalg.norm(_bones(out), axis=-1) / np.linalg.norm(_bones(rest), axis=-1)
    cv = ratio.std(0) / ratio.mean(0)
    assert 0.05 < cv.min() and cv.max() < 0.16  # the 8-15 % per finger bone, 6 % palm
    lengths = np.array([list(finger_lengths(h).values()) for h in out[:1000]])
    published_cv = np.array([PUBLISHED_FINGER_SD_MM[n] / PUBLISHED_FINGER_MM[n] for n in PUBLISHED_FINGER_MM])
    assert np.all(lengths.std(0) / lengths.mean(0) > published_cv)  # a finger varies at least as published


def test_reprojection_keeps_the_rows_2d_error() -> None:
    rng = np.random.default_rng(2)
    K = np.array([[[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]])
    old = rng.normal(0, 30, (1, 21, 3)) + [0, 0, 500]
    noisy = project(old, K[:, None]).reshape(1, 21, 2) + rng.normal(0, 2, (1, 21, 2))
    np.testing.assert_allclose(reproject_with_error(old, old, noisy, K), noisy, atol=1e-4)
    bigger = old[:, :1] + (old - old[:, :1]) * 1.2  # 20 % larger hand: the error grows with it
    moved = reproject_with_error(bigger, old, noisy, K)
    err_old = noisy - project(old, K[:, None]).reshape(1, 21, 2)
    err_new = moved - project(bigger, K[:, None]).reshape(1, 21, 2)
    assert np.linalg.norm(err_new) / np.linalg.norm(err_old) == pytest.approx(1.2, rel=0.05)


def test_chain_errors_have_unit_rms_and_grow_towards_the_tips() -> None:
    e = chain_errors(5000, np.random.default_rng(3), depth_factor=2.0)
    np.testing.assert_allclose(np.sqrt((e[:, 1:] ** 2).sum(-1).mean(-1)), 1.0, atol=1e-9)
    np.testing.assert_allclose(e[:, 0], 0.0)
    norm = np.linalg.norm(e, axis=-1).mean(0)
    assert norm[8] > norm[6] > norm[5]  # index tip > PIP > MCP
    assert np.abs(e[..., 2]).mean() > 1.5 * np.abs(e[..., 0]).mean()  # depth is the unsure axis


def test_simulated_world_error_follows_the_asked_size(rest) -> None:
    rng = np.random.default_rng(4)
    joints = np.repeat(rest[None] + [0, 0, 450.0], 300, axis=0)
    K = np.repeat(np.array([[[400.0, 0, 160], [0, 400, 120], [0, 0, 1]]]), 300, axis=0)
    cfg = ObservationConfig(observation_prob=1.0)
    pa = []
    for size in (0.0, 5.0, 20.0):
        world, z = simulate_observations(joints, K, np.full(300, size), rng, cfg)
        pa.append(M.pa_mpjpe(world.astype(np.float64), joints - joints[:, :1]).mean())
        assert np.allclose(world[:, 0], 0.0) and np.allclose(z[:, 0], 0.0)
    assert pa[0] < 1e-3 < pa[1] < pa[2]
    world, z = simulate_observations(joints[:1], K[:1], np.zeros(1), rng, cfg)
    rel_depth = joints[0, :, 2] - joints[0, 0, 2]
    assert np.corrcoef(z[0], rel_depth)[0, 1] > 0.999  # no error: MediaPipe's z is the true depth order


def test_rows_without_an_observation_are_left_out_of_the_condition(rest) -> None:
    from handviz.train.data import build_conditions

    rng = np.random.default_rng(5)
    B = 400
    joints = np.repeat(rest[None] + [0, 0, 450.0], B, axis=0)
    K = np.repeat(np.array([[[400.0, 0, 160], [0, 400, 120], [0, 0, 1]]]), B, axis=0)
    kp2d = project(joints, K[:, None]).reshape(B, 21, 2).astype(np.float32)
    cfg = ObservationConfig(bone_variation=True, observation_prob=0.5, error_range_mm=(3.0, 9.0))
    cam, kp, kp_z, world, error = augment_keypoint_rows(joints, kp2d, K, rng, cfg)
    seen = np.isfinite(world).all(axis=(1, 2))
    assert 0.35 < seen.mean() < 0.65
    assert np.all((error[seen] >= 3.0) & (error[seen] <= 9.0)) and np.all(error[~seen] == 0.0)
    np.testing.assert_allclose(project(cam, K[:, None]).reshape(B, 21, 2), kp, atol=1e-3)  # 2D follows the bones
    cond = build_conditions(kp, K, kp_z, world, error)
    assert cond.shape == (B, OBSERVATION_COND_DIM) and OBSERVATION_COND_DIM == COND_DIM + 1
    np.testing.assert_allclose(cond[:, -1], error / OBSERVATION_ERROR_SCALE_MM, rtol=1e-6)
    assert np.all(cond[~seen, 42:-1] == 0.0) and np.all(np.abs(cond[seen, 63:-1]).sum(1) > 0)


def test_rows_mediapipe_labelled_keep_their_bones(rest) -> None:
    rng = np.random.default_rng(6)
    B = 50
    joints = np.repeat(rest[None] + [0, 0, 450.0], B, axis=0)
    K = np.repeat(np.array([[[400.0, 0, 160], [0, 400, 120], [0, 0, 1]]]), B, axis=0)
    kp2d = project(joints, K[:, None]).reshape(B, 21, 2).astype(np.float32) + 1.5
    vary = np.arange(B) % 2 == 0
    cam, kp, *_ = augment_keypoint_rows(joints, kp2d, K, rng, ObservationConfig(bone_variation=True), vary_rows=vary)
    np.testing.assert_array_equal(cam[~vary], joints[~vary].astype(np.float32))
    np.testing.assert_array_equal(kp[~vary], kp2d[~vary])
    assert np.all(np.abs(cam[vary] - joints[vary]).max(axis=(1, 2)) > 0.1)


def test_mixed_batches_keep_the_asked_share_and_are_reproducible() -> None:
    from handviz.train.data import DataError, MixedBatchOrder

    group = np.zeros(1000, bool)
    group[:37] = True  # a few labelled renders among many keypoint-only rows
    order = MixedBatchOrder(group, batch=64, share=0.5, seed=3)
    seen = set()
    for step in range(10):
        idx = order.indices(step)
        assert len(idx) == 64 and len(set(idx)) == 64 and group[idx].sum() == 32
        seen.update(idx[group[idx]].tolist())
        np.testing.assert_array_equal(idx, MixedBatchOrder(group, 64, 0.5, seed=3).indices(step))
    assert seen == set(range(37))  # each small-group row comes round, epoch by epoch
    with pytest.raises(DataError, match="needs both"):
        MixedBatchOrder(np.zeros(10, bool), batch=4, share=0.5)
