"""--optimize: per-layer variant choice by level and flash budget (tinyconv/specialise.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyconv.errors import TinyconvError
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
