"""Seeded mutation fuzzing of both importers.

Every case is a small valid seed model (ONNX built with onnx.helper, .tflite with TFLite's own
schema bindings) changed by one or a few mutations, byte-level (flips, 32-bit overwrites,
truncation) or structural (offsets, lengths, shapes, scales, options, attributes, names). A case
runs through `compile_model`, the function the CLI's `compile` calls, and must end in one of:

* "error":   a TinyconvError whose message is one line (the CLI prints it as `error: ...`);
* "ok":      a library that compiles with -Werror and whose sanitized (ASan/UBSan) native build
             equals the NumPy reference on every output byte.

Anything else is a defect and is returned as such: another exception type (a traceback in the
CLI), a multi-line message, a warning printed on the way, a case over its time limit (a hang),
a build or sanitizer failure, or an output byte differing from the reference.
"""

from __future__ import annotations

import copy
import random
import re
import signal
import struct
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyconv import native, reference
from tinyconv.errors import BuildError, TinyconvError
from tinyconv.escape import for_terminal
from tinyconv.pipeline import compile_model

CASE_TIMEOUT_S = 120
INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 64, 255, 256, -128, 127, 1 << 15, (1 << 31) - 1, -(1 << 31), 1 << 31, 1 << 33]
INTERESTING_FLOATS = [0.0, -1.0, 1e-45, 5e-324, 1e-30, 1e30, 1e38, float("inf"), -float("inf"), float("nan"), 3.4e38, 1e-8]
HOSTILE_NAMES = ["*/ x = 1; /*", '"; return 0; //', "a\\", "??/", "line\nbreak", "cr\rx", "nul\x00x", "\u202ebidi", "[/]", ":x:", "x" * 3000, ""]


@dataclass
class Outcome:
    # "error", "ok", or a defect: "traceback", "multiline", "warning", "hang", "build", "sanitizer", "mismatch", or
    # "names": a build failure of a library whose model names hold characters C strings and comments
    # cannot take verbatim (issue 11 item 4, escaping in codegen; told apart so other failures stand out)
    kind: str
    detail: str = ""

    @property
    def defect(self) -> bool:
        return self.kind not in ("error", "ok")


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def run_case(model_path: Path, calib: np.ndarray | None, workdir: Path, *, build: bool = True, n_inputs: int = 2, seed: int = 0) -> Outcome:
    """Compile one (possibly invalid) model as the CLI does; classify how it ended."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # The CLI silences numpy's RuntimeWarnings (overflow in a hostile model's float path is
            # reported by the checks as an `error:` line); any other warning is a defect.
            warnings.simplefilter("ignore", RuntimeWarning)
            for hidden in (DeprecationWarning, PendingDeprecationWarning):  # not shown to CLI users either
                warnings.simplefilter("ignore", hidden)
            try:  # numpy's default error settings, as in the CLI
                c = compile_model(model_path, calib=calib, outdir=workdir / "lib")
            except TinyconvError as e:
                msg = for_terminal(str(e), max_chars=4000)  # what the CLI prints after `error:` (names from the model escaped)
                if "\n" in msg or "\r" in msg:
                    return Outcome("multiline", msg[:500])
                if caught:
                    return Outcome("warning", f"{caught[0].category.__name__}: {caught[0].message} (then error: {msg[:200]})")
                return Outcome("error", msg)
            if caught:
                return Outcome("warning", f"{caught[0].category.__name__}: {caught[0].message}")
        if not build:
            return Outcome("ok", "not built")
        return _bit_exact(c, n_inputs, seed)
    except _Timeout:
        return Outcome("hang", f"over {CASE_TIMEOUT_S} s")
    except Exception:
        return Outcome("traceback", traceback.format_exc(limit=-3)[-1500:])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _bit_exact(c, n_inputs: int, seed: int) -> Outcome:
    (inp,) = c.graph.inputs
    shape = c.graph.tensors[inp].shape
    xs = np.random.default_rng(seed).integers(-128, 128, size=(n_inputs, *shape[1:]), dtype=np.int64).astype(np.int8)
    expected = reference.run_batch(c.graph, xs).reshape(n_inputs, -1)
    try:
        exe = native.build(c.library.outdir, sanitize=True, opt="-O1")  # -Wall -Wextra -Werror -pedantic
    except BuildError as e:
        return Outcome("names" if _hostile_names(c.graph) else "build", str(e)[:1500])
    try:
        got = native.run_batch(exe, xs, expected.shape[1], timeout=60)
    except BuildError as e:  # a sanitizer report (or a crash) at run time
        return Outcome("sanitizer", str(e)[:1500])
    mism = int(np.count_nonzero(got != expected))
    if mism:
        return Outcome("mismatch", f"{mism} of {expected.size} output bytes differ from the reference")
    return Outcome("ok", f"{expected.size} bytes bit-exact")


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_./:\- ]{0,200}")


def _hostile_names(graph) -> bool:
    names = [n.name for n in graph.nodes] + list(graph.tensors) + [n.origin or "" for n in graph.nodes]
    return any(not _PLAIN_NAME.fullmatch(x) or "*/" in x or "??" in x for x in names)


# -- byte-level mutations (both formats) ------------------------------------------------------------


def mutate_bytes(data: bytes, r: random.Random) -> bytes:
    b = bytearray(data)
    kind = r.choice(["flip", "byte", "int32", "truncate", "insert", "splice"])
    for _ in range(r.randint(1, 4)):
        if not b:
            break
        pos = r.randrange(len(b))
        if kind == "flip":
            b[pos] ^= 1 << r.randrange(8)
        elif kind == "byte":
            b[pos] = r.choice([0, 1, 0x7F, 0x80, 0xFF, r.randrange(256)])
        elif kind == "int32":
            pos -= pos % 4
            if pos + 4 <= len(b):
                b[pos : pos + 4] = struct.pack("<I", r.choice(INTERESTING_INTS) & 0xFFFFFFFF)
        elif kind == "truncate":
            del b[r.randrange(len(b)) :]
            break
        elif kind == "insert":
            b[pos:pos] = bytes(r.randrange(256) for _ in range(r.choice([1, 4, 16])))
        else:
            src = r.randrange(len(b))
            n = r.randint(1, 64)
            b[pos : pos + n] = b[src : src + n]
    return bytes(b)


# -- ONNX seeds and structural mutations ----------------------------------------------------------------


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def onnx_seeds() -> list[tuple[onnx.ModelProto, tuple[int, ...]]]:
    """Small float models covering the converters most attributes go through: (model, input shape)."""
    r = np.random.default_rng(1)
    w = lambda *s: r.normal(0, 0.3, s).astype(np.float32)  # noqa: E731
    seeds = []

    # conv → relu → maxpool → flatten → gemm → softmax (the digits pattern)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f1"], name="flat", axis=1),
        helper.make_node("Gemm", ["f1", "w2", "b2"], ["g1"], name="fc", transB=1),
        helper.make_node("Softmax", ["g1"], ["y"], name="softmax", axis=1),
    ]
    inits = [_init("w1", w(4, 1, 3, 3)), _init("b1", w(4)), _init("w2", w(5, 4 * 4 * 4)), _init("b2", w(5))]
    seeds.append((_model(nodes, inits, (1, 1, 8, 8), (1, 5)), (1, 8, 8)))

    # depthwise conv + batchnorm + clip, avgpool, add (residual), concat, transpose, global pool, reshape
    nodes = [
        helper.make_node("Conv", ["x", "wd"], ["d1"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("BatchNormalization", ["d1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"], name="bn", epsilon=1e-5),
        helper.make_node("Clip", ["n1", "lo", "hi"], ["k1"], name="relu6"),
        helper.make_node("Add", ["k1", "x"], ["a1"], name="residual"),
        helper.make_node("AveragePool", ["a1"], ["ap"], name="avg", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0]),
        helper.make_node("Concat", ["ap", "ap"], ["cc"], name="cat", axis=1),
        helper.make_node("Transpose", ["cc"], ["tr"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["tr"], ["tb"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["tb"], ["gp"], name="gap"),
        helper.make_node("Reshape", ["gp", "shape"], ["y"], name="reshape"),
    ]
    inits = [_init("wd", w(4, 1, 3, 3)), _init("bn_s", np.abs(w(4)) + 0.5), _init("bn_b", w(4)), _init("bn_m", w(4)), _init("bn_v", np.abs(w(4)) + 0.5),
             _init("lo", 0.0), _init("hi", 6.0), numpy_helper.from_array(np.array([1, 8], np.int64), "shape")]  # fmt: skip
    seeds.append((_model(nodes, inits, (1, 4, 6, 6), (1, 8)), (4, 6, 6)))

    # 1-D conv with dilation, pad, slice, mul by constant, sigmoid, reduce mean, matmul
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["pd"], name="pad", mode="constant"),
        helper.make_node("Conv", ["pd", "w3"], ["c3"], name="conv1d", kernel_shape=[3], dilations=[2], strides=[1]),
        helper.make_node("Slice", ["c3", "st", "en", "ax"], ["sl"], name="slice"),
        helper.make_node("Mul", ["sl", "m"], ["ml"], name="scale"),
        helper.make_node("Sigmoid", ["ml"], ["sg"], name="sigmoid"),
        helper.make_node("Flatten", ["sg"], ["fl"], name="flat", axis=1),
        helper.make_node("MatMul", ["fl", "w4"], ["y"], name="matmul"),
    ]
    inits = [numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 1], np.int64), "pads"), _init("w3", w(3, 2, 3)),
             numpy_helper.from_array(np.array([1], np.int64), "st"), numpy_helper.from_array(np.array([7], np.int64), "en"),
             numpy_helper.from_array(np.array([2], np.int64), "ax"), _init("m", w(1, 3, 1)), _init("w4", w(18, 4))]  # fmt: skip
    seeds.append((_model(nodes, inits, (1, 2, 10), (1, 4)), (2, 10)))
    return seeds


def _model(nodes, inits, in_shape, out_shape, opset=13) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], initializer=inits)  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _mutate_attribute(m: onnx.ModelProto, r: random.Random) -> None:
    node = r.choice(list(m.graph.node))
    choice = r.random()
    if node.attribute and choice < 0.25:
        del node.attribute[r.randrange(len(node.attribute))]
        return
    if choice < 0.4:
        name, value = r.choice([("auto_pad", r.choice(["BOGUS", "SAME_UPPER", "SAME_LOWER", "VALID", ""])), ("axis", r.choice(INTERESTING_INTS)),
                                ("pads", [r.choice(INTERESTING_INTS) for _ in range(r.choice([0, 2, 4, 6]))]), ("group", r.choice(INTERESTING_INTS)),
                                ("perm", [r.randrange(-1, 5) for _ in range(r.choice([3, 4, 5]))]), ("dilations", [r.choice([0, -1, 1, 2])] * 2),
                                ("kernel_shape", [r.choice([0, -1, 1, 3, 1 << 31])] * r.choice([1, 2, 3])), ("ceil_mode", r.choice([0, 1])),
                                ("strides", [r.choice([0, -1, 1, 2, 1 << 31])] * r.choice([1, 2, 3]))])  # fmt: skip
        for k, a in enumerate(node.attribute):
            if a.name == name:
                del node.attribute[k]
                break
        node.attribute.append(helper.make_attribute(name, value, attr_type=onnx.AttributeProto.INTS if isinstance(value, list) else None))
        return
    if not node.attribute:
        return
    a = r.choice(list(node.attribute))
    if a.type == onnx.AttributeProto.INT:
        a.i = r.choice(INTERESTING_INTS) % (1 << 63)
    elif a.type == onnx.AttributeProto.INTS and len(a.ints):
        k = r.randrange(len(a.ints))
        a.ints[k] = max(min(r.choice(INTERESTING_INTS), (1 << 62)), -(1 << 62))
        if r.random() < 0.3:
            del a.ints[r.randrange(len(a.ints))]
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = r.choice(INTERESTING_FLOATS)
    elif a.type == onnx.AttributeProto.STRING:
        a.s = r.choice([b"", b"BOGUS", b"constant", b"reflect"])


def _mutate_initializer(m: onnx.ModelProto, r: random.Random) -> None:
    init = r.choice(list(m.graph.initializer))
    arr = numpy_helper.to_array(init).copy()
    choice = r.random()
    if choice < 0.35 and arr.size:
        flat = arr.reshape(-1)
        if arr.dtype.kind == "f":
            flat[r.randrange(flat.size)] = r.choice(INTERESTING_FLOATS)
            if r.random() < 0.3:
                flat[:] = r.choice(INTERESTING_FLOATS)
        else:
            flat[r.randrange(flat.size)] = r.choice(INTERESTING_INTS) % (1 << 62) * r.choice([1, -1])
        new = flat.reshape(arr.shape)
    elif choice < 0.6:
        new = arr.reshape(-1)[: max(0, arr.size - r.choice([1, arr.size // 2 or 1, arr.size]))]
    elif choice < 0.8 and arr.size:
        new = np.concatenate([arr.reshape(-1), arr.reshape(-1)[: r.randint(1, arr.size)]])
    else:
        new = arr.astype(r.choice([np.float64, np.int32, np.int8, np.float16])) if arr.size else arr
    init.CopyFrom(numpy_helper.from_array(new, init.name))


def _mutate_graph(m: onnx.ModelProto, r: random.Random) -> None:
    g = m.graph
    choice = r.random()
    node = r.choice(list(g.node))
    values = ["x", ""] + [o for n in g.node for o in n.output] + [i.name for i in g.initializer]
    if choice < 0.25 and node.input:
        node.input[r.randrange(len(node.input))] = r.choice(values)
    elif choice < 0.4:
        node.op_type = r.choice(["Conv", "Relu", "Gemm", "MaxPool", "Concat", "Softmax", "Transpose", "Flatten", "Reshape", "Add", "Gather",
                                 "Identity", "Squeeze", "ConvTranspose", "Resize", "Split"])  # fmt: skip
    elif choice < 0.55:
        dims = g.input[0].type.tensor_type.shape.dim
        d = dims[r.randrange(len(dims))]
        d.Clear()
        if r.random() < 0.2:
            d.dim_param = "n"
        else:
            d.dim_value = r.choice([0, 1, 2, 3, 1 << 20, 1 << 31])
    elif choice < 0.65:
        m.opset_import[0].version = r.choice([7, 10, 11, 12, 17, 18, 21, 22])
    elif choice < 0.8:
        _rename(g, r.choice(values[2:] or ["x"]), r.choice(HOSTILE_NAMES) or "renamed")
    elif choice < 0.9:
        node.name = r.choice(HOSTILE_NAMES)
    else:
        extra = copy.deepcopy(node)
        extra.name = "dup"
        g.node.append(extra)


def _rename(g: onnx.GraphProto, old: str, new: str) -> None:
    for n in g.node:
        for k, i in enumerate(n.input):
            if i == old:
                n.input[k] = new
        for k, o in enumerate(n.output):
            if o == old:
                n.output[k] = new
    for coll in (g.input, g.output, g.initializer):
        for v in coll:
            if v.name == old:
                v.name = new


def mutate_onnx(seed_model: onnx.ModelProto, r: random.Random) -> bytes:
    """One mutated model, as file bytes."""
    if r.random() < 0.2:
        return mutate_bytes(seed_model.SerializeToString(), r)
    m = copy.deepcopy(seed_model)
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        r.choice([_mutate_attribute, _mutate_attribute, _mutate_initializer, _mutate_graph])(m, r)
    return m.SerializeToString()


# -- .tflite seeds and structural mutations -----------------------------------------------------------------


def tflite_seeds() -> list[bytes]:
    """Small int8 models: conv/depthwise/pool/fc/softmax, add/concat/mean/reshape, and a transpose conv."""
    from tflite_build import (ModelBuilder, add_options, concat_options, conv_options, depthwise_options, fc_options, op_code, pool_options,
                              reducer_options, reshape_options, softmax_options, transpose_conv_options)  # fmt: skip

    r = np.random.default_rng(2)
    i8 = lambda *s: r.integers(-127, 128, s).astype(np.int8)  # noqa: E731
    i32 = lambda *s: r.integers(-2000, 2000, s).astype(np.int32)  # noqa: E731
    seeds = []

    b = ModelBuilder()
    x = b.act("input", (1, 8, 8, 2), 0.05, -3)
    w1 = b.tensor("conv_w", (4, 3, 3, 2), "int8", [0.02, 0.03, 0.01, 0.04], [0, 0, 0, 0], i8(4, 3, 3, 2))
    b1 = b.tensor("conv_b", (4,), "int32", [0.001, 0.0015, 0.0005, 0.002], None, i32(4))
    c1 = b.act("conv_out", (1, 8, 8, 4), 0.08, -10)
    b.op(op_code("CONV_2D"), [x, w1, b1], [c1], *conv_options(padding=0, act=1))
    wd = b.tensor("dw_w", (1, 3, 3, 4), "int8", 0.03, 0, i8(1, 3, 3, 4))
    d1 = b.act("dw_out", (1, 4, 4, 4), 0.1, 2)
    b.op(op_code("DEPTHWISE_CONV_2D"), [c1, wd, -1], [d1], *depthwise_options(padding=0, stride=(2, 2), act=3))
    p1 = b.act("pool_out", (1, 2, 2, 4), 0.1, 2)
    b.op(op_code("MAX_POOL_2D"), [d1], [p1], *pool_options((2, 2), (2, 2)))
    wf = b.tensor("fc_w", (6, 16), "int8", 0.02, 0, i8(6, 16))
    bf = b.tensor("fc_b", (6,), "int32", 0.002, None, i32(6))
    f1 = b.act("fc_out", (1, 6), 0.2, 0)
    b.op(op_code("FULLY_CONNECTED"), [p1, wf, bf], [f1], *fc_options())
    y = b.act("probs", (1, 6), 1 / 256, -128)
    b.op(op_code("SOFTMAX"), [f1], [y], *softmax_options(1.0))
    b.inputs, b.outputs = [x], [y]
    seeds.append(b.build())

    b = ModelBuilder()
    x = b.act("input", (1, 6, 6, 3), 0.04, 5)
    k = b.tensor("k", (1, 1, 1, 3), "int8", 0.01, 0, i8(1, 1, 1, 3))
    a1 = b.act("add_out", (1, 6, 6, 3), 0.05, 1)
    b.op(op_code("ADD"), [x, k], [a1], *add_options(act=1))
    ap = b.act("avg", (1, 3, 3, 3), 0.05, 1)
    b.op(op_code("AVERAGE_POOL_2D"), [a1], [ap], *pool_options((2, 2), (2, 2), padding=1))
    cc = b.act("cat", (1, 3, 3, 6), 0.06, 0)
    b.op(op_code("CONCATENATION"), [ap, ap], [cc], *concat_options(3))
    axes = b.tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    mn = b.act("mean", (1, 6), 0.05, 0)
    b.op(op_code("MEAN"), [cc, axes], [mn], *reducer_options(False))
    y = b.act("out", (1, 2, 3), 0.05, 0)
    b.op(op_code("RESHAPE"), [mn], [y], *reshape_options([1, 2, 3]))
    b.inputs, b.outputs = [x], [y]
    seeds.append(b.build())

    b = ModelBuilder()
    x = b.act("input", (1, 4, 4, 2), 0.05, 0)
    osh = b.tensor("out_shape", (4,), "int32", data=np.array([1, 8, 8, 3], np.int32))
    wt = b.tensor("tw", (3, 3, 3, 2), "int8", [0.02, 0.03, 0.01], [0, 0, 0], i8(3, 3, 3, 2))
    y = b.act("up", (1, 8, 8, 3), 0.1, -5)
    b.op(op_code("TRANSPOSE_CONV"), [osh, wt, x], [y], *transpose_conv_options(padding=0, stride=(2, 2)))
    b.inputs, b.outputs = [x], [y]
    seeds.append(b.build())
    return seeds


def _tfl_schema():
    import importlib

    return importlib.import_module("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")


def _options_fields(o) -> list[str]:
    return [k for k, v in vars(o).items() if isinstance(v, (int, float, list)) and not isinstance(v, bool)] if o is not None else []


def mutate_tflite(seed: bytes, r: random.Random) -> bytes:
    if r.random() < 0.35:
        return mutate_bytes(seed, r)
    import flatbuffers

    S = _tfl_schema()
    m = S.ModelT.InitFromPackedBuf(bytearray(seed), 0)
    sg = m.subgraphs[0]
    for _ in range(r.choice([1, 1, 2, 3])):
        choice = r.random()
        t = r.choice(sg.tensors)
        op = r.choice(sg.operators)
        if choice < 0.12:  # shapes
            if t.shape is not None and len(t.shape):
                shape = list(t.shape)
                if r.random() < 0.3:
                    shape = shape[:-1] if r.random() < 0.5 else shape + [1]
                else:
                    shape[r.randrange(len(shape))] = r.choice([0, -1, 1, 2, 5, 1 << 20, (1 << 31) - 1])
                t.shape = shape
        elif choice < 0.27 and t.quantization is not None:  # scales, zero points, quantized dimension
            q = t.quantization
            what = r.random()
            if what < 0.5 and q.scale is not None and len(q.scale):
                q.scale = list(q.scale)
                q.scale[r.randrange(len(q.scale))] = r.choice(INTERESTING_FLOATS + [-0.5])
            elif what < 0.7:
                q.zeroPoint = [r.choice(INTERESTING_INTS) % (1 << 62) * r.choice([1, -1]) for _ in range(len(q.zeroPoint) if q.zeroPoint is not None else 1)]
            elif what < 0.85:
                q.quantizedDimension = r.choice([-1, 0, 1, 3, 7])
            else:
                q.scale = (list(q.scale) if q.scale is not None else [1.0]) + [0.5]
        elif choice < 0.37 and op.builtinOptions is not None:  # options fields
            fields = _options_fields(op.builtinOptions)
            if fields:
                f = r.choice(fields)
                cur = getattr(op.builtinOptions, f)
                if isinstance(cur, float):
                    setattr(op.builtinOptions, f, r.choice(INTERESTING_FLOATS))
                elif isinstance(cur, list):
                    setattr(op.builtinOptions, f, [r.choice([-1, 0, 1, 2, 3, 1 << 20]) for _ in range(r.choice([0, len(cur), len(cur) + 1]))])
                else:
                    setattr(op.builtinOptions, f, r.choice([0, 1, 2, 3, 4, 5, 6, 7, 127, 255, 1 << 20, (1 << 31) - 1, -1, -(1 << 31)]))
        elif choice < 0.44:  # the options table type
            op.builtinOptionsType = r.choice([0, 1, 2, 5, 8, 9, 10, 11, 17, 21, 27, 127])
            if r.random() < 0.5:
                op.builtinOptions = None
        elif choice < 0.55:  # operator inputs / outputs (offsets into the tensor list)
            lst = op.inputs if (r.random() < 0.7 and op.inputs is not None and len(op.inputs)) else op.outputs
            lst = list(lst)
            lst[r.randrange(len(lst))] = r.choice([-1, 0, len(sg.tensors) - 1, len(sg.tensors), r.randrange(len(sg.tensors))])
            if r.random() < 0.2:
                lst = lst[:-1] if r.random() < 0.5 else lst + [r.randrange(len(sg.tensors))]
            if lst is op.inputs or r.random() < 0.7:
                op.inputs = lst
            else:
                op.outputs = lst
        elif choice < 0.62:  # operator codes
            oc = r.choice(m.operatorCodes)
            oc.builtinCode = r.choice([0, 1, 2, 3, 4, 9, 14, 17, 18, 19, 21, 22, 25, 28, 34, 40, 45, 49, 67, 77, 83, 98, 114, 117, 200])
            oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
        elif choice < 0.7:  # tensor types
            t.type = r.choice([0, 1, 2, 3, 7, 9, 10, 17, 40])
        elif choice < 0.8:  # constant data lengths and values
            if 0 < t.buffer < len(m.buffers) and m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data):
                data = bytearray(bytes(np.asarray(m.buffers[t.buffer].data, np.uint8)))
                if r.random() < 0.4:
                    data = data[: r.randrange(len(data))] if r.random() < 0.5 else data + data[: r.randint(1, len(data))]
                else:
                    pos = r.randrange(len(data))
                    data[pos] = r.randrange(256)
                    if r.random() < 0.3:
                        data[:] = bytes([r.choice([0x7F, 0x80, 0xFF])]) * len(data)
                m.buffers[t.buffer].data = list(data)
            else:
                t.buffer = r.choice([0, 1, len(m.buffers) - 1, len(m.buffers)])
        elif choice < 0.87:  # names
            t.name = r.choice(HOSTILE_NAMES)
        elif choice < 0.94:  # graph inputs / outputs
            if r.random() < 0.5:
                sg.outputs = [r.choice(sg.inputs + [r.randrange(len(sg.tensors))])]
            else:
                sg.inputs = [r.randrange(len(sg.tensors))]
        else:  # operator order / duplication
            if r.random() < 0.5 and len(sg.operators) > 1:
                i, j = r.sample(range(len(sg.operators)), 2)
                sg.operators[i], sg.operators[j] = sg.operators[j], sg.operators[i]
            else:
                sg.operators.append(copy.deepcopy(op))
    b = flatbuffers.Builder(1024)
    try:
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
    except Exception:  # a mutation the flatbuffer builder cannot encode (e.g. an int out of its field's range)
        return mutate_bytes(seed, r)
    return bytes(b.Output())


# -- campaigns ------------------------------------------------------------------------------------------------------


def onnx_case(k: int, seeds, workdir: Path, *, build: bool = True) -> tuple[Outcome, bytes]:
    r = random.Random(1_000_003 * k + 17)
    model, in_shape = seeds[k % len(seeds)]
    data = mutate_onnx(model, r)
    path = workdir / f"case{k}.onnx"
    path.write_bytes(data)
    calib = np.random.default_rng(k).normal(0, 1, (4, *in_shape)).astype(np.float32)
    return run_case(path, calib, workdir, build=build, seed=k), data


def tflite_case(k: int, seeds, workdir: Path, *, build: bool = True) -> tuple[Outcome, bytes]:
    r = random.Random(2_000_003 * k + 29)
    data = mutate_tflite(seeds[k % len(seeds)], r)
    path = workdir / f"case{k}.tflite"
    path.write_bytes(data)
    return run_case(path, None, workdir, build=build, seed=k), data


def campaign(kind: str, start: int, count: int, *, build: bool = True, save_defects: Path | None = None, log=None) -> dict[str, int]:
    """Run cases start..start+count-1; return counts per outcome kind (defective cases saved)."""
    seeds = onnx_seeds() if kind == "onnx" else tflite_seeds()
    fn = onnx_case if kind == "onnx" else tflite_case
    counts: dict[str, int] = {}
    for k in range(start, start + count):
        with tempfile.TemporaryDirectory(prefix="tc-fuzz-") as tmp:
            out, data = fn(k, seeds, Path(tmp), build=build)
        counts[out.kind] = counts.get(out.kind, 0) + 1
        if out.defect:
            if save_defects is not None:
                save_defects.mkdir(parents=True, exist_ok=True)
                (save_defects / f"{kind}-{k}.{'onnx' if kind == 'onnx' else 'tflite'}").write_bytes(data)
            if log is not None:
                log(f"{kind} case {k}: {out.kind}: {out.detail}")
    return counts
