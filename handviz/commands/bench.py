"""`handviz bench`: cascade latency (N=1/8/32/64) and pipeline throughput vs MediaPipe alone;
`--app` adds the real window (frames displayed, capture->display latency); `--soak N` runs the
full pipeline with recording for N frames and reports crashes, memory growth and the stop."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

#: --window's bounds (pixels): below this the docks crowd the views out; above, no screen has it.
WINDOW_MIN = (320, 240)
WINDOW_MAX = (7680, 4320)


def window_size(text: str) -> tuple[int, int]:
    """argparse type of --window: "WIDTHxHEIGHT" (e.g. 1280x720) -> (width, height) in pixels."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT in pixels, e.g. 1280x720, got {text!r}")
    size = (int(match.group(1)), int(match.group(2)))
    if not all(low <= v <= high for v, low, high in zip(size, WINDOW_MIN, WINDOW_MAX)):
        raise argparse.ArgumentTypeError(f"must be within {WINDOW_MIN[0]}x{WINDOW_MIN[1]}.."
                                         f"{WINDOW_MAX[0]}x{WINDOW_MAX[1]}, got {text}")
    return size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure cascade latency, pipeline and app throughput, or soak the app",
                       description="Cascade latency per hand at N=1/8/32/64 hypotheses (median/p90 ms, "
                       "CPU and CUDA when present), and detect+cascade frames/s against MediaPipe alone "
                       "on the bundled demo clip, measured in one run. --app adds the main window "
                       "(needs an X display: xvfb-run -a handviz bench --app); --soak N runs only the "
                       "long soak (full pipeline, recording on) and reports memory and the stop.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--frames", type=int, default=150, help="clip frames for the pipeline measurement")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for the cascade (default 1, as the app uses)")
    p.add_argument("--app", action="store_true",
                   help="also open the main window on the demo and count frames displayed in the viewport")
    p.add_argument("--seconds", type=float, default=20.0, metavar="S",
                   help="length of the --app measurement, after the model loaded and a warm-up (default 20)")
    p.add_argument("--app-source", default="demo", metavar="SPEC",
                   help="what the window plays for --app (default: the bundled demo, at its 30 fps)")
    p.add_argument("--window", type=window_size, default=None, metavar="WxH",
                   help="--app: the window's size in pixels, e.g. 1280x720 (default: the app's first-start "
                   "size for the screen); the report gives the size the window really had")
    p.add_argument("--soak", type=int, default=None, metavar="N",
                   help="instead: run the full pipeline with recording for N frames (e.g. 10000)")
    p.add_argument("--video", default=None, metavar="PATH",
                   help="looping video for --soak (default: the demo photos written as a clip)")
    p.add_argument("--keep-session", default=None, metavar="DIR",
                   help="--soak: record into DIR and keep it (default: a temp folder, removed)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    from handviz.logs import InputError

    from handviz.commands.checks import check_at_least, check_positive

    for name, value in (("--repeats", args.repeats), ("--frames", args.frames), ("--soak", args.soak),
                        ("--threads", args.threads)):
        check_at_least(name, value, 1)
    check_positive("--seconds", args.seconds)
    if args.window is not None and not args.app:
        raise InputError("--window sets the size of the --app window; add --app")
    if args.video is not None and not Path(args.video).is_file():
        raise InputError(f"--video {args.video}: no such file")


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.soak is not None:
        return _run_soak(args)
    import torch

    from handviz.bench.cascade_bench import bench_cascade, bench_pipeline, demo_frames
    from handviz.bench.pipeline_bench import WARMUP_RESULTS, bench_threaded_pipeline
    from handviz.limits import HYPOTHESES_DEFAULT
    from handviz.pipeline.inference import cascade_backend
    from handviz.cascade import Cascade

    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = Cascade.from_weights(args.weights, device="cpu", cpu_threads=args.threads or 1)
    report = {"device": "cpu", "torch_threads": torch.get_num_threads(),
              "cascade_ms": bench_cascade(cpu, repeats=args.repeats)}
    if torch.cuda.is_available():
        gpu = Cascade.from_weights(args.weights, device="cuda", cpu_threads=args.threads or 1)
        report["device"] = "cuda"
        report["cascade_ms_cuda"] = bench_cascade(gpu, repeats=args.repeats)
        report["cascade_ms_cpu"] = report["cascade_ms"]
        report["cascade_ms"] = report["cascade_ms_cuda"]
    best = Cascade.from_weights(args.weights, cpu_threads=args.threads or 1)
    report["pipeline"] = bench_pipeline(best, n_frames=args.frames)
    report["threaded_pipeline"] = bench_threaded_pipeline(
        cascade_backend(best), demo_frames(args.frames + WARMUP_RESULTS), HYPOTHESES_DEFAULT)
    import resource

    # ru_maxrss is in KiB on Linux: the whole process (torch, MediaPipe, the models, the clip).
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.app:
        report["app"] = _app_report(args)
    if args.json:
        print(json.dumps(report))
    else:
        for n, s in report["cascade_ms"].items():
            print(f"cascade N={n:>2}: median {s['median']:.2f} ms, p90 {s['p90']:.2f} ms")
        p = report["pipeline"]
        print(f"pipeline, one thread (detect, then predict): {p['fps']:.1f} fps with the cascade, "
              f"{p['mediapipe_only_fps']:.1f} fps MediaPipe alone (ratio {p['ratio']:.2f})")
        t = report["threaded_pipeline"]
        print(f"pipeline, the app's threads (as live and in `record`): {t['fps']:.1f} fps with the cascade, "
              f"{t['mediapipe_only_fps']:.1f} fps with MediaPipe's 3D only (ratio {t['ratio']:.2f})")
        if "app" in report:
            _print_app(report["app"])
    return 0


def _app_report(args: argparse.Namespace) -> dict:
    """The "app" section: the measurement, or {"skipped": why} when there is no display."""
    from handviz.bench.app_bench import NO_DISPLAY_NOTE, bench_app, display_available
    from handviz.commands.app import cascade_backend_factory

    if not display_available():
        print(f"handviz bench: skipping the app measurement: {NO_DISPLAY_NOTE}", file=sys.stderr)
        return {"skipped": NO_DISPLAY_NOTE}
    result = bench_app(cascade_backend_factory(args.weights), seconds=args.seconds, source=args.app_source,
                       window_size=args.window)
    return result.as_json()


def _print_app(a: dict) -> None:
    """The app figures in one paragraph, which names the window (and viewport) they came from."""
    if "skipped" in a:
        print(f"app: skipped ({a['skipped']})")
        return
    hands = ", ".join(f"{k} hand(s) {v:.1f} fps" for k, v in a["fps_by_hands"].items())
    print(f"app: {a['fps']:.1f} fps displayed ({hands}; the status bar said {a['status_bar_fps']:.1f} fps, "
          f"{a['status_bar_latency_ms']:.0f} ms), MediaPipe alone {a['mediapipe_only_fps']:.1f} fps "
          f"(ratio {a['ratio']:.2f}); capture->display median {a['latency_ms']['median']:.0f} ms, "
          f"p90 {a['latency_ms']['p90']:.0f} ms; longest gap {a['longest_gap_ms']:.0f} ms; "
          f"dropped {a['dropped']} of {a['captured']} captured "
          f"[{a['backend']}, N={a['hypotheses']}, {a['source']} at {a['source_fps']} fps, "
          f"window {_size(a['window_px'])}, viewport {_size(a['viewport_px'])}{_rendered(a)}, load {a['loadavg_1m']}]")
    if a.get("stage_ms"):  # where the latency goes
        print("app pipeline, median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in a["stage_ms"].items()))


def _size(pixels: list[int]) -> str:
    return f"{pixels[0]}x{pixels[1]}"


def _rendered(a: dict) -> str:
    """' rendered at WxH' where the 3D view was rendered smaller than it is shown, else ''."""
    render = a.get("render_px")
    return f" rendered at {_size(render)}" if render and list(render) != list(a["viewport_px"]) else ""


def _run_soak(args: argparse.Namespace) -> int:
    from handviz.bench.soak import MAX_GROWTH_MB, run_soak
    from handviz.commands.app import cascade_backend_factory

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    report = run_soak(args.soak, cascade_backend_factory(args.weights), video=args.video,
                      workdir=args.keep_session, keep_session=args.keep_session is not None,
                      progress=progress)
    soak = report.as_json(with_samples=args.json)
    if args.json:
        print(json.dumps({"soak": soak}))
    else:
        print(f"soak: {report.frames_processed}/{report.frames_requested} frames in {report.duration_s:.0f} s "
              f"({report.viewport}; {report.backend}); errors {report.errors}, crashed {report.crashed}")
        print(f"memory: {report.rss_warmup_mb:.0f} MB after {report.warmup_frames} warm-up frames -> "
              f"{report.rss_end_mb:.0f} MB at the end: growth {report.growth_mb:+.1f} MB "
              f"(bar {MAX_GROWTH_MB:.0f} MB; slope {report.growth_slope_mb_per_1k:+.2f} MB per 1000 frames)")
        print(f"stop: clean {report.stopped_cleanly} in {report.stop_s:.2f} s, threads left "
              f"{report.threads_left or 'none'}; session {report.session_frames} frames "
              f"({report.session_mb:.0f} MB, complete {report.session_complete})")
        print("OK" if report.ok else "FAILED: " + "; ".join(report.error_messages or ["see the figures above"]))
    return 0 if report.ok else 1
