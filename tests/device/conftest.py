"""Fixtures for the device tests: every_op_graph compiled once per target (session scope)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))

from ir_graphs import GraphBuilder, every_op_graph  # noqa: E402

from tinyconv.fixedpoint import quantize  # noqa: E402
from tinyconv.pipeline import compile_model  # noqa: E402

QEMU_DEVICES = {"qemu-m4": "cortex-m4", "qemu-m7": "cortex-m7", "qemu-m55": "cortex-m55", "qemu-aarch64": "aarch64",
                "qemu-aarch64-i8mm": "aarch64-i8mm"}
TOOLS = {"qemu-m4": ["arm-none-eabi-gcc", "qemu-system-arm"], "qemu-m7": ["arm-none-eabi-gcc", "qemu-system-arm"],
         "qemu-m55": ["arm-none-eabi-gcc", "qemu-system-arm"], "qemu-aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"],
         "qemu-aarch64-i8mm": ["aarch64-linux-gnu-gcc", "qemu-aarch64"]}  # fmt: skip


def need(device: str) -> None:
    missing = [t for t in TOOLS.get(device, []) if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{device} needs {', '.join(missing)}")


class Libs:
    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, object] = {}
        self.calib = np.random.default_rng(1).normal(size=(12, 9, 8, 4)).astype(np.float32)

    def get(self, target: str):
        if target not in self.cache:
            c = compile_model(every_op_graph(), calib=self.calib, target=target, outdir=self.root / target)
            self.cache[target] = c
        return self.cache[target]

    def xq(self, target: str) -> np.ndarray:
        c = self.get(target)
        s, z = c.graph.tensors["x"].quant.scalar()
        return quantize(self.calib, s, z)


@pytest.fixture(scope="session")
def libs(tmp_path_factory) -> Libs:
    return Libs(tmp_path_factory.mktemp("devlibs"))


def copy_lib(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".build"))
    return dst


def big_input_graph(seed: int = 0):
    """A VWW-sized input (96x96x3 = 27 KiB) with a large first layer (18 KiB)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("big_input", (1, 96, 96, 3))
    node, const = b.node, b.const

    c = node("conv", "conv2d", ["x", const("w1", rng.normal(size=(8, 3, 3, 3))), const("b1", rng.normal(size=8))], (1, 48, 48, 8),
             strides=(2, 2), dilations=(1, 1), pads=(0, 0, 1, 1), groups=1, act=(0.0, 6.0))  # fmt: skip
    m = node("mean", "mean", [c], (1, 1, 1, 8), axes=(1, 2), keepdims=True)
    f = node("flat", "reshape", [m], (1, 8), shape=(1, 8))
    return b.finish(node("fc", "fully_connected", [f, const("wf", rng.normal(size=(10, 8)) / 3), const("bf", rng.normal(size=10))], (1, 10), act=None))


def assert_runs_bit_exact(c, device: str, xq: np.ndarray) -> None:
    """Every output byte of the compiled model `c` on `device` equals the NumPy reference for the
    int8 inputs xq; on a mismatch the message names the first layer that differs (dumped for xq[0])."""
    from tinyconv import reference
    from tinyconv.harness import api

    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    got = np.asarray(api.run_inputs(c.library.outdir, device, xq.reshape(len(xq), -1)).outputs).reshape(expected.shape)
    if not np.array_equal(got, expected):
        layers = api.dump_layers(c.library.outdir, device, xq[0])
        ref = reference.run(c.graph, {"x": xq[:1]}, mode="int8", keep=True)
        for node, out in zip(c.graph.nodes, layers):
            assert np.array_equal(out, ref[node.outputs[0]].reshape(-1)), f"{node.name} ({node.op}) differs"
    assert np.array_equal(got, expected)


KERNELS = Path(__file__).resolve().parents[2] / "codegen_templates" / "kernels"


def run_neon_program(tmp_path: Path, source: str, cpu: str, *, opt: str = "-O2", std: str = "c99",
                     kernel_sources: tuple[str, ...] = (), timeout: int = 240) -> int:
    """A C check program built against the NEON and portable kernels (aarch64-linux-gnu-gcc,
    -Werror, static, plus kernel_sources: paths under codegen_templates/kernels) and run on
    qemu-aarch64 -cpu cpu; it must exit 0. Returns the count it printed after "checked "."""
    src, exe = tmp_path / "check.c", tmp_path / "check"
    src.write_text(source)
    r = subprocess.run([shutil.which("aarch64-linux-gnu-gcc"), "-march=armv8.2-a+dotprod", opt, f"-std={std}", "-Wall", "-Wextra",
                        "-Werror", "-static", f"-I{KERNELS / 'neon'}", f"-I{KERNELS / 'portable'}", str(src),
                        *(str(KERNELS / k) for k in kernel_sources), "-o", str(exe)],
                       capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = subprocess.run(["qemu-aarch64", "-cpu", cpu, str(exe)], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-2000:]
    return int(run.stdout.split("checked ")[1].split()[0])
