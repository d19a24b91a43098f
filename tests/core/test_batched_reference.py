"""The batched reference (whole batch per op, im2col matrix products, separable pooling) gives
exactly the integers of the per-sample, per-tap reference it replaced: random graphs, the MLPerf
Tiny models, chunked im2col and huge pooling windows."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import tinyconv.ops.conv as conv_ops
from ir_graphs import GraphBuilder, every_op_graph
from random_onnx import random_cnn, random_cnn1d
from reference_per_tap import per_sample_per_tap
from tinyconv import reference
from tinyconv.frontend.onnx import load_onnx
from tinyconv.pipeline import compile_model

EXAMPLES = int(os.environ.get("TINYCONV_PROPERTY_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def int8_batch(graph, n: int, seed: int = 0) -> np.ndarray:
    shape = graph.tensors[graph.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n, *shape)).astype(np.int8)


def assert_same_bytes(graph, xq) -> None:
    want = per_sample_per_tap(graph, xq)
    got = reference.run_batch(graph, xq)
    assert got.dtype == want.dtype == np.int8 and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), f"{int(np.count_nonzero(got != want))} of {want.size} bytes differ"


def check_random(model, in_shape):
    g = load_onnx(model)
    calib = np.random.default_rng(1).normal(0, 1, (6, *in_shape)).astype(np.float32)
    c = compile_model(g, calib=calib)
    assert_same_bytes(c.graph, int8_batch(c.graph, 6))
    fin = reference.onnx_in(g, calib)
    np.testing.assert_allclose(reference.run_batch(g, fin, mode="float"), per_sample_per_tap(g, fin, mode="float"), rtol=1e-5, atol=1e-5)


@settings(SETTINGS)
@given(case=random_cnn())
def test_batched_reference_equals_per_sample_on_random_graphs(case):
    check_random(*case)


@settings(SETTINGS, max_examples=max(10, EXAMPLES // 4))
@given(case=random_cnn1d())
def test_batched_reference_equals_per_sample_on_random_1d_graphs(case):
    check_random(*case)


def test_every_op_graph_takes_the_batched_path_and_matches():
    g = every_op_graph()
    c = compile_model(g, calib=np.random.default_rng(0).normal(0, 1, (8, *g.tensors["x"].shape[1:])).astype(np.float32))
    assert reference.batch_axis_kept(c.graph)
    assert_same_bytes(c.graph, int8_batch(c.graph, 9))


def test_graph_that_moves_the_batch_axis_runs_per_sample():
    b = GraphBuilder("batch_moved", (1, 4, 3, 2))
    t = b.node("t", "transpose", ["x"], perm=(1, 0, 2, 3))
    g = b.finish(b.node("r", "reshape", [t], shape=(4, 6)))
    c = compile_model(g, calib=np.random.default_rng(0).normal(0, 1, (4, 4, 3, 2)).astype(np.float32))
    assert not reference.batch_axis_kept(c.graph)
    assert_same_bytes(c.graph, int8_batch(c.graph, 3))


@pytest.mark.parametrize("keep", [0, 1, 3, 9, 12])
def test_run_batch_keeping_gives_run_batch_outputs_and_the_kept_tensors(keep):
    """The check's one reference run for outputs and the layer report (reference.run_batch_keeping)."""
    g = every_op_graph()
    c = compile_model(g, calib=np.random.default_rng(0).normal(0, 1, (8, *g.tensors["x"].shape[1:])).astype(np.float32))
    xq = int8_batch(c.graph, 9)
    out, kept = reference.run_batch_keeping(c.graph, xq, keep)
    assert out.dtype == np.int8 and out.tobytes() == reference.run_batch(c.graph, xq).tobytes()
    want = reference.run_batch_tensors(c.graph, xq[:keep], mode="int8") if keep else {}
    assert kept.keys() == want.keys() and all(kept[k].tobytes() == want[k].tobytes() for k in want)
    fx = np.random.default_rng(2).normal(0, 1, (9, *g.tensors["x"].shape[1:])).astype(np.float32)
    fout, fkept = reference.run_batch_keeping(c.float_graph, fx, keep, mode="float")
    np.testing.assert_allclose(fout, reference.run_batch(c.float_graph, fx, mode="float"), rtol=1e-6, atol=1e-6)
    assert len(fkept) == (len(reference.run_batch_tensors(c.float_graph, fx[:1])) if keep else 0)


def test_im2col_and_batch_in_chunks_give_the_same_bytes(monkeypatch):
    """A chunk budget of one output position per im2col block and two samples per batched run:
    every chunking loop runs."""
    g = every_op_graph(seed=3)
    c = compile_model(g, calib=np.random.default_rng(0).normal(0, 1, (8, *g.tensors["x"].shape[1:])).astype(np.float32))
    xq = int8_batch(c.graph, 5)
    want = per_sample_per_tap(c.graph, xq)
    monkeypatch.setattr(conv_ops, "CHUNK_BYTES", 1)
    largest = max(t.size for t in c.graph.tensors.values() if not t.is_const)
    monkeypatch.setattr(reference, "BATCH_BYTES", 8 * largest * 2)
    assert reference.samples_per_run(c.graph) == 2
    assert reference.run_batch(c.graph, xq).tobytes() == want.tobytes()


def test_long_reductions_split_into_exact_float32_spans():
    """3x3x256 = 2304 products per output: more than float32 sums exactly at full int8 range, so
    the int8 path adds several float32 spans in float64; the bytes stay those of float64."""
    rng = np.random.default_rng(5)
    b = GraphBuilder("long_k", (1, 6, 6, 256))
    g = b.finish(b.node("c", "conv2d", ["x", b.const("w", rng.normal(size=(8, 3, 3, 256)))], strides=(1, 1), dilations=(1, 1),
                        pads=(0, 0, 0, 0), groups=1, act=None))  # fmt: skip
    c = compile_model(g, calib=rng.normal(0, 1, (8, 6, 6, 256)).astype(np.float32))
    xq = int8_batch(c.graph, 4)
    node = c.graph.nodes[0]
    w = c.graph.tensors[node.inputs[1]].data
    assert conv_ops.exact_float32_span(xq.astype(np.int64) + node.qattrs["input_offset"], w) < w[0].size
    assert_same_bytes(c.graph, xq)


def test_integer_accumulation_is_exact_at_the_worst_case():
    """Accumulators far beyond 2^24 (every input 255, weights 100..127, 2304 products): the int8
    path's sums equal the exact integer sums, where one float32 product over the whole reduction
    does not."""
    rng = np.random.default_rng(0)
    x = np.full((2, 5, 5, 256), 255, np.int64)
    w = rng.integers(100, 128, (6, 3, 3, 256)).astype(np.int8)
    exact = np.einsum("nhwc,ohwc->no", x[:, :3, :3].astype(object), w.astype(object))  # Python integers
    got = conv_ops.conv_accumulate(x, w, (1, 1), (1, 1), (0, 0, 0, 0), 1, integer=True)
    assert np.array_equal(got[:, 0, 0].astype(np.int64), exact.astype(np.int64))
    one_span = x[:, :3, :3].reshape(2, -1).astype(np.float32) @ w.reshape(6, -1).astype(np.float32).T
    assert not np.array_equal(one_span.astype(np.int64), exact.astype(np.int64))  # the test has teeth


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_huge_pooling_windows_are_exact(count_include_pad):
    """A 1-D average pool 3000 wide and a 2-D max pool 40x40: the per-tap reference loops over
    every tap; the separable one reduces sliding-window views (seconds, not minutes, on 16 inputs)."""
    b = GraphBuilder("huge_pools", (1, 1, 6000, 3))
    ap = b.node("ap", "avg_pool2d", ["x"], kernel=(1, 3000), strides=(1, 7), pads=(0, 1000, 0, 999), count_include_pad=count_include_pad)
    r = b.node("r", "reshape", [ap], shape=(1, 33, 65, 1))
    mp = b.node("mp", "max_pool2d", [r], kernel=(9, 40), strides=(1, 1), pads=(4, 20, 4, 19))
    g = b.finish(mp)
    c = compile_model(g, calib=np.random.default_rng(0).normal(0, 1, (4, 1, 6000, 3)).astype(np.float32))
    assert reference.batch_axis_kept(c.graph)
    assert_same_bytes(c.graph, int8_batch(c.graph, 16))


MLPERF = [("kws", "kws_ref_model.tflite", None), ("vww", "vww_96_int8.tflite", None), ("ic", "pretrainedResnet_quant.tflite", None),
          ("ad", "ad01_int8.tflite", None), ("kws", "kws_float.onnx", "calib_kws.npy"), ("vww", "vww_qdq.onnx", None),
          ("ic", "ic_float.onnx", "calib_ic.npy"), ("ad", "ad_float.onnx", "calib_ad.npy")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("task,model,calib", MLPERF, ids=[m for _, m, _ in MLPERF])
def test_batched_reference_equals_per_sample_on_mlperf(mlperf_dir, task, model, calib):
    c = compile_model(mlperf_dir / task / model, calib=(mlperf_dir / task / calib) if calib else None)
    assert reference.batch_axis_kept(c.graph)
    assert_same_bytes(c.graph, int8_batch(c.graph, 8))
