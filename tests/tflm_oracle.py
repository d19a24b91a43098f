"""TensorFlow Lite Micro as the oracle for many random inputs at once (shared by the host and
device oracle tests): the live interpreter's outputs, and tinyconv's NumPy reference run on a
whole batch in one pass."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from tinyconv import reference
from tinyconv.ir import Graph

MODELS = {"kws": "kws_ref_model", "vww": "vww_96_int8", "ic": "pretrainedResnet_quant", "ad": "ad01_int8"}


def model_path(mlperf_dir: Path, task: str) -> Path:
    return mlperf_dir / task / f"{MODELS[task]}.tflite"


def random_int8(shape, n: int, seed: int) -> np.ndarray:
    """n random int8 inputs [n, *shape without batch] covering the whole int8 range."""
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape[1:]), dtype=np.int64).astype(np.int8)


def tflm_outputs(path: Path, xs: np.ndarray) -> np.ndarray:
    """The tflite-micro interpreter's int8 outputs [N, output bytes], one invoke per input."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(path))
    outs = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outs).astype(np.int8)


def _with_batch(graph: Graph, n: int) -> Graph:
    """The same int8 graph with batch n: every op's reference is vectorised over the batch axis,
    so one pass over n inputs costs far less than n single-input passes."""
    g = copy.deepcopy(graph)
    for t in g.tensors.values():
        if not t.is_const and t.shape and t.shape[0] == 1:
            t.shape = (n, *t.shape[1:])
    for node in g.nodes:
        shape = node.attrs.get("shape")
        if shape is not None and len(shape) and shape[0] == 1:
            node.attrs["shape"] = (n, *shape[1:])
    return g


def reference_outputs(graph: Graph, xs: np.ndarray, chunk: int = 250) -> np.ndarray:
    """tinyconv's int8 reference on [N, ...] inputs → [N, output bytes], in chunks that bound memory."""
    (inp,), (out,) = graph.inputs, graph.outputs
    outs = []
    for start in range(0, len(xs), chunk):
        part = xs[start : start + chunk]
        g = _with_batch(graph, len(part))
        outs.append(reference.run(g, {inp: part}, mode="int8")[out].reshape(len(part), -1))
    return np.concatenate(outs).astype(np.int8)


def mismatch_count(got: np.ndarray, want: np.ndarray) -> int:
    """How many inputs have at least one output byte that differs."""
    return int((got.reshape(len(want), -1) != want.reshape(len(want), -1)).any(axis=1).sum())
