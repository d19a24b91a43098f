"""Cross-compile the runner firmware together with a generated library through the content-keyed
build cache (tinyconv.buildcache); and read sizes back from the ELF."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tinyconv import buildcache
from tinyconv.errors import BuildError, FitError
from tinyconv.harness.devices import FIRMWARE_DIR, Device

PORT_SOURCES = {
    "cortexm": ["cortexm/startup.c", "cortexm/stack_paint.c", "cortexm/port_cortexm.c"],
    "stm32l4": ["cortexm/startup.c", "cortexm/stack_paint.c", "stm32l4/port_stm32l4.c"],
    "linux": ["linux/port_linux.c"],
}
PORT_LDDIR = {"cortexm": "cortexm", "stm32l4": "stm32l4"}
WARN = ["-std=gnu99", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]


@dataclass
class Firmware:
    elf: Path
    build_id: int
    device: Device
    manifest: dict
    libdir: Path


def read_manifest(libdir: Path) -> dict:
    p = Path(libdir) / "manifest.json"
    try:
        return json.loads(p.read_text())
    except OSError:
        raise BuildError(f"{libdir} is not a tinyconv library (no manifest.json)") from None
    except json.JSONDecodeError as e:
        raise BuildError(f"{p} is not valid JSON: {e}") from None


def check_target(man: dict, dev: Device) -> None:
    lib_t = man.get("target", "host")
    if lib_t != dev.target and lib_t != "host":
        raise BuildError(f"the library was compiled for target '{lib_t}' but {dev.name} needs '{dev.target}'",
                         hint=f"compile with --target {dev.target}")  # fmt: skip


def _hash_tree(h, root: Path, pattern: str) -> None:
    for p in sorted(root.rglob(pattern)):
        if p.is_file() and ".build" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")


def build_firmware(libdir: Path, dev: Device, *, extra_cflags: tuple[str, ...] = (), check_fit: bool = True, cache_dir=None) -> Firmware:
    libdir = Path(libdir).resolve()
    man = read_manifest(libdir)
    check_target(man, dev)
    b = dev.build
    cc = b.get("cc", "gcc")
    if shutil.which(cc) is None:
        raise BuildError(f"compiler '{cc}' for {dev.name} is not installed", hint="run scripts/setup")
    port = b.get("port", "linux")
    if port not in PORT_SOURCES:
        raise BuildError(f"device {dev.name}: unknown firmware port '{port}'")
    if check_fit:
        check_weights_fit(man, dev)  # before compiling: the weight size is known, no raw ld error
    prefix = man.get("prefix", "tc_model")
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,39}", prefix):  # it reaches -D flags
        raise BuildError(f"{libdir}: manifest.json has an invalid prefix", hint="regenerate the library with tinyconv compile")
    defines = dict(b.get("defines", {}))
    stack = int(b.get("stack_bytes", 16384))

    h = hashlib.sha256()
    _hash_tree(h, libdir, "*.[ch]")
    _hash_tree(h, libdir, "*.bin")  # incbin weights
    _hash_tree(h, FIRMWARE_DIR, "*")
    h.update(dev.path.read_bytes() if dev.path else repr(dev).encode())
    h.update(repr((cc, extra_cflags)).encode())
    build_id = int(h.hexdigest()[:8], 16)
    srcs = [FIRMWARE_DIR / "runner.c", *(FIRMWARE_DIR / s for s in PORT_SOURCES[port]), *sorted(libdir.glob("*.c"))]
    cflags = [*b.get("cflags", ["-O2"])]
    defs = [f"-D{prefix.upper()}_LAYER_HOOKS", f'-DTCR_MODEL_H="{prefix}.h"', f"-DTCR_PREFIX={prefix}",
            f"-DTCR_PREFIX_UC={prefix.upper()}", f"-DTCR_BUILD_ID=0x{build_id:08x}u", *(f"-D{k}={v}" for k, v in defines.items())]  # fmt: skip
    link_inputs: tuple[bytes, ...] = ()
    if port in PORT_LDDIR:
        ld = FIRMWARE_DIR / PORT_LDDIR[port]
        specs = ["--specs=nano.specs", "--specs=nosys.specs"]  # newlib-nano's headers at compile time, its libc at link time
        ldflags = [*cflags, *specs, "-nostartfiles", "-Wl,--gc-sections", f"-L{ld}", f"-L{FIRMWARE_DIR / 'cortexm'}",
                   "-T", str(ld / b["linker_script"]), f"-Wl,--defsym=__tcr_stack_size={stack}"]  # fmt: skip
        link_inputs = tuple(p.read_bytes() for d in {ld, FIRMWARE_DIR / "cortexm"} for p in sorted(d.glob("*.ld*")))
    else:
        specs, ldflags = [], [*cflags, "-Wl,--gc-sections", *b.get("ldflags", [])]
    compile_flags = [*cflags, *specs, *WARN, "-ffunction-sections", "-fdata-sections", "-g", *defs, *extra_cflags]
    try:
        elf = buildcache.build_executable(cc, srcs, compile_flags, [*ldflags, *extra_cflags], [libdir, FIRMWARE_DIR],
                                          name="firmware.elf", link_inputs=link_inputs, cache_dir=cache_dir)  # fmt: skip
    except BuildError as e:
        overflow = re.search(r"region [`'\"]?(\w+)['\"]? overflowed by (\d+) bytes", e.message)
        if overflow:
            raise FitError(f"the model does not fit {dev.name} ({dev.memory.get('part', dev.name)}): the linker's "
                           f"{overflow[1]} region is {int(overflow[2]):,} B too small") from None  # fmt: skip
        raise BuildError(f"building the {dev.name} firmware for {libdir} failed: {e.message}") from None
    fw = Firmware(elf, build_id, dev, man, libdir)
    if check_fit:
        check_fits(fw)
    return fw


# ---- memory budgets ----

_SIZE_SUFFIX = {"": 1, "K": 1024, "M": 1024 * 1024}


def linker_regions(dev: Device) -> dict[str, int]:
    """MEMORY region name → LENGTH in bytes from the device's linker script, plus the alias
    "RODATA_REGION" → the length of the region constants are placed in. {} for hosted ports."""
    port = dev.build.get("port", "linux")
    script = dev.build.get("linker_script")
    if port not in PORT_LDDIR or not script:
        return {}
    text = (FIRMWARE_DIR / PORT_LDDIR[port] / script).read_text()
    regions = {m[1]: int(m[2], 0) * _SIZE_SUFFIX[m[3].upper()]
               for m in re.finditer(r"^\s*(\w+)\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*\w+\s*,\s*LENGTH\s*=\s*(\w+?)([KkMm]?)\s*$", text, re.M)}  # fmt: skip
    alias = re.search(r'REGION_ALIAS\(\s*"RODATA_REGION"\s*,\s*(\w+)\s*\)', text)
    if alias and alias[1] in regions:
        regions["RODATA_REGION"] = regions[alias[1]]
    return regions


def check_weights_fit(man: dict, dev: Device) -> None:
    """Refuse, before compiling, a model whose constant data alone exceeds the part's flash
    budget or the linker region constants go to (QEMU boards have more memory than the part)."""
    weights = man.get("weights_bytes")
    if weights is None or dev.kind not in ("qemu-system", "serial"):
        return
    part = dev.memory.get("part", dev.name)
    if dev.flash_bytes is not None and weights > dev.flash_bytes:
        raise FitError(f"the model does not fit {dev.name} ({part}) flash: its weights alone need {weights:,} B "
                       f"but the part has {dev.flash_bytes:,} B")  # fmt: skip
    region = linker_regions(dev).get("RODATA_REGION")
    if region is not None and weights > region:
        raise FitError(f"the model does not fit {dev.name} ({part}): its weights alone need {weights:,} B but the "
                       f"memory region for constants in {dev.build['linker_script']} has {region:,} B")  # fmt: skip


# ---- sizes from the ELF ----

def elf_sizes(elf: Path, prefix: str = "tc_model") -> dict:
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    ram_data = ram_bss = stack = flash = text = 0
    weights = 0
    with open(elf, "rb") as f:
        e = ELFFile(f)
        for s in e.iter_sections():
            fl = s["sh_flags"]
            if not fl & SH_FLAGS.SHF_ALLOC or s["sh_size"] == 0:
                continue
            size = s["sh_size"]
            if s.name == ".stack":
                stack += size
            elif fl & SH_FLAGS.SHF_WRITE:
                if s["sh_type"] == "SHT_NOBITS":
                    ram_bss += size
                else:
                    ram_data += size
                    flash += size  # initial values are stored in flash
            else:
                flash += size
                if fl & SH_FLAGS.SHF_EXECINSTR:
                    text += size
        symtab = e.get_section_by_name(".symtab")
        pat = re.compile(rf"^{re.escape(prefix)}_(w|b|p)_")
        if symtab is not None:
            seen = set()
            for sym in symtab.iter_symbols():
                if sym["st_info"]["type"] == "STT_OBJECT" and pat.match(sym.name) and sym.name not in seen:
                    seen.add(sym.name)
                    weights += sym["st_size"]
    return {"flash_bytes": flash, "flash_code_bytes": text, "flash_weights_bytes": weights,
            "flash_other_bytes": flash - text - weights, "ram_static_bytes": ram_data + ram_bss, "stack_reserved_bytes": stack}  # fmt: skip


def check_fits(fw: Firmware) -> dict:
    """Refuse a model that does not fit the real part's memory, before anything is flashed."""
    dev = fw.device
    sizes = elf_sizes(fw.elf, fw.manifest.get("prefix", "tc_model"))
    if dev.kind not in ("qemu-system", "serial"):
        return sizes  # Linux targets: memory is not the constraint
    arena = int(fw.manifest.get("arena_bytes", 0))
    stack = sizes["stack_reserved_bytes"] or int(dev.build.get("stack_bytes", 0))
    part = dev.memory.get("part", dev.name)
    ram_need = sizes["ram_static_bytes"] + stack
    if dev.ram_bytes is not None and ram_need > dev.ram_bytes:
        raise FitError(
            f"the model does not fit {dev.name} ({part}) RAM: needs {ram_need:,} B (arena {arena:,} + other static "
            f"{sizes['ram_static_bytes'] - arena:,} + stack {stack:,}) but the part has {dev.ram_bytes:,} B"
        )
    if dev.flash_bytes is not None and sizes["flash_bytes"] > dev.flash_bytes:
        raise FitError(
            f"the model does not fit {dev.name} ({part}) flash: needs {sizes['flash_bytes']:,} B (weights "
            f"{sizes['flash_weights_bytes']:,} + code {sizes['flash_code_bytes']:,} + other {sizes['flash_other_bytes']:,}) "
            f"but the part has {dev.flash_bytes:,} B"
        )
    return sizes
