"""`handviz bench`: cascade latency (N=1/8/32/64) and pipeline throughput vs MediaPipe alone."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure cascade latency and pipeline throughput",
                       description="Cascade latency per hand at N=1/8/32/64 hypotheses (median/p90 ms, "
                       "CPU and CUDA when present), and detect+cascade frames/s against MediaPipe alone "
                       "on the bundled demo clip, measured in one run.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--frames", type=int, default=150, help="clip frames for the pipeline measurement")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from handviz.bench.cascade_bench import bench_cascade, bench_pipeline
    from handviz.cascade import Cascade

    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = Cascade.from_weights(args.weights, device="cpu")
    report = {"device": "cpu", "torch_threads": torch.get_num_threads(),
              "cascade_ms": bench_cascade(cpu, repeats=args.repeats)}
    if torch.cuda.is_available():
        gpu = Cascade.from_weights(args.weights, device="cuda")
        report["device"] = "cuda"
        report["cascade_ms_cuda"] = bench_cascade(gpu, repeats=args.repeats)
        report["cascade_ms_cpu"] = report["cascade_ms"]
        report["cascade_ms"] = report["cascade_ms_cuda"]
    best = Cascade.from_weights(args.weights)
    report["pipeline"] = bench_pipeline(best, n_frames=args.frames)
    if args.json:
        print(json.dumps(report))
    else:
        for n, s in report["cascade_ms"].items():
            print(f"cascade N={n:>2}: median {s['median']:.2f} ms, p90 {s['p90']:.2f} ms")
        p = report["pipeline"]
        print(f"pipeline: {p['fps']:.1f} fps with the cascade, {p['mediapipe_only_fps']:.1f} fps MediaPipe "
              f"alone (ratio {p['ratio']:.2f})")
    return 0
