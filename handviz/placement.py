"""Where the hand is: its distance from the camera, which one image leaves open.

A hand twice as large twice as far away projects onto the same pixels, so a photo fixes the
hand's shape and its direction from the camera, not its distance. The cascade places its estimate
at the typical adult hand size (`adult_size_factor`), and `distance_interval` gives the distance
for the range of adult hand sizes. It is kept apart from the joint hypotheses, which are doubt about the hand's shape
(issue 20: scaling each hypothesis about the camera made the cloud 3.6x wider in palm length
and hid the shape doubt under it).
"""

from __future__ import annotations

import numpy as np

from handviz.geometry import row_norms
from handviz.types import DIGIT_CHAINS

#: Adult hand length (wrist crease to middle fingertip), mm: about the 5th percentile of women and
#: the 95th of men in the ANSUR II survey (2012). Along the middle digit's joints, MediaPipe's
#: wrist-to-tip length matches it for an open hand and does not change as the hand curls.
ADULT_HAND_LENGTH_MM = (160.0, 210.0)
#: The hand length the estimate is placed with: about the adult mean (ANSUR II: women 181 mm,
#: men 193 mm). Stage 1's hands run small (palm 64-85 mm on the bundled photos against 91-100 mm
#: for MediaPipe's world landmarks; the dev set's person: 182 mm), which put them too near.
TYPICAL_HAND_LENGTH_MM = 185.0


def adult_size_factor(joints_3d: np.ndarray) -> float:
    """The factor that scales a hand (21, 3), camera frame, about the camera to the typical adult
    hand length: the same pixels, an adult's size and the distance that goes with it."""
    length = _hand_length(joints_3d)
    return TYPICAL_HAND_LENGTH_MM / length if length > 1e-6 else 1.0


def distance_interval(joints_3d: np.ndarray) -> tuple[float, float]:
    """(near, far) mm: the wrist's distance from the camera if the hand (21, 3), camera frame, were
    scaled about the camera to the shortest and the longest adult hand."""
    joints = np.asarray(joints_3d, np.float64)
    length = _hand_length(joints)
    distance = float(np.linalg.norm(joints[0]))
    lo, hi = ADULT_HAND_LENGTH_MM
    return distance * lo / max(length, 1e-6), distance * hi / max(length, 1e-6)


#: The middle digit's joints from the wrist: a hand's length runs along them.
_MIDDLE_DIGIT_PATH = [0, *DIGIT_CHAINS[2]]


def _hand_length(joints_3d: np.ndarray) -> float:
    """posterior.wrist_to_tip_lengths(joints_3d)[2], the same sums over that digit's bones alone."""
    path = np.asarray(joints_3d, np.float64)[_MIDDLE_DIGIT_PATH]
    bones = row_norms(path[1:] - path[:-1])
    return float(bones[0] + bones[1] + bones[2] + bones[3])
