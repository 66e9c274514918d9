"""Acceptance: scalejax's Chinchilla fit on the real data matches an independent SciPy L-BFGS-B reference.

The data are Epoch AI's digitised Chinchilla runs (240 rows after dropping the
5 highest losses); scalejax runs Hoffmann et al.'s full 4,500-start grid, the
reference runs SciPy from a fixed subset of the same starts.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from helpers import (
    PARAM_NAMES,
    chinchilla_arrays,
    chinchilla_frame,
    chinchilla_objective,
    chinchilla_objective_value,
    scipy_fit,
    to_natural,
)

import scalejax as sj

SEED = 20240417
N_RANDOM_STARTS = 60
N_BEST_STARTS = 4

# Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", Table 1 (their refit of
# Hoffmann et al.'s approach 3 on these data). Their values give an objective ~0.45% above the optimum
# on these data (rounding, and their L-BFGS stopping early), so the comparison is loose, looser on A
# and B, which trade off against alpha and beta (the optimum has B ~2143).
BESIROGLU_2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
BESIROGLU_RTOL = {"E": 0.02, "A": 0.05, "B": 0.05, "alpha": 0.02, "beta": 0.02}

OBJECTIVE_RTOL = 1e-6
# Both optima sit at a gradient of ~1e-10 and agree to ~1e-7 relative; 1e-4 is 4 significant digits.
PARAM_RTOL = 1e-4


@pytest.fixture(scope="module")
def frame():
    return chinchilla_frame()


@pytest.fixture(scope="module")
def arrays(frame):
    return chinchilla_arrays(frame)


@pytest.fixture(scope="module")
def grid():
    return sj.laws.chinchilla.start_grid()


@pytest.fixture(scope="module")
def fit(frame):
    # Every start polished, so that each can be held against SciPy's from the same start.
    return sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", strategy="all")


@pytest.fixture(scope="module")
def subset(fit, grid):
    """Indices into the grid: a seeded random sample plus a few starts scalejax says reach its best."""
    rng = np.random.default_rng(SEED)
    random = rng.choice(len(grid), size=N_RANDOM_STARTS, replace=False)
    sol = fit.solution
    at_best = np.flatnonzero(sol.converged & (sol.objective <= fit.objective * (1 + OBJECTIVE_RTOL)))
    at_best = np.setdiff1d(at_best, random)
    chosen = rng.choice(at_best, size=min(N_BEST_STARTS, at_best.size), replace=False)
    return np.concatenate([random, np.sort(chosen)])


@pytest.fixture(scope="module")
def reference(grid, subset, arrays):
    return scipy_fit(grid[subset], *arrays)


def natural_params(fit) -> np.ndarray:
    return np.array([fit.params[k] for k in PARAM_NAMES])


def test_data_is_the_usual_240_rows(frame):
    assert len(frame) == 240
    assert {"N", "D", "C", "loss"} <= set(frame.columns)
    np.testing.assert_allclose(frame["C"], 6 * frame["N"] * frame["D"], rtol=1e-12)


def test_reference_gradient_matches_finite_differences(arrays):
    rng = np.random.default_rng(SEED)
    points = [np.array([0.6, 6.2, 7.7, 0.35, 0.37]), *rng.normal([0.5, 6.0, 7.5, 0.4, 0.4], 0.3, size=(3, 5))]
    for u in points:
        f, grad = chinchilla_objective(u, *arrays)
        assert f == pytest.approx(chinchilla_objective_value(u, *arrays), rel=1e-12)
        numeric = scipy.optimize.approx_fprime(u, lambda v: chinchilla_objective(v, *arrays)[0], 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7 * (np.abs(grad).max() + 1e-3))


def test_scalejax_reaches_best_from_some_starts(fit, grid):
    assert fit.n_starts == len(grid) == 4500
    assert fit.n_at_best >= 1
    assert fit.n_converged >= fit.n_at_best


def test_scalejax_objective_matches_reference_objective(fit, subset, arrays):
    """The per-start objectives scalejax reports are the reference objective at its per-start optima."""
    sol = fit.solution
    for i in [fit.best, *subset]:
        if np.isfinite(sol.objective[i]):
            f, _ = chinchilla_objective(sol.u[i], *arrays)
            assert f == pytest.approx(sol.objective[i], rel=1e-10), f"start {i}"


def test_same_best_objective(fit, reference):
    assert reference.objective == pytest.approx(fit.objective, rel=OBJECTIVE_RTOL)
    # No SciPy start may beat scalejax's best: that would mean the grid fit missed an optimum.
    assert reference.objectives.min() >= fit.objective * (1 - OBJECTIVE_RTOL)


def test_reference_reaches_best_from_random_starts(fit, reference):
    """The random sample alone (no help from scalejax's choice of starts) reaches the best optimum."""
    random = reference.objectives[:N_RANDOM_STARTS]
    assert np.sum(random <= fit.objective * (1 + OBJECTIVE_RTOL)) >= 1


def test_same_best_params(fit, reference):
    expected = np.array([reference.params[k] for k in PARAM_NAMES])
    np.testing.assert_allclose(natural_params(fit), expected, rtol=PARAM_RTOL, err_msg=str(PARAM_NAMES))


def test_scalejax_optimum_is_a_reference_optimum(fit, arrays):
    """SciPy started at scalejax's optimum finds nothing lower and does not move."""
    polished = scipy_fit(fit.u, *arrays)
    assert polished.objective >= fit.objective * (1 - 1e-9)
    np.testing.assert_allclose(natural_params(fit), list(polished.params.values()), rtol=PARAM_RTOL)
    _, grad = chinchilla_objective(fit.u[0], *arrays)
    assert np.abs(grad).max() <= 1e-7


def test_close_to_besiroglu_2024_refit(fit):
    for name, published in BESIROGLU_2024.items():
        assert fit.params[name] == pytest.approx(published, rel=BESIROGLU_RTOL[name]), name


@pytest.mark.slow
def test_no_reference_start_beats_scalejax_on_a_wide_subset(fit, grid, arrays):
    """300 more seeded starts: SciPy's best over them is never below scalejax's best."""
    rng = np.random.default_rng(SEED + 1)
    wide = scipy_fit(grid[rng.choice(len(grid), size=300, replace=False)], *arrays)
    assert wide.objectives.min() >= fit.objective * (1 - OBJECTIVE_RTOL)
    assert wide.objective == pytest.approx(fit.objective, rel=OBJECTIVE_RTOL)
    np.testing.assert_allclose(
        natural_params(fit), [to_natural(wide.u)[k] for k in PARAM_NAMES], rtol=PARAM_RTOL, err_msg=str(PARAM_NAMES)
    )
