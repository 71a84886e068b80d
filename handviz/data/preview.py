"""Contact sheet of fresh synthetic samples: MediaPipe keypoints and projected truth drawn on
each render, so a person can check by eye that labels sit on the hand."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from handviz.types import BONES


def draw_sample(image: np.ndarray, kp_mp: np.ndarray | None, kp_gt: np.ndarray) -> np.ndarray:
    """Green skeleton = MediaPipe, red dots = projected ground truth. image: (H, W, 3) RGB."""
    out = image.copy()
    if kp_mp is not None and np.all(np.isfinite(kp_mp)):
        for a, b in BONES:
            cv2.line(out, tuple(np.round(kp_mp[a]).astype(int)), tuple(np.round(kp_mp[b]).astype(int)),
                     (40, 220, 40), 1, cv2.LINE_AA)
    else:
        cv2.putText(out, "not detected", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1,
                    cv2.LINE_AA)
    for p in kp_gt:
        cv2.circle(out, tuple(np.round(p).astype(int)), 2, (230, 30, 30), -1, cv2.LINE_AA)
    return out


def contact_sheet(n: int, seed: int, out_path: Path, columns: int = 4) -> dict[str, float]:
    """Render n fresh samples and save a grid PNG. Returns {"n": .., "detected": ..}."""
    from handviz.data.synth import SynthConfig, _RenderLabeller, sample_scenes

    cfg = SynthConfig()
    rng = np.random.default_rng([seed, 999_999])
    scene = sample_scenes(n, rng, cfg)
    arrays = _RenderLabeller(cfg).label(scene, rng, keep_images=True)
    tiles = [draw_sample(arrays["image"][i], arrays["kp2d"][i] if arrays["detected"][i] else None,
                         arrays["kp2d_gt"][i]) for i in range(n)]
    rows = -(-n // columns)
    h, w = tiles[0].shape[:2]
    sheet = np.full((rows * h, columns * w, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return {"n": n, "detected": int(arrays["detected"].sum())}
