"""Hypotheses on the keypoint rays, fused with MediaPipe's 3D (handviz.posterior): pure numpy checks."""

import dataclasses

import numpy as np
import pytest

from handviz.features import solve_root_translation
from handviz.geometry import project
from handviz.posterior import (
    PosteriorConfig, finger_depth_modes, fuse_depths, hand_scales, normalized_rays, posterior_hypotheses,
    project_onto_modes, root_translations, similarity_align, snap_to_rays, wrist_to_tip_lengths,
)

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])


def _hand(rng: np.random.Generator) -> np.ndarray:
    """A rough root-relative hand (21, 3) mm: fingers fanning out of a palm, with depth."""
    rel = rng.normal(0, 30, (21, 3))
    rel[0] = 0
    return rel


def test_batched_root_translation_matches_the_single_solver():
    rng = np.random.default_rng(0)
    hands = np.stack([_hand(rng) for _ in range(4)])
    kp = project(_hand(rng) + [10, -20, 450], K)
    batched = root_translations(hands, normalized_rays(kp, K))
    for h, t in zip(hands, batched):
        assert np.allclose(t, solve_root_translation(h, kp, K.astype(np.float32)), atol=1e-2)


def test_snapped_hands_project_onto_the_keypoints_and_keep_their_depths():
    rng = np.random.default_rng(1)
    truth = _hand(rng) + [30, 10, 500]
    kp = project(truth, K)
    hyps = np.stack([truth - truth[0] + rng.normal(0, 8, (21, 3)) for _ in range(5)])
    hyps -= hyps[:, :1]
    snapped = snap_to_rays(hyps, normalized_rays(kp, K))
    for s in snapped:
        assert np.abs(project(s, K) - kp).max() < 1e-3
    # A hand already on the rays is only placed, not changed.
    again = snap_to_rays((truth - truth[0])[None], normalized_rays(kp, K))[0]
    assert np.allclose(again, truth, atol=1e-6)


def test_similarity_align_recovers_a_known_motion():
    rng = np.random.default_rng(2)
    a = _hand(rng)
    angle = 0.4
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    b = 1.3 * a @ R + [5, 6, 7]
    assert np.allclose(similarity_align(a, b), b, atol=1e-6)
    rigid = similarity_align(a, b, scale=False)
    assert np.allclose(np.linalg.norm(rigid - rigid.mean(0), axis=1), np.linalg.norm(a - a.mean(0), axis=1))


def _setup(gap_mm: float):
    rng = np.random.default_rng(3)
    truth = _hand(rng) + [0, 0, 450]
    kp = project(truth, K)
    hyps = np.stack([truth + rng.normal(0, 4, (21, 3)) for _ in range(32)])
    hyps -= hyps[:, :1]
    world = truth - truth.mean(0)
    world[:, 2] += gap_mm * np.linspace(-1, 1, 21)  # MediaPipe disagrees in depth by up to gap_mm
    return hyps, kp, world


def test_posterior_mean_is_the_fused_hand_on_the_rays():
    hyps, kp, world = _setup(10.0)
    cfg = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, disagreement_scale=1.0, keypoint_noise_scale=0.0)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 3, (32, 21, 2))
    post = posterior_hypotheses(hyps, kp, K, world, cfg, noise)
    assert post.shape == hyps.shape and np.allclose(post[:, 0], 0)
    mean = post.mean(0)
    t = solve_root_translation(mean, kp, K.astype(np.float32))
    assert np.abs(project(mean + t, K) - kp).max() < 0.05  # exactly on the rays, noise or not


def test_cloud_widens_where_mediapipe_disagrees():
    cfg = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, disagreement_scale=1.0, keypoint_noise_scale=0.0)
    spreads = []
    for gap in (0.0, 10.0, 30.0):
        hyps, kp, world = _setup(gap)
        post = posterior_hypotheses(hyps, kp, K, world, cfg)
        spreads.append(np.linalg.norm(post - post.mean(0), axis=-1).mean())
    assert spreads[0] < spreads[1] < spreads[2]


def test_cloud_widens_in_depth_with_mediapipe_3d_distance_and_keeps_its_mean():
    """world_distance_scale: a sideways disagreement too (which the depth gaps cannot see) widens
    the cloud, along depth only; sampler_spread_scale shrinks the sampler's own part."""
    hyps, kp, world = _setup(0.0)
    sideways = world.copy()
    sideways[:, 0] += 25.0 * np.where(np.arange(21) % 2, 1.0, -1.0)
    base = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, disagreement_scale=0.0, keypoint_noise_scale=0.0)
    wide = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, disagreement_scale=0.0, keypoint_noise_scale=0.0,
                           world_distance_scale=1.0)
    narrow = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, disagreement_scale=0.0, keypoint_noise_scale=0.0,
                             sampler_spread_scale=0.25)

    def depth_spread(cfg, w):
        post = posterior_hypotheses(hyps, kp, K, w, cfg)
        return post, np.abs(post[..., 2] - post[..., 2].mean(0)).mean()

    post_base, s_base = depth_spread(base, sideways)
    post_wide, s_wide = depth_spread(wide, sideways)
    _, s_agree = depth_spread(wide, world)
    _, s_narrow = depth_spread(narrow, sideways)
    assert s_wide > 1.5 * s_base and s_agree < 1.2 * s_base and s_narrow < 0.5 * s_base
    assert np.allclose(post_wide.mean(0), post_base.mean(0), atol=1e-6)  # the estimate does not move


def test_mediapipe_weight_moves_the_depths_toward_mediapipe():
    hyps, kp, world = _setup(30.0)
    rays = normalized_rays(kp, K)
    snapped_mean = snap_to_rays(hyps, rays).mean(0)
    target = similarity_align(world, snapped_mean)[:, 2]
    gaps = []
    for w in (0.0, 0.5, 1.0):
        post = posterior_hypotheses(hyps, kp, K, world, PosteriorConfig(world_weight=w, image_z_weight=0.0,
                                                                       disagreement_scale=0, keypoint_noise_scale=0))
        fused = post.mean(0) + root_translations(post.mean(0)[None], rays)[0]
        gaps.append(np.abs(fused[:, 2] - target).mean())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05 * gaps[0]


def test_missing_mediapipe_world_skips_the_fusion_and_snap_off_is_identity():
    hyps, kp, _ = _setup(0.0)
    nan_world = np.full((21, 3), np.nan)
    a = posterior_hypotheses(hyps, kp, K, nan_world, PosteriorConfig(keypoint_noise_scale=0))
    b = posterior_hypotheses(hyps, kp, K, None, PosteriorConfig(keypoint_noise_scale=0))
    assert np.allclose(a, b) and np.all(np.isfinite(a))
    assert np.array_equal(posterior_hypotheses(hyps, kp, K, None, PosteriorConfig(snap=False)), hyps)


def test_config_rejects_unknown_keys():
    assert PosteriorConfig.from_dict({"world_weight": 0.3}).world_weight == 0.3
    with pytest.raises(ValueError, match="world_wieght"):
        PosteriorConfig.from_dict({"world_wieght": 0.3})


def test_image_z_is_a_depth_observation_in_millimetres():
    """MediaPipe's image z (px, wrist-relative) becomes depth: z_px x wrist depth / focal."""
    from handviz.posterior import mediapipe_depths

    rng = np.random.default_rng(4)
    truth = _hand(rng) + [0, 0, 500]
    z_px = (truth[:, 2] - truth[0, 2]) * K[0, 0] / truth[0, 2]
    depths = mediapipe_depths(truth, None, z_px, K[0, 0])
    assert set(depths) == {"image_z"} and np.allclose(depths["image_z"], truth[:, 2])
    assert mediapipe_depths(truth, None, np.full(21, np.nan), K[0, 0]) == {}


def test_world_landmarks_pull_joints_sideways_only_within_the_tolerance():
    """ray_tolerance lets MediaPipe's 3D move a joint off its keypoint ray (3D averaging helped on
    real photos), but never by more than that fraction of the hand's 2D size."""
    hyps, kp, world = _setup(0.0)
    world = world.copy()
    world[8, :2] += 25.0  # MediaPipe's 3D puts the index tip elsewhere sideways
    size = np.linalg.norm(kp.max(0) - kp.min(0))
    offsets = {}
    for tol in (0.0, 0.015, 1.0):
        cfg = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, disagreement_scale=0.0,
                              keypoint_noise_scale=0.0, ray_tolerance=tol)
        mean = posterior_hypotheses(hyps, kp, K, world, cfg).mean(0)
        t = solve_root_translation(mean, kp, K.astype(np.float32))
        off = np.linalg.norm(project(mean + t, K) - kp, axis=1)
        # placed again by least squares, as the cascade does: the median stays within the
        # tolerance, the pulled joint a little over it at most
        assert np.median(off) <= tol * size + 0.5 and off.max() <= 1.5 * tol * size + 1.0  # px
        offsets[tol] = off[8]
    assert offsets[0.0] < 0.05 < offsets[0.015] < offsets[1.0]


def test_finger_modes_keep_the_cloud_size_and_lie_along_whole_fingers():
    """finger_modes: the depth deviations keep their total size, the estimate does not move, and
    each hypothesis differs from the mean only by fingers leaning about their bases and the palm's
    tilt (7 numbers instead of 20 wrist-relative depths)."""
    hyps, kp, world = _setup(20.0)
    free = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, keypoint_noise_scale=0.0)
    modal = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, keypoint_noise_scale=0.0, finger_modes=True)
    a = posterior_hypotheses(hyps, kp, K, world, free, rng=np.random.default_rng(5))
    b = posterior_hypotheses(hyps, kp, K, world, modal, rng=np.random.default_rng(5))
    assert np.allclose(a.mean(0), b.mean(0), atol=1e-6)
    t = solve_root_translation(b.mean(0), kp, K.astype(np.float32))
    depth_a = (a + t)[..., 2] - (a.mean(0) + t)[:, 2]
    depth_b = (b + t)[..., 2] - (b.mean(0) + t)[:, 2]
    depth_a, depth_b = depth_a - depth_a[:, :1], depth_b - depth_b[:, :1]  # wrist-relative
    assert 0.8 < np.linalg.norm(depth_b) / np.linalg.norm(depth_a) < 1.25  # the size is kept
    modes = finger_depth_modes(b.mean(0) + t)
    assert modes.shape == (7, 21) and np.allclose(modes[:, 0], 0)
    q, _ = np.linalg.qr(modes.T)
    outside = depth_b - depth_b @ q @ q.T
    assert np.linalg.norm(outside) < 0.05 * np.linalg.norm(depth_b)  # all along the modes
    assert np.linalg.norm(depth_a - depth_a @ q @ q.T) > 0.3 * np.linalg.norm(depth_a)  # not so without


def test_projection_onto_modes_keeps_the_total_size():
    rng = np.random.default_rng(6)
    modes = rng.normal(size=(3, 21))
    dev = rng.normal(size=(10, 21))
    out = project_onto_modes(dev, modes)
    assert np.isclose((out**2).sum(), (dev**2).sum())
    assert np.allclose(project_onto_modes(out, modes), out)  # already in the span: unchanged


def test_hand_scales_have_mean_one_and_scaled_hypotheses_still_project_onto_their_rays():
    """A hypothesis scaled about the camera, its wrist that much farther (as the cascade places
    it), projects where it did: size and distance trade off, the image does not change."""
    rng = np.random.default_rng(7)
    assert hand_scales(32, 0.0, rng) is None and hand_scales(1, 0.2, rng) is None
    scales = hand_scales(32, 0.2, rng)
    assert np.isclose(scales.mean(), 1.0) and 0.1 < scales.std() < 0.3
    hyps, kp, world = _setup(0.0)
    cfg = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, disagreement_scale=0.0, keypoint_noise_scale=0.0,
                          sampler_spread_scale=0.0)
    plain = posterior_hypotheses(hyps, kp, K, world, cfg)
    scaled = posterior_hypotheses(hyps, kp, K, world, cfg, scales=scales)
    assert np.allclose(plain.mean(0), scaled.mean(0), atol=1e-6)  # the estimate does not move
    t = solve_root_translation(scaled.mean(0), kp, K.astype(np.float32))
    cams = scaled + scales[:, None, None] * t
    size = np.linalg.norm(kp.max(0) - kp.min(0))
    assert np.abs(project(cams, K) - kp).max() < 0.01 * size
    lengths = np.linalg.norm(scaled[:, 12] - scaled[:, 0], axis=-1) / np.linalg.norm(plain[:, 12] - plain[:, 0], axis=-1)
    assert np.corrcoef(lengths, scales)[0, 1] > 0.99  # bigger hypotheses are bigger hands


def test_blends_carry_only_the_depth_sources_disagreement():
    """blend_fraction: the first share of hypotheses are blends of the depth sources only (no 2D
    jitter, no sampler spread), so they differ from each other along the one direction in which
    our depths and MediaPipe's disagree; the rest carry the noise in every direction."""
    hyps, kp, world = _setup(20.0)
    noise = np.random.default_rng(8).normal(0, 3, (32, 21, 2))
    cfg = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, disagreement_scale=1.0, keypoint_noise_scale=1.0,
                          blend_fraction=0.5)
    post = posterior_hypotheses(hyps, kp, K, world, cfg, noise, rng=np.random.default_rng(9))
    blends, rest = post[:16], post[16:]
    s_blend = np.linalg.svd((blends - blends.mean(0)).reshape(16, -1), compute_uv=False)
    s_rest = np.linalg.svd((rest - rest.mean(0)).reshape(16, -1), compute_uv=False)
    assert s_blend[1] < 1e-6 * s_blend[0]  # one direction: the disagreement's
    assert s_rest[1] > 0.1 * s_rest[0]
    mixed = posterior_hypotheses(hyps, kp, K, world, dataclasses.replace(cfg, blend_fraction=0.0), noise,
                                 rng=np.random.default_rng(9))
    assert np.allclose(post.mean(0), mixed.mean(0), atol=1e-6)  # the estimate does not move


def test_blend_spread_scale_sizes_the_blends_against_the_rest():
    hyps, kp, world = _setup(20.0)
    many = np.repeat(hyps, 12, axis=0)  # 384 hypotheses: the sizes are averages, not luck
    cfg = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, disagreement_scale=1.0, keypoint_noise_scale=0.0,
                          sampler_spread_scale=0.0, blend_fraction=0.5, blend_spread_scale=0.5)
    post = posterior_hypotheses(many, kp, K, world, cfg, rng=np.random.default_rng(10))
    depth = post[..., 2] - post[..., 2].mean(0)
    ratio = np.sqrt((depth[:192] ** 2).mean() / (depth[192:] ** 2).mean())
    assert 0.4 < ratio < 0.6, ratio


def test_fuse_depths_trusts_the_source_whose_finger_has_a_hands_length():
    """length_sd: on the rays only depth changes a finger's length, so a source that leans the
    index finger too far (too long a finger) loses weight on that finger, and nowhere else."""
    rng = np.random.default_rng(11)
    truth = _hand(rng) + [0, 0, 450]
    truth[:, 2] = 450.0  # a hand flat to the camera: any lean makes a finger longer
    rays = normalized_rays(project(truth, K), K)
    leaning = truth[:, 2].copy()
    leaning[[6, 7, 8]] += [25.0, 50.0, 75.0]  # the index finger tilted away about its base
    sources = {"right": (0.5, truth[:, 2]), "leaning": (0.5, leaning)}
    target = wrist_to_tip_lengths(truth)
    plain = fuse_depths(sources, rays, target, 0.0)
    assert np.allclose(plain, 0.5 * (truth[:, 2] + leaning))
    fused = fuse_depths(sources, rays, target, 0.1)
    assert np.abs(fused[[6, 7, 8]] - truth[[6, 7, 8], 2]).max() < 0.1 * np.abs(plain - truth[:, 2]).max()
    others = np.setdiff1d(np.arange(21), [6, 7, 8])
    assert np.allclose(fused[others], plain[others])
