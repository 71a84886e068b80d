"""`handviz eval`: synthetic test set (render -> MediaPipe), FreiHAND or HO3Dv2 for users who have them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from handviz.limits import HYPOTHESES_DEFAULT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score the cascade (synthetic, FreiHAND, HO3Dv2)",
                       description="PA-MPJPE, PA-MPVPE, MPJPE, F@5/F@15, best-of-N and spread calibration. "
                       "--synthetic renders a fresh test set and runs MediaPipe on it (never the training "
                       "seeds); MediaPipe's own world landmarks are scored on the same samples.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", type=int, metavar="N", help="fresh synthetic test samples")
    src.add_argument("--freihand", type=Path, metavar="DIR", help="FreiHAND root (evaluation split)")
    src.add_argument("--ho3d", type=Path, metavar="DIR", help="HO3Dv2 root (train split scored)")
    src.add_argument("--hands3d", type=Path, metavar="DIR",
                     help="a few real images with 3D truth (InterHand2.6M/RHD samples): a sanity check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hypotheses", type=int, default=HYPOTHESES_DEFAULT)
    p.add_argument("--ddim-steps", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="score at most this many dataset images")
    p.add_argument("--submission", type=Path, default=None,
                   help="also write the official results file (FreiHAND pred.json / HO3D) here")
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handviz.cascade import Cascade

    cascade = Cascade.from_weights(args.weights, device=args.device)
    if args.synthetic is not None:
        from handviz.eval.run_eval import evaluate_synthetic

        report = evaluate_synthetic(cascade, args.synthetic, args.seed, args.hypotheses, args.ddim_steps)
    elif args.hands3d is not None:
        from handviz.eval.hands3d import evaluate_hands3d

        report = evaluate_hands3d(cascade, args.hands3d, n_hypotheses=args.hypotheses, seed=args.seed,
                                  ddim_steps=args.ddim_steps)
    else:
        report = _evaluate_dataset(cascade, args)
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


def _evaluate_dataset(cascade, args: argparse.Namespace) -> dict:
    """Official-protocol scores on FreiHAND (evaluation) or HO3Dv2 (train, which has 3D labels)."""
    import numpy as np

    from handviz.eval.real_eval import evaluate_on_samples
    from handviz.pipeline.detector import HandDetector

    if args.freihand:
        from handviz.data.freihand import FreiHandDataset

        samples, dataset = FreiHandDataset(args.freihand, "evaluation"), "freihand"
    else:
        from handviz.data.ho3d import HO3DDataset

        samples, dataset = HO3DDataset(args.ho3d, "train"), "ho3d"
    detector = HandDetector(max_hands=1, static=True)
    absolute: list = []

    def predict_fn(rgb, K):
        dets = detector.detect(rgb)
        if not dets:
            absolute.append(None)
            return None, None
        est = cascade.predict(dets[:1], np.asarray(K, np.float32), n_hypotheses=args.hypotheses,
                              ddim_steps=args.ddim_steps, seed=args.seed)[0]
        absolute.append(est)
        return est.joints_3d, est.vertices, est.joint_hypotheses

    try:
        report = evaluate_on_samples(predict_fn, samples, limit=args.limit, progress=not args.json)
    finally:
        detector.close()
    report.pop("per_sample", None)
    report["dataset"] = dataset
    if args.submission:
        from handviz.eval.submission import write_pred_json

        joints = [None if e is None else e.joints_3d for e in absolute]
        verts = [None if e is None else e.vertices for e in absolute]
        report["submission_missing_filled"] = write_pred_json(args.submission, joints, verts, dataset=dataset,
                                                              missing="zeros")
        report["submission"] = str(args.submission)
    return report
