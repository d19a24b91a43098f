"""Layers the int32 kernels cannot compute exactly are refused at compile time, naming the node:
requantization multipliers of 2^31 or more (shifts the C code could not apply without undefined
behaviour) and accumulators that could wrap, for every accumulating op."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ir_graphs import GraphBuilder

from tinyconv.errors import ModelError, ScaleRangeError
from tinyconv.fixedpoint import MAX_LEFT_SHIFT, quantize_multiplier
from tinyconv.ir import QuantParams
from tinyconv.quantize import prepare_all, quantize_graph


def test_multipliers_below_2_pow_31_are_kept_and_larger_ones_refused():
    m, e = quantize_multiplier(2.0**31 * (1 - 2.0**-30))
    assert e == MAX_LEFT_SHIFT and 0 < m < 2**31
    for real in (2.0**31, 1e30, 1e38 / 1e-45, math.inf, math.nan):
        with pytest.raises(ScaleRangeError):
            quantize_multiplier(real)


def test_tiny_multipliers_become_zero_as_in_tflite():
    assert quantize_multiplier(2.0**-40) == (0, 0)


def _quantized(b: GraphBuilder, out: str, shape):
    g = b.finish(out)
    calib = np.random.default_rng(0).normal(size=(4, *shape[1:])).astype(np.float32)
    return quantize_graph(g, calib)


def _conv_graph():
    rng = np.random.default_rng(1)
    b = GraphBuilder("extreme", (1, 4, 4, 3))
    y = b.node("conv_extreme", "conv2d", ["x", b.const("w", rng.normal(size=(2, 1, 1, 3)))], strides=(1, 1), dilations=(1, 1),
               pads=(0, 0, 0, 0), groups=1, act=None)  # fmt: skip
    return _quantized(b, y, (1, 4, 4, 3))


@pytest.mark.parametrize("what", ["weight_scale_1e30", "output_scale_1e-45"])
def test_extreme_scales_are_refused_naming_the_node(what):
    """Shifts of 87-138 made tc_fixedpoint.h shift an int64 by more than 63 (UB): now refused."""
    g = _conv_graph()
    conv = g.nodes[0]
    if what == "weight_scale_1e30":
        w = g.tensors[conv.inputs[1]]
        w.quant = QuantParams(np.full(w.quant.scale.shape, 1e30, np.float32), w.quant.zero_point, w.quant.axis)
    else:
        y = g.tensors[conv.outputs[0]]
        y.quant = QuantParams.per_tensor(1e-45, int(y.quant.scalar()[1]))
    with pytest.raises(ModelError, match=r"conv_extreme.*requantization multiplier") as e:
        prepare_all(g)
    assert e.value.node == "conv_extreme"


def _pool_graph(kind: str, hw: tuple[int, int], zero_point: int = 0):
    b = GraphBuilder("big_pool", (1, *hw, 1))
    if kind == "mean":
        y = b.node("big_mean", "mean", ["x"], axes=(1, 2), keepdims=True)
    else:
        y = b.node("big_avg", "avg_pool2d", ["x"], kernel=hw, strides=(1, 1), pads=(0, 0, 0, 0), count_include_pad=False)
    g = b.finish(y)
    # Skip calibration over 8 M elements: give the parameters directly.
    for name in ("x", y):
        g.tensors[name].quant, g.tensors[name].dtype = QuantParams.per_tensor(0.05, zero_point), "int8"
    return g


def test_global_average_pool_overflow_is_refused():
    """A 2900x2904 GlobalAveragePool / Mean of a ReLU output (zero point -128) sums up to
    8.4 M · 255 > 2^31 in tc_mean_hw_s8."""
    with pytest.raises(ModelError, match=r"big_mean.*int32 accumulator could overflow") as e:
        prepare_all(_pool_graph("mean", (2900, 2904), zero_point=-128))
    assert e.value.node == "big_mean"


def test_average_pool_overflow_is_refused():
    """tc_pool.c sums raw int8 values over the window: more than 2^31 / 128 taps can wrap."""
    with pytest.raises(ModelError, match=r"big_avg.*int32 accumulator could overflow") as e:
        prepare_all(_pool_graph("avg_pool2d", (4100, 4100)))
    assert e.value.node == "big_avg"


@pytest.mark.parametrize("kind", ["mean", "avg_pool2d"])
def test_pool_below_the_bound_is_accepted(kind):
    prepare_all(_pool_graph(kind, (2048, 2048), zero_point=-128))  # 4 M taps · ≤ 255 < 2^31


@pytest.mark.parametrize("kind", ["fully_connected", "conv2d"])
def test_weighted_layer_accumulator_overflow_is_refused(kind):
    """140,000 taps of weight 127 on inputs up to 128 away from the zero point exceed 2^31."""
    k = 140_000
    if kind == "fully_connected":
        b = GraphBuilder("big_acc", (1, k))
        y = b.node("big_acc", kind, ["x", b.const("w", np.ones((2, k)))], act=None)
        shape = (1, k)
    else:
        b = GraphBuilder("big_acc", (1, 3, 3, k // 9))
        y = b.node("big_acc", kind, ["x", b.const("w", np.ones((2, 3, 3, k // 9)))], strides=(1, 1), dilations=(1, 1),
                   pads=(0, 0, 0, 0), groups=1, act=None)  # fmt: skip
        shape = (1, 3, 3, k // 9)
    with pytest.raises(ModelError, match=r"big_acc.*int32 accumulator could overflow") as e:
        _quantized(b, y, shape)
    assert e.value.node == "big_acc"
