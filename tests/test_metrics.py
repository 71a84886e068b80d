"""Metrics against hand-computed values (handviz.eval.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from handviz.eval import metrics as M

# Four non-coplanar points: root at the origin, so root-relative errors are easy to hand-compute.
GT = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 30.0]])


def _rot_z(deg: float) -> np.ndarray:
    return Rotation.from_euler("z", deg, degrees=True).as_matrix()


def test_identical_is_zero():
    for fn in (M.mpjpe, M.pa_mpjpe, M.pa_mpvpe):
        np.testing.assert_allclose(fn(GT, GT), [0.0], atol=1e-9)


def test_translation_pa_zero_but_absolute_error_is_the_shift():
    pred = GT + np.array([3.0, 4.0, 0.0])  # |shift| = 5
    np.testing.assert_allclose(M.mpjpe(pred, GT, root=None), [5.0])
    np.testing.assert_allclose(M.mpjpe(pred, GT), [0.0], atol=1e-9)  # root-relative cancels it
    np.testing.assert_allclose(M.pa_mpjpe(pred, GT), [0.0], atol=1e-9)


def test_rotation_pa_zero_but_mpjpe_hand_computed():
    pred = GT @ _rot_z(90).T  # (10,0,0)->(0,10,0), (0,20,0)->(-20,0,0), z-axis point fixed
    # errors: 0, 10*sqrt2, 20*sqrt2, 0 -> mean 7.5*sqrt2
    np.testing.assert_allclose(M.mpjpe(pred, GT), [7.5 * math.sqrt(2)])
    np.testing.assert_allclose(M.pa_mpjpe(pred, GT), [0.0], atol=1e-9)


def test_scale_pa_zero_but_mpjpe_hand_computed():
    pred = 2.0 * GT  # errors 0, 10, 20, 30 -> mean 15
    np.testing.assert_allclose(M.mpjpe(pred, GT), [15.0])
    np.testing.assert_allclose(M.pa_mpjpe(pred, GT), [0.0], atol=1e-9)
    # without scale, the best is a rigid fit: not zero
    assert M.joint_errors(M.procrustes_align(pred, GT, scale=False), GT, align="none").mean() > 1.0


def test_similarity_recovers_the_transform():
    rng = np.random.default_rng(0)
    rot = Rotation.from_rotvec([0.3, -0.5, 0.9]).as_matrix()
    pred = rng.normal(size=(1, 21, 3)) * 40
    gt = 1.7 * pred @ rot.T + np.array([5.0, -3.0, 400.0])
    s, r, t = M.similarity_transform(pred, gt)
    np.testing.assert_allclose(s, [1.7])
    np.testing.assert_allclose(r[0], rot, atol=1e-9)
    np.testing.assert_allclose(t[0], [5.0, -3.0, 400.0], atol=1e-8)


def test_rigid_alignment_matches_scipy_kabsch():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(21, 3)) * 30
    pred = gt @ _rot_z(40).T + rng.normal(size=(21, 3)) * 5
    ours = M.procrustes_align(pred, gt, scale=False)[0]
    pc, gc = pred - pred.mean(0), gt - gt.mean(0)
    rot, _ = Rotation.align_vectors(gc, pc)
    reference = rot.apply(pc) + gt.mean(0)
    np.testing.assert_allclose(ours, reference, atol=1e-8)


def test_reflection_is_not_aligned_away():
    mirrored = GT * np.array([-1.0, 1.0, 1.0])  # a left hand passed as right
    _, rot, _ = M.similarity_transform(mirrored, GT)
    np.testing.assert_allclose(np.linalg.det(rot), [1.0])
    assert M.pa_mpjpe(mirrored, GT)[0] > 1.0
    # an unconstrained orthogonal Procrustes (FreiHAND's scipy call) would erase the mirror
    r, _ = orthogonal_procrustes(mirrored - mirrored.mean(0), GT - GT.mean(0))
    assert np.allclose((mirrored - mirrored.mean(0)) @ r, GT - GT.mean(0), atol=1e-9)


def test_batched_shapes_and_per_sample_values():
    pred = np.stack([GT, GT + 1.0, 2.0 * GT])
    gt = np.stack([GT, GT, GT])
    np.testing.assert_allclose(M.mpjpe(pred, gt, root=None), [0.0, math.sqrt(3), 15.0])
    assert M.pa_mpjpe(pred, gt).shape == (3,)
    with pytest.raises(ValueError, match="same shape"):
        M.mpjpe(pred, gt[:2])


def test_f_score_hand_computed():
    gt = np.array([[0.0, 0, 0], [10, 0, 0]])
    pred = np.array([[1.0, 0, 0], [30, 0, 0], [50, 0, 0]])
    precision, recall = M.precision_recall(pred, gt, 5.0)
    np.testing.assert_allclose(precision, [1 / 3])  # only (1,0,0) is within 5 of a gt point
    np.testing.assert_allclose(recall, [1 / 2])  # only (0,0,0) is within 5 of a prediction
    np.testing.assert_allclose(M.f_score(pred, gt, 5.0, align=False), [0.4])  # 2pr/(p+r)
    np.testing.assert_allclose(M.f_score(pred, gt, 0.5, align=False), [0.0])
    np.testing.assert_allclose(M.f_score(2 * GT + 7, GT, 5.0), [1.0])  # aligned first


def test_best_of_n_picks_the_right_hypothesis():
    rng = np.random.default_rng(2)
    far = GT + rng.normal(size=GT.shape) * 20
    near = GT + rng.normal(size=GT.shape) * 1
    hyps = np.stack([far, GT, near])[None]  # (1, 3, 4, 3)
    errors = M.per_hypothesis_error(hyps, GT[None], "mpjpe")
    assert errors.shape == (1, 3)
    assert int(errors.argmin()) == 1
    np.testing.assert_allclose(M.best_of_n(hyps, GT[None]), [0.0], atol=1e-9)
    np.testing.assert_allclose(M.best_of_n(hyps[:, [0, 2]], GT[None], "mpjpe"), [M.mpjpe(near, GT)[0]])
    with pytest.raises(ValueError, match="metric"):
        M.best_of_n(hyps, GT[None], "nope")


def test_pck_and_auc():
    errors = np.array([[0.0, 10.0], [20.0, 30.0]])
    np.testing.assert_allclose(M.pck_curve(errors, np.array([0.0, 10.0, 25.0, 30.0])), [0.25, 0.5, 0.75, 1.0])
    assert M.auc_pck(GT, GT, align="none") == pytest.approx(1.0)
    assert M.auc_pck(GT, GT) == pytest.approx(1.0, abs=0.01)  # PA leaves ~1e-15 residue at threshold 0
    # every joint off by exactly 25 mm: the curve is a step at 25 of 0..50 -> half the area
    shifted = GT + np.array([25.0, 0, 0])
    assert M.auc_pck(shifted, GT, align="none") == pytest.approx(0.5, abs=0.01)


def test_spread_two_symmetric_hypotheses():
    offset = np.array([0.0, 0.0, 4.0])
    hyps = np.stack([GT + offset, GT - offset])[None]  # each 4 mm from the mean
    np.testing.assert_allclose(M.spread(hyps), np.full((1, 4), 4.0))
    np.testing.assert_allclose(M.spread(hyps, kind="std"), np.full((1, 4), 4.0))


def test_spearman():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert M.spearman(x, x**3) == pytest.approx(1.0)
    assert M.spearman(x, -x) == pytest.approx(-1.0)
    assert math.isnan(M.spearman(x, np.ones(5)))


def test_coverage_known_values():
    errors = np.array([[1.0, 2.0, 3.0, 4.0]])
    spreads = np.full((1, 4), 2.0)
    assert M.coverage(errors, spreads, 1.0) == pytest.approx(0.5)
    assert M.coverage(errors, spreads, 2.0) == pytest.approx(1.0)
    assert M.coverage(errors, spreads, 0.25) == pytest.approx(0.0)


def test_interval_coverage_known_values():
    line = np.linspace(0.0, 100.0, 101)
    hyps = np.repeat(line[:, None], 3, axis=1)[None, :, None, :]  # (1, 101, 1, 3): 0..100 on each axis
    inside = np.array([[[50.0, 50.0, 50.0]]])
    assert M.interval_coverage(hyps, inside, 0.9) == pytest.approx(1.0)
    mixed = np.array([[[50.0, 99.0, 1.0]]])  # the 90% interval is [5, 95]
    assert M.interval_coverage(hyps, mixed, 0.9) == pytest.approx(1 / 3)


def test_calibration_spread_tracks_error():
    rng = np.random.default_rng(3)
    batch, n = 6, 16
    gt = np.repeat(GT[None], batch, axis=0)
    scales = np.arange(1, batch + 1, dtype=float)  # sample b: spread and error both grow with b
    noise = rng.normal(size=(batch, n, 4, 3))
    hyps = gt[:, None] + noise * scales[:, None, None, None]
    estimate = gt + scales[:, None, None] * 0.5
    out = M.calibration(hyps, gt, estimate)
    assert out["spearman"] == pytest.approx(1.0)
    assert set(out) == {"spearman", "coverage_1x", "coverage_2x", "interval_coverage_90"}
    assert 0.0 <= out["coverage_1x"] <= out["coverage_2x"] <= 1.0


def test_pearson():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert M.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert M.pearson(x, np.array([1.0, 0.0, 0.0, 1.0])) == pytest.approx(0.0)
    assert math.isnan(M.pearson(x, np.ones(4)))


def test_sparsification_and_ause_hand_computed():
    errors = np.array([4.0, 3.0, 2.0, 1.0])
    fractions = np.array([0.0, 0.25, 0.5, 0.75])
    # The spread ranks them backwards: the smallest error goes first.
    curve, oracle = M.sparsification(np.array([1.0, 2.0, 3.0, 4.0]), errors, fractions)
    np.testing.assert_allclose(curve, [2.5, 3.0, 3.5, 4.0])  # means of (4 3 2 1), (4 3 2), (4 3), (4)
    np.testing.assert_allclose(oracle, [2.5, 2.0, 1.5, 1.0])
    # Differences 0, 1, 2, 3 at steps of 0.25: trapezoid (0.5 + 1.5 + 2.5) x 0.25 = 1.125.
    assert M.ause(fractions, curve, oracle) == pytest.approx(1.125)
    perfect, _ = M.sparsification(errors, errors, fractions)
    assert M.ause(fractions, perfect, oracle) == pytest.approx(0.0)
    # One sample is always kept, and 0.9 of 4 rounds to 4 removed: the last one stays.
    last, _ = M.sparsification(errors, errors, np.array([0.9]))
    np.testing.assert_allclose(last, [1.0])
