"""Shared fixtures: the embedded example table, a Chinchilla design and a small start grid.

Nothing here touches JAX's global configuration: the library scopes float64 to
its own entry points, and the tests do the same with `jax.enable_x64`.
"""

import gc
import itertools
import os

import jax
import numpy as np
import pytest
from hypothesis import settings

import scalejax as sj

# Property tests draw the same examples on every run, so CI is reproducible; a failure
# found once is found again. `--hypothesis-profile=explore` draws fresh examples.
settings.register_profile("scalejax", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("scalejax")

# The command line turns JAX's persistent compilation cache on (`scalejax.cli.run`); tests call it in
# this process, and the cache would then stay on for every later test, writing to the user's cache
# folder. Off for the suite; tests of the cache turn it on for their own processes.
os.environ.setdefault("SCALEJAX_COMPILE_CACHE", "0")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    XLA's CPU backend maps about 18 memory regions per compiled program and
    keeps them while JAX caches the program. The suite compiles thousands of
    distinct programs in one process; kept, they pass Linux's limit of 65,530
    maps per process (`vm.max_map_count`) a little before half the suite, and
    the next compilation dies with a segmentation fault inside XLA. Measured
    by counting /proc/self/maps after each test: 50,156 maps by
    test_functional.py; cleared per module, it stays in the low thousands.
    """
    yield
    jax.clear_caches()
    gc.collect()


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@pytest.fixture
def example_frame():
    """The embedded synthetic Chinchilla table (81 runs: columns N, D, C, loss); a fresh copy per test."""
    return sj.datasets.load_example("chinchilla")


@pytest.fixture(scope="session")
def chinchilla_design():
    """8 model sizes (1e7-1e10) x 6 token counts (1e9-1e12): 48 points, as read-only arrays N and D."""
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 8), np.geomspace(1e9, 1e12, 6), indexing="ij")
    return {"N": _read_only(n.ravel()), "D": _read_only(d.ravel())}


@pytest.fixture(scope="session")
def chinchilla_starts():
    """A 2x2x2x3x3 grid of natural-valued Chinchilla starts (E, A, B, alpha, beta): 72 rows.

    Every test that fits Chinchilla with these starts shares one compiled lane count.
    """
    grid = itertools.product((1.0, 3.0), (100.0, 5000.0), (100.0, 5000.0), (0.2, 0.4, 0.6), (0.2, 0.4, 0.6))
    return _read_only(list(grid))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Report how many hostile inputs the reliability tests tried, by category."""
    from hostile import TALLY

    if not TALLY:
        return
    failed = any("reliability" in report.nodeid for report in terminalreporter.stats.get("failed", []))
    terminalreporter.write_sep("-", "hostile inputs (reliability tests)")
    for category, count in sorted(TALLY.items()):
        terminalreporter.write_line(f"{category:40s} {count:6d}")
    groups: dict[str, int] = {}
    for category, count in TALLY.items():
        groups[category.split(":")[0]] = groups.get(category.split(":")[0], 0) + count
    terminalreporter.write_line("  ".join(f"{group}: {count}" for group, count in sorted(groups.items())))
    verdict = "some reliability tests FAILED" if failed else "all handled"
    terminalreporter.write_line(f"{'total':40s} {sum(TALLY.values()):6d}  ({verdict})")


@pytest.fixture(scope="session")
def example_bootstrap(chinchilla_starts):
    """A 60-resample bootstrap of Chinchilla on the embedded example (seed 1, the small start grid)."""
    frame = sj.datasets.load_example("chinchilla")
    return sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=60, seed=1, starts=chinchilla_starts)


@pytest.fixture(scope="session")
def example_report(example_bootstrap, tmp_path_factory):
    """The HTML report of `example_bootstrap` forecasting 70B / 1.4T and 400B / 8T runs (a path)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    return sj.write_report(example_bootstrap, targets={"N": [70e9, 400e9], "D": [1.4e12, 8e12]}, out=out)
