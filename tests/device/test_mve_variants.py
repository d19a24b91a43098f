"""The Helium (MVE) per-layer variants (tinyconv/ops/helium.py, kernels/mve/tc_mve_*.h) on qemu-m55:
hypothesis draws a chain that reaches every variant — depthwise, dense conv through the patch,
pointwise in place, add through tables, average pooling, spatial mean, fully connected — with odd
channel counts, every stride / pad / dilation class, per-channel requantization shifts of 0, 1,
-1, -24, -25 and -31, clamps not at the zero point and input offsets of -127 and 128 written into
the layers' integer parameters (and a requantizing average pool); every layer's output must equal the NumPy reference byte for byte,
and the manifest must show the variants were the ones that ran."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import need
from tinyconv import reference
from tinyconv.fixedpoint import quantize
from tinyconv.harness import api
from tinyconv.ops import helium
from tinyconv.pipeline import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

pytestmark = pytest.mark.device

SHIFTS = np.array([0, 1, -1, -24, -25, -31])


def _chain(p: dict, rng: np.random.Generator):
    """x → depthwise → dense conv → pointwise + add → average pool → mean → fully connected."""
    b = GraphBuilder("mve_chain", (1, p["h"], p["w"], p["c"]))

    def const(name, shape, scale):
        return b.const(name, rng.normal(size=shape) * scale)

    c = p["c"]
    kh, kw = p["dw_k"]
    dw = b.node("dw", "conv2d", ["x", const("dw_w", (c, kh, kw, 1), 0.5), const("dw_b", c, 0.1)], strides=p["dw_s"],
                dilations=p["dw_d"], pads=p["dw_pad"], groups=c, act=None)  # fmt: skip
    k = p["cv_k"]
    cv = b.node("conv", "conv2d", [dw, const("cv_w", (p["oc"], k, k, c), 1 / np.sqrt(k * k * c)), const("cv_b", p["oc"], 0.1)],
                strides=(p["cv_s"], p["cv_s"]), dilations=(p["cv_d"], p["cv_d"]), pads=p.get("cv_pad", (k // 2,) * 4), groups=1,
                act=None)  # fmt: skip
    pw = b.node("pw", "conv2d", [cv, const("pw_w", (p["oc"], 1, 1, p["oc"]), 1 / np.sqrt(p["oc"]))], strides=(1, 1),
                dilations=(1, 1), pads=(0, 0, 0, 0), groups=1, act=(0.0, None))  # fmt: skip
    add = b.node("add", "add", [cv, pw], act=None)
    ap = b.node("pool", "avg_pool2d", [add], kernel=(2, 2), strides=p["pool_s"], pads=p["pool_pad"],
                count_include_pad=p["incl_pad"])  # fmt: skip
    mean = b.node("mean", "mean", [ap], axes=(1, 2), keepdims=True)
    flat = b.node("flat", "reshape", [mean], (1, p["oc"]), shape=(1, p["oc"]))
    fc = b.node("fc", "fully_connected", [flat, const("fc_w", (p["fc_o"], p["oc"]), 0.3), const("fc_b", p["fc_o"], 0.1)])
    return b.finish(fc)


def _perturb(graph, p: dict, rng: np.random.Generator) -> None:
    """Integer parameters the calibration would rarely give: extreme input offsets, every shift
    class per channel, clamps away from the zero point (the reference reads the same qattrs)."""
    for node in graph.nodes:
        q = node.qattrs
        if node.op in ("conv2d", "fully_connected"):
            q["shift"] = rng.choice(SHIFTS, size=len(q["shift"])).astype(q["shift"].dtype)
            q["input_offset"] = int(p["in_off"])
            lo = int(rng.integers(-128, 0))
            q["act_min"], q["act_max"] = lo, int(rng.integers(lo + 1, 128))
        elif node.op == "add":
            q["act_min"], q["act_max"] = -100, 90
        elif node.op == "avg_pool2d":  # requantizing pool (pre-quantized models): rescale after rounding
            q.update(requantize=True, multiplier=int(rng.integers(1 << 30, 1 << 31)), shift=int(rng.choice([1, 0, -1, -3])),
                     output_zp=int(rng.integers(-20, 20)))  # fmt: skip
        elif node.op == "mean":
            q.update(shift=int(rng.choice([0, -1, -5])), output_zp=int(rng.integers(-20, 20)))


params = st.fixed_dictionaries({
    "h": st.integers(6, 11), "w": st.integers(6, 11), "c": st.sampled_from([2, 3, 5, 7, 9, 16, 19, 33]),
    "dw_k": st.sampled_from([(3, 3), (1, 3), (5, 5), (3, 2), (2, 2)]), "dw_s": st.sampled_from([(1, 1), (2, 2), (1, 2)]),
    "dw_d": st.sampled_from([(1, 1), (2, 2), (1, 2)]), "dw_pad": st.sampled_from([(0, 0, 0, 0), (1, 1, 1, 1), (2, 1, 0, 2)]),
    "oc": st.sampled_from([1, 3, 4, 6, 13, 20]), "cv_k": st.sampled_from([1, 3]), "cv_s": st.sampled_from([1, 2]),
    "cv_d": st.sampled_from([1, 2]), "pool_s": st.sampled_from([(1, 1), (2, 2)]),
    "pool_pad": st.sampled_from([(0, 0, 0, 0), (1, 1, 0, 0), (0, 1, 0, 1)]), "incl_pad": st.booleans(),
    "fc_o": st.sampled_from([1, 5, 10]), "in_off": st.sampled_from([-127, 128, 3]), "seed": st.integers(0, 2**16),
})  # fmt: skip


def _fits(p: dict) -> bool:
    """Every layer's output non-empty (hypothesis draws some that are not)."""
    kh, kw = p["dw_k"]
    t, l, bo, r = p["dw_pad"]
    h = (p["h"] + t + bo - p["dw_d"][0] * (kh - 1) - 1) // p["dw_s"][0] + 1
    w = (p["w"] + l + r - p["dw_d"][1] * (kw - 1) - 1) // p["dw_s"][1] + 1
    k, s, d = p["cv_k"], p["cv_s"], p["cv_d"]
    t, l, bo, r = p.get("cv_pad", (k // 2,) * 4)
    h, w = (h + t + bo - d * (k - 1) - 1) // s + 1, (w + l + r - d * (k - 1) - 1) // s + 1
    t, l, bo, r = p["pool_pad"]
    return min(h, w) >= 1 and (h + t + bo - 2) // p["pool_s"][0] >= 0 and (w + l + r - 2) // p["pool_s"][1] >= 0 and h + t + bo >= 2 and w + l + r >= 2


KWS_LIKE = {"h": 9, "w": 7, "c": 16, "dw_k": (3, 3), "dw_s": (1, 1), "dw_d": (1, 1), "dw_pad": (1, 1, 1, 1), "oc": 20, "cv_k": 1,
            "cv_s": 1, "cv_d": 1, "pool_s": (2, 2), "pool_pad": (0, 0, 0, 0), "incl_pad": False, "fc_o": 10, "in_off": 128, "seed": 1}  # fmt: skip


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(p=params)
@example(p=KWS_LIKE)
@example(p={**KWS_LIKE, "h": 11, "w": 11, "c": 3, "dw_k": (1, 1), "dw_pad": (0, 0, 0, 0), "oc": 8, "cv_k": 3, "cv_s": 2,
            "cv_pad": (0, 0, 1, 1)})  # vww's first layer: right border rows = padding + a run, zero point -128
@example(p={**KWS_LIKE, "c": 19, "dw_s": (2, 2), "dw_d": (2, 2), "dw_pad": (2, 1, 0, 2), "oc": 13, "cv_k": 3, "cv_s": 2,
            "pool_pad": (1, 1, 0, 0), "incl_pad": True, "in_off": -127})  # fmt: skip
def test_mve_variants_bit_exact(tmp_path_factory, p):
    need("qemu-m55")
    if not _fits(p):
        return
    rng = np.random.default_rng(p["seed"])
    g = _chain(p, rng)
    calib = rng.normal(size=(4, *g.tensors["x"].shape[1:])).astype(np.float32)
    quantized = compile_model(g, calib=calib).graph
    _perturb(quantized, p, rng)
    c = compile_model(quantized, target="cortex-m55", outdir=tmp_path_factory.mktemp("mve"))
    kernels = {lay["name"]: lay["kernel"] for lay in c.library.manifest["layers"]}
    assert kernels["dw"] == "mve_depthwise" and kernels["conv"] == "mve_conv" and kernels["pw"] == "mve_conv"
    assert kernels["add"] == "mve_add_lut" and kernels["pool"] == "mve_avg_pool" and kernels["mean"] == "mve_mean"
    assert kernels["fc"] == "mve_fc"
    s, z = quantized.tensors["x"].quant.scalar()
    xq = quantize(calib, s, z)
    got = api.dump_layers(c.library.outdir, "qemu-m55", xq[0])
    ref = reference.run(quantized, {"x": xq[:1]}, mode="int8", keep=True)
    for node, layer in zip(quantized.nodes, got):
        assert np.array_equal(layer, ref[node.outputs[0]].reshape(-1)), f"{node.name} differs ({p})"


@pytest.mark.parametrize("in_zp_sign", [1, -1])
def test_mve_first_conv_border_rows(tmp_path, in_zp_sign):
    """vww's first layer in small: 3x3x3 stride 2, padding only bottom/right, as the graph's first
    layer, so the right border rows are the zero point with a run of real columns copied over it
    (GCC 12 models a predicated VSTRB.8 as a full 16-byte store and dropped the fill once)."""
    need("qemu-m55")
    rng = np.random.default_rng(3)
    b = GraphBuilder("first_conv", (1, 12, 12, 3))
    y = b.node("conv", "conv2d", ["x", b.const("w", rng.normal(size=(8, 3, 3, 3)) / 5), b.const("b", rng.normal(size=8) * 0.1)],
               strides=(2, 2), dilations=(1, 1), pads=(0, 0, 1, 1), groups=1, act=(0.0, None))  # fmt: skip
    g = b.finish(b.node("pool", "avg_pool2d", [y], kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)))
    calib = (in_zp_sign * (np.abs(rng.normal(size=(3, 12, 12, 3))) + 0.05)).astype(np.float32)
    c = compile_model(g, calib=calib, target="cortex-m55", outdir=tmp_path / "lib")
    s, z = c.graph.tensors["x"].quant.scalar()
    assert z == (-128 if in_zp_sign > 0 else 127)
    assert c.library.manifest["layers"][0]["kernel"] == "mve_conv"
    xq = quantize(calib, s, z)
    got = api.run_inputs(c.library.outdir, "qemu-m55", xq.reshape(len(xq), -1)).outputs
    assert np.array_equal(np.asarray(got).reshape(len(xq), -1), reference.run_batch(c.graph, xq).reshape(len(xq), -1))


@pytest.mark.parametrize("shared_kept", [False, True])
@pytest.mark.parametrize("example", [KWS_LIKE, {**KWS_LIKE, "c": 19, "dw_s": (2, 2), "oc": 13, "cv_k": 3, "in_off": -127}])
def test_mve_size_level_bit_exact(tmp_path, monkeypatch, example, shared_kept):
    """--optimize size on the M55: Helium kernels only where they spare a shared function in less
    code (never the add tables), else the shared kernels/mve code of 035073e (`shared_kept`: no
    function is known, so every layer keeps it); every layer byte for byte equal to the reference."""
    need("qemu-m55")
    if shared_kept:
        monkeypatch.setattr(helium, "SHARED_CODE", {})
    rng = np.random.default_rng(example["seed"])
    g = _chain(example, rng)
    calib = rng.normal(size=(4, *g.tensors["x"].shape[1:])).astype(np.float32)
    quantized = compile_model(g, calib=calib).graph
    _perturb(quantized, example, rng)
    c = compile_model(quantized, target="cortex-m55", outdir=tmp_path / "lib", optimize="size")
    kernels = {lay["name"]: lay["kernel"] for lay in c.library.manifest["layers"]}
    assert kernels["add"] == "generic" and kernels["flat"] == "generic"
    assert kernels["fc"] == ("generic" if shared_kept else "mve_fc"), kernels
    s, z = quantized.tensors["x"].quant.scalar()
    xq = quantize(calib, s, z)
    ref = reference.run(quantized, {"x": xq[:1]}, mode="int8", keep=True)
    for node, layer in zip(quantized.nodes, api.dump_layers(c.library.outdir, "qemu-m55", xq[0])):
        assert np.array_equal(layer, ref[node.outputs[0]].reshape(-1)), f"{node.name} ({kernels[node.name]}) differs at size"
