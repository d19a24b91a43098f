"""The compile job end to end: load → optimize → quantize → plan memory → generate C."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyconv import codegen, memory, reference
from tinyconv.errors import DataError
from tinyconv.ir import Graph
from tinyconv.quantize import quantize_graph
from tinyconv.specialise import DEFAULT_LEVEL, Options, check_level
from tinyconv.targets import get_target


@dataclass
class Compiled:
    float_graph: Graph | None
    graph: Graph  # int8, prepared
    plan: memory.Plan
    library: codegen.GeneratedLibrary | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def load_model(path) -> Graph:
    """A float graph (ONNX) or an already-quantized graph (QDQ ONNX, int8 .tflite)."""
    from tinyconv.frontend import load

    return load(Path(path))


def load_calibration(path_or_array, graph: Graph) -> np.ndarray:
    """Calibration data in the ONNX layout [N, *input shape without batch] → IR layout float32."""
    if isinstance(path_or_array, (str, Path)):
        try:
            arr = np.load(path_or_array, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read calibration data '{path_or_array}': {e}") from None
    else:
        arr = np.asarray(path_or_array)
    (inp,) = graph.inputs
    lay = graph.io_layout.get(inp)
    want = tuple(lay.onnx_shape[1:]) if lay else graph.tensors[inp].shape[1:]
    if arr.ndim == len(want):
        arr = arr[None]
    if tuple(arr.shape[1:]) != tuple(want):
        raise DataError(
            f"calibration data has shape {list(arr.shape)}, the model input '{inp}' needs [N, {', '.join(map(str, want))}]"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"calibration data must be float (got {arr.dtype})")
    if lay and lay.onnx_shape and lay.onnx_shape[0] != 1:  # one sample per run: a fixed batch > 1 has no [N, ...] form
        raise DataError(f"the model input '{inp}' has a fixed batch of {lay.onnx_shape[0]} (shape {list(lay.onnx_shape)})",
                        hint="export the model with batch 1 or a symbolic batch")  # fmt: skip
    return reference.onnx_in(graph, arr.astype(np.float32))


def compile_model(
    model,
    *,
    calib=None,
    target: str = "host",
    outdir: Path | None = None,
    method: str = "minmax",
    prefix: str = "tc_model",
    progress=None,
    arena: str = "static",
    weights: str = "c",
    optimize: str = DEFAULT_LEVEL,
    flash_bytes: int | None = None,
) -> Compiled:
    """optimize: speed | balanced | size (tinyconv/specialise.py); flash_bytes: the device's flash,
    which bounds the extra flash the faster kernel variants may take."""
    t0 = time.perf_counter()
    g = model if isinstance(model, Graph) else load_model(model)
    float_graph = None
    if not g.is_quantized():
        if calib is None and not g.given_quant:
            raise DataError("this is a float model: give calibration inputs with --calib X.npy")
        float_graph = g
        g = quantize_graph(g, load_calibration(calib, g) if calib is not None else None, method, progress=progress)
    plan = memory.plan_memory(g)
    lib = None
    if outdir is not None:
        lib = codegen.generate(g, plan, get_target(target), Path(outdir), prefix=prefix, arena=arena, weights=weights,
                               provenance=f"options: target={target} calibration={method} arena={arena} optimize={optimize}",
                               options=Options(check_level(optimize)), flash_bytes=flash_bytes)  # fmt: skip
    return Compiled(float_graph, g, plan, lib, time.perf_counter() - t0, list(g.notes))
