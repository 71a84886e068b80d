"""`handviz`: the app by default, and the subcommands listed in handviz.commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable
from typing import NoReturn

from handviz import __version__
from handviz.commands import COMMAND_MODULES
from handviz.logs import EXIT_INPUT_ERROR, log_command_line, report_error, setup_logging
from handviz.native_noise import quiet_native_stderr


class HandvizParser(argparse.ArgumentParser):
    """argparse with a bad option value (`--hypotheses abc`, a choice not offered, a `type=` that
    refuses) reported as handviz.commands.checks reports the values it checks: one line naming the
    option, exit status 2, no usage block. Usage mistakes (an unknown option, a missing argument)
    keep argparse's usage, which is then the help the user needs. Subcommand parsers inherit this
    class (add_subparsers makes them of the parent's type)."""

    _bad_value = False

    def _get_value(self, action: argparse.Action, arg_string: str) -> object:
        try:
            return super()._get_value(action, arg_string)
        except argparse.ArgumentError:
            self._bad_value = True
            raise

    def _check_value(self, action: argparse.Action, value: object) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError:
            self._bad_value = True
            raise

    def error(self, message: str) -> NoReturn:
        if self._bad_value:
            self.exit(EXIT_INPUT_ERROR, f"handviz: error: {message.removeprefix('argument ')}\n")
        super().error(message)


def add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """--debug and --weights, on the top-level parser and again on every subcommand, so
    `handviz --debug predict ...` and `handviz predict ... --debug` both work. A subcommand's
    copy defaults to SUPPRESS: it sets the value only when given there, never resets it."""
    parser.add_argument("--debug", action="store_true",
                        default=argparse.SUPPRESS if in_subcommand else False,
                        help="verbose logs, native library messages and full tracebacks")
    parser.add_argument(
        "--weights", metavar="DIR", default=argparse.SUPPRESS if in_subcommand else None,
        help="model weights folder (default: $HANDVIZ_WEIGHTS, else the shipped weights/)",
    )


def _subcommand_parsers(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    """Every parser below `parser` (subcommands and their own actions, e.g. `data synth`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                yield child
                yield from _subcommand_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = HandvizParser(
        prog="handviz",
        description="Live probabilistic 3D hand mesh from a webcam. With no subcommand, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"handviz {__version__}")
    add_global_options(parser, in_subcommand=False)
    parser.add_argument(
        "--source", default=None,
        help="app source: camera index (0), a video file or an image folder (default: camera 0, "
        "or the bundled demo when no camera is present)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"handviz.commands.{name}").register(sub)
    for child in _subcommand_parsers(parser):
        add_global_options(child, in_subcommand=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors and bad values: exit 2
    setup_logging(args.debug, command=args.command or "app")
    log_command_line(sys.argv[1:] if argv is None else argv)
    with quiet_native_stderr(enabled=not args.debug):
        try:
            if args.command is None:
                from handviz.commands.app import run as run_app

                return run_app(args)
            return int(args.func(args) or 0)
        except (Exception, KeyboardInterrupt) as exc:
            return report_error(exc, args.debug)  # 2 for input errors, 130 for Ctrl+C, else 1


if __name__ == "__main__":
    sys.exit(main())
