"""`handviz train stage1|autoencoder|mesh_ldm|all`: train the cascade's nets into a weights folder.

Data parallel with `torchrun --nproc_per_node=K -m handviz train ...` (gloo on CPU, nccl on GPU);
only rank 0 writes. Each stage writes NAME.safetensors + NAME.json into --out and keeps a
resumable checkpoint in --out/checkpoints/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STAGES = ("stage1", "autoencoder", "mesh_ldm")
#: Per-stage defaults that fit ~10-20 minutes on a 2-core laptop CPU (see the stage modules).
DEFAULT_STEPS = {"stage1": 4000, "autoencoder": 6000, "mesh_ldm": 4000}
DEFAULT_LR = {"stage1": 1e-3, "autoencoder": 1e-3, "mesh_ldm": 1e-3}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train the cascade (stage 1, mesh autoencoder, mesh LDM)",
        description="Train one stage, or all three in order, from shard files (DIR/*.npz made by "
        "`handviz data synth`). Writes NAME.safetensors + NAME.json into --out.",
    )
    p.add_argument("stage", choices=[*STAGES, "all"], help="which nets to train ('all': the three in order)")
    p.add_argument("--data", type=Path, required=True, help="folder of training shards (*.npz)")
    p.add_argument("--val-data", type=Path, default=None,
                   help="folder of validation shards (default: the last training shard is held out)")
    p.add_argument("--out", type=Path, default=Path("weights"), help="weights folder to write (default: weights/)")
    p.add_argument("--models", type=Path, default=None,
                   help="mesh_ldm: folder with stage1.* and mesh_ae.* to build on (default: --out)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per stage (default: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop each stage after this many minutes (the LR schedule follows the clock)")
    p.add_argument("--batch", type=int, default=256, help="batch size per process (default 256)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: per stage)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoints/ when present")
    p.add_argument("--init", type=Path, default=None,
                   help="fine-tune: start from the stage's nets in this weights folder (same sizes), "
                   "e.g. pre-train stage1 on keypoint-only shards, then fine-tune on rendered ones")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda[:K]")
    p.add_argument("--val-every", type=int, default=500, help="validate (and checkpoint) every K steps")
    p.add_argument("--max-samples", type=int, default=None, help="use at most this many training samples")
    p.add_argument("--latent-dim", type=int, default=48, help="autoencoder: mesh latent size (default 48)")
    p.add_argument("--hidden", type=int, default=256, help="denoisers: MLP width (default 256)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--bone-variation", action="store_true",
                   help="stage1: vary bone lengths around the published finger proportions (issue 10)")
    p.add_argument("--observations", type=float, default=0.0, metavar="P",
                   help="stage1: give a share P of rows MediaPipe-like 3D made from the truth with a random "
                   "error size, and the net that size as an input (0: none, the condition has no 3D)")
    p.add_argument("--mediapipe-share", type=float, default=None, metavar="S",
                   help="stage1: draw a share S of every batch from rows MediaPipe labelled on renders "
                   "(default: all rows alike)")
    p.add_argument("--json", action="store_true", help="print the final metrics of each stage as JSON")
    p.set_defaults(func=run)


def stage_config(stage: str, args: argparse.Namespace):
    """The stage's config dataclass filled from the command line."""
    from handviz.train.autoencoder import AutoencoderConfig
    from handviz.train.loop import LoopConfig
    from handviz.train.mesh_ldm import MeshLDMConfig
    from handviz.train.stage1 import Stage1Config

    steps = args.steps or DEFAULT_STEPS[stage]
    loop = LoopConfig(steps=steps, lr=args.lr or DEFAULT_LR[stage], val_every=args.val_every,
                      ckpt_every=args.val_every, time_budget_min=args.minutes)
    common = dict(data=str(args.data), val_data=None if args.val_data is None else str(args.val_data),
                  out=str(args.out), batch=args.batch, seed=args.seed, device=args.device, resume=args.resume,
                  max_samples=args.max_samples, init=None if args.init is None else str(args.init), loop=loop)
    if stage == "stage1":
        return Stage1Config(**common, hidden=args.hidden, bone_variation=args.bone_variation,
                            observation_prob=args.observations, mediapipe_share=args.mediapipe_share)
    if stage == "autoencoder":
        return AutoencoderConfig(**common, latent_dim=args.latent_dim)
    return MeshLDMConfig(**common, hidden=args.hidden, models=None if args.models is None else str(args.models))


def check_options(args: argparse.Namespace) -> None:
    """Every value checked before torch loads or a file is written (InputError: exit 2)."""
    from handviz.commands.checks import check_at_least, check_device, check_positive
    from handviz.logs import InputError

    for option, value in (("--steps", args.steps), ("--batch", args.batch), ("--val-every", args.val_every),
                          ("--max-samples", args.max_samples), ("--latent-dim", args.latent_dim),
                          ("--hidden", args.hidden), ("--threads", args.threads)):
        check_at_least(option, value, 1)
    check_positive("--lr", args.lr)
    if not 0.0 <= args.observations <= 1.0:
        raise InputError(f"--observations {args.observations}: a share of rows, from 0 to 1")
    if args.mediapipe_share is not None and not 0.0 < args.mediapipe_share < 1.0:
        raise InputError(f"--mediapipe-share {args.mediapipe_share}: a share of each batch, between 0 and 1")
    check_positive("--minutes", args.minutes)
    check_device(args.device, allow_auto=True)
    for option, folder in (("--data", args.data), ("--val-data", args.val_data)):
        if folder is None:
            continue
        if not folder.is_dir():
            raise InputError(f"{option} {folder}: no such folder (make shards with `handviz data synth`)")
        if not any(folder.glob("*.npz")):
            raise InputError(f"{option} {folder}: holds no shard files (*.npz); make some with `handviz data synth`")


def run(args: argparse.Namespace) -> int:
    check_options(args)
    import torch

    from handviz.train.autoencoder import train_autoencoder
    from handviz.train.distributed import setup_distributed, teardown
    from handviz.train.mesh_ldm import train_mesh_ldm
    from handviz.train.stage1 import train_stage1

    if args.threads:
        torch.set_num_threads(args.threads)
    train_fns = {"stage1": train_stage1, "autoencoder": train_autoencoder, "mesh_ldm": train_mesh_ldm}
    ctx = setup_distributed(args.device)  # one process group for every stage of `all`
    try:
        for stage in STAGES if args.stage == "all" else (args.stage,):
            metrics = train_fns[stage](stage_config(stage, args))
            if metrics:  # rank 0 only
                if args.json:
                    print(json.dumps({"stage": stage, **metrics}))
                else:
                    shown = ", ".join(f"{k}={v}" for k, v in metrics.items() if not k.startswith("train_"))
                    print(f"{stage}: wrote {args.out}; {shown}")
    finally:
        teardown(ctx)
    return 0
