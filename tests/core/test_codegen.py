"""Generated C: clean under strict warnings on gcc, clang and arm-none-eabi-gcc, and bit-exact
with the NumPy reference for a graph that uses every portable kernel."""

from __future__ import annotations

import pytest

from ir_graphs import every_op_graph
from native_checks import STRICT_COMPILERS, assert_bit_exact_native, assert_compiles_cleanly, assert_layers_match, compile_calibrated, need_compiler


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_calibrated(every_op_graph(), (12, 9, 8, 4), tmp_path_factory.mktemp("lib"))


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_every_op_bit_exact_native(compiled, cc):
    c, xq = compiled
    need_compiler(cc)
    assert_bit_exact_native(c, xq, cc)
    assert_layers_match(c, xq[0])  # every op of the graph, every layer dumped identically too


@pytest.mark.parametrize("cc,flags", STRICT_COMPILERS)
def test_generated_c_compiles_without_warnings(compiled, cc, flags):
    c, _ = compiled
    need_compiler(cc)
    assert_compiles_cleanly(c, cc, flags)


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
