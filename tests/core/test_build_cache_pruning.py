"""The build cache keeps a size bound (tinyconv/buildcache.py, TINYCONV_CACHE_MAX_MB): after every
build the least recently used objects and links go, a hit counts as a use, and the build just made
always stays."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinyconv import buildcache, native
from tinyconv.errors import BuildError

from native_checks import need_compiler


def tiny_library(folder, k: int):
    """A one-function library whose output is input + k: another k, another object and link."""
    folder.mkdir()
    (folder / "tc_model.h").write_text("#include <stdint.h>\n#define TC_MODEL_INPUT_BYTES 4\n#define TC_MODEL_OUTPUT_BYTES 4\n"
                                       "int tc_model_init(void);\nint tc_model_run(const int8_t *input, int8_t *output);\n")  # fmt: skip
    (folder / "tc_model.c").write_text('#include "tc_model.h"\nint tc_model_init(void) { return 0; }\n'
                                       "int tc_model_run(const int8_t *input, int8_t *output)\n{\n"
                                       f"    for (int i = 0; i < 4; ++i) output[i] = (int8_t)(input[i] + {k});\n    return 0;\n}}\n")  # fmt: skip
    return folder


def entries(cache) -> dict:
    return {path: (used, size) for used, size, path in buildcache._entries(cache)}


def age(cache, paths, seconds: int) -> None:
    for p in paths:
        for f in [p, *(p.iterdir() if p.is_dir() else ())]:
            os.utime(f, ns=(seconds * 10**9, seconds * 10**9))


def test_least_recently_used_entries_go_first(tmp_path):
    need_compiler("gcc")
    cache = tmp_path / "cache"
    new = {}
    for k, t in ((1, 1000), (2, 2000), (3, 3000)):
        before = set(entries(cache))
        native.build(tiny_library(tmp_path / f"lib{k}", k), cache_dir=cache)
        new[k] = set(entries(cache)) - before
        age(cache, new[k], t)  # built long ago, in this order
    assert all(new.values()) and len(new[1]) == 3 and len(new[2]) == 2  # lib1 also made the shared driver object
    native.build(tmp_path / "lib1", cache_dir=cache)  # a hit: lib1 is now the most recently used
    sizes = entries(cache)
    total = sum(size for _, size in sizes.values())
    removed = buildcache.prune(cache, limit=total - sum(sizes[p][1] for p in new[2]))
    left = set(entries(cache))
    assert removed == sum(sizes[p][1] for p in new[2]) and not new[2] & left, "the least recently used build stays"
    assert new[1] | new[3] <= left, "a recently used (or newer) build was removed"


def test_a_build_prunes_everything_but_itself_under_a_zero_bound(tmp_path, monkeypatch):
    need_compiler("gcc")
    cache = tmp_path / "cache"
    native.build(tiny_library(tmp_path / "lib1", 1), cache_dir=cache)
    first = set(entries(cache))
    monkeypatch.setenv("TINYCONV_CACHE_MAX_MB", "0")
    pruned = buildcache.stats.pruned
    exe = native.build(tiny_library(tmp_path / "lib2", 2), cache_dir=cache)
    left = set(entries(cache))
    assert buildcache.stats.pruned - pruned == 2 and len(left) == 3 and len(first & left) == 1  # lib1's unit and link went; the driver is shared
    assert native.run_batch(exe, np.array([[1, 2, 3, 4]], np.int8), 4).tolist() == [[3, 4, 5, 6]]


def test_the_default_bound_leaves_a_small_cache_alone(tmp_path):
    need_compiler("gcc")
    cache = tmp_path / "cache"
    for k in range(2):
        native.build(tiny_library(tmp_path / f"lib{k}", k), cache_dir=cache)
    assert len(entries(cache)) == 5 and buildcache.max_bytes() == buildcache.DEFAULT_MAX_MB << 20


@pytest.mark.parametrize("value", ["lots", "-1", "nan"])
def test_a_bad_bound_is_one_clear_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("TINYCONV_CACHE_MAX_MB", value)
    with pytest.raises(BuildError, match="TINYCONV_CACHE_MAX_MB"):
        buildcache.prune(tmp_path / "cache")
