"""Reading an ONNX file into a checked, statically shaped, constant-folded form.

Everything a user can get wrong about the file itself is caught here with a one-line error that
names the node: unreadable or truncated file, opset out of range, undefined input (a missing
initializer), a cycle, dynamic or absurd shapes. The op converters (frontend/onnx.py) then only
see well-formed graphs whose every value has a known static shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tinyconv.errors import ModelError, UnsupportedError
from tinyconv.frontend.onnx_attrs import check_attributes, where
from tinyconv.frontend.onnx_isolated import infer_shapes

OPSET_MIN, OPSET_MAX = 11, 21
MAX_TENSOR_ELEMENTS = 1 << 28  # 256 Mi elements: beyond any microcontroller or phone arena
# Ops evaluated at compile time when all their inputs are constant (shape arithmetic, weight
# dequantization in weight-only-quantized models, ...). Anything else with constant inputs too.
NEVER_FOLD: set[str] = set()


@dataclass
class OnnxModel:
    path: Path
    graph: onnx.GraphProto
    opset: int
    nodes: list[onnx.NodeProto]  # topological order, constant-producing nodes removed
    consts: dict[str, np.ndarray]  # initializers and folded values
    shapes: dict[str, tuple[int, ...]]  # every non-constant value
    dtypes: dict[str, int] = field(default_factory=dict)  # onnx.TensorProto elem types
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dequantized: list[onnx.NodeProto] = field(default_factory=list)  # folded DequantizeLinear(const)


def read(source, supported: set[str] | frozenset[str] = frozenset()) -> OnnxModel:
    """`source`: a path, or an onnx.ModelProto already in memory (tests, notebooks)."""
    if isinstance(source, onnx.ModelProto):
        path, model = Path(f"{source.graph.name or 'model'}.onnx"), onnx.ModelProto()
        model.CopyFrom(source)
        return _read_model(path, model, supported)
    path = Path(source)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError, or RuntimeWarning-ish errors on truncation
        raise ModelError(f"'{path.name}' is not a readable ONNX file ({type(e).__name__}: {str(e)[:120]})",
                         hint="the file may be truncated or not ONNX") from None  # fmt: skip
    return _read_model(path, model, supported)


def _read_model(path: Path, model: onnx.ModelProto, supported) -> OnnxModel:
    if not model.graph.node:
        raise ModelError(f"'{path.name}' has no nodes (is it an ONNX model?)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ModelError(f"'{path.name}' imports no default-domain opset")
    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise UnsupportedError(f"'{path.name}' uses opset {opset}; tinyconv reads opsets {OPSET_MIN} to {OPSET_MAX}",
                               hint="convert it with onnx.version_converter")  # fmt: skip
    g = model.graph
    check_attributes(g.node, {i.name: list(i.dims) for i in g.initializer})
    init_names = {i.name for i in g.initializer}
    notes: list[str] = []
    inputs = [i for i in g.input if i.name not in init_names]
    for vi in inputs:
        _fix_input_dims(vi, notes)
    nodes = _topological(g, init_names, {i.name for i in inputs})
    try:
        inferred = infer_shapes(model, path.name, check_type=True, strict_mode=True, data_prop=True)
    except ModelError:
        raise
    except Exception as e:
        # Strict inference also fails where a model's declared shape disagrees with ONNX's own rule
        # (e.g. pooling with ceil_mode). tinyconv computes every shape itself and checks it against
        # the declared one, so continue with what lenient inference gives and say so.
        try:
            inferred = infer_shapes(model, path.name, check_type=False, strict_mode=False, data_prop=True)
        except RuntimeError as e2:
            raise ModelError(f"'{path.name}': ONNX shape inference fails on this model: {_first_line(e2)}") from None
        notes.append(f"ONNX shape inference complained ({_first_line(e)[:160]}); tinyconv's own shape rules were used")
    consts = {}
    for init in g.initializer:
        try:
            consts[init.name] = numpy_helper.to_array(init)
        except Exception as e:
            raise ModelError(f"initializer '{init.name}' cannot be read: {_first_line(e)}") from None
    shapes, dtypes = _value_types(inferred.graph)
    m = OnnxModel(path, g, opset, nodes, consts, shapes, dtypes, [i.name for i in inputs], [o.name for o in g.output], notes)
    fold_constants(m)
    _fold_to_fixpoint(m, model)
    if supported:  # after folding: shape arithmetic on static shapes (Gather, Ceil, ConstantOfShape, ...) is gone
        _check_supported(m.nodes, supported)
    _check_shapes(m)
    return m


def _value_types(graph: onnx.GraphProto) -> tuple[dict, dict]:
    shapes, dtypes = {}, {}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        dtypes[vi.name] = tt.elem_type
    return shapes, dtypes


def _fold_to_fixpoint(m: OnnxModel, model: onnx.ModelProto, rounds: int = 8) -> None:
    """A Shape whose input's shape inference could not know before folding (it came from a Reshape
    fed by folded shape arithmetic, as in ShuffleNet's repeated channel shuffles) is known once the
    folded values are constants: infer again on the folded graph and fold what that reveals."""
    for _ in range(rounds):
        if not any(n.op_type in ("Shape", "Size") and -1 in m.shapes.get(n.input[0], (-1,)) for n in m.nodes):
            return
        folded = onnx.ModelProto()
        folded.CopyFrom(model)
        g = folded.graph
        del g.node[:], g.initializer[:], g.value_info[:]
        g.node.extend(m.nodes)
        used = {i for n in m.nodes for i in n.input}
        g.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in m.consts.items() if k in used)
        try:
            inferred = infer_shapes(folded, m.path.name, check_type=False, strict_mode=False, data_prop=True)
        except RuntimeError:
            return
        shapes, dtypes = _value_types(inferred.graph)
        m.shapes.update({k: v for k, v in shapes.items() if -1 not in v or k not in m.shapes})
        m.dtypes.update(dtypes)
        before = len(m.nodes)
        fold_constants(m)
        if len(m.nodes) == before:
            return


def _check_supported(nodes, supported) -> None:
    """Name every node left after constant folding that tinyconv cannot lower, all at once."""
    from tinyconv.frontend.onnx import MS_OPS

    bad = [n for n in nodes if not (n.domain in ("", "ai.onnx") or (n.domain == "com.microsoft" and n.op_type in MS_OPS)) or n.op_type not in supported]
    if bad:
        listed = ", ".join(where(n) + (f" (domain {n.domain})" if n.domain not in ("", "ai.onnx") else "") for n in bad[:8])
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        raise UnsupportedError(f"unsupported op{'s' if len(bad) > 1 else ''}: {listed}{more}",
                               hint="`tinyconv ops` lists the supported ops and their limits; rewrite or remove these nodes",
                               node=bad[0].name)  # fmt: skip


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return (s[-1] if s else type(e).__name__)[:200]


def _fix_input_dims(vi: onnx.ValueInfoProto, notes: list[str]) -> None:
    dims = vi.type.tensor_type.shape.dim
    if not vi.type.tensor_type.HasField("shape"):
        raise ModelError(f"graph input '{vi.name}' has no shape", hint="export the model with static input shapes")
    if not dims:
        raise UnsupportedError(f"graph input '{vi.name}' is a scalar", hint="tinyconv compiles models whose input has a batch axis")
    for k, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            continue
        if k == 0:
            label = d.dim_param or "?"
            d.Clear()
            d.dim_value = 1
            notes.append(f"input '{vi.name}': batch dimension '{label}' fixed to 1")
            continue
        raise ModelError(f"graph input '{vi.name}' has dynamic dimension {k} ('{d.dim_param or '?'}')",
                         hint="only the batch dimension may be symbolic; export with a static shape")  # fmt: skip


def _topological(g: onnx.GraphProto, init_names: set[str], input_names: set[str]) -> list[onnx.NodeProto]:
    """Nodes in dependency order; a missing value or a cycle is a one-line error naming the node."""
    producers: dict[str, int] = {}
    for k, n in enumerate(g.node):
        for o in n.output:
            if o:
                producers[o] = k
    known = init_names | input_names
    for n in g.node:
        for i in n.input:
            if i and i not in known and i not in producers:
                raise ModelError(f"{where(n)}: input '{i}' is not defined (no initializer, graph input or node output has that name)",
                                 hint="the model may be missing an initializer", node=n.name)  # fmt: skip
    for o in g.output:
        if o.name not in producers and o.name not in known:
            raise ModelError(f"graph output '{o.name}' is not produced by any node")
    state = [0] * len(g.node)  # 0 new, 1 on stack, 2 done
    order: list[int] = []
    for start in range(len(g.node)):
        if state[start]:
            continue
        stack = [(start, iter(g.node[start].input))]
        state[start] = 1
        while stack:
            k, it = stack[-1]
            nxt = next((i for i in it if i in producers), None)
            if nxt is None:
                stack.pop()
                state[k] = 2
                order.append(k)
                continue
            p = producers[nxt]
            if state[p] == 1:
                cycle = [where(g.node[j]) for j, _ in stack[[s[0] for s in stack].index(p):]]
                raise ModelError(f"the graph has a cycle: {' → '.join(cycle)} → {where(g.node[p])}", node=g.node[p].name)
            if state[p] == 0:
                state[p] = 1
                stack.append((p, iter(g.node[p].input)))
    return [g.node[k] for k in order]


def _broadcast_axis(p: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    if p.size == 1:
        return p.reshape(())
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    return p.reshape(shape)


def _quant_linear(node: onnx.NodeProto, values: list[np.ndarray | None]) -> np.ndarray:
    """(De)QuantizeLinear in NumPy: onnx.reference lacks the older opset versions of these."""
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    x, scale = values[0], values[1]
    zp = values[2] if len(values) > 2 and values[2] is not None else np.zeros((), np.uint8)
    s = _broadcast_axis(scale.astype(np.float32), x, axis)
    z = _broadcast_axis(zp.astype(np.int64), x, axis)
    if node.op_type == "DequantizeLinear":
        return ((x.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)
    info = np.iinfo(zp.dtype)
    return np.clip(np.rint(x.astype(np.float32) / s) + z, info.min, info.max).astype(zp.dtype)


def _evaluate(node: onnx.NodeProto, values: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        return [_quant_linear(node, values)]

    names = [f"i{k}" if v is not None else "" for k, v in enumerate(values)]
    n = onnx.helper.make_node(node.op_type, names, [f"o{k}" for k in range(len(node.output))], domain=node.domain)
    n.attribute.extend(node.attribute)
    ins = [onnx.helper.make_tensor_value_info(nm, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for nm, v in zip(names, values) if v is not None]  # fmt: skip
    outs = [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in n.output]
    model = onnx.helper.make_model(onnx.helper.make_graph([n], "fold", ins, outs), opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {nm: v for nm, v in zip(names, values) if v is not None}
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def fold_constants(m: OnnxModel) -> None:
    """Evaluate every node whose inputs are all known at compile time (Shape of a static tensor too)."""
    kept = []
    for node in m.nodes:
        if node.op_type == "Constant":
            (out,) = node.output
            m.consts[out] = _evaluate(node, [], m.opset)[0]
            continue
        if node.op_type == "Shape" and node.input[0] in m.shapes and -1 not in m.shapes[node.input[0]]:
            shape = np.asarray(m.shapes[node.input[0]], np.int64)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            m.consts[node.output[0]] = shape[attrs.get("start", 0) : attrs.get("end", len(shape))]
            continue
        real_inputs = [i for i in node.input if i]
        if node.op_type not in NEVER_FOLD and real_inputs and all(i in m.consts for i in real_inputs) and node.domain in ("", "ai.onnx"):
            try:
                outs = _evaluate(node, [m.consts[i] if i else None for i in node.input], m.opset)
            except Exception as e:
                raise ModelError(f"{where(node)}: cannot evaluate this constant expression: {_first_line(e)}", node=node.name) from None
            for o, v in zip(node.output, outs):
                m.consts[o] = v
            if node.op_type == "DequantizeLinear":
                m.dequantized.append(node)  # QDQ weights: the importer keeps their integers
            continue
        kept.append(node)
    m.nodes = kept


def _check_shapes(m: OnnxModel) -> None:
    for node in m.nodes:
        for name in list(node.input) + list(node.output):
            if not name or name in m.consts:
                continue
            shape = m.shapes.get(name)
            if shape is None or -1 in shape:
                continue  # the converter computes it from the ops' own shape rules
            if any(d <= 0 for d in shape) or int(np.prod(shape, dtype=np.int64)) > MAX_TENSOR_ELEMENTS:
                raise ModelError(f"{where(node)}: tensor '{name}' has an unusable shape {list(shape)}", node=node.name)
    for name, v in m.consts.items():
        if v.size > MAX_TENSOR_ELEMENTS:
            raise ModelError(f"constant '{name}' has {v.size:,} elements: too large for any target")
