"""The shipped package, as a user's CI gets it: build the sdist and, from it, the wheel; install the
wheel alone into a fresh virtualenv; from a folder outside the checkout run compile, check (host and
qemu-m4), profile, demo and a user's pytest test that uses the `tinyconv_check` fixture.

Building the wheel from the sdist proves both carry codegen_templates/, firmware/, devices/ and the
example. Dependencies come from pip's configured index (and its cache)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "examples" / "digits"
DATA = ("codegen_templates", "firmware", "devices", "examples")

pytestmark = [pytest.mark.slow, pytest.mark.device]


def run(cmd, *, cwd, env, timeout=600, ok=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}", pytrace=False)
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin dir, environment, user folder) with only the built wheel and its dependencies."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "cc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (run scripts/setup)")
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TINYCONV_", "VIRTUAL_ENV"))}
    run([sys.executable, "-m", "venv", root / "venv"], cwd=root, env=env)
    bin_ = root / "venv" / "bin"
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
    run([bin_ / "python", "-m", "pip", "install", "-q", "build", "pytest"], cwd=root, env=env)
    run([bin_ / "python", "-m", "build", "--outdir", root / "dist", REPO], cwd=root, env=env)
    sdists, wheels = sorted((root / "dist").glob("*.tar.gz")), sorted((root / "dist").glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in (root / "dist").iterdir())
    run([bin_ / "python", "-m", "pip", "install", "-q", wheels[0]], cwd=root, env=env)
    user = root / "user"
    user.mkdir()
    for f in ("digits_cnn.onnx", "calib.npy", "test_x.npy", "test_y.npy"):
        shutil.copy(EXAMPLE / f, user / f)
    np.save(user / "few_x.npy", np.load(EXAMPLE / "test_x.npy")[:8])
    return bin_, env, user, sdists[0]


def test_sdist_carries_the_data_folders(installed):
    import tarfile

    *_, sdist = installed
    names = tarfile.open(sdist).getnames()
    for folder in DATA:
        assert any(f"/{folder}/" in n for n in names), f"{folder}/ is not in {sdist.name}"


def test_installed_package_reads_its_data_from_the_wheel(installed):
    bin_, env, user, _ = installed
    r = run([bin_ / "python", "-c", "import tinyconv, tinyconv.resources as r; print(tinyconv.__file__); "
             "print(*(r.data_dir(n) for n in r.NAMES), sep='\\n')"], cwd=user, env=env)  # fmt: skip
    lines = r.stdout.split()
    site = Path(lines[0]).parent
    assert str(REPO) not in r.stdout, f"the installed tinyconv uses the checkout:\n{r.stdout}"
    assert [Path(p) for p in lines[1:]] == [site / "_data" / n for n in DATA]
    devices = run([bin_ / "tinyconv", "devices"], cwd=user, env=env).stdout
    assert "qemu-m4" in devices and "host" in devices
    assert "QLinearConv" in run([bin_ / "tinyconv", "ops"], cwd=user, env=env).stdout
    r = run([bin_ / "python", "-c", "import tinyconv.report as r; print(r.schema()['properties']['schema_version'])"], cwd=user, env=env)
    assert "const" in r.stdout


def test_compile_check_profile_demo_from_the_wheel(installed):
    bin_, env, user, _ = installed
    tc = bin_ / "tinyconv"
    r = run([tc, "compile", "digits_cnn.onnx", "--calib", "calib.npy", "-o", "lib", "--target", "cortex-m4"], cwd=user, env=env)
    assert (user / "lib" / "tc_model.c").is_file() and (user / "lib" / "manifest.json").is_file(), r.stdout
    for device in ("host", "qemu-m4"):
        r = run([tc, "check", "digits_cnn.onnx", "--calib", "calib.npy", "--inputs", "few_x.npy", "--device", device,
                 "--json", f"{device}.json"], cwd=user, env=env)  # fmt: skip
        import json

        rep = json.loads((user / f"{device}.json").read_text())
        assert rep["bit_exact"] and rep["mismatches"] == 0 and rep["inputs"] == 8, (device, rep)
    r = run([tc, "profile", "digits_cnn.onnx", "--calib", "calib.npy", "--device", "qemu-m4"], cwd=user, env=env)
    assert "instructions" in r.stdout.lower()
    r = run([tc, "demo"], cwd=user, env=env)
    assert "bit-exact" in (r.stdout + r.stderr).lower() or "PASS" in r.stdout, r.stdout


def test_pytest_plugin_from_the_wheel(installed):
    bin_, env, user, _ = installed
    (user / "test_user_model.py").write_text(textwrap.dedent("""
        def test_digits_on_the_board(tinyconv_check):
            report = tinyconv_check("digits_cnn.onnx", calib="calib.npy", inputs="few_x.npy")
            assert report["device"] == "qemu-m4" and report["bit_exact"] and report["inputs"] == 8
    """))
    r = run([bin_ / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_model.py"], cwd=user, env=env)
    assert "1 passed" in r.stdout
