"""The command line's contract: every option explained, defaults shown, global options accepted
after the subcommand, one default device everywhere."""

from __future__ import annotations

import argparse

import pytest

from tinyconv.cli import DEFAULT_DEVICE, build_parser, main
from tinyconv.errors import TinyconvError
from tinyconv.harness.devices import list_devices


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_of_every_command_has_help():
    for name, sp in subcommands().items():
        for action in sp._actions:
            assert action.help, f"tinyconv {name}: {action.option_strings or action.dest} has no help text"


def test_help_shows_defaults_and_choices():
    text = subcommands()["compile"].format_help()
    assert "(default: minmax)" in text and "{minmax,percentile,mse}" in text
    assert "(default: tc_model)" in text and "cortex-m55" in text
    assert f"(default: {DEFAULT_DEVICE})" in subcommands()["check"].format_help()


def test_one_default_device_everywhere():
    marked = [d.name for d in list_devices() if d.default]
    assert marked == [DEFAULT_DEVICE]
    for name, sp in subcommands().items():
        for action in sp._actions:
            if action.dest == "device":
                assert action.default == DEFAULT_DEVICE, f"tinyconv {name} --device defaults to {action.default}"
    assert build_parser().parse_args(["check", "m.onnx"]).device == DEFAULT_DEVICE


@pytest.mark.parametrize("argv", [["--debug", "inspect", "nope.onnx"], ["inspect", "nope.onnx", "--debug"]])
def test_debug_is_accepted_before_and_after_the_subcommand(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TinyconvError):
        main(argv)


def test_without_debug_an_error_is_one_line_and_an_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert build_parser().parse_args(["inspect", "nope.onnx"]).debug is False
    assert main(["inspect", "nope.onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
