"""One module per `handviz` subcommand; each exposes `register(subparsers)`.

A module's `register` adds its parser and sets `func=run` (a callable taking the parsed
namespace and returning an exit code). cli.py only wires them together.
"""

#: Subcommand modules, in the order `handviz --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "predict",
    "record",
    "replay",
    "calibrate",
    "export",
    "train",
    "eval",
    "bench",
    "data",
    "install_desktop",
)
