"""Posteriors in real ArviZ (`arviz_checks.py`), run in a fresh interpreter.

With ArviZ's stack (xarray, h5py and its bundled HDF5) loaded into the
long-lived test process, a later XLA compilation crashed the whole suite
(segmentation fault, every full run; never with those packages absent). The
checks run in their own process and report here; a user's process imports
ArviZ only when `to_arviz` is called.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytest.importorskip("arviz")


def test_arviz_checks_in_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "arviz_checks.py")],
        cwd=HERE.parent,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
