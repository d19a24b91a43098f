"""Model text made safe for where it is shown: C string literals, C comments and the terminal.

A model file is hostile input: its node and tensor names are arbitrary Unicode. Everything taken
from a model (or a file path) that reaches generated C or the terminal passes through one of the
three functions here, so the escaping is decided once. C identifiers are never built from names
(codegen numbers them), so there is no function for that.
"""

from __future__ import annotations

import re
import unicodedata

C_STRING_MAX_BYTES = 200  # far below C99's 4095-character minimum for a string literal
COMMENT_MAX_CHARS = 80
TERMINAL_MAX_CHARS = 300
ELLIPSIS = "..."

# Characters kept as they are in a C comment: none of them can start or end a comment (/ *),
# form a trigraph (?), splice a line (\) or leave the line (controls).
_COMMENT_SAFE = re.compile(r"[A-Za-z0-9 _.,:;+=#@()\[\]{}<>|!%&^~'-]")


def _bounded_utf8(text: str, limit: int) -> bytes:
    """UTF-8 bytes of `text`, cut at a character boundary to at most `limit` bytes (plus '...')."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return data
    cut = data[: limit - len(ELLIPSIS)]
    return cut.decode("utf-8", "ignore").encode("utf-8") + ELLIPSIS.encode()


def c_string(text: str, max_bytes: int = C_STRING_MAX_BYTES) -> str:
    """A C99 string literal (quotes included) holding `text` as UTF-8, at most `max_bytes` bytes.

    Printable ASCII stays readable; `"` and `\\` are backslash-escaped; every `?` becomes `\\?` so
    no trigraph (`??/`) can form; every other byte (controls, NUL, DEL, non-ASCII, bidi controls)
    is a three-digit octal escape, which never swallows the following character (a `\\x` escape
    would). A longer text is cut and ends in '...'.

    >>> c_string('a"b\\\\c??/\\n\\u00e9')
    '"a\\\\"b\\\\\\\\c\\\\?\\\\?/\\\\012\\\\303\\\\251"'
    """
    out = []
    for b in _bounded_utf8(text, max_bytes):
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str, max_chars: int = COMMENT_MAX_CHARS) -> str:
    """Text for inside a /* */ comment: a conservative ASCII set kept, everything else written as
    \\xNN / \\uNNNN text (so never `*/`, `/*`, a trigraph, a line break or a backslash-newline).

    >>> c_comment('*/ x = 1; /*')
    '\\\\x2a\\\\x2f x = 1; \\\\x2f\\\\x2a'
    """
    if len(text) > max_chars:
        text = text[: max_chars - len(ELLIPSIS)] + ELLIPSIS
    out = []
    for ch in text:
        if _COMMENT_SAFE.fullmatch(ch):
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def for_terminal(text: str, *, max_chars: int | None = TERMINAL_MAX_CHARS, keep_newlines: bool = False) -> str:
    """Text for rich's console: markup escaped (`[/]` would crash rich, `[red]` restyle), control
    characters, bidi overrides and other invisible format characters shown as \\xNN / \\uNNNN (an
    ESC would let a name drive the terminal), and long text cut. Consoles are made with emoji=False,
    so `:x:` stays text.

    >>> for_terminal('a[/]b\\x1b[31m')
    'a\\\\[/]b\\\\x1b[31m'
    """
    from rich.markup import escape

    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - len(ELLIPSIS)] + ELLIPSIS
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    return escape("".join(out))
