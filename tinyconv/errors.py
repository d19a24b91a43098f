"""User-facing errors. The CLI prints `error: <message>` and exits non-zero; never a traceback."""

from __future__ import annotations


class TinyconvError(Exception):
    """Base for every error caused by user input (model, data, device, options)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, node: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.node = node

    def __str__(self) -> str:
        return self.message + (f" ({self.hint})" if self.hint else "")


class ModelError(TinyconvError):
    """The model is malformed or uses something tinyconv does not support."""


class ScaleRangeError(ModelError):
    """A requantization multiplier outside what int32 fixed point represents (no node yet:
    `quantize.prepare_all` names the layer)."""


class UnsupportedError(ModelError):
    """A valid model uses an op, attribute or pattern tinyconv does not lower (yet)."""


class DataError(TinyconvError):
    """Calibration or input data does not match the model."""


class BuildError(TinyconvError):
    """A C compiler or linker failed on generated code or firmware."""


class DeviceError(TinyconvError):
    """A device did not answer, answered garbage, or refused the model."""

    exit_code = 3


class FitError(TinyconvError):
    """The model does not fit the device's memory budget."""
