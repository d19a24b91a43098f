"""A minimal, bounds-checked reader for the parts of the TFLite flatbuffer schema tinyconv needs.

No third-party dependency: the FlatBuffers binary format is small (little-endian scalars, tables
reached through 32-bit offsets, a vtable of 16-bit field offsets per table). Every read checks it
stays inside the file, so a truncated or foreign file gives a ModelError, never an IndexError or a
struct.error. Field numbers follow tensorflow/lite/schema/schema.fbs (a field's vtable slot is
4 + 2 · its id).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from tinyconv.errors import ModelError

# -- enums (schema.fbs) ------------------------------------------------------------------------------

TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}  # fmt: skip

# Builtin operator codes: the ones tinyconv lowers, plus common ones so errors can name them.
BUILTIN_NAMES = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP", 8: "FLOOR", 9: "FULLY_CONNECTED",
    11: "L2_NORMALIZATION", 12: "L2_POOL_2D", 13: "LOCAL_RESPONSE_NORMALIZATION", 14: "LOGISTIC",
    16: "LSTM", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6",
    22: "RESHAPE", 23: "RESIZE_BILINEAR", 24: "RNN", 25: "SOFTMAX", 26: "SPACE_TO_DEPTH", 27: "SVDF",
    28: "TANH", 31: "CALL", 32: "CUSTOM", 34: "PAD", 36: "GATHER", 37: "BATCH_TO_SPACE_ND",
    38: "SPACE_TO_BATCH_ND", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 42: "DIV", 43: "SQUEEZE",
    44: "UNIDIRECTIONAL_SEQUENCE_LSTM", 45: "STRIDED_SLICE", 47: "EXP", 49: "SPLIT",
    50: "LOG_SOFTMAX", 53: "CAST", 54: "PRELU", 55: "MAXIMUM", 56: "ARG_MAX", 57: "MINIMUM",
    59: "NEG", 60: "PADV2", 65: "SLICE", 67: "TRANSPOSE_CONV", 69: "TILE", 70: "EXPAND_DIMS",
    74: "SUM", 75: "SQRT", 76: "RSQRT", 77: "SHAPE", 79: "ARG_MIN", 82: "REDUCE_MAX", 83: "PACK",
    88: "UNPACK", 89: "REDUCE_MIN", 92: "SQUARE", 97: "RESIZE_NEAREST_NEIGHBOR", 98: "LEAKY_RELU",
    99: "SQUARED_DIFFERENCE", 100: "MIRROR_PAD", 101: "ABS", 102: "SPLIT_V", 106: "ADD_N",
    111: "ELU", 114: "QUANTIZE", 116: "ROUND", 117: "HARD_SWISH", 118: "IF", 119: "WHILE",
    126: "BATCH_MATMUL", 128: "CUMSUM", 130: "BROADCAST_TO", 132: "CONV_3D", 150: "GELU",
    152: "RELU_0_TO_1",
}  # fmt: skip

PADDING_SAME, PADDING_VALID = 0, 1
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def op_name(code: int, custom: str | None = None) -> str:
    if code == 32 and custom:
        return f"CUSTOM '{custom}'"
    return BUILTIN_NAMES.get(code, f"builtin operator {code}")


# -- the raw format ----------------------------------------------------------------------------------


class _Buf:
    def __init__(self, data: bytes, what: str):
        self.data = data
        self.what = what

    def fail(self, why: str) -> ModelError:
        return ModelError(f"'{self.what}' is not a valid TFLite flatbuffer ({why})", hint="the file may be truncated or not a .tflite model")

    def unpack(self, fmt: str, pos: int):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise self.fail(f"a read at byte {pos} runs past the end of the {len(self.data)}-byte file")
        return struct.unpack_from(fmt, self.data, pos)[0]


class Table:
    """A flatbuffer table at absolute position `pos`."""

    def __init__(self, buf: _Buf, pos: int):
        self.buf = buf
        self.pos = pos
        vt = pos - buf.unpack("<i", pos)
        self.vt = vt
        self.vt_len = buf.unpack("<H", vt)
        if self.vt_len < 4 or self.vt_len % 2:
            raise buf.fail(f"bad vtable at byte {vt}")
        buf.unpack(f"<{self.vt_len}s", vt)  # the whole vtable is inside the file

    def _field(self, fid: int) -> int:
        slot = 4 + 2 * fid
        if slot >= self.vt_len:
            return 0
        off = self.buf.unpack("<H", self.vt + slot)
        return self.pos + off if off else 0

    def scalar(self, fid: int, fmt: str, default):
        p = self._field(fid)
        return self.buf.unpack("<" + fmt, p) if p else default

    def _indirect(self, p: int) -> int:
        return p + self.buf.unpack("<I", p)

    def table(self, fid: int) -> "Table | None":
        p = self._field(fid)
        return Table(self.buf, self._indirect(p)) if p else None

    def _vector(self, fid: int) -> tuple[int, int] | None:
        p = self._field(fid)
        if not p:
            return None
        start = self._indirect(p)
        n = self.buf.unpack("<I", start)
        return start + 4, n

    def vector(self, fid: int, fmt: str) -> np.ndarray | None:
        """A vector of scalars (fmt a struct code: b B h i I q f ...)."""
        v = self._vector(fid)
        if v is None:
            return None
        start, n = v
        size = struct.calcsize(fmt)
        if start + n * size > len(self.buf.data):
            raise self.buf.fail(f"a vector of {n} elements at byte {start} runs past the end of the file")
        return np.frombuffer(self.buf.data, dtype=np.dtype("<" + fmt), count=n, offset=start).copy()

    def bytes(self, fid: int) -> bytes | None:
        v = self._vector(fid)
        if v is None:
            return None
        start, n = v
        if start + n > len(self.buf.data):
            raise self.buf.fail(f"a {n}-byte buffer at byte {start} runs past the end of the file")
        return self.buf.data[start : start + n]

    def string(self, fid: int) -> str | None:
        b = self.bytes(fid)
        return None if b is None else b.decode("utf-8", errors="replace")

    def tables(self, fid: int) -> list["Table"]:
        v = self._vector(fid)
        if v is None:
            return []
        start, n = v
        if start + 4 * n > len(self.buf.data):
            raise self.buf.fail(f"a table vector of {n} entries at byte {start} runs past the end of the file")
        return [Table(self.buf, self._indirect(start + 4 * k)) for k in range(n)]


# -- the model, as plain data ------------------------------------------------------------------------


@dataclass
class TflQuant:
    scale: np.ndarray | None  # float32
    zero_point: np.ndarray | None  # int64
    axis: int


@dataclass
class TflTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    quant: TflQuant | None
    data: bytes | None = None  # raw little-endian contents of a constant


@dataclass
class TflOperator:
    index: int
    opcode: int
    custom: str | None
    version: int
    inputs: list[int]
    outputs: list[int]
    options_type: int
    options: Table | None
    intermediates: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return op_name(self.opcode, self.custom)


@dataclass
class TflModel:
    version: int
    description: str
    tensors: list[TflTensor]
    operators: list[TflOperator]
    inputs: list[int]
    outputs: list[int]
    subgraph_name: str
    num_subgraphs: int


def parse(data: bytes, what: str = "model") -> TflModel:
    """Read a .tflite file's first subgraph: tensors (with constant data), operators, inputs, outputs."""
    buf = _Buf(data, what)
    if len(data) < 8:
        raise buf.fail(f"only {len(data)} bytes")
    ident = data[4:8]
    if ident != b"TFL3":
        raise buf.fail(f"file identifier is {ident!r}, a .tflite file has b'TFL3'")
    model = Table(buf, buf.unpack("<I", 0))
    version = model.scalar(0, "I", 0)
    if version != 3:
        raise ModelError(f"'{what}': TFLite schema version {version} is not supported (expected 3)")
    codes = []
    for oc in model.tables(1):
        deprecated = oc.scalar(0, "b", 0)
        builtin = oc.scalar(3, "i", 0)
        # Files before schema 2.4 only set the deprecated int8 code (values < 127).
        codes.append((max(int(deprecated), int(builtin)), oc.string(1), oc.scalar(2, "i", 1)))
    buffers = model.tables(4)
    subgraphs = model.tables(2)
    if not subgraphs:
        raise buf.fail("no subgraph")
    sg = subgraphs[0]

    tensors = []
    for k, t in enumerate(sg.tables(0)):
        shape = t.vector(0, "i")
        ttype = t.scalar(1, "b", 0)
        bidx = t.scalar(2, "I", 0)
        q = t.table(4)
        quant = None
        if q is not None:
            scale = q.vector(2, "f")
            zp = q.vector(3, "q")
            if scale is not None and scale.size:
                quant = TflQuant(scale.astype(np.float32), zp.astype(np.int64) if zp is not None else np.zeros(scale.shape, np.int64), q.scalar(6, "i", 0))
        if t.table(6) is not None:
            raise ModelError(f"'{what}': tensor {k} '{t.string(3)}' is sparse, which tinyconv does not support")
        raw = None
        if 0 < bidx < len(buffers):
            b = buffers[bidx]
            raw = b.bytes(0)
            if not raw:
                off, size = b.scalar(1, "Q", 0), b.scalar(2, "Q", 0)
                if off > 1 and size:
                    if off + size > len(data):
                        raise buf.fail(f"buffer {bidx} at byte {off} runs past the end of the file")
                    raw = data[off : off + size]
                else:
                    raw = None
        elif bidx >= len(buffers) and bidx:
            raise buf.fail(f"tensor {k} refers to buffer {bidx} of {len(buffers)}")
        tensors.append(
            TflTensor(k, t.string(3) or f"tensor_{k}", tuple(int(d) for d in shape) if shape is not None else (),
                      TENSOR_TYPES.get(int(ttype), f"type {int(ttype)}"), int(bidx), quant, raw)
        )  # fmt: skip

    operators = []
    for k, o in enumerate(sg.tables(3)):
        ci = o.scalar(0, "I", 0)
        if ci >= len(codes):
            raise buf.fail(f"operator {k} uses operator code {ci} of {len(codes)}")
        code, custom, ver = codes[ci]
        ins = o.vector(1, "i")
        outs = o.vector(2, "i")
        inter = o.vector(8, "i")
        ins = [] if ins is None else [int(i) for i in ins]
        outs = [] if outs is None else [int(i) for i in outs]
        for i in ins + outs:
            if i >= len(tensors) or i < -1:
                raise buf.fail(f"operator {k} refers to tensor {i} of {len(tensors)}")
        operators.append(
            TflOperator(k, code, custom, ver, ins, outs, o.scalar(3, "B", 0), o.table(4),
                        [] if inter is None else [int(i) for i in inter])
        )  # fmt: skip

    def _io(fid):
        v = sg.vector(fid, "i")
        v = [] if v is None else [int(i) for i in v]
        for i in v:
            if not 0 <= i < len(tensors):
                raise buf.fail(f"subgraph input/output {i} is not one of its {len(tensors)} tensors")
        return v

    return TflModel(int(version), model.string(3) or "", tensors, operators, _io(1), _io(2), sg.string(4) or "", len(subgraphs))


def tensor_array(t: TflTensor) -> np.ndarray:
    """A constant tensor's contents as a NumPy array of its shape."""
    dt = {"int8": "i1", "uint8": "u1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "float32": "<f4", "float16": "<f2", "float64": "<f8", "bool": "?"}.get(t.dtype)
    if dt is None:
        raise ModelError(f"constant tensor {t.index} '{t.name}' has type {t.dtype}, which tinyconv cannot read")
    n = int(np.prod(t.shape, dtype=np.int64)) if t.shape else 1
    itemsize = np.dtype(dt).itemsize
    if t.data is None or len(t.data) != n * itemsize:
        got = 0 if t.data is None else len(t.data)
        raise ModelError(f"constant tensor {t.index} '{t.name}' of shape {list(t.shape)} ({t.dtype}) has {got} bytes, expected {n * itemsize}")
    return np.frombuffer(t.data, dtype=np.dtype(dt), count=n).reshape(t.shape).copy()
