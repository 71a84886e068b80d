"""`handviz replay SESSION`: the app, fed from a recorded session (scrub bar, pause, frame step)."""

from __future__ import annotations

import argparse
from pathlib import Path

from handviz.logs import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="open the app on a recorded session",
                       description="Replay a session folder written by `handviz record` or the app's Record "
                       "button: Space pauses, ',' and '.' step one frame, H toggles the hypothesis cloud.")
    p.add_argument("session", type=Path, metavar="SESSION", help="session folder (holds session.sqlite)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from handviz.pipeline.controller import SESSION_MARKER, is_session_folder
    from handviz.commands.app import launch

    path: Path = args.session
    if not path.exists():
        raise InputError(f"{path}: no such session folder (record one with `handviz record` or the app)")
    if path.is_file():
        if path.name == SESSION_MARKER:
            raise InputError(f"{path}: give the session folder, {path.parent}, not the file in it")
        raise InputError(f"{path}: is a file; give a session folder (one that holds {SESSION_MARKER})")
    if not is_session_folder(path):
        raise InputError(f"{path}: not a handviz session (no {SESSION_MARKER} inside)")
    return launch(session=path, weights=args.weights)
