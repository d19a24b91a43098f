"""pyproject.toml lists the packages explicitly (the data folders are mapped in beside them), so a
new subpackage must be added there or the wheel would miss it."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tinyconv.resources import NAMES

REPO = Path(__file__).resolve().parent.parent.parent


def test_every_python_package_and_data_folder_is_in_the_wheel():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "tinyconv").rglob("__init__.py")}
    listed = set(cfg["packages"])
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    data = {f"tinyconv._data.{n}" for n in NAMES}
    assert data <= listed and all(cfg["package-dir"][d] == d.rsplit(".", 1)[1] for d in data)
    assert set(cfg["package-data"]) >= data
