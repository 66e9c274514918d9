"""Whole compiled solvers kept on disk (`scalejax._programs`): a later process neither traces nor compiles them.

The runs are fresh processes (the store matters across processes). Each
prints its fitted parameters to full precision and how many functions JAX
traced during the fit, read from JAX's own monitoring events.
"""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import run_script

import scalejax as sj
from scalejax import _compile_cache, _programs

RUN = textwrap.dedent(
    """
    import jax, numpy as np, scalejax as sj
    traced = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: traced.append(1) if event == "/jax/core/compile/jaxpr_trace_duration" else None
    )
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 1e9, 6), 4)
    d = np.tile(np.geomspace(1e9, 1e11, 4), 6)
    y = (1.8 + 480 * n**-0.35 + 2100 * d**-0.37) * np.exp(0.01 * rng.standard_normal(n.size))
    fit = sj.fit("chinchilla", x={"N": n, "D": d}, y=y, progress=False)
    print("params", repr(fit.params))
    print("traced", len(traced))
    """
)


def _run(tmp_path, **env):
    out = run_script(tmp_path, RUN, **env)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return lines["params"], int(lines["traced"])


def test_a_second_process_traces_nothing_and_fits_the_same(tmp_path):
    cache = tmp_path / "cache"
    env = {"SCALEJAX_COMPILE_CACHE": "1", "SCALEJAX_CACHE_DIR": str(cache)}
    plain, traced_plain = _run(tmp_path, SCALEJAX_COMPILE_CACHE="0")
    first, traced_first = _run(tmp_path, **env)
    stored = _compile_cache.cache_info(cache)["programs"]
    second, traced_second = _run(tmp_path, **env)
    assert traced_plain > 0 and traced_first == traced_plain
    # screening, distinct-optimum predictions, lane initialisation, the lane queue, the Jacobian
    assert stored == 5
    assert traced_second == 0
    assert first == plain and second == plain  # every digit

    before = _compile_cache.clear_compile_cache(cache)
    assert before["programs"] == 5 and _compile_cache.cache_info(cache)["programs"] == 0


def test_damaged_programs_are_compiled_again(tmp_path):
    cache = tmp_path / "cache"
    env = {"SCALEJAX_COMPILE_CACHE": "1", "SCALEJAX_CACHE_DIR": str(cache)}
    first, _ = _run(tmp_path, **env)
    programs = _programs.files(cache / _compile_cache.PROGRAMS)
    sizes = {}
    for i, f in enumerate(programs):
        sizes[f.name] = f.stat().st_size
        f.write_bytes(f.read_bytes()[: 100 * i])  # truncated, down to empty
    again, traced = _run(tmp_path, **env)
    assert again == first and traced > 0
    # Each damaged file was replaced by a whole one, which the next process loads.
    assert {f.name: f.stat().st_size for f in programs} == sizes
    third, traced = _run(tmp_path, **env)
    assert third == first and traced == 0


def _user_fn(p, x):
    return p["E"] + p["A"] * x["x"] ** -p["alpha"]


def test_the_token_tells_laws_apart_by_value_and_refuses_outside_code():
    token = _programs.token
    assert token(sj.laws.get("chinchilla")) == token(sj.laws.get("chinchilla"))
    e1 = sj.constrain("chinchilla", fixed={"E": 1.0})
    assert token(e1) == token(sj.constrain("chinchilla", fixed={"E": 1.0}))
    assert token(e1) != token(sj.constrain("chinchilla", fixed={"E": 2.0}))
    assert token(sj.laws.get("chinchilla")) != token(sj.laws.get("kaplan"))
    assert token(np.arange(3.0)) != token(np.arange(3.0) + 1e-12)
    user = sj.Law("mine", _user_fn, tuple(sj.Param(k, lower=0) for k in ("E", "A", "alpha")), ("x",))
    with pytest.raises(_programs.Uncacheable):
        token(user)
    with pytest.raises(_programs.Uncacheable):
        token(object())


def test_a_program_that_fails_its_first_call_falls_back_to_jit(tmp_path, monkeypatch):
    calls = []

    @jax.jit
    def double(x):
        calls.append(1)  # once per trace
        return 2 * x

    class Broken:
        def __call__(self, *args):
            raise jax.errors.JaxRuntimeError("NOT_FOUND: Function f not found")

    program = _programs.Program(double, "double")
    monkeypatch.setattr(_programs, "_store", None)
    assert float(program(jnp.asarray(2.0))) == 4.0  # the store off: plain jit
    _programs.enable(tmp_path)
    try:
        np.testing.assert_array_equal(program(np.arange(3.0)), 2 * np.arange(3.0))  # compiles and stores
        stored = _programs.files(tmp_path)
        assert len(stored) == 1
        monkeypatch.setattr(_programs, "_read", lambda path: Broken())
        fresh = _programs.Program(double, "double")
        np.testing.assert_array_equal(fresh(np.arange(3.0)), 2 * np.arange(3.0))
        assert _programs.files(tmp_path) == []  # the bad file is gone
        # Inside a transformation nothing is stored: the call is the jitted function's.
        np.testing.assert_array_equal(jax.vmap(fresh)(jnp.ones((2, 3))), 2 * np.ones((2, 3)))
    finally:
        _programs.disable()


def test_every_solver_a_fit_runs_is_a_stored_program():
    from scalejax import _fit
    from scalejax.solvers import _global, _init_compiled

    # The lane queue is built per law and mesh (`_queue_compiled`): the process test counts it.
    for program in (
        _init_compiled,
        _global._screen_compiled,
        _global._predict_compiled,
        _fit._residual_jacobian_compiled,
    ):
        assert isinstance(program, _programs.Program)


def test_the_key_follows_shapes_64_bit_mode_and_scalejax_source(tmp_path, monkeypatch):
    @jax.jit
    def double(x):
        return 2 * x

    def stored():
        return len(_programs.files(tmp_path))

    _programs.enable(tmp_path)
    try:
        program = _programs.Program(double, "double")
        with jax.enable_x64(True):
            assert program(np.arange(3.0)).dtype == np.float64
            program(np.arange(3.0) + 1)  # same key: nothing new
            assert stored() == 1
            program(np.arange(4.0))
            assert stored() == 2
        with jax.enable_x64(False):
            assert program(np.arange(3.0, dtype=np.float32)).dtype == np.float32
            assert stored() == 3
        # Another scalejax (its source files edited): nothing stored before is used.
        monkeypatch.setattr(_programs, "_source_digest", lambda: "edited")
        _programs._static_environment.cache_clear()
        with jax.enable_x64(True):
            np.testing.assert_array_equal(_programs.Program(double, "double")(np.arange(3.0)), 2 * np.arange(3.0))
        assert stored() == 4
    finally:
        _programs.disable()
        _programs._static_environment.cache_clear()
