"""`tinyconv ops`: every ONNX op and TFLite builtin tinyconv lowers, with its limits.

The lists are checked against the importers' own tables by tests/core/test_supported_ops.py, so an
op added to a frontend without a line here fails the suite.
"""

from __future__ import annotations

SPATIAL = "1-D or 2-D spatial data (NCW / NCHW)"

ONNX = {
    "Conv": f"{SPATIAL}; groups, depthwise with multiplier, dilation, any padding (auto_pad too); constant weights",
    "ConvTranspose": f"{SPATIAL}; group=1; constant weights",
    "Gemm": "activation × constant (a fully connected layer); transA=0; bias a per-output vector",
    "MatMul": "2-D activation × constant (a fully connected layer); no activation × activation",
    "BatchNormalization": "inference mode; folded into the producing Conv/Gemm, else a per-channel scale and shift",
    "Relu": "fused into the producer's clamp where possible",
    "Clip": "constant min/max; fused into the producer's clamp where possible",
    "Sigmoid": "256-entry lookup table",
    "Tanh": "256-entry lookup table",
    "HardSigmoid": "256-entry lookup table",
    "HardSwish": "256-entry lookup table",
    "LeakyRelu": "256-entry lookup table",
    "PRelu": "slope shared or per channel",
    "MaxPool": f"{SPATIAL}; ceil_mode; no dilation, storage_order=0, no Indices output",
    "AveragePool": f"{SPATIAL}; count_include_pad or ceil_mode (not both)",
    "GlobalAveragePool": SPATIAL,
    "GlobalMaxPool": SPATIAL,
    "ReduceMean": "over the spatial axes of NCHW data",
    "Add": "two tensors with broadcasting, or a tensor and a constant",
    "Sub": "a tensor minus a constant (folded into a scale and shift)",
    "Mul": "two tensors with broadcasting, or a tensor and a constant",
    "Div": "a tensor divided by a constant",
    "Concat": "any axis; inputs from calibrated ops share the output's parameters (a copy)",
    "Split": "constant split sizes",
    "Slice": "constant starts/ends/axes; positive steps",
    "Pad": "mode 'constant'; non-negative pads",
    "Reshape": "constant target shape (at most one -1)",
    "Flatten": "any axis; an NCHW Flatten before Gemm is absorbed into the weights",
    "Squeeze": "size-1 axes",
    "Unsqueeze": "any axes",
    "Transpose": "any permutation; moved or removed by layout tracking where possible",
    "Identity": "removed",
    "Dropout": "removed (inference); no mask output",
    "Cast": "to float only, on computed tensors",
    "Softmax": "last axis (opset ≥ 13) or the flattened tail of a 2-D tensor; TFLite Micro's fixed point",
    "LogSoftmax": "as Softmax; TFLite Micro's fixed point, output scale 16/256, zero point 127",
    "Resize": "4-D NCHW, mode 'nearest', spatial axes only, no axes attribute",
    "Upsample": "as Resize: mode 'nearest', spatial axes only",
    "QuantizeLinear": "per-tensor int8/uint8 for activations (QDQ models); folded on constants",
    "DequantizeLinear": "of constants (weights, per channel too) or right after a QuantizeLinear",
    "QLinearConv": "QOperator form of Conv; int8/uint8",
    "QLinearMatMul": "QOperator form of MatMul (× constant)",
    "QGemm": "com.microsoft; quantized output only",
    "QLinearAdd": "com.microsoft",
    "QLinearMul": "com.microsoft",
    "QLinearAveragePool": "com.microsoft; channels_last=0",
    "QLinearGlobalAveragePool": "com.microsoft; channels_last=0",
    "QLinearSigmoid": "com.microsoft; lookup table",
    "QLinearLeakyRelu": "com.microsoft; lookup table",
    "QLinearSoftmax": "com.microsoft",
    "QLinearConcat": "com.microsoft",
    "Constant": "folded",
    "Shape": "folded (static shapes)",
}

TFLITE = {
    "CONV_2D": "int8, per-channel weights, fused activation NONE/RELU/RELU_N1_TO_1/RELU6",
    "DEPTHWISE_CONV_2D": "int8, depth multiplier, dilation, fused activation",
    "FULLY_CONNECTED": "int8, constant weights, fused activation",
    "AVERAGE_POOL_2D": "int8, input and output parameters equal (as TFLite Micro)",
    "MAX_POOL_2D": "int8, input and output parameters equal (as TFLite Micro)",
    "ADD": "int8 with broadcasting, fused activation",
    "MUL": "int8 with broadcasting, fused activation",
    "RESHAPE": "any",
    "SQUEEZE": "any",
    "EXPAND_DIMS": "any",
    "SOFTMAX": "int8, output scale 1/256, zero point −128",
    "LOG_SOFTMAX": "int8, output scale 16/256, zero point 127 (as TFLite Micro)",
    "CONCATENATION": "int8, any axis",
    "PAD": "constant padding",
    "PADV2": "constant padding with a given value",
    "MEAN": "over spatial axes",
    "LOGISTIC": "int8, TFLite Micro's lookup table",
    "TANH": "int8, TFLite Micro's lookup table",
    "HARD_SWISH": "int8, TFLite Micro's lookup table",
    "RELU": "int8, requantizes as TFLite Micro (lookup table)",
    "RELU6": "int8, clamps in the input's parameters, no requantization (as TFLite Micro)",
    "LEAKY_RELU": "int8, TFLite Micro's two multipliers (lookup table)",
    "SHAPE": "static shapes: evaluated at import (Keras Reshape), no code",
    "STRIDED_SLICE": "constant operands only (shape arithmetic), evaluated at import",
    "PACK": "constant operands only (shape arithmetic), evaluated at import",
    "TRANSPOSE_CONV": "int8, constant weights",
    "QUANTIZE": "at the model edges only (float → int8)",
    "DEQUANTIZE": "at the model edges only (int8 → float)",
}

LIMITS_ALL = "Every model: one input and one output, static shapes (batch 1), int8 activations and weights, int32 biases."


def rows() -> list[tuple[str, str, str]]:
    """(format, op, limits), ONNX first."""
    return [("ONNX", op, lim) for op, lim in sorted(ONNX.items())] + [("TFLite", op, lim) for op, lim in sorted(TFLITE.items())]
