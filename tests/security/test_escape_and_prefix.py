"""tinyconv/escape.py's guarantees as properties, and `--prefix` validation through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyconv import native
from tinyconv.cli import main
from tinyconv.escape import c_comment, c_string, for_terminal

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "digits"


def decode_c_literal(lit: str) -> bytes:
    """The bytes a C compiler puts in the array for the escapes c_string uses."""
    assert lit[0] == lit[-1] == '"'
    out, body, i = bytearray(), lit[1:-1], 0
    while i < len(body):
        if body[i] == "\\":
            if body[i + 1] in '"\\?':
                out.append(ord(body[i + 1]))
                i += 2
            else:
                assert re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]), body[i : i + 4]
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
        else:
            assert body[i] != '"'
            out.append(ord(body[i]))
            i += 1
    return bytes(out)


@given(st.text(max_size=300))
def test_c_string_round_trips_and_is_inert(text):
    lit = c_string(text)
    assert lit.isascii() and lit.isprintable()
    assert "??" not in lit  # no trigraph can form
    raw = text.encode("utf-8", "surrogatepass")
    got = decode_c_literal(lit)
    if len(raw) <= 200:
        assert got == raw
    else:
        assert len(got) <= 200 and got.endswith(b"...") and raw.startswith(got[:-3])


@given(st.text(max_size=200))
def test_c_comment_cannot_end_or_nest_a_comment(text):
    c = c_comment(text)
    assert c.isascii() and c.isprintable() and len(c) <= 80 * 10
    for bad in ("*/", "/*", "??", "\\\n", "//"):
        assert bad not in c
    assert not c.endswith("\\")  # a backslash is always followed by x / u / U


@given(st.text(max_size=100))
def test_terminal_text_has_no_controls_and_renders_as_itself(text):
    from rich.console import Console

    t = for_terminal(text)
    assert not any(ch in t for ch in "\x1b\r\n\x00\u202e\u2066")
    con = Console(emoji=False, width=10_000, color_system=None, record=True)
    con.print(t, end="", soft_wrap=True)  # rich never raises on it
    shown = con.export_text()
    assert "[" not in text or "[" in shown


@pytest.mark.parametrize("prefix, needle", [
    ("tc_conv", "clashes"), ("tc_pool", "clashes"), ("tc_fixedpoint", "clashes"), ("tc_softmax", "clashes"),
    ("stdint", "clashes"), ("\ufb01", "not an ASCII C identifier"), ("x" * 300, "300 characters"),
    ("9lives", "not an ASCII C identifier"), ("a-b", "not an ASCII C identifier"), ("_x", "not an ASCII C identifier"),
])  # fmt: skip
def test_bad_prefix_is_one_error_line(tmp_path, capsys, prefix, needle):
    out = tmp_path / "out"
    rc = main(["compile", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "-o", str(out), "--prefix", prefix])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: --prefix") and needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()  # refused before anything is written


def test_good_prefix_builds_and_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(EXAMPLE / "digits_cnn.onnx"), "--calib", str(EXAMPLE / "calib.npy"), "-o", str(out), "--prefix", "digits"]) == 0
    assert (out / "digits.h").exists() and not (out / "tc_model.h").exists()
    y = native.run_batch(native.build(out, prefix="digits"), np.zeros((1, 64), np.int8), 10)
    assert y.shape == (1, 10)
