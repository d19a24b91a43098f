"""Patterns real exporters write on static input shapes, which constant folding removes:
torchvision ShuffleNetV2's channel shuffle (Shape → Gather → Div → Concat → Reshape) and timm's
`tf_*` models' dynamic "SAME" padding (Shape → Slice → Cast → Div → Ceil → ... → ConstantOfShape →
Concat → Pad). Support is checked on what is left after folding, so both compile; the float
reference equals onnxruntime and the generated C (ASan/UBSan) equals the int8 reference."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from core.native_checks import assert_bit_exact_native, need_compiler
from tinyconv import reference
from tinyconv.check import prepare_inputs
from tinyconv.frontend.onnx import load_onnx
from tinyconv.pipeline import compile_model

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def c64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def weights(name, *shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).normal(0, 0.4, shape).astype(np.float32), name)


def shuffle_nodes(x: str, groups: int, out: str, tag: str) -> list:
    """torchvision's channel_shuffle as torch.onnx exports it: sizes read with Shape/Gather."""
    n = [helper.make_node("Shape", [x], [f"{tag}_shape"])]
    for k, d in enumerate("nchw"):
        n.append(helper.make_node("Gather", [f"{tag}_shape", f"idx{k}"], [f"{tag}_{d}"], axis=0))
    n += [
        helper.make_node("Div", [f"{tag}_c", "groups"], [f"{tag}_cpg"]),
        *[helper.make_node("Unsqueeze", [f"{tag}_{d}", "ax0"], [f"{tag}_{d}1"]) for d in ("n", "cpg", "h", "w")],
        helper.make_node("Concat", [f"{tag}_n1", "groups1", f"{tag}_cpg1", f"{tag}_h1", f"{tag}_w1"], [f"{tag}_shape5"], axis=0),
        helper.make_node("Reshape", [x, f"{tag}_shape5"], [f"{tag}_r5"]),
        helper.make_node("Transpose", [f"{tag}_r5"], [f"{tag}_t5"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Concat", [f"{tag}_n1", "minus1", f"{tag}_h1", f"{tag}_w1"], [f"{tag}_shape4"], axis=0),
        helper.make_node("Reshape", [f"{tag}_t5", f"{tag}_shape4"], [out]),
    ]
    return n


def shufflenet_block() -> tuple:
    """conv → split in two → conv on one half → concat → channel shuffle (x2) → pool → fc."""
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Split", ["r0", "split"], ["left", "right"], axis=1),
        helper.make_node("Conv", ["right", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Concat", ["left", "r1"], ["cat"], axis=1),
        *shuffle_nodes("cat", 2, "sh1", "s1"),
        helper.make_node("Conv", ["sh1", "w2"], ["c2"], kernel_shape=[1, 1]),
        *shuffle_nodes("c2", 2, "sh2", "s2"),
        helper.make_node("GlobalAveragePool", ["sh2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["y"], transB=1),
    ]
    inits = [weights("w0", 8, 3, 3, 3), weights("b0", 8, seed=1), c64("split", [4, 4]), weights("w1", 4, 1, 3, 3, seed=2), weights("b1", 4, seed=3),
             weights("w2", 8, 8, 1, 1, seed=4), weights("wf", 5, 8, seed=5), weights("bf", 5, seed=6), c64("groups", 2), c64("groups1", [2]),
             c64("minus1", [-1]), c64("ax0", [0])] + [c64(f"idx{k}", k) for k in range(4)]  # fmt: skip
    g = helper.make_graph(nodes, "shufflenet_block", [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", F, [1, 5])], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), (3, 8, 8)


def tf_same_pad_nodes(x: str, k: int, s: int, out: str, tag: str) -> list:
    """timm's pad_same(): pad = max((ceil(i / s) - 1) * s + k - i, 0), split begin/end, via F.pad."""
    n = [
        helper.make_node("Shape", [x], [f"{tag}_shape"]),
        helper.make_node("Slice", [f"{tag}_shape", "hw_start", "hw_end"], [f"{tag}_hw"]),
        helper.make_node("Cast", [f"{tag}_hw"], [f"{tag}_hwf"], to=F),
        helper.make_node("Div", [f"{tag}_hwf", f"s{s}f"], [f"{tag}_q"]),
        helper.make_node("Ceil", [f"{tag}_q"], [f"{tag}_cq"]),
        helper.make_node("Cast", [f"{tag}_cq"], [f"{tag}_o"], to=I64),
        helper.make_node("Sub", [f"{tag}_o", "one"], [f"{tag}_o1"]),
        helper.make_node("Mul", [f"{tag}_o1", f"s{s}"], [f"{tag}_os"]),
        helper.make_node("Add", [f"{tag}_os", f"k{k}"], [f"{tag}_span"]),
        helper.make_node("Sub", [f"{tag}_span", f"{tag}_hw"], [f"{tag}_need"]),
        helper.make_node("Max", [f"{tag}_need", "zero"], [f"{tag}_pad"]),
        helper.make_node("Div", [f"{tag}_pad", "two"], [f"{tag}_lo"]),
        helper.make_node("Sub", [f"{tag}_pad", f"{tag}_lo"], [f"{tag}_hi"]),
        helper.make_node("ConstantOfShape", ["two_vec"], [f"{tag}_nc"], value=numpy_helper.from_array(np.zeros(1, np.int64))),
        helper.make_node("Concat", [f"{tag}_nc", f"{tag}_lo", f"{tag}_nc", f"{tag}_hi"], [f"{tag}_pads"], axis=0),
        helper.make_node("Pad", [x, f"{tag}_pads"], [out], mode="constant"),
    ]
    return n


def tf_same_model() -> tuple:
    """timm tf_* stem: Conv2dSame (stride 2), BN, SiLU-free relu6, depthwise Conv2dSame, pool, fc."""
    nodes = [
        *tf_same_pad_nodes("x", 3, 2, "xp", "p0"),
        helper.make_node("Conv", ["xp", "w0"], ["c0"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c0", "bn_s", "bn_b", "bn_m", "bn_v"], ["n0"]),
        helper.make_node("Clip", ["n0", "lo", "hi"], ["r0"]),
        *tf_same_pad_nodes("r0", 3, 1, "rp", "p1"),
        helper.make_node("Conv", ["rp", "w1"], ["c1"], kernel_shape=[3, 3], group=6),
        helper.make_node("GlobalAveragePool", ["c1"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wf"], ["y"], transB=1),
    ]
    r = np.random.default_rng(7)
    inits = [weights("w0", 6, 3, 3, 3), weights("w1", 6, 1, 3, 3, seed=8), weights("wf", 4, 6, seed=9),
             numpy_helper.from_array(np.abs(r.normal(1, 0.2, 6)).astype(np.float32), "bn_s"), weights("bn_b", 6, seed=10),
             weights("bn_m", 6, seed=11), numpy_helper.from_array(np.abs(r.normal(1, 0.2, 6)).astype(np.float32), "bn_v"),
             numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi"),
             c64("hw_start", [2]), c64("hw_end", [4]), c64("one", 1), c64("zero", 0), c64("two", 2), c64("two_vec", [2]), c64("k3", 3),
             c64("s1", 1), c64("s2", 2), numpy_helper.from_array(np.float32(1), "s1f"), numpy_helper.from_array(np.float32(2), "s2f")]  # fmt: skip
    g = helper.make_graph(nodes, "tf_same", [helper.make_tensor_value_info("x", F, [1, 3, 9, 9])], [helper.make_tensor_value_info("y", F, [1, 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), (3, 9, 9)


@pytest.mark.parametrize("build", [shufflenet_block, tf_same_model], ids=["shufflenet_v2", "timm_tf_same"])
def test_folded_pattern_compiles_bit_exact(tmp_path, build):
    """Before: refused with "unsupported ops: Gather ..." / "Ceil, ConstantOfShape, Max ..."."""
    need_compiler("gcc")
    model, in_shape = build()
    calib = np.random.default_rng(0).normal(0, 1, (8, *in_shape)).astype(np.float32)
    g = load_onnx(model)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": calib[:1]})[0]
    got = reference.onnx_out(g, reference.run_batch(g, reference.onnx_in(g, calib[:1]), mode="float"))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)
    c = compile_model(g, calib=calib, outdir=tmp_path / "lib")
    assert_bit_exact_native(c, prepare_inputs(c.graph, calib).int8_ir, "gcc")


def test_unfoldable_gather_still_named(tmp_path):
    """A Gather on a computed tensor is not folded, so it is still refused, by name, once."""
    from tinyconv.errors import UnsupportedError

    nodes = [helper.make_node("Gather", ["x", "idx"], ["y"], name="gather_rows", axis=1)]
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", F, [1, 4, 4])], [helper.make_tensor_value_info("y", F, [1, 2, 4])],
                          [c64("idx", [0, 2])])  # fmt: skip
    with pytest.raises(UnsupportedError, match="Gather 'gather_rows'"):
        load_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
