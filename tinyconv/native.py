"""Build a generated library natively and run a batch of inputs through it (no device protocol).

Used by the property tests (with AddressSanitizer/UBSan) and as a quick host check. The driver
reads N inputs from a file and writes N outputs to another: one process for the whole batch.
"""

from __future__ import annotations

import functools
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tinyconv import buildcache, procs
from tinyconv.errors import BuildError

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "{prefix}.h"

int main(int argc, char **argv)
{{
    if (argc != 3) return 2;
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (!in || !out) return 3;
    static int8_t x[{P}_INPUT_BYTES];
    static int8_t y[{P}_OUTPUT_BYTES];
    if ({prefix}_init() != 0) return 4;
    while (fread(x, 1, sizeof x, in) == sizeof x) {{
        if ({prefix}_run(x, y) != 0) return 5;
        if (fwrite(y, 1, sizeof y, out) != sizeof y) return 6;
    }}
    fclose(in);
    fclose(out);
    return 0;
}}
"""

DUMP_DRIVER = r"""
#include <stdio.h>
#include "{prefix}.h"

static FILE *dump;

void {prefix}_layer_hook(int layer, const int8_t *output, uint32_t bytes)
{{
    (void)layer;
    fwrite(output, 1, bytes, dump);
}}

int main(int argc, char **argv)
{{
    if (argc != 3) return 2;
    FILE *in = fopen(argv[1], "rb");
    dump = fopen(argv[2], "wb");
    if (!in || !dump) return 3;
    static int8_t x[{P}_INPUT_BYTES];
    static int8_t y[{P}_OUTPUT_BYTES];
    if (fread(x, 1, sizeof x, in) != sizeof x) return 4;
    if ({prefix}_run(x, y) != 0) return 5;
    fclose(dump);
    return 0;
}}
"""

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g1"]  # -g1: line tables, all a report shows (file:line), for a sixth of -g's extra compile time


@functools.lru_cache(maxsize=None)
def sanitizers_available(cc: str = "gcc") -> bool:
    """Whether `cc` builds and runs a program with SANITIZE (libasan/libubsan installed, and ASan
    allowed to map its shadow memory here). `check --device host` sanitizes when this holds."""
    if shutil.which(cc) is None:
        return False
    with procs.temp_dir(prefix="tinyconv-san-") as tmp:
        src, exe = tmp / "probe.c", tmp / "probe"
        src.write_text("int main(void) { return 0; }\n")
        try:
            if procs.run([cc, *SANITIZE, str(src), "-o", str(exe)], timeout=60).returncode != 0:
                return False
            return procs.run([str(exe)], timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False


def native_arch_flags() -> list[str]:
    """-march=native, without AVX-512 on x86: there gcc 12 compiles the per-layer loops of a model
    unit ~3x slower (ResNet-18's tc_model.c: 0.8 s against 0.26 s, in the RTL combiner) and the runs
    are no faster (measured on ResNet-18 and Wav2Letter, the same bytes either way)."""
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return ["-march=native", "-mno-avx512f"]
    return ["-march=native"]


def build(libdir: Path, *, cc: str = "gcc", sanitize: bool = False, opt: str = "-O2", prefix: str = "tc_model", dump: bool = False,
          march_native: bool = False, cache_dir=None) -> Path:
    """The library plus a batch (or layer-dump) driver as a native executable, from the build cache.
    `march_native`: use every instruction this CPU has (the fast host check; the objects are then
    cached per CPU)."""
    libdir = Path(libdir)
    if shutil.which(cc) is None:
        raise BuildError(f"C compiler '{cc}' not found", hint="run scripts/setup")
    build_dir = libdir / ".build"
    build_dir.mkdir(exist_ok=True)
    driver = build_dir / ("dump_main.c" if dump else "driver_main.c")
    driver.write_text((DUMP_DRIVER if dump else DRIVER).format(prefix=prefix, P=prefix.upper()))
    san = SANITIZE if sanitize else []
    arch = native_arch_flags() if march_native else []
    sources = [*sorted(libdir.glob("*.c")), driver]
    # The hooks define goes only to the units that read it (the model's run function): the kernels
    # and the weights are then the same objects as the plain build's, already in the cache.
    hooks = {src: [f"-D{prefix.upper()}_LAYER_HOOKS"] for src in sources if dump and b"_LAYER_HOOKS" in src.read_bytes()}
    try:
        return buildcache.build_executable(cc, sources, [*WARNINGS, opt, *arch, *san], [opt, *arch, *san], [libdir], name="driver",
                                           cache_dir=cache_dir, key_extra=(buildcache.host_cpu(),) if march_native else (), unit_flags=hooks)  # fmt: skip
    except BuildError as e:
        raise BuildError(f"the native build of the generated library in {libdir} failed: {e.message}") from None


def run_batch(exe: Path, inputs: np.ndarray, output_bytes: int, *, timeout: float = 120.0) -> np.ndarray:
    """inputs [N, ...] int8 → outputs [N, output_bytes] int8, exactly as the C code wrote them."""
    inputs = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
    with procs.temp_dir() as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        fin.write_bytes(inputs.tobytes())
        try:
            r = procs.run([str(exe), str(fin), str(fout)], timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BuildError(f"the native build did not finish {len(inputs)} inferences in {timeout:.0f} s") from None
        if r.returncode != 0:
            what = "hit undefined behaviour or a memory error (sanitizer report below)" if "Sanitizer" in r.stderr or "runtime error" in r.stderr else f"exited with {r.returncode}"
            raise BuildError(f"the native build of the generated code {what}:\n{r.stderr.strip()[:4000]}")
        data = np.frombuffer(fout.read_bytes(), dtype=np.int8)
    if data.size != len(inputs) * output_bytes:
        raise BuildError(f"the native build wrote {data.size} bytes, expected {len(inputs) * output_bytes}")
    return data.reshape(len(inputs), output_bytes)


def dump_layers(libdir: Path, x: np.ndarray, layer_bytes: list[int], *, prefix: str = "tc_model") -> list[np.ndarray]:
    """Every layer's output for one input, as the C code computed it (layer hooks compiled in)."""
    exe = build(libdir, dump=True, prefix=prefix, opt="-O3", march_native=True)  # the host check's flags: its objects are reused
    total = sum(layer_bytes)
    with procs.temp_dir() as tmp:
        fin, fout = Path(tmp) / "in.bin", Path(tmp) / "layers.bin"
        fin.write_bytes(np.ascontiguousarray(x, np.int8).tobytes())
        try:
            r = procs.run([str(exe), str(fin), str(fout)], timeout=120)
        except subprocess.TimeoutExpired:
            raise BuildError("the layer-dump build did not finish within 120 s") from None
        if r.returncode != 0:
            raise BuildError(f"the layer-dump build exited with {r.returncode}:\n{r.stderr.strip()[:4000]}")
        data = np.frombuffer(fout.read_bytes(), dtype=np.int8)
    if data.size != total:
        raise BuildError(f"the layer dump has {data.size} bytes, expected {total}")
    return np.split(data, np.cumsum(layer_bytes)[:-1])
