"""CPU families → kernel backends (searched in order; portable C is always last) and C flags."""

from __future__ import annotations

from dataclasses import dataclass

from tinyconv.errors import TinyconvError


@dataclass(frozen=True)
class Target:
    name: str
    backends: tuple[str, ...]  # codegen_templates/kernels/<backend>/, most specialised first
    cflags: tuple[str, ...]
    description: str


TARGETS = {
    t.name: t
    for t in (
        Target("host", ("portable",), ("-O2",), "the build machine (portable C)"),
        Target("cortex-m4", ("dsp", "portable"), ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2"), "Armv7E-M with DSP (SMLAD)"),
        Target("cortex-m7", ("dsp", "portable"), ("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard", "-O2"), "Armv7E-M with DSP (SMLAD)"),
        Target("cortex-m55", ("mve", "dsp", "portable"), ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-O2"), "Armv8.1-M with Helium (MVE)"),
        Target("aarch64", ("neon", "portable"), ("-march=armv8.2-a+dotprod", "-O2"), "Armv8.2-A with NEON dot product"),
        Target("aarch64-i8mm", ("neon-i8mm", "neon", "portable"), ("-march=armv8.6-a+dotprod+i8mm", "-O2"), "Armv8.6-A with NEON dot product and i8mm (SMMLA)"),
    )
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise TinyconvError(f"unknown target '{name}'", hint=f"choose from {', '.join(TARGETS)}") from None
