"""The cascade with the shipped weights: shapes, hypotheses that differ, mirroring, placement."""


import numpy as np
import pytest
import torch

from handviz.geometry import project
from handviz.types import Detection


@pytest.fixture(scope="module")
def cascade():
    from handviz.cascade import Cascade

    return Cascade.from_weights(device="cpu")


@pytest.fixture(scope="module")
def synthetic():
    from handviz.eval.run_eval import make_synthetic_test_set

    d = make_synthetic_test_set(12, seed=123)
    keep = np.flatnonzero(d["detected"] & d["mp_right"])
    assert len(keep) >= 3, "MediaPipe should detect some test renders"
    return d, keep


def _det(d, i, handedness="Right"):
    return Detection(keypoints_2d=d["kp2d"][i], world_3d=d["mp_world"][i], handedness=handedness,
                     score=float(d["mp_score"][i]), keypoints_z=d["kp_z"][i], crop=d["crop"][i])


def test_no_detection_gives_no_estimate(cascade):
    assert cascade.predict([], np.eye(3)) == []


def test_shapes_and_diverse_hypotheses(cascade, synthetic):
    d, keep = synthetic
    i = keep[0]
    (est,) = cascade.predict([_det(d, i)], d["K"][i], n_hypotheses=16, seed=0)
    assert est.joints_3d.shape == (21, 3) and est.joint_hypotheses.shape == (16, 21, 3)
    assert est.vertices.shape == (int(cascade.faces.max()) + 1, 3)
    assert est.joint_spread.shape == (21,) and np.all(est.joint_spread[1:] > 0)  # wrist is the root
    # The shipped cloud: most hypotheses differ in shape (median pair 9-13 mm apart; the source
    # blends may lie within a millimetre of each other).
    assert np.median(_pair_distances(est)) > 3.0
    # The one-step sampler itself must not collapse: look at stage 1's own hypotheses (posterior
    # off), which the posterior then moves onto the rays and fuses.
    import handviz.cascade as cascade_module

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cascade_module, "posterior_hypotheses", lambda hyps, *args, **kwargs: hyps)
        (raw,) = cascade.predict([_det(d, i)], d["K"][i], n_hypotheses=16, seed=0)
    # no two alike (measured: the closest pair 11-12 mm apart on average over the joints), every
    # fingertip spread over more than 5 mm after aligning the shapes (measured 11-19 mm); all
    # identical gives 0 and 0
    assert _pair_distances(raw).min() > 3.0, _pair_distances(raw).min()
    assert np.all(raw.joint_spread[[4, 8, 12, 16, 20]] > 5.0), raw.joint_spread


def _pair_distances(est):
    """(N (N - 1) / 2,) mm: mean joint distance between every two wrist-relative hypotheses."""
    rel = est.joint_hypotheses - est.joint_hypotheses[:, :1]
    return np.linalg.norm(rel[:, None] - rel[None], axis=-1).mean(axis=-1)[np.triu_indices(len(rel), 1)]


def test_estimate_is_a_hand_placed_on_the_image(cascade, synthetic):
    """The joints reproject near MediaPipe's keypoints: median under 3 % of the hand's 2D size (the
    keypoints' bounding-box diagonal, eval --checks' yardstick) as the README promises, and no
    joint beyond 6 % (the bones drawn toward an adult's proportions move them off the keypoints
    where those make a bone too long or short). Measured on these three hands: median 1.3-2.2 %,
    worst joint 3.1-3.8 % (0.6-1.6 % and 1.8-2.9 % before the bones were drawn)."""
    d, keep = synthetic
    for i in keep[:3]:
        (est,) = cascade.predict([_det(d, i)], d["K"][i], seed=1)
        err_px = np.linalg.norm(project(est.joints_3d, d["K"][i]) - d["kp2d"][i], axis=-1)
        size_px = np.linalg.norm(np.ptp(d["kp2d"][i], axis=0))
        assert np.median(err_px) < 0.03 * size_px, (i, np.median(err_px) / size_px)
        assert err_px.max() < 0.06 * size_px, (i, err_px.max() / size_px)
        # a plausible hand: wrist-to-middle-MCP length within human range
        palm = np.linalg.norm(est.joints_3d[9] - est.joints_3d[0])
        assert 50 < palm < 140
        assert np.all(est.joints_3d[:, 2] > 0)


@pytest.mark.parametrize("handedness", ["Right", "Left"])
def test_every_hypothesis_projects_onto_the_keypoints_at_the_estimates_distance(cascade, synthetic, handedness):
    """Issue 20: the cloud is doubt about the hand's shape. Every hypothesis, not only the
    estimate, lies on the keypoints (up to the 2 % sideways pull, and the bones drawn toward an
    adult's proportions, which move this hand's joints by up to 4 % of its size, its hypotheses'
    with them, on any seed) and shares the estimate's wrist; where the hand is, size against
    distance, is distance_mm, which holds the estimate's wrist."""
    d, keep = synthetic
    i = keep[0]
    det = _det(d, i, handedness)
    kp = det.keypoints_2d.astype(np.float64)
    size = np.linalg.norm(np.ptp(kp, axis=0))
    (est,) = cascade.predict([det], d["K"][i], n_hypotheses=32, seed=0)
    off = np.linalg.norm(project(est.joint_hypotheses.reshape(-1, 3), d["K"][i]).reshape(32, 21, 2) - kp, axis=-1)
    assert np.median(off) < 0.02 * size and off.max() < 0.05 * size, off.max() / size
    assert np.allclose(est.joint_hypotheses[:, 0], est.joints_3d[0], atol=1e-3)  # one wrist, one distance
    assert np.linalg.norm(est.joint_hypotheses[:, 1:] - est.joints_3d[1:], axis=-1).max() > 3.0  # yet a cloud
    near, far = est.distance_mm
    assert near < np.linalg.norm(est.joints_3d[0]) < far


def test_left_hand_is_the_mirror_of_the_right(cascade, synthetic):
    d, keep = synthetic
    i = keep[0]
    K = d["K"][i]
    cx = K[0, 2]
    right = _det(d, i)
    left = Detection(keypoints_2d=np.stack([2 * cx - right.keypoints_2d[:, 0], right.keypoints_2d[:, 1]], -1),
                     world_3d=right.world_3d * np.array([-1, 1, 1], np.float32), handedness="Left",
                     score=right.score, keypoints_z=right.keypoints_z, crop=right.crop[:, ::-1].copy())
    (er,) = cascade.predict([right], K, seed=3)
    (el,) = cascade.predict([left], K, seed=3)
    assert np.allclose(el.joints_3d * np.array([-1, 1, 1]), er.joints_3d, atol=1e-3)


def test_batched_hands_match_single_calls(cascade, synthetic, monkeypatch):
    """Hands in one batch share nothing but the random stream: stage 1 draws its noise as one
    (B, N, 63) block and the posterior's numpy generator runs through the hands in turn, so with
    the same seed batched hand k and a single call for hand k draw different numbers by design.
    With each hand's draws restarted from the seed (both generators rewound at the start of every
    hand), a batched call must give every hand exactly what a call for that hand alone gives."""
    import handviz.cascade as cascade_module

    real_sample_joints, real_posterior = cascade_module.sample_joints, cascade_module.posterior_hypotheses

    def per_hand_sample_joints(denoiser, cond, feat, n, steps, gen=None):
        out = []
        for b in range(cond.shape[0]):
            gen.manual_seed(gen.initial_seed())
            out.append(real_sample_joints(denoiser, cond[b:b + 1], None if feat is None else feat[b:b + 1], n, steps, gen))
        return torch.cat(out)

    def per_hand_posterior(*args, **kwargs):
        for rng in (*args, *kwargs.values()):
            if isinstance(rng, np.random.Generator):
                rng.bit_generator.state = np.random.default_rng(5).bit_generator.state
        return real_posterior(*args, **kwargs)

    monkeypatch.setattr(cascade_module, "sample_joints", per_hand_sample_joints)
    monkeypatch.setattr(cascade_module, "posterior_hypotheses", per_hand_posterior)
    d, keep = synthetic
    i, j = keep[:2]
    K = d["K"][i]
    dets = [_det(d, i), _det(d, j, "Left")]
    both = cascade.predict(dets, K, n_hypotheses=8, seed=5)
    singles = [cascade.predict([det], K, n_hypotheses=8, seed=5)[0] for det in dets]
    assert [e.handedness for e in both] == ["Right", "Left"]
    for batched, single in zip(both, singles):
        for field in ("joints_3d", "joint_hypotheses", "joint_spread", "vertices"):
            np.testing.assert_allclose(getattr(batched, field), getattr(single, field), atol=1e-3, err_msg=field)
    assert not np.allclose(both[0].joints_3d, both[1].joints_3d, atol=1.0)  # two hands, not one twice


@pytest.mark.parametrize("image_features", [False, True], ids=["shipped", "encoder-trained"])
def test_keypoints_only_mode_runs_without_crops(cascade, synthetic, image_features):
    """A detection without a crop asked for image features gives exactly the keypoints-only
    estimate, whether or not the weights' encoder ever saw a crop."""
    d, keep = synthetic
    K = d["K"][keep[0]]
    det = _det(d, keep[0])
    det.crop = None
    trained = cascade.has_image_features
    try:
        cascade.has_image_features = image_features
        (est,) = cascade.predict([det], K, use_image=True, seed=0)
        (keypoints_only,) = cascade.predict([_det(d, keep[0])], K, use_image=False, seed=0)
    finally:
        cascade.has_image_features = trained
    for field in ("joints_3d", "joint_hypotheses", "vertices"):
        np.testing.assert_array_equal(getattr(est, field), getattr(keypoints_only, field), err_msg=field)


def test_mesh_is_pulled_onto_the_joints_without_tearing(cascade, synthetic):
    """The mesh's regressed joints meet the estimate, and no vertex flies off the hand."""
    from handviz.hand.asset import load_hand_asset

    regressor = load_hand_asset().joint_regressor
    d, keep = synthetic
    for i in keep[:3]:
        (est,) = cascade.predict([_det(d, i)], d["K"][i], seed=2)
        assert np.abs(regressor @ est.vertices - est.joints_3d).max() < 0.5  # mm
        nearest = np.linalg.norm(est.vertices[:, None] - est.joints_3d[None], axis=-1).min(axis=1)
        assert nearest.max() < 60.0, nearest.max()  # the wrist ring reaches ~45 mm; a torn mesh, 100+


def test_pull_matrix_is_well_conditioned():
    from handviz.cascade import mesh_pull_matrix
    from handviz.hand.asset import load_hand_asset

    asset = load_hand_asset()
    P = mesh_pull_matrix(asset.vertices, asset.joint_regressor).numpy()
    assert np.allclose(asset.joint_regressor @ P, np.eye(21), atol=1e-4)
    assert np.abs(P).max() < 3.0  # a 1 mm joint residual moves no vertex by more than a few mm


def test_live_frames_draw_the_same_noise_so_a_still_hand_stays_still(cascade, synthetic):
    """The app's backend seeds every frame alike (FRAME_SEED): the same frame gives the same hand,
    and a 0.3 px wobble of the keypoints moves the estimate far less than fresh noise would."""
    from handviz.pipeline.inference import InferOptions, cascade_backend

    d, keep = synthetic
    i = keep[0]
    det = _det(d, i)
    wobbled = _det(d, i)
    wobbled.keypoints_2d = det.keypoints_2d + np.random.default_rng(1).normal(0, 0.3, det.keypoints_2d.shape).astype(np.float32)
    backend = cascade_backend(cascade)
    first, again, moved = (backend.infer(None, [x], d["K"][i], InferOptions())[0] for x in (det, det, wobbled))
    assert np.array_equal(first.joints_3d, again.joints_3d)
    assert np.array_equal(first.joint_hypotheses, again.joint_hypotheses)
    rel = lambda e: e.joints_3d - e.joints_3d[0]  # noqa: E731
    wobble = np.abs(rel(moved) - rel(first)).mean()
    # what frames with other noise would give (seeds other than FRAME_SEED, fixed: no flake)
    fresh = [cascade.predict([det], d["K"][i], seed=s)[0] for s in range(1, 6)]
    assert wobble < 0.5 * np.mean([np.abs(rel(f) - rel(first)).mean() for f in fresh]), wobble


def test_an_encoder_that_never_saw_a_crop_is_never_used(cascade, synthetic):
    """Weights trained on keypoint-only rows record with_crops 0: asking for image features then
    gives exactly the keypoints-only estimate instead of feeding an untrained encoder."""
    d, keep = synthetic
    det = _det(d, keep[0])
    assert det.crop is not None
    trained = cascade.has_image_features
    try:
        cascade.has_image_features = False
        a = cascade.predict([det], d["K"][keep[0]], use_image=True, seed=0)[0]
        b = cascade.predict([det], d["K"][keep[0]], use_image=False, seed=0)[0]
        np.testing.assert_array_equal(a.joints_3d, b.joints_3d)
        cascade.has_image_features = True
        c = cascade.predict([det], d["K"][keep[0]], use_image=True, seed=0)[0]
        assert not np.array_equal(c.joint_hypotheses, b.joint_hypotheses)  # the crop does reach the net
    finally:
        cascade.has_image_features = trained
