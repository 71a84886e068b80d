"""One hand over time (numpy only): the person's skeleton, and a Kalman filter on the joints' depths.

A photo leaves each joint's depth open along its keypoint ray; a video shows the same hand again
and again. The model, per tracked hand (handviz.pipeline.hand_tracks says which is which), is an
extended Kalman filter in filterpy's shape (x, P, F, Q, H, R; predict, update):

- **State** x = [p, v, e, L]. p: the wrist's distance Z and every other joint's depth relative to
  the wrist d_j (mm); v: their velocities (mm/s); e: the frame estimates' current error on p (mm);
  L: the person's bone lengths (mm), constant.
- **Motion** (F, Q): constant velocity, driven by white-noise acceleration (the wrist's distance
  and each joint's depth from the wrist their own). The estimates' error is an AR(1) chain that
  forgets in `error_time_s`, with the frame's expected error as its SD: frames that repeat one
  mistake count as one piece of evidence, not many.
- **Observation 1, the frame's estimate** (the cascade's fused hand): its depths, z = p + e, its
  noise from the estimate's expected error (`joint_radius_90`). A depth further than `gate_sd`
  SDs from the prediction counts as only that far (a heavy-tailed error: one frame's flip of a
  finger moves the estimate no further than a plausible frame would).
- **Observation 2, the skeleton**: each bone's length on this frame's lines of sight equals the
  person's, |P_child - P_parent| - L = 0 with P_j = (Z + d_j) s_j, up to `bone_sd` and to what the
  keypoints' own 2D noise does to a bone across its line of sight (nonlinear: an iterated
  extended Kalman update).
  The lengths L start from the open hand model's proportions (`prior_bone_lengths`: assets/hand,
  scaled to the first frame's hand) and are learnt from every frame until
  `skeleton_frames`, then held, but for the thumb's, which are learnt throughout
  (`LEARNT_THROUGHOUT`). The linearisation keeps each bone on the side of the camera it
  was on (near or far), unless the frames say otherwise. A new track takes over the skeleton
  (held as it was) of the hand of its side seen last, when that one is out of view and not yet
  forgotten (`VideoHands._skeleton_before`): MediaPipe loses a hand and finds it again as a new
  track.
- **What MediaPipe says, smoothed first** (`DetectionFilter`, before the cascade): on a still
  hand its keypoints, their image z and its world landmarks shake from frame to frame (its
  tracking crop moves with them), and the cascade turns that shake into depth. Each is smoothed
  by a constant-velocity Kalman filter (`ConstantVelocity`) before the cascade sees it; the
  estimate keeps MediaPipe's own keypoints and world landmarks, so what is drawn and written
  as MediaPipe's stays MediaPipe's.
- **Output**: every joint on its line of sight (the smoothed keypoint's ray) at the filtered depth, then each bone set to the
  person's length (`with_bone_lengths`: the filter holds the bones only as well as bone_sd says,
  the hand shown holds them exactly); the cloud is the frame's own (its doubt, joint by joint)
  moved onto these joints, each joint's radius averaged over time (`doubt_time_s`) and widened by
  how far the hand over time departs from the frame's estimate there (`cloud_over_time`) and by
  how far its keypoint just jumped off a steady motion (`jump_doubt_mm`); the mesh moved onto
  the new joints.

Nothing here waits for a later frame. Shapes: joints (21, 3) mm, camera frame (x right, y down,
z forward); K (3, 3).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from handviz.data.noise_model import hand_size_px
from handviz.geometry import similarity_aligned
from handviz.placement import distance_interval
from handviz.posterior import hand_extent_px
from handviz.skeleton import LINKS, prior_bone_lengths, with_bone_lengths
from handviz.types import NUM_JOINTS, Detection, HandEstimate

#: The bones still learnt once the skeleton is held: the thumb's (the links to its joints 1-4).
#: Held from the 15th frame like the others, the thumb was the one digit the hand over time got
#: worse than single frames did (dev set's videos, seed 0: its last two joints 13.0 / 19.6 mm
#: against 11.2 / 16.6 mm): in a grasp it turns toward and away from the camera, so its first
#: frames say little about its lengths. Learnt throughout (3 seeds): PA-MPJPE 10.26 -> 10.11 mm
#: (each seed 0.14-0.18 mm better, 6 of 8 videos), bone-length CV 1.65 -> 1.83 %, acceleration
#: the same (0.501x MediaPipe's). Every bone learnt throughout: 10.25 mm at CV 3.3 %; the fingers'
#: and the thumb's (the palm's held): 10.18 mm at CV 3.1 %.
LEARNT_THROUGHOUT = tuple(k for k, (_, child) in enumerate(LINKS) if child in (1, 2, 3, 4))
#: The measurement's white part (mm): what is left of a frame's depth error once its lasting part
#: (e) is modelled; it keeps R invertible.
WHITE_NOISE_MM = 1.0


@dataclass(frozen=True)
class TemporalConfig:
    """The temporal model's assumptions, each with its unit and its measured reason: the dev set's
    8 real videos (`handviz eval --real DIR --videos`), mean of 3 seeds, against these settings
    (stop 36: PA-MPJPE 9.74 mm, 0.97x the same frames as photos, whose bones are drawn toward an
    adult's proportions; acceleration 0.50x MediaPipe's; bone-length CV 1.7 %; 90 % ball 93 % at
    17.4 mm; still-clip jitter 0.98 mm). Most figures
    per setting below were measured before MediaPipe's outputs were smoothed ahead of the
    cascade (stop 28; the keypoints' rays were smoothed after it: 10.20 mm, 0.57x), and before the
    hand shown got the skeleton's bones exactly and the lines of sight were smoothed, against
    10.32 mm and a bone-length CV of 5.9 %.

    depth_noise_scale: a frame's depth error SD per joint is this times its joint_radius_90: a
      calibrated 90 % ball is about 2-2.5 SDs of the error. Stop 36 (3 seeds), 0.5 against 1:
      9.74 against 9.85 mm, the BVH's bones 1.66 against 1.72 mm, for a cloud over time that
      ranks the error a little less (per-joint Pearson 0.535 against 0.554, per-frame Spearman
      0.507 against 0.526, the ball 93.1 against 93.3 %) and a bone-length CV of 1.7 against 1.6
      %; 0.3 (seeds 0-1): 9.74 mm, CV 1.9 %; 0.7: 9.79 mm; 1.4: 10.06 mm. (At 1 until then,
      when 0.7 had been measured against the filter's own cloud, since replaced by the frame's.)
    wrist_noise_mm: a frame's error SD on the wrist's distance, mm (20: +0.02 mm).
    hand_accel: the wrist's distance, white-noise acceleration, mm/s^2 over one second (10000: same).
    articulation_accel: each joint's depth from the wrist, the same (5000: same; 3000 lags behind
      the grasping hand, +0.44 mm; a still-hand model (300) would out-vote one-frame flips of a
      finger, which the dev set's videos do not have: 9 spikes over 15 mm in 873 frame
      triplets, none over 21 mm). It lets a still hand's depths shake as the frames do (on the
      thumbs_up_large clip of `eval --checks`: 2.5 mm, 2.3 mm of it in depth; 1000: 2.1 mm).
      Scaling it down while the keypoints are still (by their filtered speed, to 3 % below
      600 px/s) took the checks' median from 2.5 to 2.1 mm (two hands of one label then counted
      as one sequence), but the dev set's grasping hand from 10.20 to 10.68 mm: not taken.
    error_time_s: how long a frame estimate's error lasts, s (the cascade's depth errors correlate
      0.97 from one frame to the next on the dev set, yet 0.3 s: +0.04-0.24 mm; without it (white):
      PA within 0.05 mm, bone-length CV 7.0 %).
    bone_sd: how far a bone's length on one frame's keypoint rays may differ from the person's, as
      a share of it (0.1: same PA, CV 6.2 %; 0.02: +0.05 mm). Without the skeleton: 10.45 mm, CV 10.4 %.
    bone_prior_sd: the skeleton's doubt before the first frame's bones are seen, as a share of its
      prior lengths (`prior_bone_lengths`). Stop 33, 3 seeds, the prior the hand model's
      proportions: 0.3: 9.86 mm; with the model scaled by the bones' mean log ratio instead of
      their totals, 0.3: 9.89, 0.2: 9.90, 0.1: 10.01, 0.05: 10.32 mm (the model's proportions
      stick). Until stop 32 the prior was the first frame's own lengths (0.1 then: +0.7 mm on seed 0).
    keypoint_noise_px: MediaPipe's 2D keypoint error, px, which moves a joint across its ray and
      so lengthens or shortens a bone (the dev set's median 6.4 px, RMS 12.8 px against the labels;
      4: +0.7 mm). Stop 31, 3 seeds: 10 against 8 px, 10.06 against 10.11 mm (each seed 0.02-0.07
      mm better), acceleration 0.500x MediaPipe's, CV 1.86 against 1.83 %, the joints' 2D error
      against the labels +0.8 %; 12-25 px gave 10.03-9.99 mm but, from 12 px on, the joints leave
      their keypoints by more than test_temporal allows (a looser link lets the bones pull them off).
    skeleton_frames: the skeleton is learnt from this many frames, then held (the thumb's bones
      are learnt throughout, LEARNT_THROUGHOUT); the hand shown has
      the learnt bones from the first frame on (`with_bone_lengths`), so while they are learnt they
      still change (2 seeds: 30 frames 10.09 mm, bone-length CV 2.4 %; 15: 10.18 mm, 1.7 %; 10:
      10.27 mm, 1.4 %; on the dev set's 76-frame videos the learning is a fifth of every video).
    gate_sd: a frame's depth beyond this many SDs of the prediction counts as that far (no
      change on the dev set, which has no flips; with a slow motion model it out-votes one).
    max_gap_s: a hand unseen for longer starts its motion over (its skeleton is kept).
    detection_noise / detection_accel: MediaPipe's keypoints and their image z are smoothed before
      the cascade (`DetectionFilter`): their frame-to-frame noise and white-noise acceleration (per
      s^2), both in units of the hand's 2D size (the keypoints' RMS distance from their centroid),
      since MediaPipe works in a crop of the hand and a hand's motion in pixels grows with its
      size alike. world_noise_mm / world_accel: the same for its world landmarks, in mm. Dev set's
      videos, 2 seeds, against the shipped filter of stop 27 (the keypoints' rays smoothed after
      the cascade, 4 px, 3000 px/s^2: 10.22 mm, acceleration 0.566x MediaPipe's; still-clip
      jitter of `eval --checks` 1.91 mm): 0.2, 77, 6 mm: 10.26 mm, 0.518x; 0.3, 77, 10 mm: 10.28
      mm, 0.505x; 0.4, 77, 12 mm: 10.29 mm, 0.499x. Keeping the rays' filter after the cascade
      as well: the same acceleration for more error (10.29 mm, 0.505x at 0.2 and 6 mm).
    iterations: relinearisations of the skeleton's update (1: +0.07 mm, CV 6.0 %; stop 29, 3 seeds
      with the input filter: 3 gave 10.265 mm, 0.500x, CV 1.63 %, 2 gives 10.263 mm, 0.500x, CV
      1.65 % for one update fewer, ~0.35 ms a hand-frame).
    doubt_time_s: the frame's doubt (each joint's 90 % radius) is averaged over about this long
      before the cloud over time is drawn from it (an exponential average of the squared radius;
      `cloud_over_time`). Its signals jitter from frame to frame, the error they predict does
      not (dev set's videos, 3 seeds, against the frame's radius as it comes: per-frame Spearman
      0.27 -> 0.43, per-joint Pearson 0.485 -> 0.506, 90 % ball 86.7 % at 17.2 mm -> 88.5 % at
      17.4 mm; 0.3 s: 0.41, 0.502; 1.6 s: 0.43, 0.505; averaging the widened radius, the gap
      with it: 0.44, 0.493, 87.8 % at 17.1 mm).
    jump_time_s / jump_doubt_mm: a keypoint that jumps off the steady motion of the last two
      frames is likely misplaced (`DetectionFilter.jump_sq`: the jump over the hand's 2D extent,
      squared, averaged over jump_time_s), so its joint's ball is widened at once by
      jump_doubt_mm x that share, in quadrature with the doubt and the gap (`cloud_over_time`).
      Stop 32, dev set's videos, 3 seeds, against none: per-frame Spearman 0.448 -> 0.497,
      per-joint Pearson 0.490 -> 0.496, 90 % ball 88.2 % at 17.2 mm -> 90.0 % at 17.9 mm; 100 mm:
      0.484, 0.494, 89.1 %; 200 mm: 0.497, 0.495, 90.8 % at 18.3 mm; 300 mm: 0.481, 0.477; over
      0.05 s: as 0.1 s; 0.25 s: Spearman 0.478. MediaPipe's jump from its Kalman prediction
      (`ConstantVelocity`) instead, which lags a moving hand: Spearman 0.465, Pearson 0.480 at
      18.6 mm. Clipping that jump in the filter: PA-MPJPE within 0.002 mm, not kept.
    """

    depth_noise_scale: float = 0.5
    wrist_noise_mm: float = 40.0
    hand_accel: float = 3000.0
    articulation_accel: float = 10000.0
    error_time_s: float = 0.1
    bone_sd: float = 0.05
    bone_prior_sd: float = 0.3
    keypoint_noise_px: float = 10.0
    skeleton_frames: int = 15
    gate_sd: float = 3.0
    max_gap_s: float = 0.5
    iterations: int = 2
    detection_noise: float = 0.4
    detection_accel: float = 77.0
    world_noise_mm: float = 12.0
    world_accel: float = 3000.0
    doubt_time_s: float = 0.65
    jump_time_s: float = 0.1
    jump_doubt_mm: float = 150.0


#: The state's parts, as slices of x: depths p, velocities v, errors e (21 each), bone lengths L (20).
_N, _M = NUM_JOINTS, len(LINKS)
P_, V_, E_, L_ = (slice(0, _N), slice(_N, 2 * _N), slice(2 * _N, 3 * _N), slice(3 * _N, 3 * _N + _M))


class DepthKalman:
    """The extended Kalman filter over one hand's depths and bone lengths (see the module's docstring).

    x (83,) and P (83, 83); predict(dt, sd) steps F and Q; update(depths) takes the frame's
    estimate (H picks p + e); update_links(sight, sideways_sd) the skeleton (nonlinear, iterated);
    hold_skeleton() stops learning L.
    """

    def __init__(self, depths: np.ndarray, sd: np.ndarray, lengths: np.ndarray, length_sd: np.ndarray,
                 cfg: TemporalConfig) -> None:
        self.cfg = cfg
        self.x = np.zeros(L_.stop)
        self.x[P_] = _to_state(depths)
        self.x[L_] = lengths
        self.P = np.zeros((L_.stop, L_.stop))
        # the first frame: the hand is where it says up to its error (p = z - e), moving at any
        # speed one second of the assumed acceleration gives
        var = np.diag(sd**2)
        self.P[P_, P_] = self.P[E_, E_] = var
        self.P[P_, E_] = self.P[E_, P_] = -var
        self.P[V_, V_] = np.diag(np.r_[cfg.hand_accel, np.full(_N - 1, cfg.articulation_accel)] ** 2)
        self.P[L_, L_] = np.diag(length_sd**2)
        self.skeleton_held = False

    def predict(self, dt: float, sd: np.ndarray) -> None:
        """x = F x, P = F P F^T + Q for dt seconds. sd (21,) mm: the frame's expected error (the
        stationary SD of e)."""
        rho = float(np.exp(-dt / self.cfg.error_time_s))
        q = np.diag(np.r_[self.cfg.hand_accel, np.full(_N - 1, self.cfg.articulation_accel)] ** 2)  # (mm/s^2)^2 s
        # F: p += dt v, e *= rho, the rest unchanged; F P F^T block by block
        x, P = self.x.copy(), self.P.copy()
        x[P_] += dt * x[V_]
        x[E_] *= rho
        P[P_, :] += dt * P[V_, :]
        P[:, P_] += dt * P[:, V_]
        P[E_, :] *= rho
        P[:, E_] *= rho
        P[P_, P_] += q * dt**3 / 3  # Q: white-noise acceleration, and the error's fresh part
        P[P_, V_] += q * dt**2 / 2
        P[V_, P_] += q * dt**2 / 2
        P[V_, V_] += q * dt
        P[E_, E_] += np.diag((1.0 - rho**2) * sd**2)
        self.x, self.P = x, P

    def update(self, depths: np.ndarray) -> None:
        """The frame's depths (21,) mm, camera frame: z = p + e, plus a white part, gated."""
        H = np.zeros((_N, len(self.x)))
        H[:, P_] = H[:, E_] = np.eye(_N)
        innovation = _to_state(depths) - H @ self.x
        spread = np.diag(self.P[P_, P_] + self.P[E_, E_] + 2 * self.P[P_, E_])  # H P H^T's diagonal
        white = np.maximum(WHITE_NOISE_MM**2, innovation**2 / self.cfg.gate_sd**2 - spread)
        self._correct(innovation, H, np.diag(white))

    def update_links(self, sight: np.ndarray, sideways_sd: np.ndarray) -> None:
        """The skeleton: every bone's length on the lines of sight (21, 3) minus L is 0, up to
        bone_sd and the keypoints' sideways error sideways_sd (21,) mm."""
        links = np.array(LINKS)
        prior_x, prior_P = self.x.copy(), self.P.copy()
        x = prior_x
        for _ in range(max(1, self.cfg.iterations)):  # iterated EKF: relinearise at the new x
            h, J, across = _link_model(x[P_], sight, links)
            H = np.zeros((len(links), len(x)))
            H[:, P_] = J
            H[:, L_] = -np.eye(len(links))
            # errors in variables: a keypoint off sideways lengthens a bone by its sideways share
            R = np.diag((self.cfg.bone_sd * x[L_]) ** 2 + ((across * sideways_sd[links]) ** 2).sum(axis=1))
            self.x, self.P = prior_x, prior_P
            self._correct((x[L_] - h) - H @ (prior_x - x), H, R)
            x = self.x

    def hold_skeleton(self) -> None:
        """From now on L is the person's, no longer learnt (no doubt left in it for the filter),
        but for the bones of LEARNT_THROUGHOUT."""
        held = np.setdiff1d(np.arange(len(LINKS)), LEARNT_THROUGHOUT) + L_.start
        self.P[held, :] = 0.0
        self.P[:, held] = 0.0
        self.skeleton_held = True

    def _correct(self, innovation: np.ndarray, H: np.ndarray, R: np.ndarray) -> None:
        PH = self.P @ H.T
        S = H @ PH + R
        # S^-1 from S's eigen-decomposition (S is symmetric positive definite): np.linalg.solve and
        # inv wake OpenBLAS's threads even for 21 x 21, and their spinning cost the app a third of
        # its displayed frames on a 2-core machine (bench --app: 16-18 -> 10-13 fps); eigh does not
        w, V = np.linalg.eigh(S)
        K = PH @ (V / np.maximum(w, 1e-12)) @ V.T  # P H^T S^-1
        self.x = self.x + K @ innovation
        P = self.P - K @ PH.T  # (I - K H) P
        self.P = 0.5 * (P + P.T)

    @property
    def depths(self) -> np.ndarray:
        """(21,) mm: each joint's filtered depth in the camera frame."""
        return _from_state(self.x[P_])

    @property
    def skeleton(self) -> np.ndarray:
        """(20,) mm: the person's bone lengths (LINKS' order)."""
        return self.x[L_].copy()


def _to_state(depths: np.ndarray) -> np.ndarray:
    """(21,) camera-frame depths -> [Z, d_1..d_20] (the wrist's, and each joint's from the wrist)."""
    z = np.asarray(depths, np.float64)
    return np.r_[z[0], z[1:] - z[0]]


def _from_state(p: np.ndarray) -> np.ndarray:
    return np.r_[p[0], p[1:] + p[0]]


def _link_model(p: np.ndarray, sight: np.ndarray, links: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone lengths h (L,) at depths p = [Z, d] (21,), their Jacobian (L, 21) (P_j = z_j s_j with
    z = Z + d), and (L, 2) how much of a sideways move of each end (across its line of sight) goes
    into the length."""
    z = _from_state(p)
    points = z[:, None] * sight
    a, b = links.T
    diff = points[b] - points[a]
    h = np.linalg.norm(diff, axis=1)
    u = diff / np.maximum(h, 1e-9)[:, None]
    J = np.zeros((len(links), _N))  # with respect to the camera-frame depths z
    rows = np.arange(len(links))
    np.add.at(J, (rows, b), (u * sight[b]).sum(axis=1))
    np.add.at(J, (rows, a), -(u * sight[a]).sum(axis=1))
    H = np.zeros((len(links), _N))
    H[:, 0] = J.sum(axis=1)  # z_j = Z + d_j: the wrist's distance moves every joint
    H[:, 1:] = J[:, 1:]
    across = np.empty((len(links), 2))
    for k, end in enumerate((a, b)):
        unit = sight[end] / np.linalg.norm(sight[end], axis=1, keepdims=True)
        across[:, k] = np.sqrt(np.maximum(0.0, 1.0 - (u * unit).sum(axis=1) ** 2))
    return h, H, across


class ConstantVelocity:
    """An array of any shape over time: per element a constant-velocity Kalman filter (position,
    velocity), driven by white-noise acceleration `accel` (per s^2), measured with noise `noise`
    (both may change between steps). Vectorised, closed form (2x2)."""

    def __init__(self, first: np.ndarray, noise: float, accel: float) -> None:
        self.noise, self.accel = noise, accel
        self.x = np.array(first, np.float64)
        self.v = np.zeros_like(self.x)
        # (..., 2, 2): the position known to the noise, the velocity to a fast hand's (a second of accel)
        self.P = np.zeros(self.x.shape + (2, 2))
        self.P[..., 0, 0], self.P[..., 1, 1] = noise**2, accel**2

    def step(self, measured: np.ndarray, dt: float) -> np.ndarray:
        """Predict dt s ahead, take this frame's measurement; returns the filtered array."""
        F = np.array([[1.0, dt], [0.0, 1.0]])
        Q = self.accel**2 * np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])
        P = F @ self.P @ F.T + Q
        x = self.x + self.v * dt
        gain = P[..., :, 0] / (P[..., 0, 0] + self.noise**2)[..., None]  # (..., 2): position, velocity
        innovation = np.asarray(measured, np.float64) - x
        self.x = x + gain[..., 0] * innovation
        self.v = self.v + gain[..., 1] * innovation
        self.P = P - gain[..., :, None] * P[..., 0, None, :]
        return self.x.copy()


class DetectionFilter:
    """One tracked hand's MediaPipe outputs over time (see the module's docstring): its keypoints
    and their image z, in units of the hand's 2D size, and its world landmarks, in mm."""

    def __init__(self, cfg: TemporalConfig) -> None:
        self.cfg = cfg
        self.time: float | None = None
        self._filters: dict[str, ConstantVelocity] = {}
        #: (21,) per keypoint, how far it has lately jumped off a steady motion (`_jumped`).
        self.jump_sq = np.zeros(NUM_JOINTS)
        self._recent: list[tuple[float, np.ndarray]] = []  # the last two frames' raw keypoints

    def step(self, detection: Detection, t: float) -> Detection:
        """The detection at time t (s) -> a copy with its keypoints, image z and world landmarks
        smoothed (the detection itself on a track's first frame or after a gap)."""
        dt = None if self.time is None else t - self.time
        self.time = t
        restart = dt is None or not 0 < dt <= self.cfg.max_gap_s
        size = max(float(hand_size_px(np.asarray(detection.keypoints_2d, np.float64))), 1.0)
        parts = {"keypoints_2d": (detection.keypoints_2d, self.cfg.detection_noise * size,
                                  self.cfg.detection_accel * size),
                 "keypoints_z": (detection.keypoints_z, self.cfg.detection_noise * size,
                                 self.cfg.detection_accel * size),
                 "world_3d": (detection.world_3d, self.cfg.world_noise_mm, self.cfg.world_accel)}
        smoothed = {}
        for name, (value, noise, accel) in parts.items():
            f = self._filters.get(name)
            if value is None or not np.all(np.isfinite(value)):
                self._filters.pop(name, None)  # missing this frame: that part starts over when it is back
                continue
            if restart or f is None:
                self._filters[name] = ConstantVelocity(value, noise, accel)
                continue
            f.noise, f.accel = noise, accel
            smoothed[name] = f.step(value, dt).astype(np.float32)
        self._jumped(np.asarray(detection.keypoints_2d, np.float64), t, restart)
        return dataclasses.replace(detection, **smoothed) if smoothed else detection

    def _jumped(self, keypoints: np.ndarray, t: float, restart: bool) -> None:
        """Update jump_sq: each keypoint's distance from where the last two frames' steady motion
        put it, over the hand's 2D extent (`hand_extent_px`), squared and averaged over
        cfg.jump_time_s. A keypoint that jumps while its hand moves smoothly is one MediaPipe
        misplaced (on the demo's two_thumbs_up.jpg the thumb's tip hops between the two thumbs)."""
        if restart or not np.all(np.isfinite(keypoints)):
            self.jump_sq, self._recent = np.zeros(NUM_JOINTS), []
        if np.all(np.isfinite(keypoints)):
            self._recent = (self._recent + [(t, keypoints)])[-3:]
        if len(self._recent) < 3:
            return
        (t0, k0), (t1, k1), (t2, k2) = self._recent
        expected = k1 + (k1 - k0) * (t2 - t1) / max(t1 - t0, 1e-6)
        jump_sq = ((k2 - expected) ** 2).sum(axis=-1) / max(hand_extent_px(k2), 1.0) ** 2
        self.jump_sq += -np.expm1(-(t2 - t1) / self.cfg.jump_time_s) * (jump_sq - self.jump_sq)


class HandTrackFilter:
    """One tracked hand: its filter (depths and skeleton) and its frame count."""

    def __init__(self, cfg: TemporalConfig, inherited: DepthKalman | None = None) -> None:
        self.cfg = cfg
        self.kalman: DepthKalman | None = None
        self.inherited = inherited  # the skeleton of the person's hand on the track before this one
        self.handedness: str | None = None
        self.time: float | None = None
        self.frames = 0
        self.doubt_sq: np.ndarray | None = None  # (21,) mm^2: the frame's 90 % radius, averaged over time

    def step(self, estimate: HandEstimate, focal_px: float, t: float,
             mesh_pull: np.ndarray | None = None, jump_sq: np.ndarray | None = None) -> HandEstimate:
        """The frame's estimate at time t (s), seen with focal length focal_px -> the hand over time
        (a new HandEstimate; the same one when its joints are not usable). jump_sq (21,): its
        keypoints' recent jumps (`DetectionFilter.jump_sq`), which widen their joints' balls."""
        joints = np.asarray(estimate.joints_3d, np.float64)
        if not np.all(np.isfinite(joints)) or np.any(joints[:, 2] <= 0):
            return estimate
        sight = np.c_[joints[:, :2] / joints[:, 2:], np.ones(len(joints))]  # each joint's keypoint ray (up to the pull)
        sd = self.cfg.depth_noise_scale * np.asarray(estimate.joint_radius_90, np.float64)
        sd[0] = self.cfg.wrist_noise_mm
        sd = np.maximum(sd, 1.0)
        dt = None if self.time is None else t - self.time
        self.handedness = estimate.handedness
        radius_sq = np.maximum(np.asarray(estimate.joint_radius_90, np.float64), 1.0) ** 2
        if self.kalman is None or dt is None or not 0 < dt <= self.cfg.max_gap_s:
            self._start(joints, sd)
            self.doubt_sq = radius_sq
        else:
            self.kalman.predict(dt, sd)
            self.kalman.update(joints[:, 2])
            self.doubt_sq += -np.expm1(-dt / self.cfg.doubt_time_s) * (radius_sq - self.doubt_sq)
        self.time = t
        self.frames += 1
        self.kalman.update_links(sight, self.cfg.keypoint_noise_px * self.kalman.depths / focal_px)
        if self.frames >= self.cfg.skeleton_frames and not self.kalman.skeleton_held:
            self.kalman.hold_skeleton()
        widen_sq = 0.0 if jump_sq is None else self.cfg.jump_doubt_mm**2 * np.asarray(jump_sq, np.float64)
        return self._estimate(estimate, sight, mesh_pull, np.sqrt(self.doubt_sq + widen_sq))

    def _start(self, joints: np.ndarray, sd: np.ndarray) -> None:
        """A new filter at this frame; a hand seen before keeps its skeleton (and its doubt), and
        so does a new track that takes over from the person's hand on the one before it."""
        old = self.kalman if self.kalman is not None else self.inherited
        lengths = prior_bone_lengths(joints) if old is None else old.skeleton
        self.kalman = DepthKalman(joints[:, 2], sd, lengths, self.cfg.bone_prior_sd * lengths, self.cfg)
        if old is not None:
            self.kalman.P[L_, L_] = old.P[L_, L_]
            self.kalman.skeleton_held = old.skeleton_held
        if old is not None and old is self.inherited and old.skeleton_held:
            self.frames = self.cfg.skeleton_frames  # held already: not learnt again
        self.inherited = None  # taken over once; the old filter is not kept alive by this one

    def _estimate(self, estimate: HandEstimate, sight: np.ndarray, mesh_pull: np.ndarray | None,
                  doubt: np.ndarray) -> HandEstimate:
        assert self.kalman is not None
        depths = self.kalman.depths
        on_sight = depths[:, None] * sight
        joints = with_bone_lengths(on_sight, self.kalman.skeleton)
        frame_joints = np.asarray(estimate.joints_3d, np.float64)
        hyps = cloud_over_time(estimate, joints, doubt)
        vertices = np.asarray(estimate.vertices, np.float64)
        if mesh_pull is not None and len(vertices) == len(mesh_pull):
            vertices = vertices + mesh_pull @ (joints - frame_joints)
        return estimate.replaced(joints_3d=joints, joint_hypotheses=hyps, vertices=vertices.astype(np.float32),
                                 distance_mm=distance_interval(joints))


def cloud_over_time(frame: HandEstimate, joints: np.ndarray, doubt: np.ndarray) -> np.ndarray:
    """(N, 21, 3) mm: the frame's hypotheses moved onto the joints over time (21, 3), each joint's
    offsets from the frame's estimate rescaled from the frame's 90 % radius to
    sqrt(doubt^2 + gap^2): doubt (21,) mm, the joint's radius averaged over time
    (`TemporalConfig.doubt_time_s`; `HandTrackFilter` widens it where a keypoint jumped), gap,
    how far the two estimates' shapes differ there (similarity-aligned). Where they disagree one
    of them is wrong, so that joint's ball grows by the gap, in quadrature.

    The filter's own posterior drew the cloud until stop 29; it settled as frames came in, but
    the frames' errors persist (they correlate 0.97 from frame to frame), so its radii did not
    rank the error (dev set's videos, 3 seeds: per-joint Pearson 0.24, per-frame Spearman -0.01,
    90 % ball 85.4 % at 17.1 mm). The frame's cloud alone: 0.45, 0.25, 84.1 % at 16.5 mm (x1.05:
    86.2 % at 17.2 mm); widened by the gap: 0.48, 0.27, 86.7 % at 17.2 mm (the gap in mm from
    the wrist instead: 0.49, 0.29, 86.2 %; twice the gap: 0.45, 0.30, 88.5 % at 18.4 mm). Stop 30:
    the frame's radius averaged over time first (`HandTrackFilter`): 0.506, 0.43, 88.5 % at 17.4 mm.
    Stop 32, widened where a keypoint jumps (`TemporalConfig.jump_doubt_mm`): 0.496, 0.497, 90.0 %
    at 17.9 mm (against 0.490, 0.448, 88.2 % at 17.2 mm with the thumb's bones learnt throughout).
    Stop 33, the skeleton's prior from the hand model (`prior_bone_lengths`): 0.487, 0.486, 90.8 %
    at 17.8 mm; with the doubt refitted to the photos' drawn bones: 0.490, 0.481, 89.6 % at 17.3 mm
    (the frames' bones drawn toward an adult's too, as on photos: 0.469, 0.426, 9.81 mm).
    """
    frame_joints = np.asarray(frame.joints_3d, np.float64)
    offsets = np.asarray(frame.joint_hypotheses, np.float64) - frame_joints
    radius = np.maximum(np.asarray(frame.joint_radius_90, np.float64), 1.0)
    doubt = np.asarray(doubt, np.float64)
    gap = np.linalg.norm(similarity_aligned(frame_joints[None], joints)[0] - joints, axis=1)
    return joints + (np.sqrt(doubt**2 + gap**2) / radius)[:, None] * offsets


class VideoHands:
    """The temporal model for every hand of one feed. Per frame, in order: `smooth` the frame's
    detections before the cascade, then call it with the cascade's hands, the frame's K and its
    time (s).

    Hands are told apart by their track (Detection.track and HandEstimate.track, from
    handviz.pipeline.hand_tracks); a hand without one (a photo, a detector that does not track)
    passes through unchanged. A track unseen for 4 x max_gap_s is forgotten.
    """

    def __init__(self, cfg: TemporalConfig | None = None, mesh_pull: np.ndarray | None = None) -> None:
        self.cfg = cfg or TemporalConfig()
        self.mesh_pull = mesh_pull
        self._tracks: dict[int, HandTrackFilter] = {}
        self._inputs: dict[int, DetectionFilter] = {}
        self._raw: dict[int, Detection] = {}  # this frame's detections as MediaPipe gave them, by track

    def reset(self) -> None:
        self._tracks.clear()
        self._inputs.clear()
        self._raw.clear()

    def smooth(self, detections: list[Detection], t: float) -> list[Detection]:
        """The frame's detections at time t (s) for the cascade: each tracked hand's smoothed over
        time (`DetectionFilter`), the others as they are."""
        self._raw = {d.track: d for d in detections if d.track is not None}
        out = []
        for d in detections:
            if d.track is None:
                out.append(d)
                continue
            f = self._inputs.get(d.track)
            if f is None:
                f = self._inputs[d.track] = DetectionFilter(self.cfg)
            out.append(f.step(d, t))
        self._inputs = self._seen_lately(self._inputs, t)
        return out

    def __call__(self, hands: list[HandEstimate], K: np.ndarray, t: float) -> list[HandEstimate]:
        out = []
        in_view = {hand.track for hand in hands}
        for hand in hands:
            if hand.track is None:
                out.append(hand)
                continue
            f = self._tracks.get(hand.track)
            if f is None:
                f = self._tracks[hand.track] = HandTrackFilter(self.cfg, self._skeleton_before(hand.handedness, in_view, t))
            inputs = self._inputs.get(hand.track)
            shown = f.step(hand, float(np.asarray(K)[0, 0]), t, self.mesh_pull,
                           None if inputs is None else inputs.jump_sq)
            raw = self._raw.get(hand.track)
            if raw is not None:  # MediaPipe's own keypoints and 3D, not the smoothed ones the cascade saw
                shown = shown.replaced(keypoints_2d=np.asarray(raw.keypoints_2d, np.float32),
                                       mediapipe_world_3d=np.asarray(raw.world_3d, np.float32))
            out.append(shown)
        self._raw = {}
        self._tracks = self._seen_lately(self._tracks, t)
        return out

    def _skeleton_before(self, handedness: str, in_view: set, t: float) -> DepthKalman | None:
        """The filter of the track this new one takes over from: the hand of this handedness seen
        last, out of view now and not yet forgotten (4 x max_gap_s). MediaPipe loses a hand and
        finds it again as a new track, and the hand_tracks module ends a track whose keypoints
        change shape; the person's bones are the same either way (dev set's videos: bone-length
        CV 2.6 -> 2.1 %, the BVH's fixed bones 2.2 -> 1.7 mm). Another person's hand coming in
        within that time gets this one's skeleton too, as its start."""
        remembered = self._seen_lately(self._tracks, t)
        gone = [f for track, f in remembered.items()
                if track not in in_view and f.handedness == handedness and f.kalman is not None]
        return max(gone, key=lambda f: f.time).kalman if gone else None

    def _seen_lately(self, filters: dict, t: float) -> dict:
        """The per-track filters whose hand was seen within 4 x max_gap_s of t; older ones are forgotten."""
        return {k: f for k, f in filters.items() if f.time is not None and t - f.time <= 4 * self.cfg.max_gap_s}
