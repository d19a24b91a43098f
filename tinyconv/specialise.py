"""Per-layer kernel variants and the `--optimize speed|balanced|size` choice (backend-neutral).

An op may offer, per layer, several ways to emit it (`Op.variants`): each a `Variant` naming its
kernel, the extra const arrays it needs (requantization records, re-laid-out weights...), the
literal values its template uses, and the lowest optimization level that may pick it. The code
generator takes, for every layer, the fastest variant the level allows, then, while the extra
flash of all layers exceeds the budget, moves the layer with the largest extra flash to its next
variant. The manifest records each layer's variant and its extra flash.

A backend may also render a layer its own way (Helium, NEON: `backend_layer`): the same Variant
with its own template and kernel files, which replace the op's (and the op's kernel consts). Both
kinds go through one choice (`choose`), backend variants first, so --optimize means the same on
every target.

Levels (the same on every target):
- size: the shared out-of-line kernels: the code and speed of commit 035073e, before the
  per-layer variants (bench/KERNELS.md has the figures), except where a backend's kernels for all
  the layers that call one shared function are smaller than that function (`_drop_shared_kernels`);
- balanced (the default): kernels specialised per layer where that costs little flash
  (requantization records, 16 bytes per output channel; the Helium and NEON per-layer kernels);
- speed: everything that buys instructions: per-layer inlined kernels with literal shapes,
  re-laid-out weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyconv.errors import TinyconvError

LEVELS = ("size", "balanced", "speed")
DEFAULT_LEVEL = "balanced"


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise TinyconvError(f"unknown --optimize level '{level}'", hint=f"choose from {', '.join(LEVELS)}")
    return level


@dataclass
class Variant:
    name: str  # recorded in the manifest, e.g. "dsp-inline-rq"
    level: str = "size"  # the lowest --optimize level that may choose it
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # extra const arrays (C name in consts[key])
    values: dict = field(default_factory=dict)  # literals for the template (`variant.values`)
    includes: tuple[str, ...] = ()  # kernel headers <prefix>.c must include (found like kernel files)
    defs_template: str | None = None  # renders file-scope C (a per-layer static function) before the run function
    code_bytes: int = 0  # estimated extra code flash (inlined copies)
    template: str | None = None  # a backend's own template for the layer (None: the op's)
    kernel_files: tuple[str, ...] | None = None  # replace the op's kernel files and kernel consts (None: the op's)
    context: dict = field(default_factory=dict)  # merged into the template context
    # (shared kernel function, its code bytes once linked): the out-of-line kernel this variant
    # makes unnecessary; at size it is taken when that removes the function and costs less code
    replaces: tuple[str, int] | None = None

    @property
    def const_bytes(self) -> int:
        return int(sum(np.asarray(a).nbytes for a in self.consts.values()))

    @property
    def flash_bytes(self) -> int:
        return self.const_bytes + self.code_bytes


BASELINE = Variant("generic")


# The lowest level that takes a backend's per-layer kernel, and the code one inlined copy adds
# (rough: 0.5-2 KB on M55 at -O2), counted against the flash budget and shown in the manifest.
BACKEND_LEVEL = "balanced"
BACKEND_CODE_BYTES = 1000


def backend_layer(name: str, template: str, kernel_files: tuple[str, ...], consts: dict | None = None,
                  context: dict | None = None, *, level: str = BACKEND_LEVEL, code_bytes: int = BACKEND_CODE_BYTES,
                  replaces: tuple[str, int] | None = None, defs_template: str | None = None) -> Variant:  # fmt: skip
    """A backend's own rendering of a layer (Helium, NEON): its template and kernel files replace
    the op's, its consts replace the op's kernel consts; defs_template as Variant's (e.g. the
    layer's own function, which the template calls)."""
    return Variant(name, level, consts=dict(consts or {}), template=template, kernel_files=tuple(kernel_files),
                   context=dict(context or {}), code_bytes=code_bytes, replaces=replaces, defs_template=defs_template)  # fmt: skip


@dataclass(frozen=True)
class Options:
    """What the code generator may spend: the level and the flash left for extras (None: no limit)."""

    optimize: str = DEFAULT_LEVEL
    flash_budget: int | None = None


def allowed(variant: Variant, level: str) -> bool:
    return LEVELS.index(variant.level) <= LEVELS.index(level)


def choose(candidates: list[list[Variant]], opts: Options, shared: list[str | None] | None = None) -> list[Variant]:
    """Per layer, the fastest allowed variant (each list fastest first), then cheaper ones for the
    most flash-hungry layers until the extras fit `opts.flash_budget`. At size, `shared` (per layer,
    the out-of-line kernel function its generic call uses) lets smaller variants drop a function."""
    picked = _choose_by_level(candidates, opts)
    return _drop_shared_kernels(candidates, picked, shared) if opts.optimize == "size" and shared else picked


def _drop_shared_kernels(candidates: list[list[Variant]], picked: list[Variant], shared: list[str | None]) -> list[Variant]:
    """A shared kernel function is linked if one layer calls it. When every layer that would call
    it has a variant that `replaces` it, and those variants' code together is smaller than the
    function, they take its place (the smallest code; the backends' variants are also faster)."""
    out = list(picked)
    for fn in {f for f in shared if f}:
        layers = [i for i, f in enumerate(shared) if f == fn]
        alts = [next((v for v in candidates[i] if v.replaces and v.replaces[0] == fn), None) for i in layers]
        if all(alts) and sum(v.code_bytes for v in alts) < alts[0].replaces[1]:
            for i, v in zip(layers, alts):
                out[i] = v
    return out


def _choose_by_level(candidates: list[list[Variant]], opts: Options) -> list[Variant]:
    pools = [[v for v in cands if allowed(v, opts.optimize)] + [BASELINE] for cands in candidates]
    pick = [0] * len(pools)
    if opts.flash_budget is not None:
        while sum(pools[i][pick[i]].flash_bytes for i in range(len(pools))) > opts.flash_budget:
            i = max(range(len(pools)), key=lambda j: pools[j][pick[j]].flash_bytes)
            if pools[i][pick[i]].flash_bytes == 0:
                break
            pick[i] += 1
    return [pools[i][pick[i]] for i in range(len(pools))]
