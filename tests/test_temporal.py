"""The hand over time (handviz.temporal) on hand-made sequences: pure numpy, no model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from handviz.geometry import project, similarity_aligned
from handviz.hand.asset import load_hand_asset
from handviz.skeleton import LINKS, link_lengths, prior_bone_lengths, with_bone_lengths
from handviz.temporal import (
    LEARNT_THROUGHOUT,
    TemporalConfig,
    VideoHands,
)
from handviz.types import DIGIT_CHAINS, Detection, HandEstimate

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
FPS = 30.0
INDEX = list(DIGIT_CHAINS[1])


def true_hand(shift=(0.0, 0.0, 450.0)) -> np.ndarray:
    """An open adult hand (21, 3) mm in the camera frame, palm towards the camera, tilted so its
    fingers lean in depth."""
    joints = load_hand_asset().rest_joints.astype(np.float64)
    joints = joints - joints[0]
    tilt = np.radians(35.0)
    rot = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    return joints @ rot.T + np.asarray(shift)


def observed(truth: np.ndarray, depth_error: np.ndarray, track: int | None = 1, spread_mm: float = 25.0,
             seed: int = 0) -> HandEstimate:
    """What one frame's estimate would say: the truth's keypoints, every joint on its ray at the
    truth's depth plus depth_error (21,) mm, and a cloud whose 90 % ball is about 0.65 x
    spread_mm. The default, a 16-mm ball, is about twice noisy_depths' 8-mm SD, as a real
    frame's calibrated ball is two to three times its depth error's SD."""
    kp = project(truth, K).astype(np.float64)
    rays = np.c_[(kp - K[:2, 2]) / np.diag(K)[:2], np.ones(21)]
    joints = rays * (truth[:, 2] + depth_error)[:, None]
    rng = np.random.default_rng(seed)
    lean = rng.normal(0, spread_mm / 2.2, (32, 21))
    lean[:, 0] = 0
    hyps = rays[None] * (joints[:, 2][None] + lean - lean.mean(axis=0))[..., None]
    return HandEstimate(handedness="Right", score=0.98, keypoints_2d=kp.astype(np.float32),
                        joints_3d=joints.astype(np.float32), joint_hypotheses=hyps.astype(np.float32),
                        joint_spread=np.full(21, spread_mm / 2, np.float32), vertices=np.zeros((0, 3), np.float32),
                        mediapipe_world_3d=np.zeros((21, 3), np.float32), track=track)


def noisy_depths(rng: np.random.Generator, sd: float = 8.0) -> np.ndarray:
    err = rng.normal(0, sd, 21)
    err[0] = 0.0
    return err


#: A model for a hand that moves slowly (the shipped one follows the dev set's grasping hand).
SLOW = TemporalConfig(articulation_accel=300.0, hand_accel=300.0)


def still_errors(cfg: TemporalConfig, frames: int = 90) -> list[float]:
    """Per frame on a still hand with white depth noise (8 mm): the wrist-relative depths' mean error."""
    rng = np.random.default_rng(0)
    truth = true_hand()
    video = VideoHands(cfg)
    errors = []
    for k in range(frames):
        out = video([observed(truth, noisy_depths(rng))], K, k / FPS)[0]
        rel = out.joints_3d[:, 2] - out.joints_3d[0, 2]  # the shape: where the hand is stays open
        errors.append(np.abs(rel - (truth[:, 2] - truth[0, 2])).mean())
    return errors


@pytest.mark.parametrize("cfg, gain", [(TemporalConfig(), 0.97), (SLOW, 0.7)])
def test_a_still_hand_converges(cfg: TemporalConfig, gain: float):
    errors = still_errors(cfg)
    frame_error = 8.0 * np.sqrt(2 / np.pi) * 20 / 21  # the frames' own mean absolute error (wrist exact)
    assert np.mean(errors[-30:]) < gain * frame_error


def index_in_doubt(frame: HandEstimate, half_width_mm: float) -> HandEstimate:
    """frame with its index finger's hypotheses spread evenly +-half_width_mm in depth."""
    lean = frame.joint_hypotheses.copy()
    lean[:, INDEX, 2] += np.linspace(-half_width_mm, half_width_mm, 32)[:, None]
    lean[:, INDEX, 2] -= lean[:, INDEX, 2].mean(axis=0) - frame.joints_3d[INDEX, 2]
    return frame.replaced(joint_hypotheses=lean)


def test_the_cloud_over_time_keeps_the_frames_doubt_widened_where_the_estimates_disagree():
    """The frames' errors persist, so the cloud does not settle: it is each frame's own (the
    offsets of its hypotheses) around the joints over time, each joint's offsets rescaled to
    sqrt(radius^2 + gap^2). A finger the frame doubts stays the widest after many frames."""
    rng = np.random.default_rng(3)
    truth = true_hand()
    video = VideoHands()
    for k in range(40):
        frame = index_in_doubt(observed(truth, noisy_depths(rng, 4.0), spread_mm=3.0), 20.0)
        out = video([frame], K, k / FPS)[0]
    aligned = similarity_aligned(frame.joints_3d[None].astype(np.float64), out.joints_3d.astype(np.float64))[0]
    gap = np.linalg.norm(aligned - out.joints_3d, axis=1)
    frame_radius = np.maximum(frame.joint_radius_90, 1.0)
    assert (gap / frame_radius).max() > 0.15  # the hand over time does depart from this frame somewhere
    ours, theirs = out.joint_hypotheses - out.joints_3d, frame.joint_hypotheses - frame.joints_3d
    factor = (ours * theirs).sum(axis=(0, 2)) / np.maximum((theirs**2).sum(axis=(0, 2)), 1e-12)
    np.testing.assert_allclose(ours, factor[None, :, None] * theirs, atol=2e-3)  # the frame's cloud, rescaled
    # to its radius averaged over the last frames, widened by the gap
    (track,) = video._tracks.values()
    np.testing.assert_allclose(factor[1:], (np.sqrt(track.doubt_sq + gap**2) / frame_radius)[1:], rtol=0.01)
    radius = out.joint_radius_90
    assert set(np.argsort(radius)[-4:]) == set(INDEX) and radius[INDEX].min() > 1.5 * np.median(radius[1:])


def test_the_doubt_over_time_is_steady_where_the_frames_jitter_and_follows_a_lasting_change():
    """A frame's radii jitter with its signals while the error they predict persists, so the
    cloud over time averages each joint's radius over about TemporalConfig.doubt_time_s: a
    finger whose frames alternate between 5 and 25 mm of doubt gets a steady radius in between;
    when the doubt lasts, the cloud follows it within two seconds."""
    truth = true_hand()
    video = VideoHands()
    shown, frames = [], []
    for k in range(150):
        half_width = (5.0 if k % 2 else 25.0) if k < 90 else 40.0
        frame = index_in_doubt(observed(truth, np.zeros(21), spread_mm=3.0), half_width)
        frames.append(frame.joint_radius_90[INDEX].mean())
        shown.append(video([frame], K, k / FPS)[0].joint_radius_90[INDEX].mean())
    frames, shown = np.array(frames), np.array(shown)
    settled = shown[45:90]
    assert np.ptp(frames[45:90]) > 2.5 * frames[45:90].min()  # the frames jitter by a factor of 3.5
    assert np.ptp(settled) < 0.2 * settled.mean()
    assert frames[45:90].min() < settled.min() and settled.max() < frames[45:90].max()
    assert shown[-1] > 0.9 * frames[-1] and shown[-1] > 1.5 * settled.mean()


def test_a_finger_flipped_in_one_frame_is_out_voted():
    """A flip is a finger moving faster than the motion model allows. The shipped model allows
    the dev set's grasping (a 55 mm flip at the tip in 1/30 s is within it, and is followed); for a
    hand that moves slowly the gate out-votes it."""
    truth = true_hand()
    flip = np.zeros(21)
    flip[INDEX] = [10.0, 25.0, 40.0, 55.0]  # the index finger leans the other way for one frame
    moved = {}
    for name, cfg in (("slow", SLOW), ("shipped", TemporalConfig())):
        video = VideoHands(cfg)
        for k in range(30):  # frames that claim a 6-mm ball
            before = video([observed(truth, np.zeros(21), spread_mm=10.0)], K, k / FPS)[0]
        out = video([observed(truth, flip, spread_mm=10.0)], K, 30 / FPS)[0]
        moved[name] = (out.joints_3d[INDEX, 2] - before.joints_3d[INDEX, 2]) / flip[INDEX]
        after = video([observed(truth, np.zeros(21), spread_mm=10.0)], K, 31 / FPS)[0]
        assert np.abs(after.joints_3d[INDEX, 2] - truth[INDEX, 2]).max() < 0.5 * flip[INDEX].max()
    assert np.all(moved["slow"][1:] < 0.5) and moved["slow"][-1] < 0.15  # the tip, which flipped most
    assert moved["slow"][-1] < moved["shipped"][-1]


def test_joints_stay_near_the_frames_keypoints_and_the_cloud_is_centred_on_them():
    """Each joint is filtered on its keypoint ray, then the bones are set to the person's lengths:
    the hand leaves its rays by a few pixels (MediaPipe's own 2D error is ~10 % of the hand)."""
    rng = np.random.default_rng(1)
    truth = true_hand()
    video = VideoHands()
    for k in range(40):
        frame = observed(truth + [3.0 * k, 0, 0], noisy_depths(rng))
        out = video([frame], K, k / FPS)[0]
        size = np.linalg.norm(np.ptp(frame.keypoints_2d, axis=0))
        off = np.linalg.norm(project(out.joints_3d, K) - frame.keypoints_2d, axis=1) / size
        assert np.median(off) < 0.015 and off.max() < 0.06
        assert np.allclose(out.joint_hypotheses.mean(axis=0), out.joints_3d, atol=1e-2)
        assert np.allclose(out.joint_hypotheses[:, 0], out.joints_3d[0], atol=1e-3)  # the wrist is place


def test_bone_lengths_are_learnt_then_held_while_the_frames_disagree():
    rng = np.random.default_rng(2)
    video = VideoHands()
    seen, held, skeletons = [], [], []
    for k in range(90):
        truth = true_hand((20 * np.sin(k / 15), 0.0, 450.0 + 30 * np.cos(k / 20)))
        frame = observed(truth, noisy_depths(rng, 10.0))
        out = video([frame], K, k / FPS)[0]
        skeletons.append(video._tracks[1].kalman.skeleton)
        if k >= TemporalConfig().skeleton_frames:
            seen.append(link_lengths(frame.joints_3d))
            held.append(link_lengths(out.joints_3d))
    cv = lambda lengths: np.median(np.std(lengths, axis=0) / np.mean(lengths, axis=0))
    assert cv(held) < 0.6 * cv(seen)
    start, thumb = TemporalConfig().skeleton_frames, list(LEARNT_THROUGHOUT)
    fixed = np.setdiff1d(np.arange(len(LINKS)), thumb)
    assert np.array_equal(skeletons[start][fixed], skeletons[-1][fixed])  # held
    assert not np.allclose(skeletons[start][thumb], skeletons[-1][thumb], rtol=1e-4)  # the thumb's still learnt
    assert np.allclose(np.asarray(held)[:, fixed], skeletons[-1][fixed], rtol=0, atol=1e-3)  # the hand shown has
    # those bones (float32), and the thumb the bones learnt by its frame
    assert np.allclose(held[-1], skeletons[-1], rtol=0, atol=1e-3)
    # learnt from noisy depths on exact rays: a little long (the noise lengthens bones), not wild
    assert np.allclose(skeletons[-1], link_lengths(true_hand()), rtol=0.3)


def test_a_new_hand_starts_afresh_and_two_hands_are_kept_apart():
    rng = np.random.default_rng(3)
    right, other = true_hand((-60.0, 0.0, 450.0)), true_hand((80.0, 10.0, 500.0)) * [1, 1.1, 1]
    together = VideoHands()
    alone = {1: VideoHands(), 2: VideoHands()}
    for k in range(20):
        frames = [observed(right, noisy_depths(rng), track=1), observed(other, noisy_depths(rng), track=2)]
        both = together(frames, K, k / FPS)
        for frame, out in zip(frames, both):
            single = alone[frame.track]([frame], K, k / FPS)[0]
            assert np.allclose(out.joints_3d, single.joints_3d, atol=1e-3)
    # a new hand beside the tracked ones of its side starts afresh, as in a model of its own
    newcomer = observed(other, noisy_depths(rng), track=3)
    out = together([observed(right, noisy_depths(rng), track=1), observed(other, noisy_depths(rng), track=2),
                    newcomer], K, 20 / FPS)[2]
    assert np.allclose(out.joints_3d, VideoHands()([newcomer], K, 20 / FPS)[0].joints_3d, atol=1e-3)
    # a hand gone for longer than max_gap_s starts its motion over, and keeps its skeleton
    skeleton = together._tracks[1].kalman.skeleton
    back = observed(right, noisy_depths(rng), track=1)
    together([back], K, 20 / FPS + TemporalConfig().max_gap_s + 0.1)
    restarted = together._tracks[1].kalman
    assert np.allclose(restarted.x[21:42], 0.0)  # no velocity carried over the gap
    assert np.allclose(restarted.skeleton, skeleton, rtol=0.05)
    # one gone for longer than 4 x max_gap_s is forgotten
    together([], K, 20 / FPS + 6 * TemporalConfig().max_gap_s)
    assert not together._tracks


def test_a_new_track_takes_over_the_skeleton_of_the_hand_it_follows():
    """MediaPipe loses a hand and finds it again as a new track (or hand_tracks ends a track whose
    keypoints changed shape): the person's bones are the same, so the new track starts from the
    skeleton of the hand of its side seen last, held as it was, while that one is remembered;
    a hand of the other side, or one after the last is forgotten, starts from the model's."""
    rng = np.random.default_rng(5)
    cfg = TemporalConfig()
    video = VideoHands(cfg)
    for k in range(cfg.skeleton_frames + 5):
        video([observed(true_hand(), noisy_depths(rng, 10.0), track=1)], K, k / FPS)
    first = video._tracks[1].kalman
    assert first.skeleton_held
    t = (cfg.skeleton_frames + 5) / FPS + 0.3  # a short loss, then a new track id
    video([observed(true_hand(), noisy_depths(rng, 10.0), track=2)], K, t)
    second = video._tracks[2].kalman
    fixed = np.setdiff1d(np.arange(len(LINKS)), list(LEARNT_THROUGHOUT))  # the thumb's are learnt throughout
    assert np.allclose(second.skeleton[fixed], first.skeleton[fixed]) and second.skeleton_held
    for k in range(1, 10):  # held: the new track's frames do not move the fingers' bones
        video([observed(true_hand(), noisy_depths(rng, 10.0), track=2)], K, t + k / FPS)
    assert np.allclose(video._tracks[2].kalman.skeleton[fixed], first.skeleton[fixed])
    # a left hand is another hand; and once the right hand is forgotten, a right hand starts afresh
    left = observed(true_hand(), noisy_depths(rng, 10.0), track=3).replaced(handedness="Left")
    video([left], K, t + 0.5)
    assert not video._tracks[3].kalman.skeleton_held
    late = observed(true_hand(), noisy_depths(rng, 10.0), track=4)
    video([late], K, t + 0.5 + 5 * cfg.max_gap_s)
    fresh = VideoHands(cfg)
    fresh([late], K, 0.0)
    assert np.allclose(video._tracks[4].kalman.skeleton, fresh._tracks[4].kalman.skeleton)


def test_photos_and_untracked_hands_pass_through():
    frame = observed(true_hand(), np.zeros(21), track=None)
    assert VideoHands()([frame], K, 0.0)[0] is frame


def test_the_mesh_moves_with_the_joints():
    rng = np.random.default_rng(4)
    truth = true_hand()
    pull = rng.uniform(0, 1, (50, 21))
    pull /= pull.sum(axis=1, keepdims=True)
    video = VideoHands(mesh_pull=pull)
    for k in range(15):
        frame = observed(truth, noisy_depths(rng))
        frame.vertices = (pull @ frame.joints_3d).astype(np.float32)
        out = video([frame], K, k / FPS)[0]
        assert np.allclose(out.vertices, pull @ out.joints_3d, atol=1e-2)


def test_links_cover_every_bone_once():
    assert len(set(LINKS)) == len(LINKS) >= 20


@pytest.mark.parametrize("bad", [np.nan, -10.0])
def test_a_broken_estimate_is_left_alone(bad: float):
    frame = observed(true_hand(), np.zeros(21))
    frame.joints_3d[3, 2] = bad
    assert VideoHands()([frame], K, 0.0)[0] is frame


def detection_of(truth: np.ndarray, kp_noise: np.ndarray | None = None, world_noise: np.ndarray | None = None,
                 track: int | None = 1) -> Detection:
    """MediaPipe's view of the truth: its keypoints, image z (px, wrist-relative) and world
    landmarks (mm, about the hand's centre), each with the noise given."""
    kp = project(truth, K).astype(np.float64) + (0.0 if kp_noise is None else kp_noise)
    world = truth - truth.mean(axis=0) + (0.0 if world_noise is None else world_noise)
    z = (truth[:, 2] - truth[0, 2]) * K[0, 0] / truth[0, 2]
    return Detection(keypoints_2d=kp.astype(np.float32), world_3d=world.astype(np.float32), handedness="Right",
                     score=0.98, keypoints_z=z.astype(np.float32), track=track)


def test_mediapipe_shakes_less_before_the_cascade_and_a_steady_motion_is_followed():
    """On a still hand MediaPipe's keypoints and world landmarks shake by a few pixels and
    millimetres; what the cascade gets is smoothed, while a hand moving steadily is not left
    behind."""
    rng = np.random.default_rng(3)
    truth = true_hand()
    shaken, smoothed, world_shaken, world_smoothed = [], [], [], []
    video = VideoHands()
    for k in range(60):
        raw = detection_of(truth, rng.normal(0, 2.0, (21, 2)), rng.normal(0, 3.0, (21, 3)))
        out = video.smooth([raw], k / FPS)[0]
        if k >= 30:
            shaken.append(raw.keypoints_2d)
            smoothed.append(out.keypoints_2d)
            world_shaken.append(raw.world_3d)
            world_smoothed.append(out.world_3d)
    assert np.std(smoothed, axis=0).mean() < 0.75 * np.std(shaken, axis=0).mean()
    assert np.std(world_smoothed, axis=0).mean() < 0.75 * np.std(world_shaken, axis=0).mean()
    video = VideoHands()
    for k in range(30):  # 20 cm/s across the view
        moved = truth + [200.0 * k / FPS, 0, 0]
        out = video.smooth([detection_of(moved)], k / FPS)[0]
    assert np.abs(out.keypoints_2d - project(moved, K)).max() < 3.0


def test_the_hand_shown_keeps_mediapipes_own_keypoints_and_3d():
    """The cascade sees the smoothed detection; what is drawn and written as MediaPipe's is
    what MediaPipe said this frame."""
    rng = np.random.default_rng(4)
    truth = true_hand()
    video = VideoHands()
    for k in range(5):
        raw = detection_of(truth, rng.normal(0, 2.0, (21, 2)), rng.normal(0, 3.0, (21, 3)))
        seen = video.smooth([raw, dataclasses.replace(raw, track=None)], k / FPS)
        assert seen[1] is not None and seen[1].keypoints_2d is raw.keypoints_2d  # untracked: as it is
        frame = dataclasses.replace(observed(truth, np.zeros(21)), keypoints_2d=seen[0].keypoints_2d,
                                    mediapipe_world_3d=seen[0].world_3d)
        shown = video([frame], K, k / FPS)[0]
        np.testing.assert_array_equal(shown.keypoints_2d, raw.keypoints_2d)
        np.testing.assert_array_equal(shown.mediapipe_world_3d, raw.world_3d)
    assert not np.allclose(seen[0].keypoints_2d, raw.keypoints_2d)  # the cascade's input was smoothed


def test_a_detection_without_image_z_or_world_is_smoothed_where_it_can_be():
    truth = true_hand()
    video = VideoHands()
    for k in range(3):
        raw = dataclasses.replace(detection_of(truth, np.full((21, 2), float(k))), keypoints_z=None,
                                  world_3d=np.full((21, 3), np.nan, np.float32))
        out = video.smooth([raw], k / FPS)[0]
    assert out.keypoints_z is None and np.isnan(out.world_3d).all()
    assert not np.allclose(out.keypoints_2d, raw.keypoints_2d)


def test_a_keypoint_that_jumps_off_a_steady_motion_widens_its_joints_ball_for_a_moment():
    """A keypoint that leaves the steady motion of the last two frames is one MediaPipe misplaced
    (TemporalConfig.jump_doubt_mm): that joint's ball widens as it jumps (and as it comes back)
    and settles within a second, while a hand moving steadily is not widened at all."""
    truth = true_hand()
    tip = INDEX[-1]

    def radii(cfg: TemporalConfig) -> np.ndarray:
        video = VideoHands(cfg)
        shown = []
        for k in range(45):  # 20 cm/s across the view; at frame 15 the index tip's keypoint hops 25 px
            moved = truth + [200.0 * k / FPS, 0, 0]
            raw = detection_of(moved)
            if k == 15:
                raw.keypoints_2d[tip] += [25.0, 0.0]
            video.smooth([raw], k / FPS)
            shown.append(video([observed(moved, np.zeros(21), spread_mm=10.0)], K, k / FPS)[0].joint_radius_90)
        return np.array(shown)

    shown, without = radii(TemporalConfig()), radii(TemporalConfig(jump_doubt_mm=0.0))
    np.testing.assert_allclose(shown[:15], without[:15], rtol=1e-3)  # a steady motion: no widening
    assert shown[15:17, tip].max() > 2.0 * without[15:17, tip].max()  # the jump: that joint
    others = [j for j in range(1, 21) if j != tip]
    # not the others (but for what the similarity alignment of the wider cloud hands on)
    assert np.all(shown[15:17, others] < 1.2 * without[15:17, others])
    assert shown[-1, tip] < 1.02 * without[-1, tip]  # and it settles back


def test_a_new_skeleton_starts_from_the_hand_models_proportions_not_the_first_frames():
    """One frame's bones are a poor guess at a person's: a finger its keypoints make 40 % long
    is learnt from there, not taken as it came."""
    truth = true_hand()
    stretched = link_lengths(truth)
    index_links = [k for k, (_, child) in enumerate(LINKS) if child in INDEX[1:]]
    stretched[index_links] *= 1.4
    frame = with_bone_lengths(truth, stretched)
    prior = prior_bone_lengths(frame)
    model = link_lengths(load_hand_asset().rest_joints)
    assert np.allclose(prior / model, prior[0] / model[0]) and np.isclose(prior.sum(), stretched.sum())
    video = VideoHands()
    video([observed(frame, np.zeros(21))], K, 0.0)
    learnt = video._tracks[1].kalman.skeleton
    share = (learnt[index_links] - prior[index_links]) / (stretched[index_links] - prior[index_links])
    assert np.all((share > 0.2) & (share < 0.9))  # toward the frame's, not all the way
