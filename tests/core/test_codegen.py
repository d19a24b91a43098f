"""Generated C: clean under strict warnings on gcc, clang and arm-none-eabi-gcc, and bit-exact
with the NumPy reference for a graph that uses every portable kernel."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from ir_graphs import every_op_graph
from tinyconv import native, reference
from tinyconv.fixedpoint import quantize
from tinyconv.pipeline import compile_model

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    g = every_op_graph()
    calib = np.random.default_rng(1).normal(size=(12, 9, 8, 4)).astype(np.float32)
    c = compile_model(g, calib=calib, outdir=tmp_path_factory.mktemp("lib"))
    s, z = c.graph.tensors["x"].quant.scalar()
    return c, quantize(calib, s, z)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_every_op_bit_exact_native(compiled, cc):
    c, xq = compiled
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    exe = native.build(c.library.outdir, cc=cc, sanitize=True, opt="-O1")
    got = native.run_batch(exe, xq, expected.shape[1])
    assert np.count_nonzero(got != expected) == 0
    # Every op of the graph is exercised and every layer is dumped identically too.
    layers = native.dump_layers(c.library.outdir, xq[0], [lay["output_bytes"] for lay in c.library.manifest["layers"]])
    ref = reference.run(c.graph, {"x": xq[0].reshape(1, 9, 8, 4)}, keep=True)
    for node, d in zip(c.graph.nodes, layers):
        assert np.array_equal(d, ref[node.outputs[0]].reshape(-1)), node.name


@pytest.mark.parametrize(
    "cc,flags",
    [
        ("gcc", []),
        ("clang", ["-Weverything", "-Wno-declaration-after-statement", "-Wno-padded", "-Wno-unknown-warning-option", "-Wno-unsafe-buffer-usage", "-Wno-sign-conversion"]),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2"]),
    ],
)
def test_generated_c_compiles_without_warnings(compiled, cc, flags):
    c, _ = compiled
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    srcs = sorted(str(p) for p in c.library.outdir.glob("*.c"))
    for src in srcs:
        r = subprocess.run([cc, *STRICT, *flags, "-c", src, "-o", "/dev/null", f"-I{c.library.outdir}"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_generated_library_shape(compiled):
    c, _ = compiled
    text = (c.library.outdir / "tc_model.c").read_text()
    assert "malloc" not in text and "printf" not in text and "float" not in text
    for f in c.library.outdir.glob("*.c"):
        body = f.read_text()
        assert "malloc(" not in body and "printf(" not in body
    header = (c.library.outdir / "tc_model.h").read_text()
    assert "#define TC_MODEL_ARENA_BYTES" in header and "int tc_model_run(const int8_t *input, int8_t *output);" in header
    assert c.library.manifest["arena_bytes"] == c.plan.arena_bytes >= c.plan.lower_bound
