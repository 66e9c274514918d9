"""Memory that grows with points plus lanes: shared data once, per-problem data made block by block, big solves refused.

Resample weights made on the fly must equal the same weights made at once,
whatever the ranges asked for; lanes fed by a function must give bitwise the
same results as lanes fed the full matrix.
"""

from __future__ import annotations

import itertools
import tracemalloc

import jax
import numpy as np
import pytest

import scalejax as sj
from scalejax._fit import make_data
from scalejax._objectives import make_loss
from scalejax._resample import Resampler
from scalejax.solvers import CONVERGED, SolverConfig, _memory, solve_lanes

X = {"N": "N", "D": "D"}
STARTS = {"E": [1.5, 2.0], "A": [300.0, 600.0], "B": [1000.0, 3000.0], "alpha": [0.3, 0.4], "beta": [0.3, 0.4]}


@pytest.fixture(scope="module")
def problem():
    frame = sj.datasets.load_example("chinchilla")
    law, loss = sj.laws.get("chinchilla"), make_loss()
    frame = frame.assign(run=np.arange(len(frame)) % 7)
    data = make_data(law, frame, X, "loss", None, "run", loss)
    result = sj.fit(law, frame, x=X, y="loss", starts=STARTS)
    return law, loss, data, result


@pytest.mark.parametrize("scheme", ["rows", "groups", "bayesian", "residual"])
def test_resample_rows_do_not_depend_on_the_ranges_asked_for(problem, scheme):
    _, _, data, result = problem
    fitted = data.target(True) - result.residuals
    make = Resampler(data, scheme, seed=3, fitted=fitted, residuals=result.residuals)
    get = make.targets if scheme == "residual" else make.weights
    n = 3 * make.block + 17
    whole = get(0, n)
    again = Resampler(data, scheme, seed=3, fitted=fitted, residuals=result.residuals)
    get_again = again.targets if scheme == "residual" else again.weights
    cuts = [0, 5, make.block - 1, make.block + 2, 2 * make.block + 9, n]
    pieces = np.vstack([get_again(a, b) for a, b in reversed(list(itertools.pairwise(cuts)))][::-1])
    np.testing.assert_array_equal(pieces, whole)
    other = Resampler(data, scheme, seed=4, fitted=fitted, residuals=result.residuals)
    assert not np.array_equal((other.targets if scheme == "residual" else other.weights)(0, n), whole)


def test_resample_weights_have_the_schemes_distributions(problem):
    """Rows: multinomial counts (sum n, mean 1, variance 1 - 1/n); Bayesian: Dirichlet (sum n, variance (n-1)/(n+1))."""
    _, _, data, _ = problem
    n = data.n
    rows = Resampler(data, "rows", seed=0).weights(0, 4000)
    assert np.all(rows == np.round(rows)) and np.all(rows.sum(axis=1) == n)
    np.testing.assert_allclose(rows.mean(), 1.0)
    np.testing.assert_allclose(rows.var(axis=0).mean(), 1 - 1 / n, rtol=0.03)
    bayes = Resampler(data, "bayesian", seed=0).weights(0, 4000)
    np.testing.assert_allclose(bayes.sum(axis=1), n)
    np.testing.assert_allclose(bayes.var(axis=0).mean(), (n - 1) / (n + 1), rtol=0.03)
    groups = Resampler(data, "groups", seed=0).weights(0, 500)
    codes = np.unique(data.groups.astype(str), return_inverse=True)[1]
    for g in range(codes.max() + 1):  # every point of a group moves together
        assert np.all(groups[:, codes == g] == groups[:, [np.flatnonzero(codes == g)[0]]])


def test_lanes_fed_by_a_function_equal_lanes_fed_the_matrix(problem):
    """Per-problem weights made block by block, two starts per problem: bitwise the full-matrix solve."""
    law, loss, data, result = problem
    make = Resampler(data, "rows", seed=1)
    n_resamples, k = 40, 2
    starts = np.vstack([result.u[0], result.u[0] + 0.05])
    u0 = np.tile(starts, (n_resamples, 1))
    problem_of_lane = np.repeat(np.arange(n_resamples), k)
    config = SolverConfig(curvature="exact", damping=1e-5)
    with jax.enable_x64(True):
        target = data.target(True)
        streamed = solve_lanes(
            law, loss, u0, make.weights, data.x, target, problem=problem_of_lane, config=config, lanes_per_call=8
        )
        full = solve_lanes(
            law,
            loss,
            u0,
            np.repeat(make.weights(0, n_resamples), k, axis=0),
            data.x,
            target,
            config=config,
            lanes_per_call=8,
        )
    assert np.all(streamed.status == CONVERGED)
    for name in ("u", "objective", "status", "steps"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(full, name))


def test_lanes_must_be_ordered_by_problem_when_rows_are_made(problem):
    law, loss, data, result = problem
    make = Resampler(data, "rows", seed=1)
    with pytest.raises(sj.ScalejaxError, match="ordered by problem"):
        solve_lanes(law, loss, np.tile(result.u, (3, 1)), make.weights, data.x, data.target(True), problem=[2, 0, 1])


def test_shared_points_are_never_copied_per_lane():
    """2,048 lanes on 65,536 shared points: host memory stays near one copy of the points, not 2,048.

    A per-lane copy of the weights alone would be 1 GiB; tracemalloc sees every
    NumPy buffer the solve allocates on the host.
    """
    law = sj.laws.get("power")
    n = 1 << 16
    x = {"x": np.geomspace(1e6, 1e9, n)}
    logy = np.log(2 + 300 * x["x"] ** -0.3)
    u0 = np.tile(law.start_grid()[:1], (2048, 1))
    tracemalloc.start()
    try:
        with jax.enable_x64(True):
            sol = solve_lanes(law, make_loss("squared_log"), u0, np.ones(n), x, logy, config=SolverConfig(max_steps=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sol.status.shape == (2048,)
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_a_solve_too_big_for_memory_is_refused_up_front(monkeypatch):
    """3e8 lanes (a bootstrap of 1e8 resamples with 3 warm starts each): one clear error naming the size."""
    law = sj.laws.get("chinchilla")
    assert _memory.available_memory() > 0
    monkeypatch.setattr(_memory, "available_memory", lambda: 24 * 2**30)  # this project's machines
    u0 = np.broadcast_to(law.start_grid()[:1], (300_000_000, 5))  # a view: nothing allocated yet
    with pytest.raises(sj.ScalejaxError, match=r"300,000,000 lanes .* GiB .* available"):
        solve_lanes(law, make_loss(), u0, np.ones(4), {"N": np.ones(4), "D": np.ones(4)}, np.zeros(4))
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    with pytest.raises(sj.ScalejaxError, match=r"at most about [\d,]+ resamples"):
        _memory.require_memory(10**7, 5, what="a bootstrap of 3,333,334 resamples", unit="resamples", per_unit=3)
    _memory.require_memory(1000, 5)  # small solves pass


def test_a_bootstrap_too_big_for_memory_is_refused_with_its_size(problem, monkeypatch):
    _, _, _, result = problem
    monkeypatch.setattr(_memory, "available_memory", lambda: 24 * 2**30)
    with pytest.raises(sj.ScalejaxError, match=r"a bootstrap of 100,000,000 resamples needs about [\d.]+ GiB"):
        sj.bootstrap(result, n=10**8)
