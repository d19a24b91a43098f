"""The generated library's API variants compile warning-free as strict C99 under every compiler:
--arena caller (context struct) and a model with two inputs and two outputs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ir_graphs import two_io_graph  # noqa: E402

from tinyconv.pipeline import compile_model  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-c"]
COMPILERS = {"gcc": ("gcc", "host"), "clang": ("clang", "host"),
             "arm-none-eabi-gcc": ("arm-none-eabi-gcc", "cortex-m4")}  # fmt: skip


def compile_all(cc: str, libdir: Path, *flags: str) -> None:
    for src in sorted(libdir.glob("*.c")):
        r = subprocess.run([cc, *STRICT, *flags, f"-I{libdir}", str(src), "-o", str(libdir / (src.stem + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0, f"{cc} {src.name}:\n{r.stderr}"


@pytest.mark.parametrize("compiler", ["gcc", "clang", pytest.param("arm-none-eabi-gcc", marks=pytest.mark.slow)])
def test_caller_arena_and_two_io_libraries_compile_strictly(compiler, tmp_path):
    cc, target = COMPILERS[compiler]
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"] if target == "cortex-m4" else []
    d = compile_model(EXAMPLE / "digits_cnn.onnx", calib=EXAMPLE / "calib.npy", target=target, outdir=tmp_path / "digits", prefix="digits", arena="caller")
    h = (d.library.outdir / "digits.h").read_text()
    assert "digits_ctx_init" in h and "digits_run(" not in h and "DIGITS_INPUT_BYTES" in h
    assert d.library.manifest["arena"] == "caller"
    compile_all(cc, d.library.outdir, *flags)
    g, _ = two_io_graph()
    t = compile_model(g, target=target, outdir=tmp_path / "two", prefix="two")
    h = (t.library.outdir / "two.h").read_text()
    assert "#define TWO_NUM_INPUTS 2" in h and "#define TWO_NUM_OUTPUTS 2" in h and "two_run_io" in h
    assert "TWO_INPUT_BYTES" not in h and "two_run(" not in h  # the short names exist for one input and one output only
    assert [o["name"] for o in t.library.manifest["outputs"]] == g.outputs
    compile_all(cc, t.library.outdir, *flags, '-DTWO_ARENA_SECTION=".bss.two_arena"')
    for f in ("CMakeLists.txt", "two.mk"):
        assert (t.library.outdir / f).is_file()
