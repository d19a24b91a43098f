"""Validate ONNX attributes as the operator spec states them, before anything else reads them.

Runs on the raw graph, before onnx's shape inference (which trusts attributes and can crash on
absurd ones) and before the converters (which would otherwise index, wrap around or silently
accept them). Rules that need a value's rank (axis ranges, Transpose's perm) are checked by the
converters, which know it; see `check_axis` / `check_perm`.
"""

from __future__ import annotations

import onnx

from tinyconv.errors import ModelError, UnsupportedError

AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
MAX_WINDOW = 1 << 16  # kernel sizes, strides and dilations beyond this are refused (no such model is real)
WINDOW_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "QLinearConv", "QLinearAveragePool", "LpPool"}
KERNEL_REQUIRED = {"MaxPool", "AveragePool", "QLinearAveragePool", "LpPool"}
AXIS_REQUIRED = {"Concat", "QLinearConcat"}


def where(node: onnx.NodeProto) -> str:
    return f"{node.op_type} '{node.name or (node.output[0] if node.output else '?')}'"


def _fail(node, what: str, hint: str | None = None, cls=ModelError):
    raise cls(f"{where(node)}: {what}", hint=hint, node=node.name)


WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "QLinearConv": 3}


def check_attributes(nodes, initializer_dims: dict[str, list[int]] | None = None) -> None:
    """`initializer_dims`: name → dims of the constant inputs (a conv's spatial rank is its weight's rank - 2)."""
    dims = initializer_dims or {}
    for node in nodes:
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            continue
        a = {}
        for attr in node.attribute:
            try:
                a[attr.name] = onnx.helper.get_attribute_value(attr)
            except Exception:  # noqa: BLE001 - an attribute protobuf cannot decode
                _fail(node, f"attribute '{attr.name}' cannot be read")
        if node.op_type in WINDOW_OPS:
            k = WEIGHT_INPUT.get(node.op_type)
            w = dims.get(node.input[k]) if k is not None and len(node.input) > k else None
            _check_window(node, a, len(w) - 2 if w is not None and len(w) > 2 else None)
        if node.op_type in AXIS_REQUIRED and "axis" not in a:
            _fail(node, "the required attribute 'axis' is missing")


def _ints(node, a: dict, name: str) -> list[int] | None:
    v = a.get(name)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, int) for x in v):
        _fail(node, f"attribute '{name}' must be a list of integers")
    return v


def _check_window(node, a: dict, spatial: int | None) -> None:
    kernel = _ints(node, a, "kernel_shape")
    if kernel is None and node.op_type in KERNEL_REQUIRED:
        _fail(node, "the required attribute 'kernel_shape' is missing")
    if spatial is None and kernel is not None:
        spatial = len(kernel)
    for name in ("kernel_shape", "strides", "dilations"):
        v = _ints(node, a, name)
        if v is None:
            continue
        if spatial is None:
            spatial = len(v)
        if not v or len(v) != spatial:
            _fail(node, f"'{name}' has {len(v)} entries, expected one per spatial axis ({spatial})")
        if any(x < 1 for x in v):
            _fail(node, f"'{name}' = {v}: every entry must be at least 1")
        if any(x > MAX_WINDOW for x in v):
            _fail(node, f"'{name}' = {v} is out of range (at most {MAX_WINDOW})", cls=UnsupportedError)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode("utf-8", "replace") if isinstance(auto, bytes) else str(auto)
    if auto not in AUTO_PAD:
        _fail(node, f"auto_pad '{auto}' is not one of {', '.join(AUTO_PAD)}")
    pads = _ints(node, a, "pads")
    if pads is not None:
        if spatial is not None and len(pads) != 2 * spatial:
            _fail(node, f"'pads' has {len(pads)} entries, expected {2 * spatial} (begin and end of each spatial axis)")
        if len(pads) % 2 or not pads:
            _fail(node, f"'pads' has {len(pads)} entries, expected two per spatial axis")
        if any(p < 0 for p in pads):
            _fail(node, f"'pads' = {pads}: negative padding is not supported", hint="crop with Slice instead", cls=UnsupportedError)
        if any(p > MAX_WINDOW for p in pads):
            _fail(node, f"'pads' = {pads} is out of range (at most {MAX_WINDOW})", cls=UnsupportedError)
    for name in ("output_padding", "output_shape"):
        v = _ints(node, a, name)
        if v is not None and any(x < 0 or x > 1 << 20 for x in v):
            _fail(node, f"'{name}' = {v} is out of range")
    group = a.get("group", 1)
    if not isinstance(group, int) or group < 1:
        _fail(node, f"group = {group}: must be at least 1")


def check_axis(node, axis, rank: int, name: str = "axis") -> int:
    """An ONNX axis attribute in [-rank, rank-1] as a non-negative axis (the spec's range)."""
    if not isinstance(axis, int) or not -rank <= axis < rank:
        _fail(node, f"{name} {axis} is out of range for a rank-{rank} input (valid: {-rank} to {rank - 1})")
    return axis % rank


def check_perm(node, perm, rank: int) -> list[int]:
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        _fail(node, f"perm {perm} is not a permutation of the {rank} axes of its input")
    return perm
