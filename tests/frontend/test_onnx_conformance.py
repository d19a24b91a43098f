"""Float mode vs the ONNX conformance cases the onnx package ships, and vs onnxruntime.

For every node test case of the ops tinyconv lowers (onnx.backend.test.case.node) and every
pytorch-converted model on disk, data inputs after the first become initializers (tinyconv
compiles single-input models with constant weights), the model is imported, run by the float
reference, and compared with the case's expected output and with onnxruntime. A case tinyconv
refuses with a clear UnsupportedError/ModelError is counted as unsupported; any other exception
fails the test (a user would have seen a traceback).
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tinyconv.errors import TinyconvError
from tinyconv.frontend.onnx import load_onnx
from tinyconv.frontend.onnx_model import OPSET_MAX

# op → at least this many cases must import and match (the ops the compiler-core issue names)
OPS = {"Conv": 4, "ConvTranspose": 1, "Gemm": 3, "MatMul": 1, "MaxPool": 5, "AveragePool": 5, "GlobalAveragePool": 1,
       "GlobalMaxPool": 1, "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Concat": 1, "Reshape": 3, "Flatten": 3, "Squeeze": 1,
       "Unsqueeze": 1, "Transpose": 1, "Softmax": 3, "Relu": 1, "Clip": 3, "Sigmoid": 1, "Tanh": 1, "LeakyRelu": 1,
       "PRelu": 0, "HardSigmoid": 1, "HardSwish": 1, "Pad": 1, "Resize": 3, "Slice": 1, "Split": 3,
       "ReduceMean": 0,  # the shipped cases reduce non-spatial axes; spatial means are in the property tests
       "BatchNormalization": 1, "Identity": 1}  # fmt: skip
# PRelu: the shipped node cases use element-wise slopes (tinyconv takes per-channel ones); the
# pytorch-converted PReLU models cover it.
RTOL, ATOL = 1e-4, 1e-5


@functools.lru_cache(maxsize=1)
def _all_node_cases():
    from onnx.backend.test.case import node

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(c.name, c.model, c.data_sets[0], (c.rtol, c.atol)) for c in node.collect_testcases(None) if c.data_sets]


def _node_cases(op):
    """The cases whose graph is that op alone (expanded function bodies are other cases)."""
    return [c for c in _all_node_cases() if {n.op_type for n in c[1].graph.node} == {op}]


def _pytorch_cases():
    root = Path(onnx.__file__).parent / "backend" / "test" / "data"
    out = []
    for d in sorted(list((root / "pytorch-converted").glob("test_*")) + list((root / "pytorch-operator").glob("test_*"))):
        ds = d / "test_data_set_0"
        if not (d / "model.onnx").exists() or not ds.exists():
            continue
        model = onnx.load(str(d / "model.onnx"))
        ins = [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(ds.glob("input_*.pb"))]
        outs = [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(ds.glob("output_*.pb"))]
        out.append((d.name, model, (ins, outs), (1e-3, 1e-7)))
    return out


def _freeze(model: onnx.ModelProto, inputs: list[np.ndarray]) -> onnx.ModelProto | None:
    """Extra data inputs → initializers; opset lowered to OPSET_MAX where no op changed since."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if any(o.domain in ("", "ai.onnx") and o.version < 11 for o in m.opset_import):
        try:  # the pytorch-converted data is opset 6-9: upgrade it as tinyconv's error tells users to
            from onnx import version_converter

            m = version_converter.convert_version(m, 13)
        except Exception:
            return None
    g = m.graph
    init = {i.name for i in g.initializer}
    data_inputs = [i for i in g.input if i.name not in init]
    if not data_inputs:
        return None
    while len(g.output) > 1:  # multi-output ops (Split): check the first output
        g.output.pop()
    for vi, arr in list(zip(data_inputs, inputs))[1:]:
        g.initializer.append(numpy_helper.from_array(arr, vi.name))
        g.input.remove(vi)
    for op in m.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > OPSET_MAX:
            # Opsets 22-25 changed these ops' type lists (bfloat16, int4, float8), not their float
            # semantics, so a case is valid at OPSET_MAX when every op exists there.
            for n in g.node:
                try:
                    onnx.defs.get_schema(n.op_type, OPSET_MAX)
                except onnx.defs.SchemaError:
                    return None
            op.version = OPSET_MAX
            m.ir_version = min(m.ir_version, 10)
    return m


def _check_case(tmp_path: Path, name: str, model, data, case_tol) -> str:
    """'ok', 'unsupported: ...' or 'skip: ...'; raises AssertionError on a wrong answer."""
    inputs, expected = data
    frozen = _freeze(model, list(inputs))
    if frozen is None:
        return "skip: several outputs, no data input, or an op newer than opset 21"
    x = np.asarray(inputs[0])
    if x.dtype != np.float32:
        return "skip: non-float input"
    path = tmp_path / f"{name}.onnx"
    onnx.save(frozen, path)
    try:
        g = load_onnx(path)
    except TinyconvError as e:
        return f"unsupported: {e}"
    from tinyconv import reference

    (inp,), (out,) = g.inputs, g.outputs
    x_ir = g.io_layout[inp].to_ir(x, g.tensors[inp].shape)
    y = g.io_layout[out].to_onnx(reference.run(g, {inp: x_ir}, mode="float")[out])
    want = np.asarray(expected[0])
    # the case's own tolerance (some expected outputs are printed to 4 decimals), but never looser than 1e-3
    rtol, atol = min(max(case_tol[0], RTOL), 1e-3), min(max(case_tol[1], ATOL), 1e-3)
    np.testing.assert_allclose(y, want.reshape(y.shape), rtol=rtol, atol=atol, err_msg=f"{name}: vs the case's expected output")
    import onnxruntime as ort

    sess = ort.InferenceSession(frozen.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(y, ort_y.reshape(y.shape), rtol=RTOL, atol=ATOL, err_msg=f"{name}: vs onnxruntime")
    return "ok"


def _run_all(tmp_path, cases) -> dict[str, str]:
    results = {}
    for name, model, data, tol in cases:
        results[name] = _check_case(tmp_path, name, model, data, tol)
    return results


@pytest.mark.parametrize("op", sorted(OPS))
def test_node_conformance(op, tmp_path):
    results = _run_all(tmp_path, _node_cases(op))
    ok = [n for n, r in results.items() if r == "ok"]
    report = "\n".join(f"  {n}: {r}" for n, r in sorted(results.items()))
    assert len(ok) >= OPS[op], f"only {len(ok)} of {len(results)} {op} cases import and match:\n{report}"
    if os.environ.get("TINYCONV_VERBOSE_CONFORMANCE"):
        print(f"\n{op}: {len(ok)}/{len(results)} ok\n{report}")


def test_pytorch_converted(tmp_path):
    cases = _pytorch_cases()
    if not cases:
        pytest.fail("the onnx package ships no pytorch-converted test data")
    results = _run_all(tmp_path, cases)
    ok = [n for n, r in results.items() if r == "ok"]
    assert len(ok) >= 30, "\n".join(f"{n}: {r}" for n, r in sorted(results.items()))
