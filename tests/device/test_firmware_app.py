"""The generated library in a real firmware build: examples/firmware_app (CMake) links the digits
model twice (caller-owned arenas, two contexts) and a two-input, two-output model (static arena in a
named section), for the host and, with the arm-none-eabi toolchain file, for the Cortex-M4 on
QEMU mps2-an386. Every output byte is compared with the NumPy reference."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ir_graphs import two_io_graph  # noqa: E402

from tinyconv import reference  # noqa: E402
from tinyconv.fixedpoint import quantize  # noqa: E402
from tinyconv.pipeline import compile_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent
APP = REPO / "examples" / "firmware_app"
EXAMPLE = REPO / "examples" / "digits"
SAMPLES = 6

pytestmark = [pytest.mark.slow, pytest.mark.device]


def c_array(name: str, data: np.ndarray) -> str:
    return f"static const int8_t {name}[{data.size}] = {{{', '.join(str(int(v)) for v in data.reshape(-1))}}};\n"


@pytest.fixture(scope="module")
def app_sources(tmp_path_factory):
    """Generated libraries for each target, the app's inputs header and the expected outputs."""
    root = tmp_path_factory.mktemp("fwapp")
    x = np.load(EXAMPLE / "test_x.npy")[:SAMPLES]
    g2, (x2, y2) = two_io_graph()
    libs = {}
    for target in ("host", "cortex-m4"):
        d = compile_model(EXAMPLE / "digits_cnn.onnx", calib=EXAMPLE / "calib.npy", target=target, outdir=root / target / "digits", prefix="digits", arena="caller")
        t = compile_model(g2, target=target, outdir=root / target / "two", prefix="two")
        libs[target] = (d, t)
    d, t = libs["host"]
    s, z = d.graph.tensors[d.graph.inputs[0]].quant.scalar()
    xq = quantize(reference.onnx_in(d.graph, x), s, z)
    expected = {("digits", k % 2, k): reference.run_batch(d.graph, xq[k : k + 1]).reshape(-1) for k in range(SAMPLES)}
    qin = [quantize(v, *t.graph.tensors[n].quant.scalar()) for n, v in zip(t.graph.inputs, (x2, y2))]
    outs = reference.run(t.graph, dict(zip(t.graph.inputs, qin)))
    for k, name in enumerate(t.graph.outputs):
        expected[("two", k, 0)] = outs[name].reshape(-1)
    inc = root / "include"
    inc.mkdir()
    header = "#include <stdint.h>\n#define DIGITS_SAMPLES %d\n" % SAMPLES
    header += f"static const int8_t digits_inputs[{SAMPLES}][{xq[0].size}] = {{" + ", ".join(
        "{" + ", ".join(str(int(v)) for v in row.reshape(-1)) + "}" for row in xq) + "};\n"  # fmt: skip
    header += c_array("two_in0", qin[0]) + c_array("two_in1", qin[1])
    (inc / "app_inputs.h").write_text(header)
    return root, inc, expected


def parse(stdout: str) -> dict:
    got = {}
    lines = stdout.splitlines()
    assert lines and lines[-1] == "done", f"the app did not finish:\n{stdout[-2000:]}"
    for line in lines[:-1]:
        tag, a, b, data = line.split()
        got[(tag, int(a), int(b))] = np.frombuffer(bytes.fromhex(data), np.int8)
    return got


def assert_bit_exact(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, want in expected.items():
        np.testing.assert_array_equal(got[key], want.astype(np.int8), err_msg=f"{key}")


def cmake_build(src_root: Path, inc: Path, build: Path, *extra: str) -> None:
    cfg = ["cmake", "-S", str(APP), "-B", str(build), f"-DTC_DIGITS_DIR={src_root / 'digits'}", f"-DTC_TWO_DIR={src_root / 'two'}",
           f"-DTC_APP_INPUTS={inc}", "-DCMAKE_BUILD_TYPE=Release", *extra]  # fmt: skip
    for cmd in (cfg, ["cmake", "--build", str(build), "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def test_cmake_app_on_the_host(app_sources):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (run scripts/setup)")
    root, inc, expected = app_sources
    build = root / "build-host"
    cmake_build(root / "host", inc, build)
    r = subprocess.run([str(build / "app")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_bit_exact(parse(r.stdout), expected)


def test_make_app_on_the_host(app_sources):
    """The same app built with GNU Make through the generated <prefix>.mk fragments."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed (run scripts/setup)")
    root, inc, expected = app_sources
    build = root / "build-make"
    cmd = ["make", "-f", str(APP / "Makefile"), f"DIGITS_DIR={root / 'host' / 'digits'}", f"TWO_DIR={root / 'host' / 'two'}",
           f"APP_INPUTS={inc}", f"BUILD={build}", "-j2"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run([str(build / "app")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_bit_exact(parse(r.stdout), expected)


QEMU_M4 = ["qemu-system-arm", "-machine", "mps2-an386", "-cpu", "cortex-m4", "-display", "none", "-monitor", "none", "-serial", "stdio",
           "-semihosting-config", "enable=on,target=native"]  # fmt: skip


def run_with_kernel(elf: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*QEMU_M4, "-kernel", str(elf)], capture_output=True, text=True, timeout=120)


def run_loaded_over_gdb(elf: Path) -> subprocess.CompletedProcess:
    """QEMU starts halted with its gdbstub open; gdb-multiarch loads the ELF, resets and detaches (the
    same path as a device with [flash] method = "gdb"), then the board runs."""
    from test_gdb_load import free_port

    from tinyconv.harness.gdbload import load_command

    port = free_port()
    proc = subprocess.Popen([*QEMU_M4, "-S", "-gdb", f"tcp:127.0.0.1:{port}"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        flash = {"address": f"127.0.0.1:{port}", "before_load": [], "after_load": ["monitor system_reset"]}
        g = subprocess.run(load_command(str(elf), flash), capture_output=True, text=True, timeout=120)
        assert "Transfer rate" in g.stdout, g.stdout + g.stderr
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("load", ["kernel", "gdb"])
def test_cmake_app_on_cortex_m4(app_sources, load):
    for tool in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm", *(["gdb-multiarch"] if load == "gdb" else [])):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (run scripts/setup)")
    root, inc, expected = app_sources
    build = root / "build-m4"
    if not (build / "app.elf").exists():
        cmake_build(root / "cortex-m4", inc, build, f"-DCMAKE_TOOLCHAIN_FILE={APP / 'arm-none-eabi.cmake'}")
    assert ".bss.two_arena" in (build / "app.map").read_text(), "the static arena is not in its named section"
    r = (run_with_kernel if load == "kernel" else run_loaded_over_gdb)(build / "app.elf")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert_bit_exact(parse(r.stdout), expected)
