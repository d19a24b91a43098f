"""The fuzz seeds for .tflite are built with tests/tflite/tflite_build.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tflite"))
