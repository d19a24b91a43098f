"""What every op defines, in one place: shape rule, float reference, int8 preparation and reference,
MAC count and the kernel call the code generator emits.

Prepare (compile time) does every check and computes every integer parameter into `node.qattrs`;
`int8_ref` and the C kernels only do arithmetic with them (the TFLM Prepare/Eval split).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyconv.errors import ModelError, UnsupportedError
from tinyconv.ir import Graph, Node, QuantParams

# How an op's int8 output quantization is chosen when tinyconv quantizes a float graph.
CALIBRATED = "calibrated"  # from the observed float range of the output
SAME_AS_INPUT = "same_as_input"  # pure data movement / max: output params = input 0's params
FIXED = "fixed"  # defined by the op (softmax: 1/256, -128)


class Op:
    name: str = ""
    output_policy: str = CALIBRATED
    # Inputs holding weights quantized symmetric int8 per output channel, and the channel axis.
    weight_inputs: dict[int, int] = {}
    # Input holding an int32 bias (scale = input_scale * weight_scale[c]); None if the op has none.
    bias_input: int | None = None
    # Constant inputs the int8 op reads as float at compile time (e.g. a PReLU slope baked into a
    # lookup table); every other non-weight constant input is quantized per tensor.
    float_const_inputs: tuple[int, ...] = ()

    def infer_shapes(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def float_ref(self, node: Node, ins: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def fixed_output_quant(self, node: Node, graph: Graph) -> QuantParams:
        raise NotImplementedError

    def prepare(self, node: Node, graph: Graph) -> dict[str, Any]:
        """Integer parameters for the int8 kernel (stored in node.qattrs by the caller)."""
        return {}

    def int8_ref(self, node: Node, ins: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def macs(self, node: Node, graph: Graph) -> int:
        return 0

    # -- code generation -------------------------------------------------------------------------
    # Kernel sources the layer calls: codegen_templates/kernels/<backend>/<name>.{h,c}, falling
    # back to kernels/portable/ when a backend has no specialised version. Same API in every backend.
    kernel_files: tuple[str, ...] = ()

    def template(self, node: Node, graph: Graph) -> str:
        """The Jinja2 template (under codegen_templates/) that renders this layer's C call."""
        return f"ops/{self.name}.c.j2"

    def template_context(self, node: Node, graph: Graph) -> dict[str, Any]:
        """Extra compile-time values the template needs (copy plans, broadcast strides...)."""
        return {}

    def kernel_consts(self, node: Node, graph: Graph) -> dict[str, np.ndarray]:
        """Extra const arrays the call needs (per-channel multipliers, lookup tables...).

        Emitted as `static const` arrays; the template receives their C names in `consts[key]`.
        """
        return {}

    def variants(self, node: Node, graph: Graph, target) -> list:
        """Faster ways to emit this layer on `target` (tinyconv/specialise.py `Variant`s, fastest
        first); the template sees the chosen one as `variant` (its consts join `consts`). The
        generic call (no variant) is always the last resort."""
        return []

    def in_place_ok(self, node: Node) -> bool:
        """True when the output may share the arena bytes of input 0 (element-wise, same size)."""
        return False


OPS: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    OPS[cls.name] = cls()
    return cls


def op_of(node: Node) -> Op:
    try:
        return OPS[node.op]
    except KeyError:
        raise UnsupportedError(f"{node.where()}: tinyconv has no op '{node.op}'", node=node.name) from None


# -- helpers shared by op families -----------------------------------------------------------------


def qparams(graph: Graph, tensor: str) -> tuple[float, int]:
    q = graph.tensors[tensor].quant
    if q is None:
        raise ValueError(f"tensor '{tensor}' has no quantization parameters")
    return q.scalar()


def refuse_int32_overflow(node: Node, worst: int, what: str = "reduction") -> None:
    """Every accumulating op calls this at compile time with the largest |value| its int32
    accumulator can reach (C kernels and TFLM accumulate in int32; wrapping is UB in C)."""
    if worst >= 2**31:
        raise ModelError(f"{node.where()}: the int32 accumulator could overflow ({int(worst):,} ≥ 2^31)",
                         hint=f"split the layer or reduce its {what} size", node=node.name)  # fmt: skip


def max_centred_int8(zero_point: int) -> int:
    """The largest |q - zero_point| of an int8 q."""
    return max(127 - int(zero_point), int(zero_point) + 128)


def out_shape_1d(size: int, k: int, stride: int, dilation: int, pad_lo: int, pad_hi: int) -> int:
    return (size + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def windows(x: np.ndarray, kernel, strides, dilations, out_hw):
    """Yield (i, j, view) over kernel taps: view[n, oh, ow, c] = x[n, oh*sh + i*dh, ow*sw + j*dw, c]."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    oh, ow = out_hw
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            yield i, j, x[:, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw, :]


def pad_nhwc(x: np.ndarray, pads, value) -> np.ndarray:
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)
