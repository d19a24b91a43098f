"""Hostile ONNX names through the real CLI: the library compiles with -Werror -pedantic under gcc and
clang, nothing of the name runs as code, the check is bit-exact, `layer_names` hold the names
byte for byte (up to a NUL, cut at 200 bytes) and `inspect` prints them as text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

HOSTILE = [
    '"',
    'quote"inside',
    "back\\slash",
    "trailing\\",
    "tri??/",
    "??=??(??)??<??>??!??'??-",
    "new\nline",
    "cr\rreturn",
    "nul\x00byte",
    "bidi\u202eevil\u202c",
    "isolate\u2066x\u2069",
    "*/ output[0]=42; return 0; /*",
    '*/ #include "/etc/passwd"',
    "A" * 10_000,
    "caf\u00e9 \u540d\u524d \U0001f600",
    "[/]",
    "[red]styled[/red] :x:",
    "\x1b[31mescape",
    "%s%n%x",
    "splice\\\nnext",
    "del\x7f",
    "/* nested",
    "// line comment",
    "ws\t\x0b\x0c",
    "nel\x85sep\u2028par\u2029",
    "hex\x01Fab",
    "$(touch pwned)`id`",
]


def hostile_model() -> onnx.ModelProto:
    """A chain of 1x1 convolutions; every node, value and initializer carries a hostile name."""
    rng = np.random.default_rng(0)
    names = iter(HOSTILE * 3)
    x = next(names)
    nodes, inits, prev = [], [], x
    for k in range(len(HOSTILE)):
        w = f"w{k}:" + next(names)
        out = f"v{k}:" + next(names) if k < len(HOSTILE) - 1 else f"y:{HOSTILE[0]}"
        inits.append(numpy_helper.from_array(rng.normal(size=(2, 2, 1, 1)).astype(np.float32), w))
        nodes.append(helper.make_node("Conv", [prev, w], [out], HOSTILE[k]))
        prev = out
    g = helper.make_graph(nodes, "hostile", [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 2, 3, 3])], inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyconv.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


ROUND_TRIP = r"""
#include <stdio.h>
#include "tc_model.h"
void tc_model_layer_hook(int layer, const int8_t *output, uint32_t bytes) { (void)layer; (void)output; (void)bytes; }
int main(void)
{
    int i;
    const unsigned char *p;
    for (i = 0; i < TC_MODEL_NUM_LAYERS; i++) {
        for (p = (const unsigned char *)tc_model_layer_names[i]; *p; p++) printf("%02x", *p);
        printf("\n");
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    onnx.save(hostile_model(), d / "m.onnx")
    np.save(d / "calib.npy", np.random.default_rng(1).normal(size=(8, 2, 3, 3)).astype(np.float32))
    return d


def expected_c_bytes(name: str) -> bytes:
    data = name.encode("utf-8").split(b"\0")[0]  # a C string ends at its first NUL
    return data if len(name.encode()) <= 200 else name.encode()[:197] + b"..."


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_hostile_names_compile_pedantic_and_round_trip(hostile, cc):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    out = hostile / f"lib-{cc}"
    r = cli("compile", "m.onnx", "--calib", "calib.npy", "-o", str(out), cwd=hostile)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    (out / "roundtrip.c").write_text(ROUND_TRIP)
    exe = hostile / f"rt-{cc}"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wtrigraphs", "-Wcomment", "-DTC_MODEL_LAYER_HOOKS"]
    b = subprocess.run([cc, *flags, f"-I{out}", *map(str, sorted(out.glob("*.c"))), "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert b.returncode == 0, b.stderr[:3000]
    assert "passwd" not in b.stderr
    got = [bytes.fromhex(line) for line in subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()]
    man = json.loads((out / "manifest.json").read_text())
    names = [n.output[0] for n in hostile_model().graph.node]  # layers are named after their outputs
    assert set(HOSTILE) <= {n.split(":", 1)[1] for n in names}
    assert [lay["name"] for lay in man["layers"]] == names  # the manifest keeps every name whole
    assert got == [expected_c_bytes(n) for n in names]
    for src in ("tc_model.c", "tc_model.h", "tc_model_weights.c"):  # every comment closes at its line's end
        text = (out / src).read_text()
        assert text.isascii(), src
        text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)  # string literals, each on one line
        assert not re.search(r"\*/[ \t]*\S", text), src
        assert "#include \"/etc" not in text


def test_hostile_names_check_bit_exact(hostile):
    r = cli("check", "m.onnx", "--calib", "calib.npy", "--device", "host", "--json", "r.json", cwd=hostile)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    rep = json.loads((hostile / "r.json").read_text())
    assert rep["bit_exact"] and rep["mismatches"] == 0 and rep["elements"] > 0


def test_hostile_names_inspect_prints_text(hostile):
    r = cli("inspect", "m.onnx", cwd=hostile)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "[/]" in r.stdout and ":x:" in r.stdout and "[red]styled[/red]" in r.stdout
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "\r" not in r.stdout
    assert "\U0001f600" in r.stdout or "\\U0001f600" in r.stdout  # shown, never turned into ❌
    assert "\u274c" not in r.stdout


def test_hostile_tflite_names_check_bit_exact(tmp_path):
    """The same names as TFLite tensor names (raw bytes, invalid UTF-8 too), through the CLI."""
    pytest.importorskip("tflite_micro", reason="tflite-micro (the .tflite builder's schema) is not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tflite"))
    from tflite_build import ModelBuilder, conv_options, op_code

    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    names = [n.encode("utf-8", "surrogatepass") for n in HOSTILE] + [b"\xff\xfe invalid utf-8"]
    prev = mb.act(names[-1], (1, 3, 3, 2), 0.05, 0)
    mb.inputs = [prev]
    for k, name in enumerate(names[:-1]):
        w = mb.tensor(b"w" + name, (2, 1, 1, 2), "int8", 0.02, 0, rng.integers(-127, 128, (2, 1, 1, 2)))
        out = mb.act(name, (1, 3, 3, 2), 0.05, k % 5)
        mb.op(op_code("CONV_2D"), [prev, w, -1], [out], *conv_options())
        prev = out
    mb.outputs = [prev]
    (tmp_path / "m.tflite").write_bytes(mb.build())
    np.save(tmp_path / "x.npy", rng.integers(-128, 128, (6, 3, 3, 2)).astype(np.int8))
    r = cli("check", "m.tflite", "--inputs", "x.npy", "--device", "host", "--json", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["bit_exact"]
