"""Fits and predictions from polars, pyarrow, xarray and other tables: `tables_inputs.py`, in its own process.

Loading polars and pyarrow into the long-lived test process made a later
XLA compilation crash it (segmentation fault or abort, three runs in three,
whatever the import order; never with those packages absent). A user's
process runs scalejax with any of these tables; the suite runs those tests
in a fresh interpreter so a crash there cannot take the whole suite down,
and reports their outcome here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytest.importorskip("polars")
pytest.importorskip("xarray")
if importlib.util.find_spec("pyarrow") is None:  # found on disk; conftest keeps it out of this process
    pytest.skip("pyarrow is not installed", allow_module_level=True)


def test_tables_of_every_kind_in_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "tables_inputs.py")],
        cwd=HERE.parent,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "SCALEJAX_TEST_PYARROW": "1"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
