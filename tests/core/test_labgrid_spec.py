"""`labgrid:` device strings and `labgrid-client show` output, parsed without a farm."""

from __future__ import annotations

import pytest

from tinyconv.errors import DeviceError
from tinyconv.harness.labgrid import Place, parse_show, parse_spec

SHOW = """Place 'qemu-m4-2':
  tags: lab=berlin, tinyconv=qemu-m4
  matches:
    tinyconv-farm/qemu-m4-2/NetworkSerialPort
  acquired: vm/ci
  acquired resources:
    tinyconv-farm/qemu-m4-2/NetworkSerialPort/NetworkSerialPort
  created: 2026-11-30 16:25:38.222595
  changed: 2026-11-30 16:25:38.958060
Acquired resource 'NetworkSerialPort' (tinyconv-farm/qemu-m4-2/NetworkSerialPort/NetworkSerialPort):
  {'acquired': 'qemu-m4-2',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'proxy': 'localhost', 'proxy_required': False},
              'host': '127.0.0.1',
              'port': 40001,
              'protocol': 'raw',
              'speed': 115200}}
"""


def test_specs():
    assert parse_spec("labgrid:nucleo-3").place == "nucleo-3"
    assert parse_spec("labgrid:tag=qemu-m4").filters == {"tinyconv": "qemu-m4"}
    assert parse_spec("labgrid:tinyconv=qemu-m55,lab=berlin").filters == {"tinyconv": "qemu-m55", "lab": "berlin"}


@pytest.mark.parametrize("bad", ["labgrid:", "labgrid:../x", "labgrid:tag=", "labgrid:tag=a b", "labgrid:Tag=x", "labgrid:tag=x;rm -rf /", "labgrid:" + "a" * 70])
def test_bad_specs_are_clear_errors(bad):
    with pytest.raises(DeviceError):
        parse_spec(bad)


def test_show_gives_tags_and_serial_url():
    p = parse_show(SHOW, "+TOKEN")
    assert p.name == "qemu-m4-2"  # asked for by reservation token, answered with the real name
    assert p.tags == {"lab": "berlin", "tinyconv": "qemu-m4"}
    assert p.url == "socket://127.0.0.1:40001"
    assert Place("x", {}, "farm.lan", 3000, "rfc2217").url == "rfc2217://farm.lan:3000"
    with pytest.raises(DeviceError, match="protocol"):
        _ = Place("x", {}, "h", 1, "ssh").url


def test_place_without_serial_port_is_refused():
    with pytest.raises(DeviceError, match="NetworkSerialPort"):
        parse_show(SHOW.split("Acquired resource")[0], "qemu-m4-2")
