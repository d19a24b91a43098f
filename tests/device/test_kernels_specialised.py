"""Per-layer specialised kernels (--optimize balanced / speed, kernels/dsp) on qemu-m4 and qemu-m7:
every layer's output equals the NumPy int8 reference byte for byte, on hypothesis-generated
chains that reach every variant: dense convs with 1..5 input channels (word-copied rows, one-word
rows over the side borders) and wider ones (one chunk up to 288 values, and chunked beyond),
pointwise, depthwise with channel multiplier 1 and 2 (4-channel groups plus a remainder; borders
peeled and deeper than peeled), every stride / padding / dilation class, fully connected (4-row
groups plus a remainder, odd K), residual add through tables, global average pooling.
Requantization is forced through the edge cases: per-channel shifts 0, +1, -1, -24, -25, -31, a
dead channel (multiplier 0), clamps below, at and above the zero point, and input offsets of -127
and 128 (inputs all negative / all positive)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from conftest import need
from tinyconv import codegen, memory, reference
from tinyconv.fixedpoint import quantize
from tinyconv.harness import api
from tinyconv.quantize import quantize_graph
from tinyconv.specialise import Options
from tinyconv.targets import get_target

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from ir_graphs import GraphBuilder  # noqa: E402

pytestmark = pytest.mark.device

SHIFTS = [0, 1, -1, -24, -25, -31]


@st.composite
def chains(draw):
    """(graph builder arguments): a small conv chain drawn by hypothesis."""
    h, w = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    cin = draw(st.integers(1, 5))
    c1 = draw(st.integers(3, 13))
    k = draw(st.sampled_from([(1, 3), (3, 3), (2, 3), (5, 2), (3, 4)]))  # k_w * cin == 4: one-word rows
    stride = draw(st.sampled_from([(1, 1), (2, 2), (1, 2)]))
    pad = draw(st.sampled_from([(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 1, 0), (2, 1, 2, 1)]))
    dil = draw(st.sampled_from([(1, 1), (2, 1), (2, 2)]))
    mult = draw(st.sampled_from([1, 1, 2]))
    dw_stride = draw(st.sampled_from([(1, 1), (2, 2)]))
    # depthwise padding: the usual, one-sided, and deeper than the 4 peeled border rows / columns
    dw_pad = draw(st.sampled_from([(1, 1, 1, 1), (1, 1, 1, 1), (0, 0, 2, 2), (5, 9, 6, 10)]))
    wide = draw(st.sampled_from([17, 33, 40]))  # 3x3 x wide: 153 / 297 / 360 values (one chunk / chunked)
    fc_out = draw(st.integers(1, 11))
    oh = _out(h, k[0], stride[0], dil[0], pad[0], pad[2])
    ow = _out(w, k[1], stride[1], dil[1], pad[1], pad[3])
    assume(oh > 0 and ow > 0)
    return dict(h=h, w=w, cin=cin, c1=c1, k=k, stride=stride, pad=pad, dil=dil, mult=mult, dw_stride=dw_stride,
                dw_pad=dw_pad, wide=wide, fc_out=fc_out, seed=draw(st.integers(0, 2**16)))  # fmt: skip


def _out(n, k, s, d, lo, hi):
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def build(p):
    rng = np.random.default_rng(p["seed"])
    b = GraphBuilder("chain", (1, p["h"], p["w"], p["cin"]))

    def conv(name, x, w_shape, strides=(1, 1), pads=(0, 0, 0, 0), groups=1, dil=(1, 1), act=None):
        wt = b.const(f"{name}_w", rng.normal(size=w_shape) / np.sqrt(np.prod(w_shape[1:])))
        bias = b.const(f"{name}_b", rng.normal(size=w_shape[0]) * 0.1)
        return b.node(name, "conv2d", [x, wt, bias], None, strides=strides, dilations=dil, pads=pads, groups=groups, act=act)

    kh, kw = p["k"]
    y = conv("first", "x", (p["c1"], kh, kw, p["cin"]), p["stride"], p["pad"], dil=p["dil"], act=(0.0, 6.0))
    c1 = p["c1"]
    y = conv("dw", y, (c1 * p["mult"], 3, 3, 1), p["dw_stride"], p["dw_pad"], groups=c1, act=(0.0, None))
    y = conv("pw", y, (p["wide"], 1, 1, c1 * p["mult"]))
    r = conv("dense", y, (p["wide"], 3, 3, p["wide"]), pads=(1, 1, 1, 1))
    y = b.node("add", "add", [y, r], None, act=(0.0, None))
    y = b.node("gap", "avg_pool2d", [y], None, kernel=tuple(b.g.tensors[y].shape[1:3]), strides=(1, 1), pads=(0, 0, 0, 0),
               count_include_pad=False)  # fmt: skip
    y = b.node("flat", "reshape", [y], (1, p["wide"]), shape=(1, p["wide"]))
    wt = b.const("fc_w", rng.normal(size=(p["fc_out"], p["wide"])) / np.sqrt(p["wide"]))
    y = b.node("fc", "fully_connected", [y, wt, b.const("fc_b", rng.normal(size=p["fc_out"]) * 0.1)], None)
    return b.finish(y)


def force_edges(g, rng):
    """Move each conv / fc layer's requantization onto the edge cases (the reference reads the same
    qattrs, so it stays the definition): shifts from SHIFTS with a multiplier that keeps outputs
    alive, one dead channel, a clamp away from the zero point."""
    for n in g.nodes:
        if n.op not in ("conv2d", "fully_connected"):
            continue
        q = n.qattrs
        c = q["multiplier"].size
        shift = rng.choice(SHIFTS, size=c)
        mult = rng.integers(1 << 30, (1 << 31) - 1, size=c)
        mult[rng.integers(c)] = 0
        # a left shift only where the accumulator cannot saturate it (as real models)
        shift = np.where(shift > 0, -1, shift) if n.name == "dense" else shift
        q["multiplier"], q["shift"] = mult.astype(np.int32), shift.astype(np.int32)
        # below the zero point (the full right form), at it or just above (a fused ReLU: the short one)
        zp = int(q["output_offset"])
        lo = min(int(rng.choice([rng.integers(-128, 0), zp, zp + 3])), 126)
        q["act_min"], q["act_max"] = lo, int(rng.integers(lo + 1, 128))


TARGETS = {"qemu-m4": "cortex-m4", "qemu-m7": "cortex-m7"}


def compile_chain(g, calib, level, outdir, target):
    q = quantize_graph(g, calib, "minmax")
    force_edges(q, np.random.default_rng(int(np.abs(calib).sum() * 1000) % 2**32))
    plan = memory.plan_memory(q)
    lib = codegen.generate(q, plan, get_target(target), outdir, options=Options(level))
    return q, lib


@pytest.mark.slow
@pytest.mark.parametrize("device", ["qemu-m4", "qemu-m7"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(p=chains(), sign=st.sampled_from([1, -1, 0]), level=st.sampled_from(["speed", "balanced"]))
@example(  # depthwise borders deeper than the 4 peeled rows / columns on every side, 8 channels
    p=dict(h=5, w=4, cin=2, c1=8, k=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1), dil=(1, 1), mult=1, dw_stride=(1, 1),
           dw_pad=(5, 9, 6, 10), wide=17, fc_out=3, seed=7),
    sign=1, level="speed")  # fmt: skip
@example(  # a DS-CNN first layer: 1 input channel, 4-wide rows over both side borders (one-word rows)
    p=dict(h=9, w=6, cin=1, c1=6, k=(3, 4), stride=(2, 2), pad=(1, 1, 1, 2), dil=(1, 1), mult=1, dw_stride=(1, 1),
           dw_pad=(1, 1, 1, 1), wide=17, fc_out=3, seed=11),
    sign=-1, level="speed")  # fmt: skip
def test_specialised_layers_bit_exact(tmp_path_factory, device, p, sign, level):
    need(device)
    g = build(p)
    x = np.random.default_rng(p["seed"]).normal(size=(3, *g.tensors["x"].shape[1:])).astype(np.float32)
    if sign:  # input zero point -128 (offset 128) or 127 (offset -127)
        x = sign * (np.abs(x) + 0.05)
    q, lib = compile_chain(g, x, level, tmp_path_factory.mktemp("chain"), TARGETS[device])
    variants = {lay["name"]: lay["kernel"] for lay in lib.manifest["layers"]}
    assert variants["first"].startswith("dsp-inline") and variants["fc"].startswith("dsp-inline"), variants
    s, z = q.tensors["x"].quant.scalar()
    xq = quantize(x[0:1], s, z)
    layers = api.dump_layers(lib.outdir, device, xq[0])
    ref = reference.run(q, {"x": xq}, mode="int8", keep=True)
    for node, got in zip(q.nodes, layers):
        want = ref[node.outputs[0]].reshape(-1)
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, f"{level} {node.name} ({variants[node.name]}): {bad.size} bytes differ, first at {bad[0]}"


def tie_channels():
    """(multiplier, shift, centre) per channel: accumulators around which a rounding tie of the
    reference lies (RoundingDivideByPOT half away from zero on both signs, and the doubling high
    multiply's nudge), for right shifts 1..30; the layer sweeps 256 accumulators around each."""
    out = []
    for r in (1, 2, 5, 13, 24, 25, 30):
        for m in ((1 << 30) + 1, 1518500250, (1 << 31) - 1):
            for h2 in (-3, -1, 1, 3):  # h = h2 * 2^(r-1): a tie of the final rounding
                out.append((m, -r, (h2 << (r - 1) << 31) // m))
            out.append((m, -r, (-(1 << 30)) // m))  # acc*m near -2^30: the nudge's tie
    return [(m, s, c) for m, s, c in out if abs(c) < (1 << 31) - 1024]


def test_requantization_ties_on_device(tmp_path):
    """The assembly tc_rq_apply_right, its short form under a clamp at the zero point, and the C
    tc_rq_apply of a layer with a shift-0 channel, on the accumulators where an off-by-one in
    either rounding step shows, on qemu-m4."""
    need("qemu-m4")
    chans = tie_channels()
    b = GraphBuilder("ties", (1, 1, 256, 1))
    y = b.node("right", "conv2d", ["x", b.const("w1", np.ones((len(chans), 1, 1, 1))), b.const("b1", np.zeros(len(chans)))],
               None, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), groups=1, act=None)  # fmt: skip
    g = b.finish(y)
    calib = (np.arange(-128, 128, dtype=np.float32) / 100).reshape(1, 1, 256, 1)
    q = quantize_graph(g, calib, "minmax")
    node = q.nodes[0]
    qa, off = node.qattrs, node.qattrs["input_offset"]
    q.tensors[node.inputs[1]].data = np.ones_like(q.tensors[node.inputs[1]].data)
    q.tensors[node.inputs[2]].data = np.array([c - off for _, _, c in chans], np.int32)
    qa["multiplier"] = np.array([m for m, _, _ in chans], np.int32)
    qa["shift"] = np.array([s for _, s, _ in chans], np.int32)
    qa["output_offset"], qa["act_min"], qa["act_max"] = 0, -128, 127
    xq = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256, 1)
    want = reference.run_batch(q, xq).reshape(-1)
    assert len(set(want.tolist())) > 3  # the sweep crosses results, not one clamped value
    for form in ("right", "right-floor", "any"):
        if form == "right-floor":  # a clamp at the zero point: tc_rq_apply_right_floor, no sign correction
            qa["act_min"] = 0
            want = reference.run_batch(q, xq).reshape(-1)
            assert np.count_nonzero(want == 0) > 256 and len(set(want.tolist())) > 3
        any_form = form == "any"
        if any_form:  # one shift-0 channel puts the whole layer on tc_rq_apply
            qa["multiplier"][0], qa["shift"][0] = 1 << 30, 0
            qa["act_min"] = -128
            want = reference.run_batch(q, xq).reshape(-1)
        lib = codegen.generate(q, memory.plan_memory(q), get_target("cortex-m4"), tmp_path / form, options=Options("speed"))
        assert lib.manifest["layers"][0]["kernel"] == ("dsp-inline-w16-rq" if any_form else "dsp-inline-w16-rq-right")
        got = np.asarray(api.run_inputs(lib.outdir, "qemu-m4", xq.reshape(1, -1)).outputs).reshape(-1)
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, f"{bad.size} of {want.size} outputs differ (channel {bad[0] % len(chans)})"


@pytest.mark.slow
@pytest.mark.parametrize("device", ["qemu-m4", "qemu-m7"])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(p=chains(), sign=st.sampled_from([1, -1, 0]))
@example(p=dict(h=7, w=6, cin=3, c1=5, k=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1), dil=(1, 1), mult=2, dw_stride=(1, 1),
               dw_pad=(1, 1, 1, 1), wide=40, fc_out=7, seed=5), sign=1)  # one-channel depthwise 3x3 rows, a chunked 360-value filter
def test_size_level_bit_exact(tmp_path_factory, device, p, sign):
    """--optimize size: every layer on the shared out-of-line kernels (the 2x2 patch loop, chunked
    filters, both depthwise paths, the portable add), byte for byte equal to the reference."""
    need(device)
    g = build(p)
    x = np.random.default_rng(p["seed"]).normal(size=(3, *g.tensors["x"].shape[1:])).astype(np.float32)
    if sign:
        x = sign * (np.abs(x) + 0.05)
    q, lib = compile_chain(g, x, "size", tmp_path_factory.mktemp("size"), TARGETS[device])
    assert {lay["kernel"] for lay in lib.manifest["layers"]} == {"generic"}
    s, z = q.tensors["x"].quant.scalar()
    xq = quantize(x[0:1], s, z)
    ref = reference.run(q, {"x": xq}, mode="int8", keep=True)
    for node, got in zip(q.nodes, api.dump_layers(lib.outdir, device, xq[0])):
        bad = np.nonzero(got != ref[node.outputs[0]].reshape(-1))[0]
        assert bad.size == 0, f"size {node.name}: {bad.size} bytes differ, first at {bad[0]}"
