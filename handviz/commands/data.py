"""`handviz data synth|preview|fit-noise|import|real-folder`: make, import, convert and inspect data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make, import and inspect training data",
                       description="Synthetic data: render the open hand, run MediaPipe on the render, "
                       "store MediaPipe's output with the exact 3D truth.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="make N samples as shards in DIR (resumable)")
    s.add_argument("--n", type=int, required=True, help="number of samples")
    s.add_argument("--out", type=Path, required=True, help="output folder (shard_*.npz)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--mode", choices=["render", "keypoints"], default="render",
                   help="render: render + MediaPipe (slow, real errors); keypoints: projection + the "
                   "fitted MediaPipe noise model (fast, for pre-training)")
    s.add_argument("--shard-size", type=int, default=200)
    s.add_argument("--json", action="store_true", help="print run statistics as JSON")
    v = dsub.add_parser("preview", help="contact sheet of renders with MediaPipe and truth drawn")
    v.add_argument("--n", type=int, default=16)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", type=Path, default=Path("preview.png"))
    f = dsub.add_parser("fit-noise", help="fit the keypoint-only mode's MediaPipe noise model")
    f.add_argument("data", type=Path, help="folder of render-mode shards")
    f.add_argument("--out", type=Path, default=None, help="default: assets/data/mediapipe_noise.npz")
    f.add_argument("--shards", type=int, default=None, help="fit on the first K shards only")
    r = dsub.add_parser("real-folder", help="convert real photos with 3D truth into the `eval --real` format",
                        description="Writes OUT/labels.jsonl, OUT/images/ and OUT/SOURCE.md (see "
                        "handviz.data.real_folder). For evaluation only: keep research-licensed data out "
                        "of the repository and out of training.")
    r.add_argument("--hands3d", type=Path, required=True, metavar="DIR",
                   help="the InterHand2.6M/RHD samples folder (shared/data/hands3d)")
    r.add_argument("--real-only", action="store_true", help="leave out RHD (rendered, not photographed)")
    r.add_argument("--out", type=Path, required=True)
    from handviz.data.real_to_shards import register_import

    register_import(dsub)
    p.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Every value checked before any work (InputError: exit 2)."""
    from handviz.commands.checks import check_at_least
    from handviz.logs import InputError

    for option in ("n", "workers", "shard_size", "shards", "limit"):
        check_at_least("--" + option.replace("_", "-"), getattr(args, option, None), 1)
    if args.data_command == "fit-noise":
        if not args.data.is_dir():
            raise InputError(f"{args.data}: no such folder")
        if not any(args.data.glob("*.npz")):
            raise InputError(f"{args.data}: holds no shard files (*.npz); make some with `handviz data synth`")


def run(args: argparse.Namespace) -> int:
    check_options(args)
    if args.data_command == "import":
        from handviz.data.real_to_shards import run_import

        return run_import(args)
    if args.data_command == "real-folder":
        from handviz.data.real_folder import write_real_folder
        from handviz.eval.hands3d import load_interhand, load_rhd

        samples = load_interhand(args.hands3d) + ([] if args.real_only else load_rhd(args.hands3d))
        note = (f"Converted by `handviz data real-folder` from {args.hands3d}: InterHand2.6M test photos "
                "(CC-BY-NC 4.0)" + ("" if args.real_only else " and RHD renders (research use)") +
                ", via mmpose's test data. Research licences: evaluate only; never commit, never train on it.")
        write_real_folder(samples, args.out, note)
        print(f"wrote {len(samples)} labelled hands to {args.out}")
        return 0
    if args.data_command == "synth":
        from handviz.data.synth import SynthConfig, synthesize

        cfg = SynthConfig(mode=args.mode, shard_size=args.shard_size)
        stats = synthesize(args.n, args.out, workers=args.workers, seed=args.seed, cfg=cfg)
        if args.json:
            print(json.dumps(stats))
        else:
            print(f"{stats['samples']} new samples in {args.out} ({stats['skipped_existing']} already there), "
                  f"{stats['samples_per_s']:.1f} samples/s, MediaPipe detected "
                  f"{100 * stats['detection_rate']:.1f}%")
        return 0
    if args.data_command == "preview":
        from handviz.data.preview import contact_sheet

        stats = contact_sheet(args.n, args.seed, args.out)
        print(f"wrote {args.out}: {stats['detected']}/{stats['n']} detected by MediaPipe")
        return 0
    from handviz.data.noise_model import fit_noise_model, noise_model_path
    from handviz.data.shards import load_shards

    d = load_shards(args.data, ["kp2d", "kp2d_gt", "detected", "mp_right"], max_shards=args.shards)
    keep = d["detected"] & d["mp_right"]
    model = fit_noise_model(d["kp2d"][keep], d["kp2d_gt"][keep])
    out = args.out or noise_model_path()
    model.save(out)
    print(f"fitted on {model.n_fit} samples -> {out}")
    return 0
