"""Per-layer compile-time specialisation for the AArch64 NEON kernels (kernels/neon/tc_neon_gemm.c).

For the targets with a NEON backend, convolutions (groups 1), depthwise convolutions (channel
multiplier 1) and fully connected layers get:
* weights packed offline in the order the kernel's register tiles read them;
* `input_offset * sum(w)` folded into the bias (exact: the kernels feed padded taps with the
  input zero point, whose centred value is 0, so every tap may be summed unconditionally);
* requantization records per channel (multiplier, left shift, -right shift) for the vector
  requantization (SQSHL, SQRDMULH, round-half-away SRSHL).
Convolutions with at most 4 input channels (first layers) take kernels/neon/tc_neon_small_c.h
instead: no im2col, each kernel row read as overlapping 16-byte loads against zero-padded weights.
Layers outside these shapes keep the generic kernels. `specialise` returns None for them;
`variant` wraps the result as the backend variant codegen uses (codegen.backend_variant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyconv.fixedpoint import multiply_by_quantized_multiplier
from tinyconv.ir import Graph, Node
from tinyconv.ops.softmax import ACCUMULATION_INTEGER_BITS, exp_on_negative_values
from tinyconv.specialise import Variant, backend_layer
from tinyconv.targets import Target

GEMM_FILE = "tc_neon_gemm"
SMALL_C_FILE = "tc_neon_small_c"
ADD_FILE = "tc_neon_add"
SOFTMAX_FILE = "tc_neon_softmax"
SMALL_C_MAX_IN_C = 4
SMALL_C_MAX_LANES = 16  # a kernel row of at most 64 bytes: 4 loads of 16 per pixel and row
SMALL_C_MAX_IMAGE = 64 * 1024  # the padded image staged on the stack
CH_BLOCK = 16  # output channels per register tile (4 vectors of 4)


@dataclass
class NeonLayer:
    kind: str  # "gemm" (conv groups 1, fully connected) or "depthwise"
    consts: dict[str, np.ndarray]
    params: dict = field(default_factory=dict)
    kernel_files: tuple[str, ...] = (GEMM_FILE,)
    i8mm: bool = False
    template: str = "ops/neon/layer.c.j2"
    defs_template: str | None = None  # file-scope C: the layer's own function


def has_neon(target: Target) -> bool:
    return "neon" in target.backends


def _round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def _folded_bias(node: Node, graph: Graph, w2: np.ndarray, bias_index: int) -> np.ndarray:
    """bias + input_offset * sum(w) per output channel, int32 (the accumulator check in
    ops/conv.py bounds |bias| + 255 * sum|w| below 2^31, so this cannot wrap)."""
    q = node.qattrs
    b = graph.tensors[node.inputs[bias_index]].data.astype(np.int64) if q["has_bias"] else np.zeros(w2.shape[0], np.int64)
    folded = b + int(q["input_offset"]) * w2.astype(np.int64).sum(axis=1)
    assert np.abs(folded).max(initial=0) < 2**31
    return folded.astype(np.int32)


def _requant_records(q: dict, channels: int, padded: int | None = None) -> np.ndarray:
    """[ceil(padded/4)][3][4] int32: multiplier, left shift, -right shift for every 4 channels
    (channels past `channels` get a harmless record: multiplier 0)."""
    c4 = _round_up(padded or channels, 4)
    mult = np.zeros(c4, np.int64)
    shift = np.zeros(c4, np.int64)
    mult[:channels] = q["multiplier"]
    shift[:channels] = q["shift"]
    left = np.maximum(shift, 0)
    neg_right = np.minimum(shift, 0)
    return np.stack([mult, left, neg_right], axis=0).reshape(3, c4 // 4, 4).transpose(1, 0, 2).astype(np.int32).copy()


def _pad_channels(a: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((c, *a.shape[1:]), a.dtype)
    out[: a.shape[0]] = a
    return out


def _channel_blocks(w2: np.ndarray, kp: int) -> list[np.ndarray]:
    """w2 [C][K] zero-padded to [C rounded up to 4][kp], cut into blocks of up to CH_BLOCK channels."""
    c, k = w2.shape
    c4 = _round_up(c, 4)
    wp = np.zeros((c4, kp), np.int8)
    wp[:c, :k] = w2
    return [wp[c0 : c0 + CH_BLOCK] for c0 in range(0, c4, CH_BLOCK)]


def _pack_gemm_weights(w2: np.ndarray, kp: int) -> np.ndarray:
    """w2 [C][K] → blocks of up to 16 channels, each [kp/4][nb][4]: one 16-byte vector holds 4
    channels x 4 consecutive k, the order the SDOT-by-element tiles consume."""
    return np.concatenate([blk.reshape(len(blk), kp // 4, 4).transpose(1, 0, 2).reshape(-1) for blk in _channel_blocks(w2, kp)])


def _gemm(node: Node, graph: Graph, w2: np.ndarray, k_align: int, i8mm: bool) -> NeonLayer:
    c, k = w2.shape
    kp = _round_up(k, k_align)
    bias = _pad_channels(_folded_bias(node, graph, w2, 2), _round_up(c, 4))
    consts = {
        "neon_w": _pack_i8mm_weights(w2, kp) if i8mm else _pack_gemm_weights(w2, kp),
        # SMMLA accumulates 2 pixels x 2 channels: bias per channel pair as [b0, b1, b0, b1]
        "neon_bias": np.tile(bias.reshape(-1, 2), (1, 2)).reshape(-1) if i8mm else bias,
        "neon_rq": _requant_records(node.qattrs, c),
    }
    left = int((np.asarray(node.qattrs["shift"]) > 0).any())
    return NeonLayer("gemm", consts, {"k": k, "kp": kp, "left": left, "mmla": int(i8mm)}, i8mm=i8mm)


def _pack_i8mm_weights(w2: np.ndarray, kp: int) -> np.ndarray:
    """For SMMLA tiles (2 pixels x 2 channels per 16-byte pair): blocks of up to 16 channels, each
    [kp/8][nb/2][2][8]: a vector holds 2 channels x 8 consecutive k (the 2x8 operand)."""
    return np.concatenate([blk.reshape(len(blk) // 2, 2, kp // 8, 8).transpose(2, 0, 1, 3).reshape(-1)
                           for blk in _channel_blocks(w2, kp)])  # fmt: skip


def _depthwise(node: Node, graph: Graph) -> NeonLayer:
    w = graph.tensors[node.inputs[1]].data  # [C][kh][kw][1]
    c, kh, kw, _ = w.shape
    cp = _round_up(c, 16)
    taps = np.zeros((kh * kw, cp), np.int8)  # [tap][C]: 16 channels of one tap per vector load
    taps[:, :c] = w.reshape(c, kh * kw).T
    consts = {
        "neon_w": taps.reshape(-1),
        "neon_bias": _pad_channels(_folded_bias(node, graph, w.reshape(c, -1), 2), cp),
        "neon_rq": _requant_records(node.qattrs, c, cp),
    }
    return NeonLayer("depthwise", consts, {"cp": cp, "left": int((np.asarray(node.qattrs["shift"]) > 0).any())})


def _small_c(node: Node, graph: Graph) -> NeonLayer | None:
    """A conv (groups 1) with at most 4 input channels for tc_neon_small_c.h, or None when a kernel
    row or the staged padded image is too large for it (the GEMM then takes the layer)."""
    w = graph.tensors[node.inputs[1]].data  # [C][kh][kw][cin]
    cout, kh, kw, cin = w.shape
    _, oh, ow, _ = graph.tensors[node.outputs[0]].shape
    (sh, sw), (dh, dw) = node.attrs["strides"], node.attrs["dilations"]
    lanes = -(-((kw - 1) * dw * cin + cin) // 4)
    img_h, img_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    if lanes > SMALL_C_MAX_LANES or img_h * img_w * cin + 64 > SMALL_C_MAX_IMAGE:
        return None
    consts = {
        "neon_w": _pack_small_c_weights(w, lanes, dw),
        "neon_bias": _pad_channels(_folded_bias(node, graph, w.reshape(cout, -1), 2), _round_up(cout, 4)),
        "neon_rq": _requant_records(node.qattrs, cout),
    }
    params = {"lanes": lanes, "img_h": img_h, "img_w": img_w, "left": int((np.asarray(node.qattrs["shift"]) > 0).any())}
    return NeonLayer("small_c", consts, params, (SMALL_C_FILE,), template="ops/neon/small_c.c.j2",
                     defs_template="ops/neon/small_c_defs.c.j2")


def _pack_small_c_weights(w: np.ndarray, lanes: int, dw: int) -> np.ndarray:
    """w [C][kh][kw][cin] → blocks of up to 16 channels (16, then the rest padded to 4), each
    [kh][lanes][nb][4]: kernel row ky as the 4 * lanes input bytes a window row spans from its
    first tap (tap kx at byte kx * dw * cin), zero where the bytes are not a tap of the window."""
    c, kh, kw, cin = w.shape
    rows = np.zeros((_round_up(c, 4), kh, 4 * lanes), np.int8)
    for kx in range(kw):
        rows[:c, :, kx * dw * cin : kx * dw * cin + cin] = w[:, :, kx, :]
    blocks = []
    for c0 in range(0, rows.shape[0], CH_BLOCK):
        blk = rows[c0 : c0 + CH_BLOCK]  # [nb][kh][4 * lanes]
        blocks.append(blk.reshape(blk.shape[0], kh, lanes, 4).transpose(1, 2, 0, 3).reshape(-1))
    return np.concatenate(blocks)


def specialise(node: Node, graph: Graph, target: Target) -> NeonLayer | None:
    if not has_neon(target) or not node.qattrs:
        return None
    i8mm = "neon-i8mm" in target.backends
    if node.op == "conv2d":
        w = graph.tensors[node.inputs[1]].data
        cout, kh, kw, cin_g = w.shape
        groups = node.attrs["groups"]
        cin = graph.tensors[node.inputs[0]].shape[3]
        if groups == 1 and cin <= SMALL_C_MAX_IN_C:
            small = _small_c(node, graph)
            if small is not None:
                return small
        if groups == 1:
            one_pixel = graph.tensors[node.outputs[0]].shape[1] * graph.tensors[node.outputs[0]].shape[2] == 1
            return _gemm(node, graph, w.reshape(cout, -1), 16, i8mm and not one_pixel)
        if groups == cin and cout == cin and w.min() > -128:  # int16 pair sums need |w| <= 127
            return _depthwise(node, graph)
        return None
    if node.op == "fully_connected":
        rows = int(np.prod(graph.tensors[node.inputs[0]].shape)) // graph.tensors[node.inputs[1]].shape[1]
        if rows != 1:
            return None
        return _gemm(node, graph, graph.tensors[node.inputs[1]].data, 16, False)  # one pixel: SDOT (SMMLA would waste half)
    return None


def _softmax_table(q: dict) -> np.ndarray:
    """[2][256] int32 for tc_neon_softmax.c: for d = row max - x, the exp the reference computes
    (ops/softmax.py, 0 where -d < diff_min) and its term of the Q12 sum (exp rounded by 2^12)."""
    diff = -np.arange(256, dtype=np.int64)
    valid = diff >= q["diff_min"]
    rescaled = multiply_by_quantized_multiplier(np.where(valid, diff, 0), q["input_multiplier"], q["input_left_shift"])
    exp = np.where(valid, exp_on_negative_values(rescaled), 0)
    terms = np.where(valid, (exp + (1 << (ACCUMULATION_INTEGER_BITS - 1))) >> ACCUMULATION_INTEGER_BITS, 0)  # exp >= 0: half up = half away
    return np.stack([exp, terms]).astype(np.int32).reshape(-1)


def _flat_add(node: Node, graph: Graph) -> bool:
    """An Add that tc_neon_add.h covers: nothing broadcasts, every shift a right shift (or none),
    left_shift in 17..23 (so (q + offset) << (left_shift - 16) fits int16, exact terms included)."""
    shapes = {graph.tensors[t].shape for t in (*node.inputs, node.outputs[0])}
    q = node.qattrs
    shifts = (q["input1_shift"], q["input2_shift"], q["output_shift"])
    return len(shapes) == 1 and max(shifts) <= 0 and 17 <= q["left_shift"] <= 23


def variant(node: Node, graph: Graph, target: Target) -> Variant | None:
    """The layer's NEON backend variant (template ops/neon/layer.c.j2, context `neon`), or None."""
    if node.op == "add" and has_neon(target):
        if _flat_add(node, graph):  # kernels/neon/tc_neon_add.h, the layer's constants compiled in
            return backend_layer("neon_add_flat", "ops/neon/add.c.j2", (ADD_FILE,), defs_template="ops/neon/add_defs.c.j2")
        # kernels/neon/tc_elementwise.c: 16 elements per step, exact (the scalar table variant of
        # Op.variants costs more instructions per element here)
        return backend_layer("neon_add", "ops/add.c.j2", ("tc_elementwise",))
    if node.op == "softmax" and has_neon(target) and node.qattrs:  # kernels/neon/tc_neon_softmax.c
        return backend_layer("neon_softmax", "ops/neon/softmax.c.j2", (SOFTMAX_FILE,), {"neon_exp": _softmax_table(node.qattrs)})
    nl = specialise(node, graph, target)
    if nl is None:
        return None
    name = f"neon_{nl.kind}" + ("_i8mm" if nl.i8mm else "")
    return backend_layer(name, nl.template, nl.kernel_files, nl.consts, {"neon": nl}, defs_template=nl.defs_template)
