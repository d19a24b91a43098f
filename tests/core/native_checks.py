"""Checks shared by the codegen tests: the generated library built natively (sanitizers on)
equals the NumPy reference byte for byte, layer by layer, and compiles under strict warnings."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tinyconv import native, reference
from tinyconv.fixedpoint import quantize
from tinyconv.pipeline import compile_model

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-Wconversion", "-Wno-sign-conversion"]
# (compiler, extra flags) for test_*_compiles_without_warnings
STRICT_COMPILERS = [
    ("gcc", []),
    ("clang", ["-Weverything", "-Wno-declaration-after-statement", "-Wno-padded", "-Wno-unknown-warning-option", "-Wno-unsafe-buffer-usage", "-Wno-sign-conversion"]),
    ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2"]),
]


def compile_calibrated(graph, calib_shape: tuple[int, ...], outdir, **options):
    """graph compiled (host target, `options` as compile_model's) with seed-1 normal calibration
    inputs of calib_shape [N, *input]: (the compilation, those inputs quantized at the model input)."""
    calib = np.random.default_rng(1).normal(size=calib_shape).astype(np.float32)
    c = compile_model(graph, calib=calib, outdir=outdir, **options)
    return c, quantize(calib, *c.graph.tensors["x"].quant.scalar())


def need_compiler(cc: str) -> None:
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")


def assert_bit_exact_native(c, xs: np.ndarray, cc: str) -> np.ndarray:
    """Every output byte of the sanitized native build equals the reference; returns the outputs."""
    expected = reference.run_batch(c.graph, xs).reshape(len(xs), -1)
    exe = native.build(c.library.outdir, cc=cc, sanitize=True, opt="-O1")
    got = native.run_batch(exe, xs, expected.shape[1])
    mism = int(np.count_nonzero(got != expected))
    assert mism == 0, f"{mism} of {expected.size} bytes differ"
    return expected


def assert_layers_match(c, x: np.ndarray) -> None:
    """Every layer's output, dumped by the native build, equals the reference's intermediate."""
    layers = native.dump_layers(c.library.outdir, x, [lay["output_bytes"] for lay in c.library.manifest["layers"]])
    (inp,) = c.graph.inputs
    ref = reference.run(c.graph, {inp: x.reshape(c.graph.tensors[inp].shape)}, keep=True)
    for node, d in zip(c.graph.nodes, layers):
        assert np.array_equal(d, ref[node.outputs[0]].reshape(-1)), node.name


def assert_compiles_cleanly(c, cc: str, flags: list[str]) -> list[str]:
    """Every generated .c compiles with STRICT + flags; returns the sources."""
    srcs = sorted(str(p) for p in c.library.outdir.glob("*.c"))
    for src in srcs:
        r = subprocess.run([cc, *STRICT, *flags, "-c", src, "-o", "/dev/null", f"-I{c.library.outdir}"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return srcs
