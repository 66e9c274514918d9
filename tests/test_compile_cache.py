"""The persistent compilation cache: a second process loads the solvers it compiled instead of compiling them.

Each run is a fresh process (the cache matters across processes); JAX's own
log says whether each compiled function was a cache hit or a miss.
"""

from __future__ import annotations

import textwrap

import pytest
from helpers import run_script

from scalejax import _compile_cache

RUN = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
    logging.getLogger("jax._src.compiler").setLevel(logging.DEBUG)
    import numpy as np, scalejax as sj
    x = np.geomspace(1e6, 1e9, 12)
    fit = sj.fit("power", x={"x": x}, y=2 + 300 * x**-0.3, loss="squared_log")
    print("A", round(fit.params["A"], 6))
    # A law written here is not kept whole (scalejax._programs): its solvers go through JAX's cache.
    grid = {"E": (1.0, 3.0), "A": (100.0, 1000.0), "alpha": (0.2, 0.5)}
    mine = sj.Law("mine", lambda p, x: p["E"] + p["A"] * x["x"] ** -p["alpha"],
                  tuple(sj.Param(k, lower=0, grid=g) for k, g in grid.items()), ("x",))
    fit = sj.fit(mine, x={"x": x}, y=2 + 300 * x**-0.3, loss="squared_log")
    print("mine A", round(fit.params["A"], 6))
    """
)


def _run(tmp_path, **env):
    out = run_script(tmp_path, RUN, **env)
    hits = out.count("Persistent compilation cache hit")
    misses = out.count("PERSISTENT COMPILATION CACHE MISS")
    return hits, misses, out


def test_a_second_process_loads_every_solver_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {"SCALEJAX_COMPILE_CACHE": "1", "SCALEJAX_CACHE_DIR": str(cache)}
    hits, misses, out = _run(tmp_path, **env)
    assert "A 300.0" in out.splitlines() and "mine A 300.0" in out.splitlines()
    assert misses > 0 and hits == 0
    stored = _compile_cache.cache_info(cache)
    # The built-in law's solvers are kept whole; the script's law's are XLA entries (screen, init, queue at least).
    assert stored["programs"] >= 4 and stored["entries"] >= 3 and stored["bytes"] > 0
    hits, misses, out = _run(tmp_path, **env)
    assert "A 300.0" in out.splitlines() and "mine A 300.0" in out.splitlines()
    assert hits >= stored["entries"] and misses == 0, out
    assert _compile_cache.cache_info(cache)["programs"] == stored["programs"]

    before = _compile_cache.clear_compile_cache(cache)
    assert before["entries"] == stored["entries"] and before["programs"] == stored["programs"]
    assert _compile_cache.cache_info(cache)["entries"] == 0
    assert _compile_cache.cache_info(cache)["programs"] == 0


def test_the_library_leaves_the_cache_off_unless_asked(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    hits, _, _ = _run(tmp_path, SCALEJAX_CACHE_DIR=str(cache))
    assert hits == 0
    assert not cache.exists()
    monkeypatch.setenv("SCALEJAX_COMPILE_CACHE", "0")
    assert _compile_cache.enable_compile_cache(cache) is None


def test_the_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALEJAX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _compile_cache.cache_dir() == tmp_path / "xdg" / "scalejax" / "jax"
    monkeypatch.setenv("SCALEJAX_CACHE_DIR", str(tmp_path / "mine"))
    assert _compile_cache.cache_dir() == tmp_path / "mine"


def test_clearing_removes_only_what_jax_writes(tmp_path):
    (tmp_path / "jit_f-abc-cache").write_bytes(b"x" * 10)
    (tmp_path / "jit_f-abc-atime").write_bytes(b"t")
    (tmp_path / "notes.txt").write_text("keep me")
    before = _compile_cache.clear_compile_cache(tmp_path)
    assert before["entries"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("value", ["0", "off"])
def test_switching_the_cache_off_wins_over_a_path(monkeypatch, tmp_path, value):
    monkeypatch.setenv("SCALEJAX_COMPILE_CACHE", value)
    assert _compile_cache.enable_compile_cache(tmp_path) is None
