"""The tinyconv device protocol, host side (mirror of firmware/protocol.h).

Frames are COBS-encoded and end with one 0x00 byte:
request  [version u8][seq u8][cmd u8][payload][crc32 le]
response [version u8][seq u8][cmd | 0x80][status u8][payload][crc32 le]
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from cobs import cobs

VERSION = 1
MAX_CHUNK = 240

IDENTIFY, SET_INPUT, RUN, GET_OUTPUT, COUNTERS, DUMP_LAYER, ECHO, BYE, FAULT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0F, 0x7F
CMD_NAMES = {IDENTIFY: "IDENTIFY", SET_INPUT: "SET_INPUT", RUN: "RUN", GET_OUTPUT: "GET_OUTPUT", COUNTERS: "COUNTERS",
             DUMP_LAYER: "DUMP_LAYER", ECHO: "ECHO", BYE: "BYE", FAULT: "FAULT"}  # fmt: skip

OK, ERR_CRC, ERR_FRAME, ERR_UNKNOWN_CMD, ERR_VERSION, ERR_ARG, ERR_MODEL, ERR_FAULT = range(8)
STATUS_NAMES = ["ok", "bad CRC", "bad frame", "unknown command", "protocol version mismatch", "bad argument", "model returned an error", "fault"]

COUNTER_NONE, COUNTER_SYSTICK, COUNTER_CYCLES, COUNTER_INSTRUCTIONS = 0, 1, 2, 3
FAULT_HARDFAULT, FAULT_SIGNAL = 1, 2


class FrameError(Exception):
    """A received frame is malformed (COBS, length or CRC): the link layer retries."""


def encode_request(seq: int, cmd: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    body = bytes([version, seq & 0xFF, cmd]) + payload
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def encode_response(seq: int, cmd: int, status: int, payload: bytes = b"") -> bytes:
    """Device side encoding (used by tests that fake a device)."""
    body = bytes([VERSION, seq & 0xFF, cmd | 0x80, status]) + payload
    return cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def decode_frame(raw: bytes) -> bytes:
    """COBS-decode one frame (without its 0x00) and check its CRC; returns the body without CRC."""
    try:
        f = cobs.decode(raw)
    except cobs.DecodeError as e:
        raise FrameError(f"COBS: {e}") from None
    if len(f) < 5:
        raise FrameError(f"frame of {len(f)} bytes is too short")
    if zlib.crc32(f[:-4]) != struct.unpack_from("<I", f, len(f) - 4)[0]:
        raise FrameError("CRC mismatch")
    return f[:-4]


@dataclass
class Response:
    seq: int
    cmd: int
    status: int
    payload: bytes


def parse_response(body: bytes) -> Response:
    if len(body) < 4 or not body[2] & 0x80:
        raise FrameError("not a response frame")
    if body[0] != VERSION:
        raise FrameError(f"protocol version {body[0]} (this host speaks {VERSION})")
    return Response(body[1], body[2] & 0x7F, body[3], body[4:])


@dataclass
class Identity:
    protocol: int
    counter_kind: int
    max_chunk: int
    build_id: int
    arena_bytes: int
    input_bytes: int
    output_bytes: int
    num_layers: int
    dump_window: int
    counter_hz: int
    model_hash: str


def parse_identify(p: bytes) -> Identity:
    if len(p) < 46:
        raise FrameError(f"IDENTIFY answer of {len(p)} bytes (expected 46)")
    proto, kind, chunk, bid, arena, ib, ob, nl, win, hz = struct.unpack_from("<BBHIIIIHII", p)
    return Identity(proto, kind, chunk, bid, arena, ib, ob, nl, win, hz, p[30:46].rstrip(b"\x00").decode("ascii", "replace"))


@dataclass
class Counters:
    total_ticks: int
    stack_bytes: int
    stack_painted: int
    num_layers: int
    first: int
    layer_ticks: list[int]


def parse_counters(p: bytes) -> Counters:
    lo, hi, stack, painted, nl, first, n = struct.unpack_from("<IIIIHHH", p)
    ticks = list(struct.unpack_from(f"<{n}I", p, 22))
    return Counters(lo | (hi << 32), stack, painted, nl, first, ticks)


CFSR_BITS = {
    0: "IACCVIOL (instruction access violation)", 1: "DACCVIOL (data access violation)", 3: "MUNSTKERR", 4: "MSTKERR",
    8: "IBUSERR (instruction bus error)", 9: "PRECISERR (precise data bus error)", 10: "IMPRECISERR (imprecise data bus error)",
    11: "UNSTKERR", 12: "STKERR", 16: "UNDEFINSTR (undefined instruction)", 17: "INVSTATE (invalid state)",
    18: "INVPC", 19: "NOCP (coprocessor disabled)", 20: "STKOF (stack overflow)", 24: "UNALIGNED", 25: "DIVBYZERO",
}  # fmt: skip
SIGNALS = {4: "SIGILL", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV"}


def describe_fault(p: bytes) -> str:
    if len(p) < 29:
        return "a fault (truncated report)"
    kind = p[0]
    pc, lr, cfsr, hfsr, mmfar, bfar, sig = struct.unpack_from("<7I", p, 1)
    if kind == FAULT_SIGNAL:
        return f"{SIGNALS.get(sig, f'signal {sig}')} (fault address 0x{mmfar:08x})"
    if pc == 0 and cfsr == 0 and hfsr == 0 and sig:
        return f"unexpected exception {sig}"
    reasons = [name for bit, name in CFSR_BITS.items() if cfsr >> bit & 1]
    if hfsr >> 30 & 1:
        reasons.append("escalated to HardFault")
    addr = ""
    if cfsr >> 7 & 1:
        addr = f", address 0x{mmfar:08x}"
    elif cfsr >> 15 & 1:
        addr = f", address 0x{bfar:08x}"
    why = "; ".join(reasons) or "no fault status bits"
    return f"HardFault at pc=0x{pc:08x} (lr=0x{lr:08x}): {why}{addr} [CFSR=0x{cfsr:08x} HFSR=0x{hfsr:08x}]"
