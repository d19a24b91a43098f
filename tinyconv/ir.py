"""The one data model every stage reads: a static-shape dataflow graph of canonical ops.

Layout contract (the CMSIS-NN / TFLite convention):
  * activations are NHWC; a 1-D signal [N, C, L] in ONNX is [N, 1, L, C] here;
  * conv weights are OHWI: [Cout, KH, KW, Cin / groups] (depthwise is groups == Cin);
  * fully-connected weights are [O, K]; the input is flattened to [N, K].

A graph is "float" (activations float32, no quant params) after the frontend and passes, and
"int8" after quantization: every activation tensor then has dtype int8 and QuantParams, weights
are int8 (per output channel), biases int32, and every node has had `prepare` fill
`node.qattrs` with the integer parameters its kernel needs (multipliers, shifts, clamps, LUTs).
The reference and the code generator read only those integers, so an op's int8 meaning is
defined once, in `tinyconv/ops/`.

Canonical ops and their attrs (shape rules and arithmetic live in tinyconv/ops/):
  conv2d          strides (sh, sw), dilations (dh, dw), pads (top, left, bottom, right), groups, act
  conv_transpose2d strides, pads, output_padding, act           (weights [Cout, KH, KW, Cin])
  fully_connected act                                             inputs x, w, b
  max_pool2d      kernel (kh, kw), strides, pads, act
  avg_pool2d      kernel, strides, pads, count_include_pad
  mean            axes (tuple), keepdims                          (global / spatial average)
  global_max_pool keepdims
  add, mul        act                                             numpy broadcasting
  concat          axis
  split           axis, sizes                                     several outputs
  slice           starts, ends, axes, steps
  pad             pads (per axis, begin..., end...), value (float)
  reshape         shape
  transpose       perm
  resize_nearest  scales (h, w)
  softmax         axis (always the last), beta
  unary           fn in {relu, sigmoid, tanh, hardsigmoid, hardswish, leakyrelu, clip}, params
  prelu           inputs x, slope (per channel)

`act` is None or a (lo, hi) float clamp fused from Relu/Relu6/Clip; after quantization it becomes
the integer act_min / act_max in qattrs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyconv.errors import ModelError


@dataclass
class QuantParams:
    """real = scale * (q - zero_point); `axis` is set for per-channel (weights) params."""

    scale: np.ndarray  # float32, shape () or (C,)
    zero_point: np.ndarray  # int32, same shape as scale
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> "QuantParams":
        return QuantParams(np.asarray(scale, np.float32), np.asarray(zero_point, np.int32))

    @property
    def is_per_tensor(self) -> bool:
        return self.scale.ndim == 0 or self.scale.size == 1

    def scalar(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor parameter set."""
        if not self.is_per_tensor:
            raise ValueError("per-channel quantization has no single scale")
        return float(self.scale.reshape(-1)[0]), int(self.zero_point.reshape(-1)[0])


@dataclass
class IOLayout:
    """How a graph input/output relates to the ONNX value the user sees.

    onnx_value = ir_value.transpose(perm).reshape(onnx_shape)
    """

    onnx_shape: tuple[int, ...]
    perm: tuple[int, ...]

    def to_ir(self, onnx_value: np.ndarray, ir_shape: tuple[int, ...]) -> np.ndarray:
        inv = np.argsort(self.perm)
        permuted_shape = tuple(ir_shape[p] for p in self.perm)
        return np.ascontiguousarray(onnx_value.reshape(permuted_shape).transpose(inv))

    def to_onnx(self, ir_value: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(ir_value.transpose(self.perm).reshape(self.onnx_shape))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"  # float32 | int8 | int32
    data: np.ndarray | None = None  # set for constants (weights, biases, LUTs)
    quant: QuantParams | None = None
    # Integer data a pre-quantized (QDQ) model gives for this constant, with its params in `quant`;
    # quantization uses it instead of quantizing the float `data` (which stays for the float reference).
    qdata: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    qattrs: dict[str, Any] = field(default_factory=dict)  # integer params, filled by prepare
    origin: str = ""  # "OpType 'onnx_node_name'" for error messages

    def where(self) -> str:
        return self.origin or f"{self.op} '{self.name}'"


@dataclass
class Graph:
    name: str = "model"
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)  # topological order
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    io_layout: dict[str, IOLayout] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # things the user should be told (e.g. batch fixed to 1)
    # Activation quantization a QDQ model prescribes (tensor → params); used instead of calibration.
    given_quant: dict[str, QuantParams] = field(default_factory=dict)

    # -- construction helpers -------------------------------------------------------------
    def add_tensor(self, t: Tensor) -> Tensor:
        if t.name in self.tensors:
            raise ValueError(f"tensor '{t.name}' defined twice")
        self.tensors[t.name] = t
        return t

    def add_const(self, name: str, data: np.ndarray, quant: QuantParams | None = None) -> Tensor:
        name = self.unique_name(name)
        data = np.ascontiguousarray(data)
        return self.add_tensor(Tensor(name, tuple(data.shape), str(data.dtype), data, quant))

    def unique_name(self, base: str) -> str:
        if base not in self.tensors:
            return base
        i = 1
        while f"{base}_{i}" in self.tensors:
            i += 1
        return f"{base}_{i}"

    # -- queries -----------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def activations(self) -> list[Tensor]:
        """Non-constant tensors: what the memory planner places in the arena."""
        return [t for t in self.tensors.values() if not t.is_const]

    def is_quantized(self) -> bool:
        return all(self.tensors[n].dtype == "int8" for n in self.inputs + self.outputs)

    def prune(self) -> None:
        """Drop nodes whose outputs nobody needs and tensors nobody references."""
        needed = set(self.outputs)
        kept: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs):
                kept.append(n)
                needed.update(n.inputs)
        self.nodes = kept[::-1]
        used = needed | set(self.inputs)
        for o in [o for n in self.nodes for o in n.outputs]:
            used.add(o)
        self.tensors = {k: v for k, v in self.tensors.items() if k in used}

    def validate(self) -> None:
        """Fail on the first malformed node: unknown tensor, use before definition, cycle."""
        defined = set(self.inputs) | {k for k, t in self.tensors.items() if t.is_const}
        for n in self.nodes:
            for i in n.inputs:
                if i not in self.tensors:
                    raise ModelError(f"{n.where()}: input '{i}' is not defined", node=n.name)
                if i not in defined:
                    raise ModelError(f"{n.where()}: input '{i}' is used before it is computed", node=n.name)
            for o in n.outputs:
                if o not in self.tensors:
                    raise ModelError(f"{n.where()}: output '{o}' has no tensor", node=n.name)
                defined.add(o)
        for o in self.outputs:
            if o not in defined:
                raise ModelError(f"graph output '{o}' is never computed")
