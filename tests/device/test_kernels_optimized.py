"""The optimized conv / fully-connected kernels (kernels/dsp, kernels/mve, kernels/neon) on every
emulated device: every output byte equals the NumPy int8 reference, on every_op_graph and on
conv-heavy graphs that reach each code path (pointwise with in_c 4..130, dense 3x3 with odd channel
counts and filters above and below the 128-value patch buffer, depthwise 3x3 stride 1/2 with channel
multiplier 1 and 2 and more channels than one weight chunk, grouped conv, FC with odd K) under a
zero point of -128 and of +127 (input_offset 128 / -127, the extremes)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import QEMU_DEVICES, need
from tinyconv import reference
from tinyconv.fixedpoint import quantize
from tinyconv.harness import api
from tinyconv.ir import Graph
from tinyconv.pipeline import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder, every_op_graph  # noqa: E402

pytestmark = pytest.mark.device

KERNELS = Path(__file__).resolve().parents[2] / "codegen_templates" / "kernels"
OPTIMIZED = {"cortex-m4": "dsp", "cortex-m7": "dsp", "cortex-m55": "mve", "aarch64": "neon", "aarch64-i8mm": "neon"}


class _Builder(GraphBuilder):
    def __init__(self, name, shape, seed):
        super().__init__(name, shape)
        self.rng = np.random.default_rng(seed)

    def conv(self, name, x, w_shape, out_shape, strides=(1, 1), pads=(0, 0, 0, 0), groups=1, act=None, dil=(1, 1)):
        w = self.const(f"{name}_w", self.rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[1:])))
        b = self.const(f"{name}_b", self.rng.normal(size=w_shape[0]) * 0.1)
        return self.node(name, "conv2d", [x, w, b], out_shape, strides=strides, dilations=dil, pads=pads, groups=groups, act=act)

    def fc(self, name, x, o, k, act=None):
        w = self.const(f"{name}_w", self.rng.normal(size=(o, k)) / np.sqrt(k))
        b = self.const(f"{name}_b", self.rng.normal(size=o) * 0.1)
        return self.node(name, "fully_connected", [x, w, b], (1, o), act=act)


def conv_mix_graph(seed: int = 0) -> Graph:
    """Dense 3x3 (odd channels, stride 1/2), depthwise 3x3 (stride 1/2, multiplier 1/2, 40 channels),
    pointwise, a 576-value filter (direct path), grouped conv, two FCs (K = 108, 13)."""
    b = _Builder("conv_mix", (1, 11, 13, 5), seed)
    c1 = b.conv("c1", "x", (7, 3, 3, 5), (1, 11, 13, 7), pads=(1, 1, 1, 1), act=(0.0, 6.0))
    c2 = b.conv("c2", c1, (12, 3, 3, 7), (1, 6, 7, 12), strides=(2, 2), pads=(1, 1, 1, 1))
    d1 = b.conv("dw1", c2, (12, 3, 3, 1), (1, 6, 7, 12), pads=(1, 1, 1, 1), groups=12, act=(0.0, None))
    d2 = b.conv("dw2", d1, (24, 3, 3, 1), (1, 3, 4, 24), strides=(2, 2), pads=(1, 1, 1, 1), groups=12)
    p1 = b.conv("pw1", d2, (40, 1, 1, 24), (1, 3, 4, 40), act=(0.0, None))
    d3 = b.conv("dw3", p1, (40, 3, 3, 1), (1, 3, 4, 40), pads=(1, 1, 1, 1), groups=40)
    p2 = b.conv("pw2", d3, (64, 1, 1, 40), (1, 3, 4, 64), act=(0.0, 6.0))
    c3 = b.conv("c3", p2, (9, 3, 3, 64), (1, 3, 4, 9), pads=(1, 1, 1, 1))
    gc = b.conv("grouped", c3, (6, 2, 2, 3), (1, 3, 4, 6), pads=(0, 0, 1, 1), groups=3)
    d4 = b.conv("dw_dil", gc, (6, 3, 3, 1), (1, 3, 4, 6), pads=(2, 2, 2, 2), groups=6, dil=(2, 2))
    f = b.node("flat", "reshape", [c3], (1, 108), shape=(1, 108))
    f1 = b.fc("fc1", f, 13, 108, act=(0.0, None))
    f2 = b.fc("fc2", f1, 7, 13)
    m = b.node("mean", "mean", [d4], (1, 1, 1, 6), axes=(1, 2), keepdims=True)
    fm = b.node("flat_m", "reshape", [m], (1, 6), shape=(1, 6))
    cat = b.node("cat", "concat", [f2, fm], (1, 13), axis=1)
    return b.finish(cat)


def pointwise_graph(seed: int = 0) -> Graph:
    """1x1 convolutions with in_c 4, 8, 16, 33, 64, 130 (the last above the patch buffer), stride 2
    once, then an FC with K = 105."""
    b = _Builder("pointwise", (1, 6, 7, 4), seed)
    y = b.conv("pw4", "x", (8, 1, 1, 4), (1, 6, 7, 8), act=(0.0, None))
    y = b.conv("pw8", y, (16, 1, 1, 8), (1, 6, 7, 16))
    y = b.conv("pw16", y, (33, 1, 1, 16), (1, 6, 7, 33), act=(0.0, 6.0))
    y = b.conv("pw33", y, (64, 1, 1, 33), (1, 3, 4, 64), strides=(2, 2))
    y = b.conv("pw64", y, (130, 1, 1, 64), (1, 3, 4, 130), act=(0.0, None))
    y = b.conv("pw130", y, (5, 1, 1, 130), (1, 3, 4, 5))
    y = b.conv("k1x3", y, (7, 1, 3, 5), (1, 3, 4, 7), pads=(0, 1, 0, 1))
    f = b.node("flat", "reshape", [y], (1, 84), shape=(1, 84))
    return b.finish(b.fc("fc", f, 11, 84))


def big_filter_graph(seed: int = 0) -> Graph:
    """Dense filters above the 128-value DSP patch (K = 162, 630, 720: K-chunked buffer; 720 also
    above the MVE im2col patch), in_c 1 with a 5x4 filter and asymmetric stride, out_c 70 (more than
    one MVE channel chunk), dilated dense 3x3, depthwise 3x3 / 5x5 with 75 channels (several weight
    chunks and a channel count not a multiple of 4)."""
    b = _Builder("big_filter", (1, 9, 10, 1), seed)
    y = b.conv("c1", "x", (18, 5, 4, 1), (1, 9, 5, 18), strides=(1, 2), pads=(2, 1, 2, 1))
    y = b.conv("c2", y, (70, 3, 3, 18), (1, 9, 5, 70), pads=(1, 1, 1, 1), act=(0.0, None))
    y = b.conv("c3", y, (13, 3, 3, 70), (1, 5, 3, 13), strides=(2, 2), pads=(1, 1, 1, 1))
    y = b.conv("c4", y, (9, 3, 3, 13), (1, 5, 3, 9), pads=(2, 2, 2, 2), dil=(2, 2), act=(0.0, 6.0))
    y = b.conv("pw80", y, (80, 1, 1, 9), (1, 5, 3, 80))
    y = b.conv("c5", y, (11, 3, 3, 80), (1, 5, 3, 11), pads=(1, 1, 1, 1))
    y = b.conv("pw75", y, (75, 1, 1, 11), (1, 5, 3, 75), act=(0.0, None))
    y = b.conv("dw3", y, (75, 3, 3, 1), (1, 5, 3, 75), pads=(1, 1, 1, 1), groups=75)
    y = b.conv("dw5", y, (75, 5, 5, 1), (1, 3, 2, 75), strides=(2, 2), pads=(2, 2, 2, 2), groups=75)
    f = b.node("flat", "reshape", [y], (1, 450), shape=(1, 450))
    return b.finish(b.fc("fc", f, 10, 450))


GRAPHS = {"every_op": every_op_graph, "conv_mix": conv_mix_graph, "pointwise": pointwise_graph,
          "big_filter": big_filter_graph}


def _calib(graph: Graph, sign: int, n: int = 6) -> np.ndarray:
    """sign 0: centred data; +1: all positive (input zero point -128, offset 128); -1: all negative
    (zero point 127, offset -127)."""
    shape = graph.tensors["x"].shape[1:]
    x = np.random.default_rng(7).normal(size=(n, *shape)).astype(np.float32)
    if sign:
        x = sign * (np.abs(x) + 0.05)
    return x


_CACHE: dict = {}


def _compiled(tmp_root: Path, gname: str, sign: int, target: str, optimize: str = "balanced"):
    key = (gname, sign, target, optimize)
    if key not in _CACHE:
        g = GRAPHS[gname]()
        calib = _calib(g, sign)
        c = compile_model(g, calib=calib, target=target, outdir=tmp_root / f"{gname}_{sign}_{target}_{optimize}", optimize=optimize)
        s, z = c.graph.tensors["x"].quant.scalar()
        _CACHE[key] = (c, quantize(calib, s, z))
    return _CACHE[key]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("optkernels")


@pytest.mark.parametrize("device", list(QEMU_DEVICES))
@pytest.mark.parametrize("gname,sign", [("every_op", 0), ("conv_mix", 0), ("conv_mix", 1), ("conv_mix", -1),
                                        ("pointwise", 1), ("pointwise", -1), ("big_filter", 0), ("big_filter", 1),
                                        ("big_filter", -1)])  # fmt: skip
def test_bit_exact(root, device, gname, sign):
    need(device)
    target = QEMU_DEVICES[device]
    c, xq = _compiled(root, gname, sign, target)
    if sign:
        zp = int(c.graph.tensors["x"].quant.scalar()[1])
        assert zp == (-128 if sign > 0 else 127)
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    got = api.run_inputs(c.library.outdir, device, xq.reshape(len(xq), -1)).outputs
    assert np.array_equal(np.asarray(got).reshape(expected.shape), expected)


@pytest.mark.parametrize("optimize", ["size", "speed"])
@pytest.mark.parametrize("gname,sign", [("conv_mix", 1), ("pointwise", -1), ("big_filter", 0)])
def test_bit_exact_other_levels_m4(root, gname, sign, optimize):
    """The other --optimize levels on qemu-m4 (the tests above use the default, balanced): size
    runs the shared out-of-line DSP kernels, speed the int16 offline layouts."""
    need("qemu-m4")
    c, xq = _compiled(root, gname, sign, "cortex-m4", optimize)
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    got = api.run_inputs(c.library.outdir, "qemu-m4", xq.reshape(len(xq), -1)).outputs
    assert np.array_equal(np.asarray(got).reshape(expected.shape), expected)


@pytest.mark.parametrize("device,gname,sign", [("qemu-m55", "conv_mix", 1), ("qemu-m55", "conv_mix", -1),
                                               ("qemu-aarch64", "conv_mix", 1), ("qemu-aarch64", "big_filter", 0)])  # fmt: skip
def test_bit_exact_size_vector_backends(root, device, gname, sign):
    """--optimize size on Helium and NEON: the shared out-of-line tc_conv_s8 runs the layers, its
    general case (kernels/portable/tc_conv_pairs.h over the backend's tc_dot2.h) on grouped
    (Helium) and on every dense and dilated layer (NEON)."""
    need(device)
    c, xq = _compiled(root, gname, sign, QEMU_DEVICES[device], "size")
    assert "tc_conv_pairs.h" in c.library.manifest["kernels"] and "tc_dot2.h" in c.library.manifest["kernels"]
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    got = api.run_inputs(c.library.outdir, device, xq.reshape(len(xq), -1)).outputs
    assert np.array_equal(np.asarray(got).reshape(expected.shape), expected)


@pytest.mark.parametrize("device", list(QEMU_DEVICES))
@pytest.mark.parametrize("gname", ["conv_mix", "big_filter"])
def test_every_layer_bit_exact(root, device, gname):
    """Every intermediate layer too (a wrong byte that a later layer happens to hide still fails)."""
    need(device)
    target = QEMU_DEVICES[device]
    c, xq = _compiled(root, gname, 1, target)
    layers = api.dump_layers(c.library.outdir, device, xq[1])
    ref = reference.run(c.graph, {"x": xq[1].reshape(1, *c.graph.tensors["x"].shape[1:])}, mode="int8", keep=True)
    for node, got in zip(c.graph.nodes, layers):
        assert np.array_equal(got, ref[node.outputs[0]].reshape(-1)), node.name


@pytest.mark.parametrize("target", list(OPTIMIZED))
def test_optimized_backend_picked(root, target):
    """The library carries the backend's own tc_conv.c / fully connected kernel (the manifest lists
    file names only, so compare the copied sources with the backend's)."""
    c, _ = _compiled(root, "conv_mix", 0, target)
    backend = OPTIMIZED[target]
    assert backend in c.library.manifest["backends"]
    # Helium and NEON run fully connected layers through their per-layer variants (tinyconv/ops/helium.py,
    # tinyconv/neon_layers.py).
    names = {"mve": ("tc_conv.c", "tc_dot2.h", "tc_mve_fc.h"), "neon": ("tc_conv.c", "tc_dot2.h", "tc_neon_gemm.h")}.get(backend, ("tc_conv.c", "tc_fully_connected.c"))
    for name in names:
        assert name in c.library.manifest["kernels"]
        src = KERNELS / backend / name
        assert src.exists(), src
        assert (c.library.outdir / name).read_bytes() == src.read_bytes(), f"{target}: {name} is not the {backend} kernel"
