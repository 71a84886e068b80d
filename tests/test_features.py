"""Model inputs: invariances of the keypoint condition, crops, and the root translation solve."""

import numpy as np

from handviz.data.camera import intrinsics_from_fov
from handviz.geometry import project
from handviz.features import (COND_DIM, crop_hand, keypoint_condition, normalize_keypoints,
                              solve_root_translation)


def _hand(rng):
    joints = rng.normal(0, 40, (21, 3)).astype(np.float32)
    joints -= joints[0]
    return joints


def test_root_translation_recovers_the_true_placement():
    rng = np.random.default_rng(0)
    K = intrinsics_from_fov(640, 480, 55)
    rel = _hand(rng)
    t_true = np.array([40.0, -25.0, 520.0], np.float32)
    kp = project(rel + t_true, K)
    t = solve_root_translation(rel, kp, K)
    assert np.allclose(t, t_true, atol=1e-2)


def test_root_translation_with_noisy_keypoints_is_close():
    rng = np.random.default_rng(1)
    K = intrinsics_from_fov(640, 480, 55)
    rel = _hand(rng)
    t_true = np.array([-60.0, 10.0, 450.0], np.float32)
    kp = project(rel + t_true, K) + rng.normal(0, 1.0, (21, 2))
    t = solve_root_translation(rel, kp, K)

    def rms_px(translation):
        return np.sqrt(((project(rel + translation, K) - kp) ** 2).sum(-1).mean())

    # the best fit to the keypoints it was given: no worse than the truth (500 noise draws: at
    # most 1.000004x the truth's error; here 1.17 against 1.20 px)
    assert rms_px(t) <= 1.001 * rms_px(t_true)
    # and off by what 1 px of noise explains at 450 mm (~1 mm per px): 500 draws gave an SD of
    # 0.36, 0.23 and 1.6 mm in x, y and depth (here 0.35, 0.14, 1.6)
    err = np.abs(t - t_true)
    assert np.all(err[:2] < 2.0) and err[2] < 8.0, err


def test_normalised_keypoints_ignore_hand_size_and_position():
    rng = np.random.default_rng(2)
    K = intrinsics_from_fov(640, 480, 55)[None]
    kp = rng.uniform(100, 300, (1, 21, 2)).astype(np.float32)
    moved = kp * 1.7 + np.array([55.0, -20.0], np.float32)  # zoom about the origin, then shift
    a, _ = normalize_keypoints(kp, K)
    b, _ = normalize_keypoints(moved, K)
    assert np.allclose(a, b, atol=1e-4)
    assert np.allclose(a[:, 0], 0.0)


def test_condition_vector_shape_and_missing_fields():
    rng = np.random.default_rng(3)
    K = np.repeat(intrinsics_from_fov(640, 480, 55)[None], 2, 0)
    kp = rng.uniform(100, 300, (2, 21, 2)).astype(np.float32)
    c0 = keypoint_condition(kp, K)
    assert c0.shape == (2, COND_DIM)
    assert np.all(c0[:, 42:] == 0)
    world = rng.normal(0, 50, (2, 21, 3)).astype(np.float32)
    c1 = keypoint_condition(kp, K, rng.normal(0, 5, (2, 21)), world)
    assert np.all(np.isfinite(c1)) and not np.allclose(c1[:, 63:], 0)


def test_crop_is_centred_on_the_hand():
    img = np.zeros((240, 320, 3), np.uint8)
    img[100:140, 200:240] = 255  # a bright square where the "hand" is
    kp = np.stack(np.meshgrid(np.linspace(200, 239, 7), np.linspace(100, 139, 3)), -1).reshape(-1, 2)
    crop = crop_hand(img, kp.astype(np.float32), size=64)
    assert crop.shape == (64, 64, 3)
    assert crop[32, 32].mean() > 200 and crop[2, 2].mean() < 50
