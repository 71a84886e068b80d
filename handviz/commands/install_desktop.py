"""`handviz install-desktop`: put handviz in this user's application menu (or take it out).

Writes a freedesktop entry and the icon theme files under the user's data folder
($XDG_DATA_HOME, else ~/.local/share), never system-wide, so no root is needed. The entry's Exec
is the absolute path of the launcher that ran this command, so the menu starts the same install
(venv, pipx, PyInstaller folder) even when it is not on the desktop session's PATH.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from handviz.logs import InputError
from handviz.paths import assets_dir

APP_ID = "handviz"
ICON_SIZES: tuple[int, ...] = (16, 32, 48, 64, 128, 256, 512)

_log = logging.getLogger(__name__)

# Characters that force quoting in a desktop entry's Exec key (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")
_EXEC_ESCAPED_IN_QUOTES = set('"`$\\')


@dataclass(frozen=True)
class DesktopLayout:
    """Where each installed file goes below one XDG data folder (e.g. ~/.local/share)."""

    data_dir: Path

    @property
    def desktop_file(self) -> Path:
        return self.data_dir / "applications" / f"{APP_ID}.desktop"

    @property
    def icon_theme_dir(self) -> Path:
        return self.data_dir / "icons" / "hicolor"

    def png_icon(self, size: int) -> Path:
        return self.icon_theme_dir / f"{size}x{size}" / "apps" / f"{APP_ID}.png"

    @property
    def svg_icon(self) -> Path:
        return self.icon_theme_dir / "scalable" / "apps" / f"{APP_ID}.svg"

    def files(self) -> list[Path]:
        return [self.desktop_file, self.svg_icon, *(self.png_icon(s) for s in ICON_SIZES)]


def default_data_dir() -> Path:
    """$XDG_DATA_HOME when set to an absolute path (as the spec asks), else ~/.local/share."""
    env = os.environ.get("XDG_DATA_HOME", "")
    if env and os.path.isabs(env):
        return Path(env)
    return Path.home() / ".local" / "share"


def launcher_argv() -> list[str]:
    """The command that starts this same handviz: frozen app, console script, or `python -m`.

    `shutil.which` is not consulted: it may find another install's launcher on PATH.
    """
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    candidates = [Path(sys.argv[0])] if sys.argv and sys.argv[0] else []
    # `python -m handviz` from a venv: its console script sits beside the interpreter.
    candidates.append(Path(sys.executable).parent / APP_ID)
    for candidate in candidates:
        if candidate.stem == APP_ID and candidate.is_file() and os.access(candidate, os.X_OK):
            return [os.path.abspath(candidate)]
    return [os.path.abspath(sys.executable), "-m", APP_ID]


def _escape_string_value(text: str) -> str:
    """Escape a value of type `string` in a desktop entry (backslash sequences)."""
    if any(c in text for c in "\n\r"):
        raise InputError(f"launcher path {text!r} contains a line break; cannot write a desktop entry")
    return text.replace("\\", "\\\\").replace("\t", "\\t")


def _quote_exec_arg(arg: str) -> str:
    """Quote one Exec argument per the Desktop Entry spec (field codes escaped as %%)."""
    arg = arg.replace("%", "%%")
    if not any(c in _EXEC_RESERVED for c in arg):
        return arg
    return '"' + "".join("\\" + c if c in _EXEC_ESCAPED_IN_QUOTES else c for c in arg) + '"'


def render_desktop_entry(template: str, argv: list[str]) -> str:
    """The template with Exec (and TryExec) pointing at `argv`; other lines kept as written."""
    exec_value = _escape_string_value(" ".join(_quote_exec_arg(a) for a in argv))
    try_exec_value = _escape_string_value(argv[0])
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={exec_value}"
        elif line.startswith("TryExec="):
            line = f"TryExec={try_exec_value}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _source_files() -> tuple[Path, Path, dict[int, Path]]:
    """The shipped template, SVG and PNGs; a clear error when the install lacks them."""
    assets = assets_dir()
    template = assets / "desktop" / f"{APP_ID}.desktop"
    svg = assets / "icons" / f"{APP_ID}.svg"
    pngs = {s: assets / "icons" / f"{APP_ID}-{s}.png" for s in ICON_SIZES}
    absent = [p for p in (template, svg, *pngs.values()) if not p.is_file()]
    if absent:
        raise InputError(f"{absent[0]}: desktop file or icon missing from this handviz install; "
                         "reinstall handviz (or run packaging/render_icons.sh in a checkout)")
    return template, svg, pngs


def _refresh_caches(layout: DesktopLayout) -> None:
    """Ask the desktop to notice the change; best effort, the tools are optional."""
    commands = [
        ["update-desktop-database", "-q", str(layout.desktop_file.parent)],
        ["gtk-update-icon-cache", "-q", "-f", "-t", str(layout.icon_theme_dir)],
    ]
    for cmd in commands:
        if shutil.which(cmd[0]) is None or not Path(cmd[-1]).is_dir():
            continue
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _log.debug("%s failed: %s", cmd[0], exc)
            continue
        if done.returncode != 0:
            _log.debug("%s exited %d: %s", cmd[0], done.returncode, done.stderr.strip())


def install(data_dir: Path, argv: list[str] | None = None, refresh: bool = True) -> list[Path]:
    """Write the desktop entry and icons below `data_dir`; returns the files written."""
    layout = DesktopLayout(Path(data_dir))
    template, svg, pngs = _source_files()
    entry = render_desktop_entry(template.read_text(encoding="utf-8"), argv or launcher_argv())

    layout.desktop_file.parent.mkdir(parents=True, exist_ok=True)
    layout.desktop_file.write_text(entry, encoding="utf-8")
    copies = [(svg, layout.svg_icon), *((pngs[s], layout.png_icon(s)) for s in ICON_SIZES)]
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    if refresh:
        _refresh_caches(layout)
    return layout.files()


def uninstall(data_dir: Path, refresh: bool = True) -> list[Path]:
    """Remove what `install` wrote below `data_dir` (shared folders stay); returns files removed."""
    layout = DesktopLayout(Path(data_dir))
    removed = []
    for path in layout.files():
        if path.is_file():
            path.unlink()
            removed.append(path)
    if refresh:
        _refresh_caches(layout)
    return removed


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "install-desktop",
        help="add handviz to your application menu (user-level)",
        description="Install a desktop entry and icons for the current user, pointing at this "
        "handviz launcher. Nothing is written outside the chosen data folder.",
    )
    parser.add_argument("--uninstall", action="store_true", help="remove the entry and icons again")
    parser.add_argument(
        "--prefix", metavar="DIR", type=Path, default=None,
        help="install below DIR/share instead of $XDG_DATA_HOME (default ~/.local/share)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = args.prefix.expanduser().resolve() / "share" if args.prefix else default_data_dir()
    if args.uninstall:
        removed = uninstall(data_dir)
        if removed:
            print(f"Removed handviz from the application menu ({len(removed)} files below {data_dir}).")
        else:
            print(f"Nothing to remove: no handviz desktop entry below {data_dir}.")
        return 0
    written = install(data_dir)
    print(f"Installed {written[0]} (+{len(written) - 1} icons below {data_dir / 'icons'}).")
    return 0
