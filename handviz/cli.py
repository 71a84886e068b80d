"""`handviz`: the app by default, and the subcommands listed in handviz.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from handviz import __version__
from handviz.commands import COMMAND_MODULES
from handviz.logs import report_error, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handviz",
        description="Live probabilistic 3D hand mesh from a webcam. With no subcommand, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"handviz {__version__}")
    parser.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")
    parser.add_argument(
        "--weights", metavar="DIR", default=None,
        help="model weights folder (default: $HANDVIZ_WEIGHTS, else the shipped weights/)",
    )
    parser.add_argument(
        "--source", default=None,
        help="app source: camera index (0), a video file or an image folder (default: camera 0, "
        "or the bundled demo when no camera is present)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"handviz.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse exits 2
    setup_logging(args.debug)
    try:
        if args.command is None:
            from handviz.commands.app import run as run_app

            return run_app(args)
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        return report_error(exc, args.debug)  # 2 for input errors, 130 for Ctrl+C, else 1


if __name__ == "__main__":
    sys.exit(main())
