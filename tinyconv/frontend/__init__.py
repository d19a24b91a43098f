"""Model importers. `load(path)` picks one by file type."""

from __future__ import annotations

from pathlib import Path

from tinyconv.errors import ModelError
from tinyconv.ir import Graph


# IR ops whose generated kernels process one NHWC image (the reference would process a batch).
ONE_IMAGE_OPS = {"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "mean", "global_max_pool", "resize_nearest"}


def refuse_batched_images(graph: Graph) -> None:
    """A batch > 1 reaching a spatial kernel (e.g. made by a Concat on axis 0) would compile into C
    that computes only the first image: refuse it by name instead (fuzz campaign, onnx case 337)."""
    from tinyconv.errors import UnsupportedError

    for node in graph.nodes:
        shape = graph.tensors[node.inputs[0]].shape
        if node.op in ONE_IMAGE_OPS and len(shape) == 4 and shape[0] != 1:
            raise UnsupportedError(f"{node.where()}: a batch of {shape[0]} images is not supported here (the generated kernel processes one)",
                                   hint="keep the batch axis at 1 inside the model", node=node.name)  # fmt: skip


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
