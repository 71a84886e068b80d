"""Which mesh format a Save dialog's answer means: the suffix the user typed wins, else the
filter they chose (so typing `x.glb` under the OBJ filter writes GLB, never a silent x.obj)."""

from __future__ import annotations

from pathlib import Path

from handviz.io.export import FORMATS

#: Save-dialog filters, one per format handviz.io.export writes (in FORMATS order).
EXPORT_FILTERS: dict[str, str] = {
    "obj": "Wavefront OBJ (*.obj)",
    "ply": "Stanford PLY (*.ply)",
    "glb": "glTF binary (*.glb)",
}
assert tuple(EXPORT_FILTERS) == FORMATS, "a format without a dialog filter"


def export_filter_string() -> str:
    """The `filter` argument of QFileDialog.getSaveFileName."""
    return ";;".join(EXPORT_FILTERS.values())


def resolve_export_path(path: str | Path, selected_filter: str = "") -> tuple[Path, str]:
    """(path to write, format). A known suffix decides; else the selected filter's format is used
    and its suffix appended (no filter: OBJ)."""
    path = Path(path)
    typed = path.suffix.lower().lstrip(".")
    if typed in EXPORT_FILTERS:
        return path, typed
    fmt = next((f for f, text in EXPORT_FILTERS.items() if text == selected_filter), "obj")
    return path.with_name(path.name + f".{fmt}") if path.suffix == "" else path.with_suffix(f".{fmt}"), fmt
