"""Weights as a binary blob (.incbin) and the content-keyed build cache: the incbin library is
bit-exact and warning-free on every compiler, its constants are sized read-only objects, the C-array
text reads back to the same integers, and a second check of the same model builds nothing."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ir_graphs import every_op_graph
from native_checks import STRICT_COMPILERS, assert_bit_exact_native, assert_compiles_cleanly, assert_layers_match, need_compiler
from tinyconv import buildcache, native
from tinyconv.check import run_check
from tinyconv.codegen import c_array_body
from tinyconv.errors import ModelError
from tinyconv.fixedpoint import quantize
from tinyconv.pipeline import compile_model

REPO_EXAMPLE = __import__("conftest").EXAMPLE


@pytest.fixture(scope="module")
def incbin_lib(tmp_path_factory):
    g = every_op_graph()
    calib = np.random.default_rng(1).normal(size=(12, 9, 8, 4)).astype(np.float32)
    c = compile_model(g, calib=calib, outdir=tmp_path_factory.mktemp("lib"), weights="incbin")
    s, z = c.graph.tensors["x"].quant.scalar()
    return c, quantize(calib, s, z)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_incbin_library_bit_exact_native(incbin_lib, cc):
    c, xq = incbin_lib
    need_compiler(cc)
    assert c.library.manifest["weights"] == "incbin" and (c.library.outdir / "tc_model_weights.bin").is_file()
    # The source names the blob's hash, so anything keyed by source content rebuilds when weights change.
    blob = (c.library.outdir / "tc_model_weights.bin").read_bytes()
    assert hashlib.sha256(blob).hexdigest() in (c.library.outdir / "tc_model_weights.c").read_text()
    assert_bit_exact_native(c, xq, cc)
    assert_layers_match(c, xq[0])


@pytest.mark.parametrize("cc,flags", STRICT_COMPILERS)
def test_incbin_library_compiles_without_warnings(incbin_lib, cc, flags):
    c, _ = incbin_lib
    need_compiler(cc)
    assert_compiles_cleanly(c, cc, flags)


def test_incbin_constants_are_sized_aligned_rodata_objects(incbin_lib, tmp_path):
    """On the Cortex-M compiler: every constant is a global STT_OBJECT of its exact size, 16-byte
    aligned, in a read-only allocated section (flash), holding the blob's bytes."""
    c, _ = incbin_lib
    need_compiler("arm-none-eabi-gcc")
    import subprocess

    obj = tmp_path / "w.o"
    src = c.library.outdir / "tc_model_weights.c"
    r = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", f"-I{c.library.outdir}", "-c", str(src), "-o", str(obj)],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    consts = {t.name: t for t in c.graph.tensors.values() if t.is_const}
    with open(obj, "rb") as f:
        e = ELFFile(f)
        syms = {s.name: s for s in e.get_section_by_name(".symtab").iter_symbols()
                if s.name.startswith("tc_model_") and s["st_info"]["type"] != "STT_FILE"}
        assert syms, "no constants"
        for name, s in syms.items():
            sec = e.get_section(s["st_shndx"])
            assert s["st_info"]["type"] == "STT_OBJECT" and s["st_info"]["bind"] == "STB_GLOBAL", name
            assert sec.name.startswith(".rodata") and not sec["sh_flags"] & 0x1 and sec["sh_flags"] & 0x2, (name, sec.name)  # !WRITE, ALLOC
            assert s["st_value"] % 16 == 0 and s["st_size"] > 0, name
        w0 = syms["tc_model_w_0"]
        data = e.get_section(w0["st_shndx"]).data()[w0["st_value"] : w0["st_value"] + w0["st_size"]]
    first_weights = next(t for t in consts.values() if t.dtype == "int8")
    assert data == first_weights.data.tobytes()


def test_unknown_weights_form_is_one_clear_error(tmp_path):
    with pytest.raises(ModelError, match="--weights 'hex' is not one of c, incbin"):
        compile_model(every_op_graph(), calib=np.zeros((1, 9, 8, 4), np.float32), outdir=tmp_path, weights="hex")


def _parse(text: str) -> list[int]:
    return [-(2**31) if t == "(-2147483647 - 1)" else int(t) for t in re.findall(r"\(-2147483647 - 1\)|-?\d+", text)]


@given(hnp.arrays(st.sampled_from([np.int8, np.uint8, np.int16, np.int32]), st.integers(0, 70)))
def test_c_array_text_reads_back_to_the_same_integers(arr):
    text = c_array_body(arr)
    assert _parse(text) == (arr.tolist() or [0])
    assert all(line.endswith(",") for line in text.splitlines())


def test_c_array_text_spells_int32_min():
    assert _parse(c_array_body(np.array([-(2**31), 2**31 - 1], np.int32))) == [-(2**31), 2**31 - 1]
    assert "-2147483648" not in c_array_body(np.array([-(2**31)], np.int32))


@pytest.mark.slow
def test_second_check_builds_nothing_and_a_changed_model_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCONV_CACHE", str(tmp_path / "cache"))
    model, calib = REPO_EXAMPLE / "digits_cnn.onnx", np.load(REPO_EXAMPLE / "calib.npy")
    xs = np.load(REPO_EXAMPLE / "test_x.npy")
    before = buildcache.stats.compiles, buildcache.stats.links
    r1, _, c1 = run_check(model, device="host", calib=calib, inputs=xs[:8], compare_onnxruntime=False)
    first = buildcache.stats.compiles - before[0], buildcache.stats.links - before[1]
    links = 2 if native.sanitizers_available() else 1  # the -O3 driver and the sanitized one (check.host_outputs)
    assert r1["bit_exact"] and first[0] >= 3 and first[1] == links
    # Every cache write is a new file renamed into place: same inodes = nothing rewritten (a hit only
    # touches the modification time, which records the last use for pruning).
    objects = {p: p.stat().st_ino for p in (tmp_path / "cache").rglob("*") if p.is_file()}

    before = buildcache.stats.compiles, buildcache.stats.links
    r2, _, _ = run_check(model, device="host", calib=calib, inputs=xs[100:116], compare_onnxruntime=False)  # other inputs, new temp dir
    assert r2["bit_exact"] and r2["inputs"] == 16
    assert (buildcache.stats.compiles, buildcache.stats.links) == before, "the second check invoked the compiler"
    assert {p: p.stat().st_ino for p in (tmp_path / "cache").rglob("*") if p.is_file()} == objects

    # Other calibration data → other scales → another library: only what changed is rebuilt.
    r3, _, _ = run_check(model, device="host", calib=calib[:16] * 0.5, inputs=xs[:8], compare_onnxruntime=False)
    assert r3["bit_exact"]
    rebuilt = buildcache.stats.compiles - before[0]
    assert 1 <= rebuilt < first[0] and buildcache.stats.links == before[1] + links


@pytest.mark.slow
def test_firmware_build_is_cached_by_content(tmp_path, monkeypatch):
    """The same library generated into two folders: the second firmware build compiles and links
    nothing and yields the same ELF; both ELFs hold the weights as sized objects."""
    need_compiler("arm-none-eabi-gcc")
    from tinyconv.harness.build import build_firmware, elf_sizes
    from tinyconv.harness.devices import load_device

    monkeypatch.setenv("TINYCONV_CACHE", str(tmp_path / "cache"))
    dev = load_device("qemu-m4")
    model, calib = REPO_EXAMPLE / "digits_cnn.onnx", np.load(REPO_EXAMPLE / "calib.npy")
    libs = [compile_model(model, calib=calib, target=dev.target, outdir=tmp_path / f"lib{k}", weights="incbin").library.outdir for k in range(2)]
    fw1 = build_firmware(libs[0], dev)
    before = buildcache.stats.compiles, buildcache.stats.links
    fw2 = build_firmware(libs[1], dev)
    assert (buildcache.stats.compiles, buildcache.stats.links) == before
    assert fw1.elf == fw2.elf and fw1.build_id == fw2.build_id
    weights = sum(t.nbytes for t in compile_model(model, calib=calib).graph.tensors.values() if t.is_const)
    assert elf_sizes(fw2.elf)["flash_weights_bytes"] >= weights


@pytest.mark.parametrize("form", ["c", "incbin"])
def test_cli_compile_weights_option(tmp_path, capsys, form):
    from tinyconv.cli import main

    out = tmp_path / "out"
    rc = main(["compile", str(REPO_EXAMPLE / "digits_cnn.onnx"), "--calib", str(REPO_EXAMPLE / "calib.npy"), "-o", str(out), "--weights", form])
    assert rc == 0, capsys.readouterr().err
    assert (out / "tc_model_weights.bin").exists() == (form == "incbin")
    assert ("__asm__" in (out / "tc_model_weights.c").read_text()) == (form == "incbin")


def test_cli_compile_default_weights_are_portable_c(tmp_path, capsys):
    from tinyconv.cli import main

    out = tmp_path / "out"
    assert main(["compile", str(REPO_EXAMPLE / "digits_cnn.onnx"), "--calib", str(REPO_EXAMPLE / "calib.npy"), "-o", str(out)]) == 0
    assert not (out / "tc_model_weights.bin").exists() and "__asm__" not in (out / "tc_model_weights.c").read_text()


def test_layer_dump_build_reuses_the_check_build_objects(tmp_path, monkeypatch):
    """The per-layer dump (check's layer report) compiles only the model unit (hooks on) and its
    driver: the kernels and the weights come from the -O3 build's cache entries."""
    need_compiler("gcc")
    monkeypatch.setenv("TINYCONV_CACHE", str(tmp_path / "cache"))
    c = compile_model(REPO_EXAMPLE / "digits_cnn.onnx", calib=np.load(REPO_EXAMPLE / "calib.npy"), target="host", outdir=tmp_path / "lib", weights="incbin")
    native.build(c.library.outdir, opt="-O3", march_native=True)
    units = len(list(c.library.outdir.glob("*.c")))
    before = buildcache.stats.compiles
    s, z = c.graph.tensors[c.graph.inputs[0]].quant.scalar()
    x = quantize(np.load(REPO_EXAMPLE / "test_x.npy")[:1], s, z)
    layers = native.dump_layers(c.library.outdir, x, [lay["output_bytes"] for lay in c.library.manifest["layers"]])
    assert buildcache.stats.compiles - before == 2 < units + 1
    assert len(layers) == len(c.graph.nodes)
    assert_layers_match(c, x[0])  # the dump still shows every layer, equal to the reference
