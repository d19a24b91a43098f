"""Framed, CRC-checked request/answer over any byte stream, with timeouts and retries.

Transports: anything pyserial's `serial_for_url` opens (/dev/ttyACM0, socket://host:port,
rfc2217://...) or the stdin/stdout pipes of a process (Linux targets). Every wait has a deadline.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable

from tinyconv.errors import DeviceError
from tinyconv.harness import protocol as P


class Transport:
    def read(self, timeout: float) -> bytes:  # pragma: no cover - interface
        """Bytes that arrived within `timeout` seconds (b"" when none); raise EOFError when closed."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        pass


class SerialTransport(Transport):
    def __init__(self, url: str, *, baudrate: int = 115200, connect_timeout: float = 5.0, alive: Callable[[], bool] | None = None):
        import serial

        deadline = time.monotonic() + connect_timeout
        last = None
        while True:
            try:
                # pyserial's RFC 2217 client refuses write_timeout (NotImplementedError)
                opts = {} if url.startswith("rfc2217://") else {"write_timeout": 5.0}
                self.ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, **opts)
                break
            except (serial.SerialException, OSError) as e:
                last = e
            if alive is not None and not alive():
                raise DeviceError(f"cannot connect to {url}: the emulator exited")
            if time.monotonic() > deadline:
                raise DeviceError(f"cannot connect to {url} within {connect_timeout:.0f} s: {last}")
            time.sleep(0.02)
        self.url = url
        sock = self._raw_socket()
        if sock is not None:  # socket://: small frames must not wait for delayed ACKs
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def _raw_socket(self):
        """The TCP socket behind a plain socket:// port, else None. Only that class: the RFC 2217
        client has a `_socket` too, but its bytes are telnet-encoded and must go through pyserial."""
        from serial.urlhandler.protocol_socket import Serial as RawSocketSerial

        return self.ser._socket if isinstance(self.ser, RawSocketSerial) else None

    def read(self, timeout: float) -> bytes:
        import serial

        sock = self._raw_socket()
        if sock is not None:
            # socket://: pyserial's read() drops what it already received when the peer closes,
            # and a crashing firmware closes right after its FAULT frame.
            import select

            try:
                ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
                if not ready:
                    return b""
                data = sock.recv(65536)
            except OSError as e:
                raise EOFError(str(e)) from None
            if not data:
                raise EOFError("the peer closed the connection")
            return data
        self.ser.timeout = max(0.001, timeout)
        try:
            first = self.ser.read(1)
            if not first:
                return b""
            more = self.ser.in_waiting
            return first + (self.ser.read(more) if more else b"")
        except serial.SerialException as e:
            raise EOFError(str(e)) from None

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, serial.SerialTimeoutException, OSError) as e:
            raise EOFError(str(e)) from None

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001 - closing a dead link is not an error
            pass


class PipeTransport(Transport):
    """A child process's stdin/stdout (a reader thread makes reads time out)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.q: queue.Queue[bytes] = queue.Queue()
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            try:
                b = os.read(fd, 65536)
            except OSError:
                b = b""
            self.q.put(b)
            if not b:
                return

    def read(self, timeout: float) -> bytes:
        try:
            b = self.q.get(timeout=max(0.001, timeout))
        except queue.Empty:
            return b""
        if not b:
            self.q.put(b)  # stay closed
            raise EOFError("the program closed its output")
        out = [b]
        while not self.q.empty():
            nb = self.q.get_nowait()
            if not nb:
                self.q.put(nb)
                break
            out.append(nb)
        return b"".join(out)

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise EOFError(str(e)) from None

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass


class Link:
    """One request, one answer. Corrupted or lost frames are retried with a fresh sequence number;
    an answer carrying another sequence number (a late answer to an earlier attempt, a duplicated
    frame) is skipped; a FAULT frame or a closed link ends the session with a DeviceError."""

    def __init__(self, transport: Transport, device: str, *, timeout: float = 3.0, retries: int = 4,
                 on_closed: Callable[[], str] | None = None):  # fmt: skip
        self.t = transport
        self.device = device
        self.timeout = timeout
        self.retries = retries
        self.on_closed = on_closed
        self.buf = bytearray()
        self.seq = 0
        self.stats = {"requests": 0, "retries": 0, "bad_frames": 0, "stale": 0, "timeouts": 0}

    def _closed(self, what: str) -> DeviceError:
        detail = self.on_closed() if self.on_closed else ""
        return DeviceError(f"{self.device} closed the link during {what}" + (f": {detail}" if detail else ""))

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) % 0xFF  # 0xFF is reserved for unsolicited frames
        return self.seq

    def _frames(self, deadline: float, what: str):
        """Yield raw frames (without the 0x00) until the deadline."""
        while True:
            while True:
                i = self.buf.find(b"\x00")
                if i < 0:
                    break
                raw = bytes(self.buf[:i])
                del self.buf[: i + 1]
                if raw:
                    yield raw
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                chunk = self.t.read(min(left, 0.25))
            except EOFError:
                raise self._closed(what) from None
            if len(self.buf) > 1 << 20:
                self.buf.clear()
            self.buf += chunk

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None) -> P.Response:
        what = P.CMD_NAMES.get(cmd, f"command 0x{cmd:02x}")
        timeout = self.timeout if timeout is None else timeout
        self.stats["requests"] += 1
        problem = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            seq = self._next_seq()
            try:
                self.t.write(P.encode_request(seq, cmd, payload))
            except EOFError:
                raise self._closed(what) from None
            deadline = time.monotonic() + timeout
            retry = False
            for raw in self._frames(deadline, what):
                try:
                    r = P.parse_response(P.decode_frame(raw))
                except P.FrameError as e:
                    self.stats["bad_frames"] += 1
                    problem = f"corrupted answer ({e})"
                    retry = True  # maybe our answer: ask again at once
                    break
                if r.cmd == P.FAULT:
                    raise DeviceError(f"{self.device} crashed during {what}: {P.describe_fault(r.payload)}")
                if r.seq != seq:  # an earlier request's or attempt's answer, or a duplicate: not this one
                    self.stats["stale"] += 1
                    continue
                if r.status in (P.ERR_CRC, P.ERR_FRAME):  # this attempt arrived corrupted: ask again at once
                    problem = f"the device received a corrupted request ({P.STATUS_NAMES[r.status]})"
                    retry = True
                    break
                if r.cmd != cmd:
                    self.stats["stale"] += 1
                    continue
                if r.status == P.ERR_VERSION:
                    raise DeviceError(f"{self.device} speaks protocol version {r.payload[:1].hex() or '?'}, this host speaks {P.VERSION}: rebuild the firmware")
                if r.status != P.OK:
                    raise DeviceError(f"{self.device} refused {what}: {P.STATUS_NAMES[r.status] if r.status < len(P.STATUS_NAMES) else r.status}")
                return r
            if not retry:
                self.stats["timeouts"] += 1
                problem = f"no answer within {timeout:g} s"
                # a half frame left now lost its delimiter: it would spoil the next answer too
                self.buf.clear()
        raise DeviceError(f"{self.device} failed {what} after {self.retries + 1} attempts: {problem}")

    def close(self) -> None:
        self.t.close()
