"""The link under faults: corrupted and lost bytes are retried or end in a clear DeviceError,
never a hang and never a false pass; silent firmware, broken kernels and HardFaults are named."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from conftest import copy_lib, need
from faultproxy import FaultProxy
from tinyconv import reference
from tinyconv.check import first_divergent_layer
from tinyconv.errors import DeviceError, FitError
from tinyconv.harness import api
from tinyconv.harness.build import build_firmware
from tinyconv.harness.devices import load_device
from tinyconv.harness.flash import Target, _logfile, free_port, qemu_system_cmd
from tinyconv.harness.link import SerialTransport
from tinyconv.harness.session import Session

pytestmark = pytest.mark.device


def proxied_session(fw, **proxy_kw) -> tuple[Session, FaultProxy]:
    port = free_port()
    log = _logfile()
    with open(log, "wb") as lf:
        proc = subprocess.Popen(qemu_system_cmd(fw, port), stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
    proxy = FaultProxy(port, **proxy_kw)
    try:
        tr = SerialTransport(f"socket://127.0.0.1:{proxy.port}", connect_timeout=10)
    except BaseException:
        proc.kill()
        proxy.close()
        raise
    target = Target(tr, proc, log, "QEMU")
    return Session(fw, target=target, timeout=0.4, run_timeout=2.0, retries=6), proxy


@contextlib.contextmanager
def proxied(fw, **proxy_kw) -> Iterator[tuple[Session, FaultProxy]]:
    """proxied_session for a with block: the session, then the proxy, closed when it ends."""
    s, proxy = proxied_session(fw, **proxy_kw)
    try:
        yield s, proxy
    finally:
        s.close()
        proxy.close()


def run_batch(s: Session, xq: np.ndarray) -> np.ndarray:
    outs = []
    for x in xq:
        s.set_input(x)
        s.run()
        outs.append(s.get_output())
    return np.stack(outs)


@pytest.fixture(scope="module")
def m4(libs):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    xq = libs.xq("cortex-m4")
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    return c, xq, expected, build_firmware(c.library.outdir, load_device("qemu-m4"))


@pytest.mark.parametrize("mode", [{"flip": 0.001, "seed": 1}, {"drop": 0.001, "seed": 2}, {"flip": 0.0007, "drop": 0.0007, "seed": 3}])
def test_corrupted_link_retries_to_exact_result(m4, mode):
    c, xq, expected, fw = m4
    with proxied(fw, **mode) as (s, proxy):
        got = run_batch(s, xq[:6])
        layer0 = s.dump_layer(0, c.library.manifest["layers"][0]["output_bytes"])
        stats = dict(s.link.stats)
    assert proxy.counts["flipped"] + proxy.counts["dropped"] > 0, "the proxy injected nothing"
    assert stats["retries"] > 0
    assert np.array_equal(got, expected[:6])
    ref = reference.run(c.graph, {"x": xq[5].reshape(1, 9, 8, 4)}, keep=True)
    assert np.array_equal(layer0, ref[c.graph.nodes[0].outputs[0]].reshape(-1))


def test_heavy_corruption_fails_clearly_never_falsely(m4):
    """At 5 % bit flips, every answer is either right or the session ends in a DeviceError."""
    _, xq, expected, fw = m4
    outcomes = []
    for seed in (7, 8, 9):
        t0 = time.monotonic()
        try:
            with proxied(fw, flip=0.05, seed=seed) as (s, _):
                got = run_batch(s, xq[:4])
        except DeviceError as e:
            assert re.search(r"qemu-m4 failed \w+ after \d+ attempts", str(e)), str(e)
            outcomes.append("error")
        else:
            assert np.array_equal(got, expected[:4])
            outcomes.append("exact")
        assert time.monotonic() - t0 < 30
    assert "error" in outcomes


def test_link_goes_silent_mid_session(m4):
    _, xq, _, fw = m4
    with proxied(fw, mute_after=2000) as (s, _):
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="after 7 attempts: no answer within"):
            run_batch(s, xq)
    assert time.monotonic() - t0 < 30


def test_silent_server_times_out():
    """Something accepts the connection but never answers: DeviceError within the timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns = []
    threading.Thread(target=lambda: conns.append(srv.accept()), daemon=True).start()
    from tinyconv.harness import protocol as P
    from tinyconv.harness.link import Link

    link = Link(SerialTransport(f"socket://127.0.0.1:{srv.getsockname()[1]}"), "fake-board", timeout=0.3, retries=2)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="fake-board failed IDENTIFY after 3 attempts: no answer within 0.3 s"):
        link.request(P.IDENTIFY)
    assert time.monotonic() - t0 < 2.0
    link.close()
    srv.close()


def test_firmware_that_never_answers(m4):
    """Real firmware talking to the wrong UART: the host gives up with a DeviceError in time."""
    c, xq, _, _ = m4
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="qemu-m4 failed IDENTIFY after .* no answer"):
        api.run_inputs(c.library.outdir, "qemu-m4", xq[:1], extra_cflags=("-UTCR_UART_BASE", "-DTCR_UART_BASE=0x40005000u"), timeout=0.5, retries=1)
    assert time.monotonic() - t0 < 20


def test_unknown_command_and_bad_crc_get_error_answers(m4):
    from tinyconv.harness import protocol as P

    _, _, _, fw = m4
    with Session(fw) as s:
        with pytest.raises(DeviceError, match="refused command 0x55: unknown command"):
            s.link.request(0x55)
        # a request with a broken CRC gets an ERR_CRC answer (raw, bypassing the retrying link)
        frame = bytearray(P.decode_frame(P.encode_request(9, P.IDENTIFY)[:-1]) + b"\0\0\0\0")
        from cobs import cobs

        s.link.t.write(cobs.encode(bytes(frame)) + b"\0")
        raw = next(s.link._frames(time.monotonic() + 2.0, "raw"))
        r = P.parse_response(P.decode_frame(raw))
        assert (r.seq, r.cmd, r.status) == (9, P.IDENTIFY, P.ERR_CRC)
        # bad argument: output chunk out of range
        with pytest.raises(DeviceError, match="bad argument"):
            s.link.request(P.GET_OUTPUT, (10_000).to_bytes(4, "little") + (4).to_bytes(2, "little"))
        assert s.link.request(P.ECHO, b"\x00\x01\x00" * 80).payload == b"\x00\x01\x00" * 80
        # a host speaking another protocol version is told so
        s.link.t.write(P.encode_request(11, P.IDENTIFY, version=2))
        r = P.parse_response(P.decode_frame(next(s.link._frames(time.monotonic() + 2.0, "raw"))))
        assert (r.seq, r.status, r.payload) == (11, P.ERR_VERSION, bytes([P.VERSION]))


def _patch_after_layer(libdir, layer: int, stmt: str) -> str:
    src = libdir / "tc_model.c"
    text = src.read_text()
    m = re.search(rf"TC_MODEL_AFTER_LAYER\({layer}, (.+?), (\d+)u\);", text)
    assert m, "generated code changed shape"
    text = text.replace(m.group(0), stmt.format(out=m.group(1), n=m.group(2)) + "\n    " + m.group(0))
    src.write_text(text)
    return m.group(1)


@pytest.mark.parametrize("device,target", [("qemu-m4", "cortex-m4"), ("qemu-aarch64", "aarch64")])
def test_broken_kernel_is_located(libs, tmp_path, device, target):
    need(device)
    c = libs.get(target)
    bad = copy_lib(c.library.outdir, tmp_path / "broken")
    # as if layer 6's kernel had a wrong requantization (halved, off by 3)
    _patch_after_layer(bad, 6, "{{ uint32_t k_; for (k_ = 0; k_ < {n}u; k_++) ({out})[k_] = (int8_t)(({out})[k_] / 2 + 3); }}")
    xq = libs.xq(target)
    expected = reference.run_batch(c.graph, xq).reshape(len(xq), -1)
    got = api.run_inputs(bad, device, xq).outputs
    assert not np.array_equal(got, expected)
    broken = replace(c, library=replace(c.library, outdir=bad))
    where = first_divergent_layer(broken, device, xq[0])
    assert where is not None and where["index"] == 6 and where["name"] == c.graph.nodes[6].name
    assert where["mismatches"] >= 1


def test_hardfault_is_reported(libs, tmp_path):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    bad = copy_lib(c.library.outdir, tmp_path / "fault")
    _patch_after_layer(bad, 2, '__asm volatile("udf #7");')
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"qemu-m4 crashed during RUN: HardFault at pc=0x[0-9a-f]{8} .*UNDEFINSTR"):
        api.run_inputs(bad, "qemu-m4", libs.xq("cortex-m4")[:1])
    assert time.monotonic() - t0 < 20


def test_segfault_on_aarch64_is_reported(libs, tmp_path):
    need("qemu-aarch64")
    c = libs.get("aarch64")
    bad = copy_lib(c.library.outdir, tmp_path / "segv")
    _patch_after_layer(bad, 1, "*(volatile int *)(uintptr_t)16 = 1;")
    with pytest.raises(DeviceError, match=r"qemu-aarch64 crashed during RUN: SIGSEGV \(fault address 0x00000010\)"):
        api.run_inputs(bad, "qemu-aarch64", libs.xq("aarch64")[:1])


def test_model_too_big_is_refused_before_flashing(libs):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    small = replace(load_device("qemu-m4"), memory={"ram_bytes": 8192, "flash_bytes": 1 << 20, "part": "tiny part"})
    with pytest.raises(FitError, match=r"does not fit qemu-m4 \(tiny part\) RAM: needs [\d,]+ B \(arena 1,536 \+ other static [\d,]+ \+ stack 16,384\) but the part has 8,192 B"):
        api.run_inputs(c.library.outdir, small, libs.xq("cortex-m4")[:1])
    tiny_flash = replace(load_device("qemu-m4"), memory={"ram_bytes": 1 << 20, "flash_bytes": 4096})
    weights = c.library.manifest["weights_bytes"]
    assert weights > 4096  # refused on the weights alone, before compiling
    with pytest.raises(FitError, match=rf"does not fit qemu-m4 .*flash: its weights alone need {weights:,} B but the part has 4,096 B"):
        api.flash(c.library.outdir, tiny_flash)


def test_real_board_flash_refuses_cleanly(libs):
    need("qemu-m4")
    c = libs.get("cortex-m4")
    dev = load_device("nucleo-l4r5zi")
    if dev.can_run:
        pytest.skip("a board is attached")
    with pytest.raises(DeviceError, match="nucleo-l4r5zi"):
        api.flash(c.library.outdir, "nucleo-l4r5zi")
    with pytest.raises(DeviceError, match="nucleo-l4r5zi cannot run here"):
        api.run_inputs(c.library.outdir, "nucleo-l4r5zi", libs.xq("cortex-m4")[:1])


def test_real_board_firmware_builds(libs, tmp_path):
    """The STM32L4 port (no board here to run it) still compiles and links with the shared Cortex-M
    sources, and its stack paint/measure code is in the image."""
    need("qemu-m4")
    fw = build_firmware(libs.get("cortex-m4").library.outdir, load_device("nucleo-l4r5zi"), cache_dir=tmp_path)
    syms = subprocess.run(["arm-none-eabi-nm", str(fw.elf)], capture_output=True, text=True, timeout=60, check=True).stdout
    assert " T tcr_port_stack_paint" in syms and " T tcr_port_stack_used" in syms


def test_stack_overflow_on_m55_is_a_fault(libs, tmp_path):
    """Armv8-M MSPLIM turns a stack overflow into a reported UsageFault (STKOF)."""
    need("qemu-m55")
    c = libs.get("cortex-m55")
    bad = copy_lib(c.library.outdir, tmp_path / "stkof")
    _patch_after_layer(bad, 0, "{{ volatile int8_t big_[40000]; big_[0] = 1; big_[39999] = big_[0]; }}")
    with pytest.raises(DeviceError, match=r"qemu-m55 crashed during RUN: HardFault .*STKOF \(stack overflow\)"):
        api.run_inputs(bad, "qemu-m55", libs.xq("cortex-m55")[:1])


def test_user_errors_are_one_line(libs, tmp_path):
    need("qemu-m4")
    from tinyconv.errors import BuildError

    with pytest.raises(DeviceError, match="unknown device 'qemu-m99'"):
        api.run_inputs(libs.get("cortex-m4").library.outdir, "qemu-m99", libs.xq("cortex-m4")[:1])
    with pytest.raises(BuildError, match="compiled for target 'cortex-m55' but qemu-m4 needs 'cortex-m4'"):
        api.run_inputs(libs.get("cortex-m55").library.outdir, "qemu-m4", libs.xq("cortex-m55")[:1])
    with pytest.raises(BuildError, match="not a tinyconv library"):
        api.run_inputs(tmp_path, "qemu-m4", libs.xq("cortex-m4")[:1])
    with pytest.raises(DeviceError, match="input has 5 bytes, the model takes 288"):
        api.run_inputs(libs.get("cortex-m4").library.outdir, "qemu-m4", np.zeros((1, 5), np.int8))
