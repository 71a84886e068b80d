"""Defect 6: the app's export dialog offers OBJ, PLY and GLB, and a typed suffix is obeyed."""

from pathlib import Path

import pytest

from handviz.app.export_formats import EXPORT_FILTERS, export_filter_string, resolve_export_path
from handviz.io.export import FORMATS


def test_dialog_offers_every_writer_format():
    assert [f.split("*.")[1].rstrip(")") for f in export_filter_string().split(";;")] == list(FORMATS)


@pytest.mark.parametrize("typed,chosen,expected", [
    ("x.glb", EXPORT_FILTERS["obj"], ("x.glb", "glb")),  # the typed suffix wins over the filter
    ("x.PLY", EXPORT_FILTERS["obj"], ("x.PLY", "ply")),
    ("x", EXPORT_FILTERS["glb"], ("x.glb", "glb")),  # no suffix: the chosen filter's format
    ("x.frame", EXPORT_FILTERS["ply"], ("x.ply", "ply")),
    ("x", "", ("x.obj", "obj")),
])
def test_format_follows_typed_suffix_then_filter(typed, chosen, expected):
    path, fmt = resolve_export_path(Path("/out") / typed, chosen)
    assert (path.name, fmt) == expected
