"""`handviz eval`: real photos with 3D truth, no-truth checks, the synthetic test set, FreiHAND/HO3Dv2."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from handviz import limits
from handviz.commands.checks import check_at_least, check_ddim_steps, check_device, check_hypotheses


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score the cascade (real photos, no-truth checks, synthetic, FreiHAND, HO3Dv2)",
                       description="--real DIR scores real photos with 3D truth against MediaPipe's own 3D on "
                       "the same detections (MediaPipe also on changed copies, as predict does): PA-MPJPE, "
                       "best-of-N, their ratios, per-joint errors, the cloud's calibration (ball coverage, "
                       "radius/error correlations, sparsification and AUSE), detection rate, reprojection of "
                       "joints and mesh; per subfolder of the images too (one per camera, say). "
                       "DIR holds labels.jsonl (one line per image: {\"image\": path, \"K\": 3x3, "
                       "\"hands\": [{\"joints_3d\": 21x3 mm camera frame, MediaPipe order, null for a joint "
                       "not labelled, \"handedness\": \"Right\"|\"Left\"|null}]}) and the images; a hand with "
                       "fewer than 6 joints is counted as unlabelled; `handviz data real-folder` converts. "
                       "--checks PATH... needs no truth: reprojection, mirror consistency, jitter, bone "
                       "proportions. --synthetic renders a fresh test set and runs MediaPipe on it.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--real", type=Path, metavar="DIR", help="real photos with 3D truth (labels.jsonl format)")
    src.add_argument("--checks", type=Path, nargs="+", metavar="PATH",
                     help="photos, videos or folders: checks that need no 3D truth")
    src.add_argument("--synthetic", type=int, metavar="N", help="fresh synthetic test samples")
    src.add_argument("--freihand", type=Path, metavar="DIR", help="FreiHAND root (evaluation split)")
    src.add_argument("--ho3d", type=Path, metavar="DIR", help="HO3Dv2 root (train split scored)")
    src.add_argument("--hands3d", type=Path, metavar="DIR",
                     help="a few real images with 3D truth (InterHand2.6M/RHD samples): a sanity check")
    p.add_argument("--guess-intrinsics", action="store_true",
                   help="with --real: give the cascade predict's focal guess for a photo (60 deg, "
                   "lengthened so the hand is at least 40 cm away), not the true K")
    p.add_argument("--plots", type=Path, metavar="DIR", default=None,
                   help="with --real: write reliability.png (ball coverage against level) and "
                   "sparsification.png (with its oracle) into DIR")
    p.add_argument("--videos", action="store_true",
                   help="with --real: score DIR's videos (videos.txt: one line per video, its frames' image "
                   "paths in order) as the app runs a camera, with the hand followed over time, against the "
                   "same frames as photos and MediaPipe's world landmarks: per-frame PA-MPJPE, acceleration "
                   "error, bone-length variation, the cloud's coverage, the BVH rig's fit")
    p.add_argument("--fps", type=float, default=30.0, help="with --videos: the videos' frame rate (default 30)")
    p.add_argument("--mirror", action="store_true",
                   help="with --real (photos): score every photo mirrored, a left hand for a right one "
                   "(image, truth and intrinsics flipped, handedness swapped): a one-handed set then also "
                   "measures the other hand")
    p.add_argument("--fit-doubt", action="store_true",
                   help="with --real: also fit the cloud's doubt (the 90 %% radius's line) to the estimate's "
                   "per-joint error and report cascade.json's \"doubt\" settings as \"fitted_doubt\"")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hypotheses", type=int, default=limits.HYPOTHESES_DEFAULT,
                   help=f"joint hypotheses per hand ({limits.HYPOTHESES_MIN}-{limits.HYPOTHESES_MAX})")
    p.add_argument("--ddim-steps", type=int, default=limits.DDIM_STEPS_DEFAULT,
                   help=f"denoising steps per stage ({limits.DDIM_STEPS_MIN}-{limits.DDIM_STEPS_MAX})")
    p.add_argument("--limit", type=int, default=None, help="score at most this many dataset images")
    p.add_argument("--submission", type=Path, default=None,
                   help="also write the official results file (FreiHAND pred.json / HO3D) here")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Every value checked before the model loads (InputError: exit 2)."""
    check_hypotheses(args.hypotheses)
    check_ddim_steps(args.ddim_steps)
    check_device(args.device)
    check_at_least("--synthetic", args.synthetic, 1)
    check_at_least("--limit", args.limit, 1)
    # getattr: --real and --checks arrive with the real-photo evaluation (merged separately).
    for option in ("--freihand", "--ho3d", "--hands3d", "--real"):
        folder = getattr(args, option[2:], None)
        if folder is not None:
            check_dataset_folder(option, folder)
    if getattr(args, "plots", None) is not None:
        from handviz.logs import InputError

        if getattr(args, "real", None) is None:
            raise InputError("--plots DIR: works with --real only")
        if args.plots.exists() and not args.plots.is_dir():
            raise InputError(f"--plots {args.plots}: is a file; give a folder")
    if getattr(args, "real", None) is not None:
        from handviz.data.real_folder import LABELS
        from handviz.logs import InputError

        if not (args.real / LABELS).is_file():
            raise InputError(f"--real {args.real}: holds no {LABELS}; give the folder with {LABELS} and its "
                             "images (`handviz data real-folder` makes one)")
    if getattr(args, "fit_doubt", False):
        from handviz.logs import InputError

        if getattr(args, "real", None) is None or getattr(args, "videos", False):
            raise InputError("--fit-doubt: works with --real (photos, not --videos) only")
    if getattr(args, "mirror", False):
        from handviz.logs import InputError

        if getattr(args, "real", None) is None or getattr(args, "videos", False):
            raise InputError("--mirror: works with --real (photos, not --videos) only")
    if getattr(args, "checks", None):
        check_inputs_readable(args.checks)
    if getattr(args, "videos", False):
        from handviz.eval.video_eval import load_videos
        from handviz.logs import InputError

        if getattr(args, "real", None) is None:
            raise InputError("--videos: works with --real DIR only")
        check_at_least("--fps", args.fps, 1)
        try:  # videos.txt, and every frame it names has a label line
            load_videos(args.real)
        except (OSError, ValueError) as exc:
            raise InputError(f"--videos {exc}") from exc


def check_dataset_folder(option: str, folder: Path) -> None:
    from handviz.logs import InputError

    if folder.is_file():
        raise InputError(f"{option} {folder}: is a file; give the folder")
    if not folder.is_dir():
        raise InputError(f"{option} {folder}: no such folder")
    if not any(folder.iterdir()):
        raise InputError(f"{option} {folder}: the folder is empty")


def check_inputs_readable(inputs: list[Path]) -> None:
    """--checks: every input (and every image or video of a folder) gives a frame, before the model
    loads; a figure must not quietly leave an input out. InputError names the first that does not."""
    from handviz.commands.predict import expand_inputs, iter_frames
    from handviz.logs import InputError

    try:  # a folder without images or videos: InputError (the checks read no subfolders)
        paths, _ = expand_inputs(inputs, recurse_hint="name them after --checks to include them")
    except InputError as exc:
        raise InputError(f"--checks {exc}") from None
    for path in paths:
        errors: list[str] = []
        frames = iter_frames(path, errors)
        first = next(frames, None)
        frames.close()
        if first is None:
            raise InputError(f"--checks {errors[0] if errors else f'{path}: gives no frame'}")


def open_inputs(args: argparse.Namespace):
    """What --real, --freihand or --ho3d scores, opened before the model loads: a folder that does not
    hold what the option needs is an InputError (exit 2) naming the option, not a crash later."""
    from handviz.logs import InputError

    try:
        if args.real is not None:
            from handviz.data.real_folder import load_real_folder

            samples = load_real_folder(args.real)
            if getattr(args, "mirror", False):
                from handviz.data.real_sample import mirror_sample

                samples = [mirror_sample(s) for s in samples]
            return samples
        if args.freihand is not None:
            from handviz.data.freihand import FreiHandDataset

            return FreiHandDataset(args.freihand, "evaluation")
        if args.ho3d is not None:
            from handviz.data.ho3d import HO3DDataset

            return HO3DDataset(args.ho3d, "train")
    except (OSError, ValueError) as exc:  # RealFolderError is a ValueError; missing files OSErrors
        option = "--real" if args.real is not None else "--freihand" if args.freihand is not None else "--ho3d"
        raise InputError(f"{option} {exc}") from exc
    return None


def run(args: argparse.Namespace) -> int:
    check_options(args)
    inputs = open_inputs(args)
    from handviz.cascade import Cascade

    cascade = Cascade.from_weights(args.weights, device=args.device)
    if args.real is not None and args.videos:
        from handviz.eval.video_eval import evaluate_videos

        report = evaluate_videos(cascade, args.real, n_hypotheses=args.hypotheses, seed=args.seed,
                                 ddim_steps=args.ddim_steps, fps=args.fps)
    elif args.real is not None:
        from handviz.eval.real_photos import evaluate_real_samples

        report = evaluate_real_samples(cascade, inputs, str(args.real),
                                       n_hypotheses=args.hypotheses, seed=args.seed, ddim_steps=args.ddim_steps,
                                       guess_intrinsics=args.guess_intrinsics, doubt_signals=args.fit_doubt)
        report["mirrored"] = bool(getattr(args, "mirror", False))
        if args.fit_doubt:
            from handviz.eval.doubt_fit import fit_joint_doubt

            try:
                report["fitted_doubt"] = fit_joint_doubt(report["per_sample"])
            except ValueError as exc:
                from handviz.logs import InputError

                raise InputError(f"--fit-doubt: {exc}") from exc
        if args.plots is not None:
            from handviz.eval.plots import write_calibration_plots

            report["plots"] = [str(path) for path in write_calibration_plots(report, args.plots)]
    elif args.checks is not None:
        from handviz.eval.run_checks import run_checks

        report = run_checks(cascade, args.checks, n_hypotheses=args.hypotheses)
    elif args.synthetic is not None:
        from handviz.eval.run_eval import evaluate_synthetic

        report = evaluate_synthetic(cascade, args.synthetic, args.seed, args.hypotheses, args.ddim_steps)
    elif args.hands3d is not None:
        from handviz.eval.hands3d import evaluate_hands3d

        report = evaluate_hands3d(cascade, args.hands3d, n_hypotheses=args.hypotheses, seed=args.seed,
                                  ddim_steps=args.ddim_steps)
    else:
        report = _evaluate_dataset(cascade, args, inputs)
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


def _evaluate_dataset(cascade, args: argparse.Namespace, samples) -> dict:
    """Official-protocol scores on FreiHAND (evaluation) or HO3Dv2 (train, which has 3D labels);
    samples: open_inputs' dataset."""
    import numpy as np

    from handviz.eval.real_eval import evaluate_on_samples
    from handviz.pipeline.detector import HandDetector

    dataset = "freihand" if args.freihand else "ho3d"
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
