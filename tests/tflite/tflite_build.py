"""Build small int8 .tflite models in tests, and run them with TFLite Micro's interpreter.

Uses the flatbuffer bindings generated from TFLite's schema that the `tflite-micro` package ships
(object API: ModelT, SubGraphT, ...). Only tests import this module.
"""

from __future__ import annotations

import importlib

import numpy as np

try:
    S = importlib.import_module("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    import flatbuffers
    from tflite_micro import runtime as tflm_runtime
except ImportError:  # pragma: no cover - the test extra is not installed
    S = None
    tflm_runtime = None

TYPES = {"float32": 0, "int32": 2, "int8": 9, "int64": 4}


class ModelBuilder:
    """One subgraph; tensors and operators are appended in order."""

    def __init__(self):
        self.tensors = []
        self.buffers = [S.BufferT()]  # buffer 0: the empty sentinel
        self.operators = []
        self.opcodes: dict[int, int] = {}
        self.opcode_list = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, name, shape, dtype="int8", scale=None, zero_point=None, data=None, axis=0) -> int:
        t = S.TensorT()
        t.name = name
        t.shape = list(shape)
        t.type = TYPES[dtype]
        t.buffer = 0
        if data is not None:
            b = S.BufferT()
            b.data = list(np.ascontiguousarray(data, dtype={"int8": np.int8, "int32": np.int32, "float32": np.float32, "int64": np.int64}[dtype]).tobytes())
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            zp = np.zeros(len(q.scale), np.int64) if zero_point is None else np.atleast_1d(zero_point)
            q.zeroPoint = [int(z) for z in zp]
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def act(self, name, shape, scale, zero_point) -> int:
        return self.tensor(name, shape, "int8", scale, zero_point)

    def op(self, code: int, inputs, outputs, options_type: int = 0, options=None) -> None:
        if code not in self.opcodes:
            oc = S.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = 1
            self.opcode_list.append(oc)
            self.opcodes[code] = len(self.opcode_list) - 1
        o = S.OperatorT()
        o.opcodeIndex = self.opcodes[code]
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.operators.append(o)

    def build(self) -> bytes:
        sg = S.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = self.inputs
        sg.outputs = self.outputs
        sg.operators = self.operators
        sg.name = "main"
        m = S.ModelT()
        m.version = 3
        m.operatorCodes = self.opcode_list
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.description = "tinyconv test model"
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# -- options helpers ---------------------------------------------------------------------------------


def conv_options(padding=0, stride=(1, 1), act=0, dilation=(1, 1)):
    o = S.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.fusedActivationFunction = padding, stride[0], stride[1], act
    o.dilationHFactor, o.dilationWFactor = dilation
    return S.BuiltinOptions.Conv2DOptions, o


def depthwise_options(padding=0, stride=(1, 1), act=0, multiplier=1, dilation=(1, 1)):
    o = S.DepthwiseConv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.fusedActivationFunction = padding, stride[0], stride[1], act
    o.depthMultiplier = multiplier
    o.dilationHFactor, o.dilationWFactor = dilation
    return S.BuiltinOptions.DepthwiseConv2DOptions, o


def pool_options(kernel, stride=(1, 1), padding=0, act=0):
    o = S.Pool2DOptionsT()
    o.padding, o.strideH, o.strideW = padding, stride[0], stride[1]
    o.filterHeight, o.filterWidth, o.fusedActivationFunction = kernel[0], kernel[1], act
    return S.BuiltinOptions.Pool2DOptions, o


def fc_options(act=0, keep_num_dims=False):
    o = S.FullyConnectedOptionsT()
    o.fusedActivationFunction, o.keepNumDims = act, keep_num_dims
    return S.BuiltinOptions.FullyConnectedOptions, o


def add_options(act=0):
    o = S.AddOptionsT()
    o.fusedActivationFunction = act
    return S.BuiltinOptions.AddOptions, o


def mul_options(act=0):
    o = S.MulOptionsT()
    o.fusedActivationFunction = act
    return S.BuiltinOptions.MulOptions, o


def softmax_options(beta=1.0):
    o = S.SoftmaxOptionsT()
    o.beta = beta
    return S.BuiltinOptions.SoftmaxOptions, o


def concat_options(axis):
    o = S.ConcatenationOptionsT()
    o.axis = axis
    return S.BuiltinOptions.ConcatenationOptions, o


def reducer_options(keep_dims):
    o = S.ReducerOptionsT()
    o.keepDims = keep_dims
    return S.BuiltinOptions.ReducerOptions, o


def reshape_options(shape):
    o = S.ReshapeOptionsT()
    o.newShape = list(shape)
    return S.BuiltinOptions.ReshapeOptions, o


def transpose_conv_options(padding=0, stride=(1, 1), act=0):
    o = S.TransposeConvOptionsT()
    o.padding, o.strideH, o.strideW, o.fusedActivationFunction = padding, stride[0], stride[1], act
    return S.BuiltinOptions.TransposeConvOptions, o


def op_code(name: str) -> int:
    return getattr(S.BuiltinOperator, name)


# -- running ---------------------------------------------------------------------------------------


def tflm_run(model: bytes, x: np.ndarray) -> np.ndarray:
    """One inference with TFLite Micro's reference kernels (the bit-exact oracle)."""
    interp = tflm_runtime.Interpreter.from_bytes(model)
    interp.set_input(np.ascontiguousarray(x), 0)
    interp.invoke()
    return np.array(interp.get_output(0))
