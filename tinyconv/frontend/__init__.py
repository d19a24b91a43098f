"""Model importers. `load(path)` picks one by file type."""

from __future__ import annotations

from pathlib import Path

from tinyconv.errors import ModelError
from tinyconv.ir import Graph


def load(path: Path) -> Graph:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file '{path}' does not exist")
    if not path.is_file():
        raise ModelError(f"model '{path}' is not a regular file", hint="give an .onnx or .tflite file")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from tinyconv.frontend.tflite import load_tflite

        return load_tflite(path)
    if suffix == ".onnx":
        from tinyconv.frontend.onnx import load_onnx

        return load_onnx(path)
    raise ModelError(f"'{path.name}': unknown model type '{suffix}'", hint="give an .onnx or .tflite file")
