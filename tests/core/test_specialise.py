"""--optimize: per-layer variant choice by level and flash budget (tinyconv/specialise.py)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from ir_graphs import GraphBuilder
from tinyconv.codegen import CODE_RESERVE_BYTES
from tinyconv.errors import TinyconvError
from tinyconv.harness.build import build_firmware, elf_sizes
from tinyconv.harness.devices import load_device
from tinyconv.pipeline import compile_model
from tinyconv.specialise import Options, Variant, check_level, choose


def layer(speed_bytes: int, balanced_bytes: int) -> list[Variant]:
    return [Variant("fast", "speed", consts={"w": np.zeros(speed_bytes, np.int8)}),
            Variant("mid", "balanced", consts={"rq": np.zeros(balanced_bytes, np.int8)})]  # fmt: skip


def test_level_bounds_the_variants():
    layers = [layer(100, 10), layer(50, 5)]
    assert [v.name for v in choose(layers, Options("speed"))] == ["fast", "fast"]
    assert [v.name for v in choose(layers, Options("balanced"))] == ["mid", "mid"]
    assert [v.name for v in choose(layers, Options("size"))] == ["generic", "generic"]
    assert [v.name for v in choose([[]], Options("speed"))] == ["generic"]


def test_flash_budget_downgrades_the_hungriest_layer_first():
    layers = [layer(100, 10), layer(50, 5)]
    assert [v.name for v in choose(layers, Options("speed", 150))] == ["fast", "fast"]
    assert [v.name for v in choose(layers, Options("speed", 149))] == ["mid", "fast"]
    assert [v.name for v in choose(layers, Options("speed", 15))] == ["mid", "mid"]
    assert [v.name for v in choose(layers, Options("speed", 14))] == ["generic", "mid"]
    assert [v.name for v in choose(layers, Options("speed", 0))] == ["generic", "generic"]


def test_unknown_level_is_a_clear_error():
    with pytest.raises(TinyconvError, match="optimize"):
        check_level("fastest")


def _small_net(seed: int = 0):
    """A depthwise / pointwise / add / fully connected net every backend has per-layer kernels for."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("small", (1, 6, 6, 8))
    dw = b.node("dw", "conv2d", ["x", b.const("dw_w", rng.normal(size=(8, 3, 3, 1))), b.const("dw_b", rng.normal(size=8) * 0.1)],
                strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), groups=8, act=(0.0, None))  # fmt: skip
    pw = b.node("pw", "conv2d", [dw, b.const("pw_w", rng.normal(size=(8, 1, 1, 8)) / 3)], strides=(1, 1), dilations=(1, 1),
                pads=(0, 0, 0, 0), groups=1, act=None)  # fmt: skip
    add = b.node("add", "add", [dw, pw], act=None)
    flat = b.node("flat", "reshape", [add], (1, 288), shape=(1, 288))
    fc = b.node("fc", "fully_connected", [flat, b.const("fc_w", rng.normal(size=(5, 288)) / 17), b.const("fc_b", rng.normal(size=5))])
    g = b.finish(fc)
    return g, rng.normal(size=(4, 6, 6, 8)).astype(np.float32)


def test_size_takes_variants_that_drop_a_shared_kernel():
    """At size a variant replaces the shared kernel function only when every layer calling that
    function has one and their code together is smaller than the function."""
    small = Variant("v", "balanced", code_bytes=300, replaces=("tc_k", 1000))
    big = Variant("v", "balanced", code_bytes=800, replaces=("tc_k", 1000))
    size = Options("size")
    assert [v.name for v in choose([[small], [small]], size, ["tc_k", "tc_k"])] == ["v", "v"]
    assert [v.name for v in choose([[small], [big]], size, ["tc_k", "tc_k"])] == ["generic", "generic"]  # 1100 > 1000
    assert [v.name for v in choose([[small], []], size, ["tc_k", "tc_k"])] == ["generic", "generic"]  # still linked
    assert [v.name for v in choose([[small], []], size, ["tc_k", "tc_j"])] == ["v", "generic"]
    assert [v.name for v in choose([[small], [small]], size)] == ["generic", "generic"]  # no functions known


@pytest.mark.parametrize("target,prefix", [("cortex-m55", "mve_"), ("aarch64", "neon_")])
def test_backend_kernels_follow_the_level(tmp_path, target, prefix):
    """Helium and NEON per-layer kernels go through the same choice as Op.variants: at size the
    shared kernels, except Helium ones that spare a whole shared function in less code (here the
    one depthwise, pointwise and fully connected layer; never the add tables), theirs at balanced
    and speed, each with its flash (consts + code) in the manifest; a flash budget they do not
    fit sends them back to the shared kernels."""
    g, calib = _small_net()

    def layers(level, flash_bytes=None, name=""):
        lib = compile_model(g, calib=calib, target=target, outdir=tmp_path / f"{level}{name}", optimize=level,
                            flash_bytes=flash_bytes).library  # fmt: skip
        assert lib.manifest["optimize"] == level
        return {lay["name"]: (lay["kernel"], lay["kernel_flash_bytes"]) for lay in lib.manifest["layers"] if lay["op"] != "reshape"}

    at_size = {name: kernel for name, (kernel, _) in layers("size").items()}
    if target == "cortex-m55":
        assert at_size == {"dw": "mve_depthwise", "pw": "mve_conv", "add": "generic", "fc": "mve_fc"}, at_size
    else:
        assert set(at_size.values()) == {"generic"}, at_size
    for level in ("balanced", "speed"):
        got = layers(level)
        assert all(k.startswith(prefix) and flash > 100 for k, flash in (got["dw"], got["pw"], got["fc"])), got
    weights = compile_model(g, calib=calib, target=target, outdir=tmp_path / "w", optimize="size").library.manifest["weights_bytes"]
    starved = layers("speed", flash_bytes=weights + CODE_RESERVE_BYTES, name="starved")  # no flash left for extras
    assert all(k == ("generic", 0) for k in starved.values()), starved


# Runtime code flash (.text of the harness firmware, bytes) of commit 035073e, before the per-layer
# variants, on qemu-m4 (.tflite route; bench/KERNELS.md): --optimize size must not exceed it.
CODE_035073E_M4 = {"ad": ("ad01_int8", 5_100), "kws": ("kws_ref_model", 20_296)}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CODE_035073E_M4))
def test_size_level_code_flash_at_most_035073e(mlperf_dir, task, tmp_path):
    """Compiled and linked for qemu-m4 (no board runs): the size level's code flash."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs arm-none-eabi-gcc")
    stem, bound = CODE_035073E_M4[task]
    dev = load_device("qemu-m4")
    compile_model(mlperf_dir / task / f"{stem}.tflite", target=dev.target, outdir=tmp_path / "lib", optimize="size")
    code = elf_sizes(build_firmware(tmp_path / "lib", dev).elf)["flash_code_bytes"]
    assert code <= bound, f"{task}: {code:,} B of code at --optimize size, 035073e had {bound:,} B"


@pytest.mark.parametrize("target", ["cortex-m55", "aarch64"])
def test_weights_a_variant_replaced_are_not_emitted(tmp_path, target):
    """Helium / NEON layers read their own weight layouts: the originals must not reach the incbin
    blob (the linker cannot drop part of it) nor the manifest's weights_bytes the flash check reads."""
    g, calib = _small_net()
    lib = compile_model(g, calib=calib, target=target, outdir=tmp_path / "lib", optimize="balanced", weights="incbin").library
    model_c = (lib.outdir / "tc_model.c").read_text()
    declared = re.findall(r"extern const \w+ (tc_model_[wbp]_\w+)\[", model_c)
    body = model_c.split("const char *const tc_model_layer_names", 1)[1]
    assert declared and all(re.search(rf"\b{name}\b", body) for name in declared), declared
    size = compile_model(g, calib=calib, target=target, outdir=tmp_path / "size", optimize="size").library.manifest["weights_bytes"]
    assert lib.manifest["weights_bytes"] < size + sum(lay["kernel_flash_bytes"] for lay in lib.manifest["layers"])


def test_variant_definitions_are_numbered_by_layer_index(tmp_path):
    """Each per-layer definition's comment carries its layer's index (the one tc_model_run's
    comments and the layer hooks use), also when an earlier layer has no definitions."""
    g, calib = _small_net()
    lib = compile_model(g, calib=calib, target="cortex-m4", outdir=tmp_path / "lib", optimize="balanced").library
    model_c = (lib.outdir / "tc_model.c").read_text()
    defs = re.findall(r"^/\* (\d+): (\w+), kernel variant ([\w-]+) \*/$", model_c, re.M)
    index = {lay["name"]: i for i, lay in enumerate(lib.manifest["layers"])}
    assert len(defs) >= 2 and any(int(i) != k for k, (i, _, _) in enumerate(defs)), defs  # add and flat (no definitions) precede fc
    assert all(int(i) == index[name] for i, name, _ in defs), (defs, index)
