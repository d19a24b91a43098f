"""Where tinyconv's data folders are: codegen_templates/, firmware/, devices/ and examples/.

In the repository they live at the top level (the product card fixes that); the wheel and the sdist
carry them inside the package as tinyconv/_data/<name> (mapped at build time, see pyproject.toml).
Everything that reads them asks `data_dir` so installed and editable copies behave the same.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from tinyconv.errors import TinyconvError

NAMES = ("codegen_templates", "firmware", "devices", "examples")


@cache
def _roots() -> tuple[Path, ...]:
    package = Path(str(resources.files("tinyconv")))
    roots = [package / "_data"]  # installed from the wheel or sdist
    if (package.parent / "pyproject.toml").is_file():  # editable install or source checkout
        roots.append(package.parent)
    return tuple(roots)


def data_dir(name: str) -> Path:
    """The folder `name` (one of NAMES) of this tinyconv installation."""
    if name not in NAMES:
        raise ValueError(f"unknown data folder {name!r}")
    for root in _roots():
        if (root / name).is_dir():
            return root / name
    raise TinyconvError(f"this tinyconv installation has no {name}/ folder (looked in {', '.join(map(str, _roots()))})",
                        hint="reinstall tinyconv from its wheel or source distribution")  # fmt: skip
