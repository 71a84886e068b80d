"""Hypotheses on the keypoint rays, fused with MediaPipe's 3D (handviz.posterior): pure numpy checks."""

import dataclasses

import numpy as np
import pytest

from handviz.features import solve_root_translation
from handviz.geometry import project, similarity_aligned
from handviz.placement import ADULT_HAND_LENGTH_MM, distance_interval
from handviz.posterior import (
    MIN_DEPTH_MM,
    JointDoubt,
    PosteriorConfig,
    digit_means,
    digit_overlap,
    digit_shortfall,
    fuse_depths,
    hand_extent_px,
    mediapipe_depths,
    normalized_rays,
    on_rays,
    posterior_hypotheses,
    root_translations,
    sideways_bend,
    similarity_align,
    snap_to_rays,
    tta_keypoint_spread,
    wrist_to_tip_lengths,
)
from handviz.skeleton import LINKS, drawn_toward_prior, link_lengths, prior_bone_lengths
from handviz.types import DIGIT_CHAINS, HandEstimate

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
        cfg = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, ray_tolerance=tol, doubt=QUIET)
        mean = posterior_hypotheses(hyps, kp, K, world, cfg).mean(0)
        t = solve_root_translation(mean, kp, K.astype(np.float32))
        off = np.linalg.norm(project(mean + t, K) - kp, axis=1)
        # placed again by least squares, as the cascade does: the median stays within the
        # tolerance, the pulled joint a little over it at most
        assert np.median(off) <= tol * size + 0.5 and off.max() <= 1.5 * tol * size + 1.0  # px
        offsets[tol] = off[8]
    assert offsets[0.0] < 0.05 < offsets[0.015] < offsets[1.0]



def _setup(gap_mm: float):
    rng = np.random.default_rng(3)
    truth = _hand(rng) + [0, 0, 450]
    kp = project(truth, K)
    hyps = np.stack([truth + rng.normal(0, 4, (21, 3)) for _ in range(32)])
    hyps -= hyps[:, :1]
    world = truth - truth.mean(0)
    world[:, 2] += gap_mm * np.linspace(-1, 1, 21)  # MediaPipe disagrees in depth by up to gap_mm
    return hyps, kp, world


#: No doubt from the evidence and no blends: the cloud collapses onto the estimate.
QUIET = JointDoubt(base_mm=0.0, image_z_relative=0.0, base_mm_without_tta=0.0, image_z_relative_without_tta=0.0)


def _placed(post: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """Root-relative hypotheses (N, 21, 3) placed in the camera by the estimate's root translation."""
    t = solve_root_translation(post.mean(0), kp, K.astype(np.float32))
    return post + t


def test_every_hypothesis_lies_on_the_keypoint_rays_at_the_estimates_distance():
    """The cloud is doubt about shape: every hypothesis projects onto the keypoints (no sideways
    pull here) and none is scaled about the camera (the wrist is shared)."""
    hyps, kp, world = _setup(30.0)
    z_px = np.linspace(0, 40, 21)
    cfg = PosteriorConfig(world_weight=0.25, image_z_weight=0.25, blend_fraction=0.5)
    post = _placed(posterior_hypotheses(hyps, kp, K, world, cfg, z_px, rng=np.random.default_rng(0)), kp)
    assert np.abs(project(post, K) - kp).max() < 0.05  # px
    assert np.allclose(post[:, 0], post[0, 0], atol=1e-6)
    assert post[:, 1:, 2].std(axis=0).min() > 0.5  # and yet a cloud


def test_posterior_mean_is_the_fused_hand_and_does_not_move_with_the_doubt():
    hyps, kp, world = _setup(30.0)
    quiet = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, doubt=QUIET)
    loud = PosteriorConfig(world_weight=0.5, image_z_weight=0.0, doubt=JointDoubt(base_mm=20.0, base_mm_without_tta=20.0),
                           blend_fraction=0.5)
    a = posterior_hypotheses(hyps, kp, K, world, quiet)
    b = posterior_hypotheses(hyps, kp, K, world, loud)
    assert np.allclose(a, a.mean(0), atol=1e-9)  # no doubt, no blends: every hypothesis is the estimate
    assert np.allclose(a.mean(0), b.mean(0), atol=1e-6)
    assert np.abs(project(_placed(a, kp)[0], K) - kp).max() < 0.05


def test_the_doubt_widens_the_digit_whose_image_z_disagrees_and_no_other():
    """JointDoubt.image_z_relative: where MediaPipe's image z strays from the fused depth, that digit's
    hypotheses lean further; the blends are left out (first half)."""
    hyps, kp, world = _setup(0.0)
    mean = snap_to_rays(hyps, normalized_rays(kp, K)).mean(0)
    z_flat = (mean[:, 2] - mean[0, 2]) * K[0, 0] / mean[0, 2]  # px: MediaPipe's z agrees with ours
    z_index = z_flat.copy()
    z_index[[6, 7, 8]] += [30.0, 60.0, 90.0]  # px: the index finger leaning far away in MediaPipe's z
    doubt = JointDoubt(base_mm=2.0, image_z_relative=50.0, base_mm_without_tta=2.0, image_z_relative_without_tta=50.0)
    cfg = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, blend_fraction=0.5, doubt=doubt)

    def depth_sd(z):
        post = posterior_hypotheses(hyps, kp, K, None, cfg, z, rng=np.random.default_rng(1))
        return post[16:, :, 2].std(axis=0)

    calm, loud = depth_sd(z_flat), depth_sd(z_index)
    assert np.all(loud[[7, 8]] > 5 * calm[[7, 8]])
    others = [j for j in range(1, 21) if j not in (5, 6, 7, 8)]
    assert np.allclose(loud[others], calm[others], rtol=1e-6)
    # the leaning is whole digits: within the index finger the draws are one number per hypothesis
    post = posterior_hypotheses(hyps, kp, K, None, cfg, z_index, rng=np.random.default_rng(1))
    dev = post[16:, [6, 7, 8], 2] - post[:, [6, 7, 8], 2].mean(0)
    assert np.corrcoef(dev[:, 1], dev[:, 2])[0, 1] > 0.99


def test_expected_error_is_the_fitted_line_with_and_without_tta():
    doubt = JointDoubt(base_mm=5.0, image_z_relative=0.1, tta_keypoints_relative=0.5, sideways_bend=3.0, overlap=6.0,
                       shortfall=20.0, base_mm_without_tta=8.0, image_z_relative_without_tta=0.2,
                       sideways_bend_without_tta=4.0, overlap_without_tta=10.0, shortfall_without_tta=30.0)
    z, k, b, o, s = np.full(21, 10.0), np.full(21, 2.0), np.full(21, 0.5), np.full(21, 0.25), np.full(21, 0.1)
    assert np.allclose(doubt.expected_error(z, k, b, o, s), 5.0 + 1.0 + 1.0 + 1.5 + 1.5 + 2.0)
    assert np.allclose(doubt.expected_error(z, None, b, o, s), 8.0 + 2.0 + 2.0 + 2.5 + 3.0)
    lost = dataclasses.replace(doubt, tta_lost=12.0)
    assert np.allclose(lost.expected_error(z, k, b, o, s, 0.25), 5.0 + 1.0 + 1.0 + 1.5 + 1.5 + 2.0 + 3.0)
    assert np.allclose(lost.expected_error(z, None, b, o, s, 0.25), 8.0 + 2.0 + 2.0 + 2.5 + 3.0)  # no copies


def test_a_hand_mediapipe_loses_on_the_changed_copies_gets_a_wider_cloud_everywhere():
    """JointDoubt.tta_lost: the share of changed copies where MediaPipe did not find the hand again
    (or found the other hand) widens every digit's leans alike; without copies it says nothing."""
    hyps, kp, world = _setup(0.0)
    tta = np.repeat(kp[None], 2, axis=0) + 0.5
    doubt = JointDoubt(base_mm=2.0, image_z_relative=0.0, tta_lost=40.0, base_mm_without_tta=2.0,
                       image_z_relative_without_tta=0.0)
    cfg = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, blend_fraction=0.5, doubt=doubt)

    def lean_sd(found, tta_kp=tta):
        signals: dict = {}
        post = posterior_hypotheses(hyps, kp, K, None, cfg, None, tta_kp, rng=np.random.default_rng(1),
                                    signals=signals, tta_found_share=found)
        return post[16:, 1:, 2].std(axis=0), signals["tta_lost"]

    (all_found, none_lost), (half_found, half_lost) = lean_sd(1.0), lean_sd(0.5)
    assert np.allclose(none_lost, 0.0) and np.allclose(half_lost, 0.5) and half_lost.shape == (21,)
    assert np.all(half_found > 5 * all_found)
    assert np.allclose(lean_sd(None)[0], all_found)  # copies without a share: taken as all found
    plain, no_signal = lean_sd(0.5, None)  # no copies read (live video): no such evidence
    assert no_signal is None and np.allclose(plain, all_found)
    none_found, all_lost = lean_sd(0.0, np.zeros((0, 21, 2)))  # copies read, the hand on none of them
    assert np.allclose(all_lost, 1.0) and np.all(none_found > 1.5 * half_found)


def test_the_doubt_reads_each_signal_over_the_joints_digit():
    """One joint's wobble widens its whole digit, by a quarter of what it would alone; the other
    digits and the wrist keep theirs."""
    doubt = JointDoubt(base_mm=0.0, image_z_relative=0.0, tta_keypoints_relative=1.0)
    k = np.zeros(21)
    k[0], k[7] = 3.0, 8.0  # the wrist and the index finger's second joint
    radius = doubt.expected_error(np.zeros(21), k, np.zeros(21), np.zeros(21), np.zeros(21))
    assert np.allclose(radius[[5, 6, 7, 8]], 2.0)
    assert radius[0] == 3.0 and np.allclose(np.delete(radius, [0, 5, 6, 7, 8]), 0.0)
    assert np.allclose(digit_means(np.arange(21.0))[[1, 4, 17, 20]], [2.5, 2.5, 18.5, 18.5])


def test_tta_keypoint_spread_is_measured_against_the_hands_extent():
    rng = np.random.default_rng(5)
    kp = rng.uniform(100, 300, (21, 2))
    moved = np.stack([kp + [4.0, 0.0], kp - [4.0, 0.0]])  # +-4 px about kp: mean distance 8/3 px
    share = tta_keypoint_spread(kp, moved)
    assert np.allclose(share, 8.0 / 3.0 / hand_extent_px(kp))
    # the same moves on a hand twice the size in the image are half the share
    assert np.allclose(tta_keypoint_spread(2 * kp, 2 * kp[None] + (moved - kp)), share / 2)
    assert tta_keypoint_spread(kp, None) is None
    assert np.array_equal(tta_keypoint_spread(kp, np.zeros((0, 21, 2))), np.zeros(21))  # read, found on none


def test_the_same_depth_disagreement_means_more_doubt_on_a_hand_that_looks_smaller():
    """The image-z gap is read against the hand's 2D extent: a closed or foreshortened hand (its
    keypoints closer together in the image) gets a wider radius for the same gap in mm."""
    hyps, kp, world = _setup(30.0)
    kpz = (hyps.mean(axis=0)[:, 2] - hyps.mean(axis=0)[0, 2]) * K[0, 0] / 500.0 + 3.0 * np.arange(21)
    doubt = JointDoubt(base_mm=0.0, image_z_relative=100.0, base_mm_without_tta=0.0, image_z_relative_without_tta=100.0)
    cfg = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, blend_fraction=0.0, doubt=doubt)
    centre = kp.mean(axis=0)
    radii = []
    for squeeze in (1.0, 0.7):
        squeezed = centre + squeeze * (kp - centre)
        out = posterior_hypotheses(hyps, squeezed, K, world, cfg, keypoints_z=kpz)
        radii.append(np.abs(out - out.mean(axis=0))[..., 2].max(axis=0)[1:].mean())
    assert radii[1] > 1.2 * radii[0]


def test_blends_lie_along_the_depth_sources_differences():
    """The first half are blends of the depth sources only: their deviations from the estimate lie
    in the span of the sources' wrist-relative differences (bases of digits halved)."""
    hyps, kp, world = _setup(30.0)
    z_px = np.linspace(0, 30, 21) ** 1.5
    cfg = PosteriorConfig(world_weight=0.25, image_z_weight=0.25, blend_fraction=0.5, doubt=QUIET)
    post = _placed(posterior_hypotheses(hyps, kp, K, world, cfg, z_px, rng=np.random.default_rng(2)), kp)
    rays = normalized_rays(kp, K)
    mean_snapped = snap_to_rays(hyps, rays).mean(0)
    sources = mediapipe_depths(mean_snapped, similarity_align(world, mean_snapped), z_px, K[0, 0])
    gaps = np.stack([sources["world"], sources["image_z"], mean_snapped[:, 2]])
    share = np.ones(21)
    share[[1, 5, 9, 13, 17]] = 0.5  # a digit's base moves half as far (the palm keeps its length)
    basis = ((gaps - gaps[:, :1]) * share).T  # wrist-relative depth differences
    dev = (post[:16, :, 2] - post[:, :, 2].mean(0)).T
    residual = dev - basis @ np.linalg.lstsq(basis, dev, rcond=None)[0]
    assert np.abs(residual).max() < 1e-3 * np.abs(dev).max()


def test_mediapipe_weight_moves_the_depths_toward_mediapipe():
    hyps, kp, world = _setup(30.0)
    rays = normalized_rays(kp, K)
    snapped_mean = snap_to_rays(hyps, rays).mean(0)
    target = similarity_align(world, snapped_mean)[:, 2]
    gaps = []
    for w in (0.0, 0.5, 1.0):
        post = posterior_hypotheses(hyps, kp, K, world, PosteriorConfig(world_weight=w, image_z_weight=0.0))
        fused = post.mean(0) + root_translations(post.mean(0)[None], rays)[0]
        gaps.append(np.abs(fused[:, 2] - target).mean())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05 * gaps[0]


def test_image_z_depths_are_fused_with_their_weight():
    """image_z_weight: MediaPipe's image z (converted to mm) pulls the fused depths toward it."""
    hyps, kp, _ = _setup(0.0)
    rays = normalized_rays(kp, K)
    mean = snap_to_rays(hyps, rays).mean(0)
    z_mm = mean[:, 2] + np.linspace(0, 60, 21)  # MediaPipe's image z: the hand tilted away
    z_px = (z_mm - z_mm[0]) * K[0, 0] / mean[0, 2]
    for weight, share in ((0.0, 0.0), (0.5, 0.5)):
        post = posterior_hypotheses(hyps, kp, K, None, PosteriorConfig(world_weight=0.0, image_z_weight=weight), z_px)
        fused = post.mean(0)[:, 2] - post.mean(0)[0, 2]
        expected = (1 - share) * (mean[:, 2] - mean[0, 2]) + share * (z_mm - z_mm[0])
        assert np.allclose(fused, expected, atol=0.5), weight


def test_missing_mediapipe_observations_skip_the_fusion():
    hyps, kp, _ = _setup(0.0)
    nan_world = np.full((21, 3), np.nan)
    a = posterior_hypotheses(hyps, kp, K, nan_world, PosteriorConfig(), np.full(21, np.nan))
    b = posterior_hypotheses(hyps, kp, K, None, PosteriorConfig())
    assert np.allclose(a, b) and np.all(np.isfinite(a))


def test_config_rejects_unknown_keys_and_impossible_weights():
    assert PosteriorConfig.from_dict({"world_weight": 0.3}).world_weight == 0.3
    assert PosteriorConfig.from_dict({"doubt": {"base_mm": 3.0}}).doubt.base_mm == 3.0
    with pytest.raises(ValueError, match="world_wieght"):
        PosteriorConfig.from_dict({"world_wieght": 0.3})
    with pytest.raises(ValueError, match="base_mn"):
        PosteriorConfig.from_dict({"doubt": {"base_mn": 3.0}})
    # our own depth would get a negative weight
    with pytest.raises(ValueError, match="sum to at most 1"):
        PosteriorConfig(world_weight=0.7, image_z_weight=0.6)
    with pytest.raises(ValueError, match="non-negative"):
        PosteriorConfig(world_weight=-0.1)


def test_no_joint_is_placed_nearer_than_the_minimum_depth():
    rays = np.zeros((21, 2))
    points = on_rays(np.linspace(-100, 200, 21), rays)
    assert points[:, 2].min() == MIN_DEPTH_MM and points[-1, 2] == 200.0


def test_similarity_aligned_matches_the_single_alignment():
    rng = np.random.default_rng(6)
    target = _hand(rng)
    hands = np.stack([_hand(rng) for _ in range(5)])
    batched = similarity_aligned(hands, target)
    for h, b in zip(hands, batched):
        assert np.allclose(b, similarity_align(h, target), atol=1e-8)


def _estimate(hyps: np.ndarray, joints: np.ndarray) -> HandEstimate:
    z = np.zeros((21, 2), np.float32)
    return HandEstimate("Right", 1.0, z, joints.astype(np.float32), hyps.astype(np.float32), np.zeros(21, np.float32),
                        np.zeros((3, 3), np.float32), np.zeros((21, 3), np.float32))


def test_radius_is_shape_doubt_not_size_or_distance():
    """Hypotheses scaled about the camera (a bigger hand farther away) or moved bodily add nothing
    to joint_radius_90; a finger bent differently does."""
    rng = np.random.default_rng(7)
    est = _hand(rng) + [0, 0, 450]
    scaled = np.stack([est * s for s in np.linspace(0.7, 1.3, 32)])
    assert _estimate(scaled, est).joint_radius_90.max() < 1e-3
    bent = np.repeat(est[None], 32, axis=0)
    bent[:, 8, 2] += np.linspace(-20, 20, 32)  # the index tip's depth in doubt
    r = _estimate(bent, est).joint_radius_90
    assert r[8] > 10 and r[8] == r.max()


def test_distance_interval_spans_adult_hand_lengths():
    rng = np.random.default_rng(8)
    hand = _hand(rng)
    hand = hand / wrist_to_tip_lengths(hand)[2] * 180.0 + [0, 0, 500]  # a 180 mm hand, wrist at 500 mm
    near, far = distance_interval(hand)
    wrist = float(np.linalg.norm(hand[0]))
    lo, hi = ADULT_HAND_LENGTH_MM
    assert np.isclose(near, wrist * lo / 180.0) and np.isclose(far, wrist * hi / 180.0)
    assert near < wrist < far
    # a hand twice as large, twice as far away, looks the same: the same interval
    near2, far2 = distance_interval(hand * 2)
    assert np.isclose(near2, near) and np.isclose(far2, far)


def test_digit_chains_cover_every_joint_but_the_wrist():
    assert sorted(j for chain in DIGIT_CHAINS for j in chain) == list(range(1, 21))


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


def test_the_estimate_is_placed_at_the_typical_adult_size_inside_its_interval():
    """adult_size_factor scales a hand about the camera to the typical adult length: the same
    pixels, and a distance inside distance_interval."""
    from handviz.placement import TYPICAL_HAND_LENGTH_MM, adult_size_factor

    rng = np.random.default_rng(9)
    hand = _hand(rng) + [20, -10, 300]
    size = adult_size_factor(hand)
    placed = hand * size
    assert np.isclose(wrist_to_tip_lengths(placed)[2], TYPICAL_HAND_LENGTH_MM)
    assert np.allclose(project(placed, K), project(hand, K), atol=1e-4)
    near, far = distance_interval(placed)
    assert near < np.linalg.norm(placed[0]) < far


def test_each_leaning_hypothesis_leans_one_digit_by_its_radius_and_every_digit_as_often():
    """The leaning kind: one digit per hypothesis, toward or away from the camera by exactly the
    doubt times the joint's share (lean_profile), the digits in turn and their signs alternating,
    so every digit's 90 % radius is its doubt while a hypothesis strays on one digit only."""
    hyps, kp, _ = _setup(0.0)
    profile = (0.5, 0.7, 0.9, 1.0)
    doubt = JointDoubt(base_mm=10.0, image_z_relative=0.0, base_mm_without_tta=10.0, image_z_relative_without_tta=0.0)
    cfg = PosteriorConfig(world_weight=0.0, image_z_weight=0.0, blend_fraction=0.0, lean_profile=profile, doubt=doubt)
    post = posterior_hypotheses(hyps[:30], kp, K, None, cfg, None, rng=np.random.default_rng(3))  # all leaning
    placed = _placed(post, kp)
    depth_dev = placed[..., 2] - placed.mean(0)[..., 2]  # (30, 21)
    chains = np.array(DIGIT_CHAINS)
    moved = np.abs(depth_dev[:, chains[:, -1]]) > 1.0  # (30, 5): which digit's tip moved
    assert np.all(moved.sum(axis=1) == 1)  # one digit each
    assert np.all(moved.sum(axis=0) == 6)  # 30 leans over 5 digits, in turn
    leaned = np.abs(depth_dev[:, chains]).max(axis=0)  # (5, 4): the largest depth move per joint
    assert np.allclose(leaned, 10.0 * np.array(profile), rtol=0.02)
    assert np.abs(project(placed, K) - kp).max() < 0.05  # still on the keypoint rays


def test_lean_profile_comes_from_json_as_four_shares():
    cfg = PosteriorConfig.from_dict({"lean_profile": [0.8, 0.7, 0.8, 1.0]})
    assert cfg.lean_profile == (0.8, 0.7, 0.8, 1.0)
    with pytest.raises(ValueError, match="lean_profile"):
        PosteriorConfig(lean_profile=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("n", [8, 16, 32, 64])
def test_every_digit_leans_in_enough_hypotheses_for_the_90_percent_radius(n):
    """With few hypotheses some lean two digits, so the 90 % quantile over N still falls on a
    digit's leans: the radius reported is the doubt, not a shrunken one."""
    hyps, kp, world = _setup(0.0)
    hyps = np.concatenate([hyps] * 2)[:n]
    doubt = JointDoubt(base_mm=10.0, image_z_relative=0.0, base_mm_without_tta=10.0, image_z_relative_without_tta=0.0)
    cfg = PosteriorConfig(world_weight=0.25, image_z_weight=0.25, blend_fraction=0.375, lean_profile=(1, 1, 1, 1),
                          blend_spread_scale=0.0, doubt=doubt)
    post = posterior_hypotheses(hyps, kp, K, world, cfg, None, rng=np.random.default_rng(n))
    radius = np.quantile(np.abs(post[..., 2] - post.mean(0)[..., 2]), 0.9, axis=0)
    tips = [chain[-1] for chain in DIGIT_CHAINS]
    assert np.all(radius[tips] > 0.65 * 10.0)


def test_spread_and_radius_come_from_one_alignment_that_follows_the_joints():
    """HandEstimate.from_hypotheses aligns once for joint_spread and joint_radius_90; `replaced`
    remakes both when the joints or hypotheses change and keeps them for any other change."""
    rng = np.random.default_rng(9)
    est = _hand(rng) + [0, 0, 450]
    hyps = est[None] + rng.normal(0.0, 4.0, (32, 21, 3))
    z = np.zeros((21, 2), np.float32)
    hand = HandEstimate.from_hypotheses(est, hyps, handedness="Right", score=1.0, keypoints_2d=z,
                                        vertices=np.zeros((3, 3), np.float32),
                                        mediapipe_world_3d=np.zeros((21, 3), np.float32))
    fresh = _estimate(hyps, est)
    np.testing.assert_allclose(hand.joint_spread, fresh._aligned_distances().mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(hand.joint_radius_90, fresh.joint_radius_90, atol=1e-4)
    bent = hyps.copy()
    bent[:, 8, 2] += np.linspace(-30, 30, 32)
    moved = hand.replaced(joint_hypotheses=bent)
    assert moved.joint_radius_90[8] > hand.joint_radius_90[8] + 10
    np.testing.assert_allclose(moved.joint_radius_90, _estimate(bent, est).joint_radius_90, atol=1e-4)
    np.testing.assert_allclose(moved.joint_spread, _estimate(bent, est)._aligned_distances().mean(axis=0), atol=1e-4)
    relabelled = hand.replaced(keypoints_2d=z + 1)
    assert relabelled._distances is hand._distances and relabelled.keypoints_2d[0, 0] == 1


def test_bones_drawn_toward_an_adults_proportions_keep_the_wrist_the_pose_and_the_scale():
    rng = np.random.default_rng(5)
    hand = _hand(rng) + [20, -10, 450]
    own, prior = link_lengths(hand), prior_bone_lengths(hand)
    assert np.allclose(drawn_toward_prior(hand, 0.0), hand)
    assert np.allclose(link_lengths(drawn_toward_prior(hand, 1.0)), prior)
    half = drawn_toward_prior(hand, 0.5)
    assert np.allclose(link_lengths(half), np.sqrt(own * prior))
    assert np.allclose(half[0], hand[0])  # the wrist stays
    for child in [c for p, c in LINKS if p == 0]:  # the bones from the wrist keep their directions
        d0, d1 = hand[child] - hand[0], half[child] - half[0]
        assert np.allclose(d0 / np.linalg.norm(d0), d1 / np.linalg.norm(d1))
    assert np.isclose(prior.sum(), own.sum())  # the prior is an adult's proportions at this hand's size


def test_the_estimates_bones_are_drawn_toward_an_adults_proportions_and_the_cloud_moves_with_it():
    """bone_prior_share: the fused hand's bones move halfway (in logs) to the hand model's
    proportions; every hypothesis moves by the estimate's shift, so the cloud's shape is kept."""
    hyps, kp, world = _setup(30.0)
    base = PosteriorConfig(world_weight=0.25, image_z_weight=0.25, blend_fraction=0.5)
    drawn = PosteriorConfig(world_weight=0.25, image_z_weight=0.25, blend_fraction=0.5, bone_prior_share=0.5)
    a = posterior_hypotheses(hyps, kp, K, world, base, rng=np.random.default_rng(0))
    b = posterior_hypotheses(hyps, kp, K, world, drawn, rng=np.random.default_rng(0))
    own = link_lengths(a.mean(0))
    assert np.allclose(link_lengths(b.mean(0)), np.sqrt(own * prior_bone_lengths(a.mean(0))), rtol=1e-6)
    assert np.abs(link_lengths(b.mean(0)) / own - 1).max() > 0.05  # a rough hand's bones do move
    assert np.allclose(b - b.mean(0), a - a.mean(0), atol=1e-6)


def _flat_hand(curl_deg: float = 0.0, sideways_deg: float = 0.0) -> np.ndarray:
    """A right hand with its palm in the x-y plane, its digits along +y from bases spread along x;
    each digit bends by curl_deg about the x axis (toward the palm, a hinge's way) and the index
    finger, at its two inner joints, also by sideways_deg about the palm's normal (z)."""
    hand = np.zeros((21, 3))
    for d, chain in enumerate(DIGIT_CHAINS):
        base = np.array([40.0 - 20.0 * d, 80.0, 0.0])
        direction = np.array([0.0, 1.0, 0.0])
        hand[chain[0]] = base
        for j, joint in enumerate(chain[1:]):
            a = np.radians(curl_deg)
            direction = np.array([direction[0], direction[1] * np.cos(a) - direction[2] * np.sin(a),
                                  direction[1] * np.sin(a) + direction[2] * np.cos(a)])
            if d == 1 and j > 0:  # the index finger turns sideways at its PIP and DIP too
                b = np.radians(sideways_deg)
                direction = np.array([direction[0] * np.cos(b) - direction[1] * np.sin(b),
                                      direction[0] * np.sin(b) + direction[1] * np.cos(b), direction[2]])
            hand[joint] = hand[chain[j]] + 25.0 * direction
    return hand


def test_sideways_bend_sees_a_finger_bent_about_the_palms_normal_not_a_curl():
    """The fingers' inner joints are hinges: curling toward the palm is no sign of a wrong depth,
    a finger bent sideways at them is."""
    assert np.allclose(sideways_bend(_flat_hand()), 0.0, atol=1e-9)
    assert np.allclose(sideways_bend(_flat_hand(curl_deg=50.0)), 0.0, atol=1e-9)
    bent = sideways_bend(_flat_hand(sideways_deg=30.0))
    assert np.allclose(bent[[5, 6, 7, 8]], np.sin(np.radians(30.0)), atol=1e-6)  # the index finger's digit
    assert bent[0] == 0.0 and np.allclose(np.delete(bent, [5, 6, 7, 8]), 0.0, atol=1e-9)
    # the same sideways bend at any distance and size of the hand
    assert np.allclose(sideways_bend(2.0 * _flat_hand(sideways_deg=30.0) + [10.0, -5.0, 400.0]), bent)


def test_digit_overlap_sees_fingers_that_pass_through_each_other():
    """Side by side, 20 mm apart, no digit overlaps; a middle finger pushed onto the index
    finger's line overlaps it (and the index finger it), the others do not."""
    hand = _flat_hand()
    assert np.allclose(digit_overlap(hand), 0.0)
    pushed = hand.copy()
    pushed[[9, 10, 11, 12], 0] = hand[[5, 6, 7, 8], 0] + 3.0  # 3 mm beside the index finger's bones
    overlap = digit_overlap(pushed)
    assert np.allclose(overlap[[5, 6, 7, 8]], 0.8) and np.allclose(overlap[[9, 10, 11, 12]], 0.8)
    assert overlap[0] == 0.0 and np.allclose(overlap[[1, 2, 3, 4, 13, 14, 15, 16, 17, 18, 19, 20]], 0.0)


def test_digit_shortfall_sees_a_digit_shorter_than_a_hands():
    """A hand with the open model's proportions falls short nowhere, at any size and pose; a digit
    whose far joints come back toward its base (keypoints bunched up, depths that do not make up
    the length) falls short, the others a little less than not at all, since the hand's size is
    read from all of its bones."""
    from handviz.hand.asset import load_hand_asset

    model = np.asarray(load_hand_asset().rest_joints, np.float64)
    assert np.allclose(digit_shortfall(model), 0.0, atol=1e-9)
    assert np.allclose(digit_shortfall(1.3 * model + [0.0, 0.0, 400.0]), 0.0, atol=1e-9)
    short = model.copy()
    base = short[9]
    short[[10, 11, 12]] = base + 0.5 * (short[[10, 11, 12]] - base)  # the middle finger at half its length
    shortfall = digit_shortfall(short)
    assert shortfall[0] == 0.0 and np.all(shortfall[[9, 10, 11, 12]] > 0.2)
    assert np.allclose(np.delete(shortfall, [0, 9, 10, 11, 12]), 0.0)  # the others came out longer, not shorter
