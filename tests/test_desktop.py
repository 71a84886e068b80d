"""`handviz install-desktop`: the entry and icons land in the XDG folders, validate, and go away."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from handviz.cli import main
from handviz.commands import install_desktop
from handviz.commands.install_desktop import (
    ICON_SIZES,
    DesktopLayout,
    install,
    launcher_argv,
    render_desktop_entry,
    uninstall,
)
from handviz.logs import InputError
from handviz.paths import assets_dir

REPO = Path(__file__).resolve().parent.parent
VALIDATOR = shutil.which("desktop-file-validate")
#: A launcher path with characters the Exec key must quote or escape.
AWKWARD_LAUNCHER = ["/opt/My Apps/$HOME/50%/hand\\viz", "-m", "handviz"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def assert_valid_desktop_file(path: Path) -> None:
    """desktop-file-validate accepts it. Only test_desktop_entries_validate calls this, after
    skipping visibly when the validator is missing; the other tests check the structure."""
    done = subprocess.run([VALIDATOR, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stdout.lower(), done.stdout


@pytest.fixture()
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(tmp_path / "logs"))
    return home


def test_shipped_icons_have_their_sizes_and_one_desktop_source() -> None:
    icons = assets_dir() / "icons"
    for size in ICON_SIZES:
        assert png_size(icons / f"handviz-{size}.png") == (size, size)
    assert (icons / "handviz.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    # packaging/handviz.desktop is the same file as the template shipped in the wheel.
    packaged = REPO / "packaging" / "handviz.desktop"
    assert packaged.resolve() == (REPO / "assets" / "desktop" / "handviz.desktop").resolve()


def test_install_then_uninstall_through_the_cli(data_home: Path, capsys) -> None:
    assert main(["install-desktop"]) == 0
    layout = DesktopLayout(data_home)
    for path in layout.files():
        assert path.is_file(), f"{path} was not installed"
    for size in ICON_SIZES:
        assert png_size(layout.png_icon(size)) == (size, size)
    entry = layout.desktop_file.read_text(encoding="utf-8")
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert os.path.isabs(exec_line.removeprefix("Exec=").split()[0].strip('"'))
    assert "Icon=handviz" in entry and "Terminal=false" in entry
    assert str(layout.desktop_file) in capsys.readouterr().out

    assert main(["install-desktop", "--uninstall"]) == 0
    assert not any(path.exists() for path in layout.files())
    assert main(["install-desktop", "--uninstall"]) == 0  # nothing left: still fine
    assert "Nothing to remove" in capsys.readouterr().out


def test_prefix_installs_below_prefix_share(tmp_path: Path, data_home: Path) -> None:
    assert main(["install-desktop", "--prefix", str(tmp_path / "pfx")]) == 0
    assert DesktopLayout(tmp_path / "pfx" / "share").desktop_file.is_file()
    assert not data_home.exists()


def test_install_is_repeatable_and_uninstall_keeps_other_apps(tmp_path: Path) -> None:
    data = tmp_path / "share"
    other_icon = data / "icons" / "hicolor" / "48x48" / "apps" / "other.png"
    other_icon.parent.mkdir(parents=True)
    other_icon.write_bytes(b"not ours")
    argv = ["/opt/hand viz/bin/handviz"]
    first = install(data, argv, refresh=False)
    assert install(data, argv, refresh=False) == first
    assert sorted(uninstall(data, refresh=False)) == sorted(first)
    assert other_icon.read_bytes() == b"not ours"


def test_exec_is_quoted_for_awkward_paths(tmp_path: Path) -> None:
    template = (assets_dir() / "desktop" / "handviz.desktop").read_text(encoding="utf-8")
    entry = render_desktop_entry(template, AWKWARD_LAUNCHER)
    lines = entry.splitlines()
    # Exec quoting doubles '%', escapes '$' and '\' inside quotes, then the string escape
    # doubles every backslash again.
    assert 'Exec="/opt/My Apps/\\\\$HOME/50%%/hand\\\\\\\\viz" -m handviz' in lines
    assert "TryExec=/opt/My Apps/$HOME/50%/hand\\\\viz" in lines
    with pytest.raises(InputError, match="line break"):
        render_desktop_entry(template, ["/bad\npath"])


@pytest.mark.parametrize("which", ["packaged", "installed", "awkward-exec"])
def test_desktop_entries_validate(which: str, tmp_path: Path, data_home: Path, capsys) -> None:
    """The shipped entry, the one install-desktop writes, and one for a launcher path full of
    characters that need quoting pass desktop-file-validate (desktop-file-utils; .ci/run installs it)."""
    if VALIDATOR is None:
        pytest.skip("desktop-file-validate not found (apt-get install desktop-file-utils): the entry's "
                    "structure is checked by the other tests, its validity is not")
    if which == "packaged":
        path = REPO / "packaging" / "handviz.desktop"
    elif which == "installed":
        assert main(["install-desktop"]) == 0
        path = DesktopLayout(data_home).desktop_file
    else:
        template = (assets_dir() / "desktop" / "handviz.desktop").read_text(encoding="utf-8")
        path = tmp_path / "handviz.desktop"
        path.write_text(render_desktop_entry(template, AWKWARD_LAUNCHER), encoding="utf-8")
    assert_valid_desktop_file(path)


def test_launcher_falls_back_to_python_dash_m(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_python = tmp_path / "bin" / "python"
    fake_python.parent.mkdir()
    fake_python.write_text("")
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "handviz" / "__main__.py")])
    monkeypatch.setattr(sys, "executable", str(fake_python))
    assert launcher_argv() == [str(fake_python), "-m", "handviz"]

    script = fake_python.parent / "handviz"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert launcher_argv() == [str(script)]


def test_missing_assets_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install_desktop, "assets_dir", lambda: tmp_path / "empty")
    with pytest.raises(InputError, match="reinstall handviz"):
        install(tmp_path / "share", ["/usr/bin/handviz"], refresh=False)
    assert not (tmp_path / "share").exists()
