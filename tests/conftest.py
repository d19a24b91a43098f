"""Shared fixtures: where the shared MLPerf Tiny models are, and skips when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MODELS = Path(os.environ.get("TINYCONV_SHARED_MODELS", REPO.parent / "shared" / "models")) / "mlperf-tiny"
EXAMPLE = REPO / "examples" / "digits"


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"MLPerf Tiny models not found at {SHARED_MODELS} (they live in ../shared beside the repo, in CI)")
    return SHARED_MODELS


@pytest.fixture(scope="session", autouse=True)
def build_cache(tmp_path_factory) -> Path:
    """Compiled objects go to a per-session cache, not the user's ~/.cache/tinyconv."""
    if not os.environ.get("TINYCONV_CACHE"):
        os.environ["TINYCONV_CACHE"] = str(tmp_path_factory.mktemp("build-cache"))
    return Path(os.environ["TINYCONV_CACHE"])


def pytest_addoption(parser):
    parser.addoption("--fuzz-cases", type=int, default=None,
                     help="cases per importer for the fuzz suite's built (slow) tests; a long campaign: tests/fuzz/campaign.py")  # fmt: skip
